/**
 * Each IETF draft interop version (3 to 8) on a real socket: the 104s, the statuses and headers
 * of creation, offset retrieval, append, conflicts, completion, appends to a completed upload,
 * cancellation and OPTIONS, as the research notes' test list (§7) asks for each version.
 */
import t from 'tap'
import { buildApp } from './helpers/app.js'
import { completion, exchange, stateOf, type Parsed } from './helpers/ietf.js'

const PROBLEMS = 'https://iana.org/assignments/http-problem-types#'
const PU = { 'Content-Type': 'application/partial-upload' }

function pathOf (location: string | undefined): string {
  return new URL(location ?? '/missing', 'http://127.0.0.1').pathname
}

function final (list: Parsed[]): Parsed {
  const last = list.at(-1)
  if (last === undefined) throw new Error('no response')
  return last
}

for (const version of [3, 4, 5, 6, 7, 8]) {
  t.test(`interop version ${version}`, async (t) => {
    const { app } = await buildApp(t, { expiration: 3_600_000, maxSize: 1_000_000 })
    await app.listen({ port: 0, host: '127.0.0.1' })
    const port = (app.server.address() as { port: number }).port
    const IV = { 'Upload-Draft-Interop-Version': String(version) }
    const appendType = version >= 6 ? PU : {}
    const [stateName, incompleteValue] = stateOf(version, false)
    const completeValue = stateOf(version, true)[1]

    // optimistic creation: a 104 with Location (and Upload-Limit from 6), then the final 201
    const created = await exchange(port, 'POST', '/files/', { ...IV, ...completion(version, true), 'Content-Length': '11' }, { body: 'hello world' }).done
    t.equal(created.length, 2, 'a 104 then the final response')
    const [interim, answer] = created as [Parsed, Parsed]
    t.equal(interim.status, 104)
    t.equal(interim.headers['upload-draft-interop-version'], String(version), '104 echoes the version')
    t.match(interim.headers.location, /^http:\/\/127\.0\.0\.1:\d+\/files\/[0-9a-f]{32}$/, 'absolute Location in the 104')
    t.equal(interim.headers['upload-offset'], undefined, 'the creation 104 carries no offset')
    if (version >= 6) t.match(interim.headers['upload-limit'], /^min-size=0, max-size=1000000/)
    else t.equal(interim.headers['upload-limit'], undefined, `no Upload-Limit before 6 (${version})`)
    t.equal(answer.status, 201)
    t.equal(answer.headers.location, interim.headers.location, 'the same Location in the 104 and the 201')
    t.equal(answer.headers['upload-offset'], '11')
    t.equal(answer.headers[stateName], completeValue)
    t.equal(answer.headers['upload-draft-interop-version'], String(version))
    t.equal(answer.headers['tus-resumable'], undefined)

    // careful creation, then HEAD
    const careful = final(await exchange(port, 'POST', '/files/', { ...IV, ...completion(version, false), 'Upload-Length': '20', 'Content-Length': '0' }).done)
    t.equal(careful.status, 201)
    t.equal(careful.headers['upload-offset'], '0')
    t.equal(careful.headers[stateName], incompleteValue)
    const path = pathOf(careful.headers.location)
    const head = final(await exchange(port, 'HEAD', path, IV, { head: true }).done)
    t.equal(head.status, version <= 4 ? 204 : 200, 'HEAD status')
    t.equal(head.headers['upload-offset'], '0')
    t.equal(head.headers[stateName], incompleteValue)
    t.equal(head.headers['cache-control'], 'no-store')
    t.equal(head.headers['upload-length'], version >= 6 ? '20' : undefined, 'Upload-Length in HEAD from 6')
    if (version >= 6) t.match(head.headers['upload-limit'], new RegExp(`max-size=1000000, ${version === 6 ? 'expires' : 'max-age'}=(3600|3599)$`))
    else t.equal(head.headers['upload-limit'], undefined)
    t.equal(head.headers['upload-metadata'], undefined, 'no tus headers')

    const forbidden = final(await exchange(port, 'HEAD', path, { ...IV, 'Upload-Offset': '0' }, { head: true }).done)
    t.equal(forbidden.status, version <= 6 ? 400 : (version <= 4 ? 204 : 200), 'HEAD with Upload-Offset')

    // append: 204 + offset (+ Upload-Complete: ?0); the media type is required from 6
    const append = final(await exchange(port, 'PATCH', path, { ...IV, ...appendType, ...completion(version, false), 'Upload-Offset': '0', 'Content-Length': '5' }, { body: 'abcde' }).done)
    t.equal(append.status, version <= 6 ? 201 : 204, 'a non-completing append: 201 in the text of 3-6')
    t.equal(append.headers['upload-offset'], '5')
    t.equal(append.headers[stateName], incompleteValue)
    if (version >= 6) {
      const untyped = final(await exchange(port, 'PATCH', path, { ...IV, ...completion(version, false), 'Upload-Offset': '5', 'Content-Length': '1' }, { body: 'x' }).done)
      t.equal(untyped.status, 415, 'application/partial-upload is required')
      t.equal(untyped.headers['content-type'], 'application/problem+json')
      t.equal(JSON.parse(untyped.body).code, 'ERR_INVALID_CONTENT_TYPE')
    }

    // conflict: 409 with the right offset and (6+) the problem type
    const conflict = final(await exchange(port, 'PATCH', path, { ...IV, ...appendType, ...completion(version, false), 'Upload-Offset': '3', 'Content-Length': '1' }, { body: 'x' }).done)
    t.equal(conflict.status, 409)
    t.equal(conflict.headers['upload-offset'], '5', '409 carries the current offset')
    t.equal(conflict.headers['content-type'], 'application/problem+json')
    const problem = JSON.parse(conflict.body) as Record<string, unknown>
    t.equal(problem.code, 'ERR_MISMATCHED_OFFSET')
    t.equal(problem.status, 409)
    t.equal(problem.type, version >= 6 ? `${PROBLEMS}mismatching-upload-offset` : 'about:blank')
    t.equal(problem['expected-offset'], 5)
    t.equal(problem['provided-offset'], 3)
    t.equal(conflict.headers['upload-complete'], version >= 7 ? '?0' : undefined, 'Upload-Complete: ?0 on a failed append from 7')

    // the completion field on PATCH: required from 7, absent means "complete" before
    const missing = final(await exchange(port, 'PATCH', path, { ...IV, ...appendType, 'Upload-Offset': '5', 'Content-Length': '15' }, { body: 'fghijklmnopqrst' }).done)
    if (version >= 7) {
      t.equal(missing.status, 400, 'Upload-Complete is required on PATCH')
      t.equal(JSON.parse(missing.body).code, 'ERR_INVALID_UPLOAD_COMPLETE')
      const done = final(await exchange(port, 'PATCH', path, { ...IV, ...appendType, ...completion(version, true), 'Upload-Offset': '5', 'Content-Length': '15' }, { body: 'fghijklmnopqrst' }).done)
      t.equal(done.status, 204)
      t.equal(done.headers['upload-complete'], '?1')
    } else {
      t.equal(missing.status, 204, 'no completion field: the request completes the upload')
      t.equal(missing.headers[stateName], completeValue)
      t.equal(missing.headers['upload-offset'], '20')
    }
    const after = final(await exchange(port, 'HEAD', path, IV, { head: true }).done)
    t.equal(after.headers['upload-offset'], '20')
    t.equal(after.headers[stateName], completeValue)

    // appending to a completed upload
    const more = final(await exchange(port, 'PATCH', path, { ...IV, ...appendType, ...completion(version, true), 'Upload-Offset': '20', 'Content-Length': '1' }, { body: 'x' }).done)
    t.equal(more.status, 400)
    const moreProblem = JSON.parse(more.body) as Record<string, unknown>
    if (version === 8) {
      t.equal(moreProblem.type, `${PROBLEMS}inconsistent-upload-length`)
      const empty = final(await exchange(port, 'PATCH', path, { ...IV, ...appendType, ...completion(version, true), 'Upload-Offset': '20', 'Content-Length': '0' }).done)
      t.equal(empty.status, 410, 'an empty append to a completed upload is 410 in 8')
      t.equal(JSON.parse(empty.body).type, `${PROBLEMS}completed-upload`)
      t.equal(JSON.parse(empty.body).code, 'ERR_UPLOAD_COMPLETED_GONE', 'the 410 has its own code')
    } else {
      t.equal(moreProblem.code, 'ERR_UPLOAD_COMPLETED')
      t.equal(moreProblem.type, version >= 6 ? `${PROBLEMS}completed-upload` : 'about:blank')
    }

    // cancellation
    if (version <= 6) {
      const refused = final(await exchange(port, 'DELETE', path, { ...IV, 'Upload-Offset': '0' }).done)
      t.equal(refused.status, 400, 'DELETE with upload headers is a 400 up to 6')
    }
    const deleted = final(await exchange(port, 'DELETE', path, IV).done)
    t.equal(deleted.status, 204)
    const gone = final(await exchange(port, 'HEAD', path, IV, { head: true }).done)
    t.equal(gone.status, 404)

    // discovery
    const options = final(await exchange(port, 'OPTIONS', '/files/', IV).done)
    t.equal(options.status, 204)
    t.equal(options.headers['tus-version'], '1.0.0', 'tus discovery stays')
    t.equal(options.headers['upload-limit'], version >= 6 ? 'min-size=0, max-size=1000000' : undefined)
    t.equal(options.headers['accept-patch'], version >= 8 ? 'application/partial-upload' : undefined)
  })
}

t.test('104s: HTTP/1.0 gets none, Expect: 100-continue keeps its 100, progress from 5', async (t) => {
  const { app } = await buildApp(t, { progressInterval: 10 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  const old = await exchange(port, 'POST', '/files/', { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Content-Length': '11' }, { httpVersion: '1.0', body: 'hello world' }).done
  t.equal(old.length, 1, 'no informational response for HTTP/1.0')
  t.equal(old[0]?.status, 201)

  const expecting = exchange(port, 'POST', '/files/', { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Content-Length': '11', Expect: '100-continue' })
  const early = await expecting.waitFor(2)
  t.same(early.map((r) => r.status), [100, 104], 'the 100 Continue comes first, then the 104')
  expecting.write('hello world')
  const continued = await expecting.done
  t.same(continued.map((r) => r.status), [100, 104, 201])

  for (const version of [4, 5, 8]) {
    const slow = exchange(port, 'POST', '/files/', { 'Upload-Draft-Interop-Version': String(version), 'Upload-Complete': '?1', 'Content-Length': '30' })
    await slow.waitFor(1)
    for (let i = 0; i < 3; i++) {
      slow.write('0123456789')
      await new Promise((resolve) => setTimeout(resolve, 60))
    }
    const list = await slow.done
    const progress = list.filter((r) => r.status === 104).slice(1)
    t.equal(final(list).status, 201)
    if (version === 4) {
      t.equal(progress.length, 0, 'no progress 104s in 4')
      continue
    }
    t.ok(progress.length >= 2, `progress 104s in ${version} (${progress.length})`)
    const offsets = progress.map((r) => Number(r.headers['upload-offset']))
    t.same([...offsets].sort((a, b) => a - b), offsets, 'offsets never decrease')
    t.ok(offsets.every((offset) => offset > 0 && offset <= 30))
    t.ok(progress.every((r) => r.headers.location === undefined && r.headers['upload-draft-interop-version'] === String(version)), 'no Location, the version echoed')
  }
})

t.test('104s: the 100 is sent first when the app handles checkContinue itself, and never on HTTP/2', async (t) => {
  const { app } = await buildApp(t)
  // an app that takes over Expect: 100-continue and does not answer it
  app.server.on('checkContinue', (req, res) => { app.server.emit('request', req, res) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const expecting = exchange(port, 'POST', '/files/', { 'Upload-Draft-Interop-Version': '6', 'Upload-Complete': '?1', 'Content-Length': '2', Expect: '100-continue' })
  t.same((await expecting.waitFor(2)).map((r) => r.status), [100, 104], 'we sent the 100 before the 104')
  expecting.write('hi')
  t.equal(final(await expecting.done).status, 201)

  const Fastify = (await import('fastify')).default
  const { default: tus } = await import('../plugin/index.js')
  const { MemoryStore } = await import('../stores/memory.js')
  const { connect } = await import('node:http2')
  const h2 = Fastify({ http2: true })
  await h2.register(tus, { store: new MemoryStore() })
  t.teardown(async () => await h2.close())
  const address = await h2.listen({ port: 0, host: '127.0.0.1' })
  const session = connect(address)
  t.teardown(() => session.close())
  const statuses: number[] = []
  const stream = session.request({ ':method': 'POST', ':path': '/files/', 'upload-draft-interop-version': '8', 'upload-complete': '?1' })
  stream.on('headers', (headers) => statuses.push(Number(headers[':status'])))
  const responded = new Promise<Record<string, unknown>>((resolve) => stream.on('response', resolve))
  // an HTTP/2 body needs no Content-Length: the upload is the stream's data
  stream.end('hello')
  const response = await responded
  stream.resume()
  await new Promise((resolve) => stream.on('close', resolve))
  t.same(statuses, [], 'no informational response on HTTP/2')
  t.equal(response[':status'], 201)
  t.equal(response['upload-offset'], '5', 'the body was taken in')
})

t.test('a hook that stops a draft creation: a coded problem, no Location', async (t) => {
  const { app } = await buildApp(t, { progressInterval: 10 })
  app.tus.addHook('onUploadProgress', (request, _upload, progress) => {
    if (progress.bytes > 0) app.tus.stopUpload(request)
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const stopped = exchange(port, 'POST', '/files/', { 'Upload-Draft-Interop-Version': '7', 'Upload-Complete': '?1', 'Content-Length': '100' })
  await stopped.waitFor(1)
  stopped.write('0123456789')
  const list = await stopped.done
  const answer = final(list)
  t.equal(answer.status, 400)
  t.equal(JSON.parse(answer.body).code, 'ERR_UPLOAD_STOPPED')
  t.equal(answer.headers.location, undefined)
  t.equal(answer.headers['upload-complete'], '?0')

  // an empty creation without any body framing completes a zero-length upload
  const bare = final(await exchange(port, 'POST', '/files/', { 'Upload-Draft-Interop-Version': '7', 'Upload-Complete': '?1' }).done)
  t.equal(bare.status, 201)
  t.equal(bare.headers['upload-complete'], '?1')
  t.equal(bare.headers['upload-offset'], '0')
})

t.test('resume after a dropped creation (the Apple flow), versions 3, 6 and 8', async (t) => {
  const { app } = await buildApp(t, { fileStore: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const data = Buffer.alloc(1000, 'abcdefghij')
  for (const version of [3, 6, 8]) {
    const IV = { 'Upload-Draft-Interop-Version': String(version) }
    const [stateName, incompleteValue] = stateOf(version, false)
    const creation = exchange(port, 'PUT', '/files/', { ...IV, ...completion(version, true), 'Content-Length': '1000', 'Content-Type': 'text/plain' })
    const [interim] = await creation.waitFor(1)
    const path = pathOf(interim?.headers.location)
    creation.write(data.subarray(0, 400))
    await new Promise((resolve) => setTimeout(resolve, 50))
    creation.socket.destroy()
    let head: Parsed | undefined
    for (let i = 0; i < 50; i++) {
      head = final(await exchange(port, 'HEAD', path, { ...IV, 'Content-Type': 'text/plain' }, { head: true }).done)
      if (head.headers['upload-offset'] === '400') break
      await new Promise((resolve) => setTimeout(resolve, 20))
    }
    t.equal(head?.status, version <= 4 ? 204 : 200)
    t.equal(head?.headers[stateName], incompleteValue, `${version}: resumable`)
    t.equal(head?.headers['upload-offset'], '400', `${version}: every byte that arrived was kept`)
    const rest = final(await exchange(port, 'PATCH', path, { ...IV, ...(version >= 6 ? PU : {}), ...completion(version, true), 'Upload-Offset': '400', 'Content-Length': '600' }, { body: data.subarray(400) }).done)
    t.equal(rest.status, 204)
    t.equal(rest.headers[stateName], stateOf(version, true)[1])
    // a raw exchange, not fetch: a kept-alive connection still busy at teardown would hold app.close()
    const download = final(await exchange(port, 'GET', path, { Connection: 'close' }).done)
    t.equal(download.body, data.toString('latin1'), `${version}: bytes identical`)
    t.equal(download.headers['content-type'], 'text/plain', 'the creation media type is kept')
  }
})

t.test('a HEAD or DELETE takes over an append in flight (interop 8)', async (t) => {
  const { app } = await buildApp(t, { fileStore: true })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const IV = { 'Upload-Draft-Interop-Version': '8' }
  const created = final(await exchange(port, 'POST', '/files/', { ...IV, 'Upload-Complete': '?0', 'Content-Length': '0' }).done)
  const path = pathOf(created.headers.location)

  const stalled = exchange(port, 'PATCH', path, { ...IV, ...PU, 'Upload-Complete': '?1', 'Upload-Offset': '0', 'Content-Length': '100' })
  stalled.write('0123456789')
  await new Promise((resolve) => setTimeout(resolve, 100))
  const started = Date.now()
  const head = final(await exchange(port, 'HEAD', path, IV, { head: true }).done)
  t.ok(Date.now() - started < 2000, 'the HEAD answered at once')
  t.equal(head.status, 200)
  t.equal(head.headers['upload-offset'], '10', 'the bytes of the stalled append count')
  t.equal(head.headers['upload-complete'], '?0')
  const interrupted = final(await stalled.done)
  t.equal(interrupted.status, 400, 'the stalled append was ended')
  t.equal(JSON.parse(interrupted.body).code, 'ERR_UPLOAD_INTERRUPTED')
  t.equal(interrupted.headers['upload-complete'], '?0')
  t.equal(interrupted.headers['upload-offset'], '10')

  const resumed = final(await exchange(port, 'PATCH', path, { ...IV, ...PU, 'Upload-Complete': '?0', 'Upload-Offset': '10', 'Content-Length': '5' }, { body: 'abcde' }).done)
  t.equal(resumed.status, 204, 'an append at the returned offset is accepted')

  const another = exchange(port, 'PATCH', path, { ...IV, ...PU, 'Upload-Complete': '?0', 'Upload-Offset': '15', 'Content-Length': '50' })
  another.write('xyz')
  await new Promise((resolve) => setTimeout(resolve, 100))
  const deleted = final(await exchange(port, 'DELETE', path, IV).done)
  t.equal(deleted.status, 204, 'DELETE during an append')
  await another.done
  const gone = final(await exchange(port, 'HEAD', path, IV, { head: true }).done)
  t.equal(gone.status, 404)
})

t.test('ietfInformational: false speaks the draft without any 104 (for proxies such as nginx)', async (t) => {
  const { app } = await buildApp(t, { progressInterval: 10, ietfInformational: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const slow = exchange(port, 'POST', '/files/', { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1', 'Content-Length': '30' })
  for (let i = 0; i < 3; i++) {
    slow.write('0123456789')
    await new Promise((resolve) => setTimeout(resolve, 60))
  }
  const list = await slow.done
  t.same(list.map((r) => r.status), [201], 'only the final response: no creation or progress 104')
  t.match(final(list).headers.location, /\/files\/[0-9a-f]{32}$/, 'the final response still names the upload')
  t.equal(final(list).headers['upload-complete'], '?1')
})
