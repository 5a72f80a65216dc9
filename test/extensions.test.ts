/**
 * The rest of tus 1.0: concatenation, checksum (header and trailer), expiration, downloads and
 * CORS, success and error paths.
 */
import cors from '@fastify/cors'
import { createHash, randomBytes } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import * as tusClient from 'tus-js-client'
import type { FastifyInstance } from 'fastify'
import { buildApp, createUpload, OCTET, TUS } from './helpers/app.js'

const sha1 = (data: string | Buffer): string => createHash('sha1').update(data).digest('base64')

async function patch (app: FastifyInstance, path: string, offset: number, payload: string | Buffer, headers: Record<string, string> = {}): Promise<Awaited<ReturnType<FastifyInstance['inject']>>> {
  return await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': String(offset), ...headers }, payload })
}

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

t.test('concatenation', async (t) => {
  const { app } = await buildApp(t, { fileStore: true, maxSize: 100 })
  const a = await createUpload(app, { 'upload-length': '5', 'upload-concat': 'partial' })
  const b = await createUpload(app, { 'upload-length': '6', 'upload-concat': 'partial' })
  await patch(app, a, 0, 'hello')
  const headA = await app.inject({ method: 'HEAD', url: a, headers: TUS })
  t.equal(headA.headers['upload-concat'], 'partial')
  t.equal(headA.headers['upload-offset'], '5')

  const unfinished = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${a} ${b}` } })
  t.equal(unfinished.statusCode, 400)
  t.equal(unfinished.json().code, 'ERR_UPLOAD_NOT_FINISHED')
  await patch(app, b, 0, ' world')

  const final = await app.inject({
    method: 'POST',
    url: '/files/',
    headers: { ...TUS, host: 'up.example', 'upload-concat': `final;http://up.example${a} ${b}`, 'upload-metadata': 'filename YS50eHQ=' }
  })
  t.equal(final.statusCode, 201)
  const finalPath = new URL(final.headers.location as string).pathname
  const head = await app.inject({ method: 'HEAD', url: finalPath, headers: { ...TUS, host: 'up.example' } })
  t.equal(head.headers['upload-length'], '11', 'the length is the sum')
  t.equal(head.headers['upload-offset'], '11')
  t.equal(head.headers['upload-concat'], `final;http://up.example${a} ${b}`, 'as received: absolute and relative URLs')
  t.equal(head.headers['upload-metadata'], 'filename YS50eHQ=')
  t.equal((await app.inject({ method: 'GET', url: finalPath })).body, 'hello world')

  const modify = await patch(app, finalPath, 11, 'x')
  t.equal(modify.statusCode, 403)
  t.equal(modify.json().code, 'ERR_MODIFY_FINAL')
  const withBody = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${a}`, 'content-type': OCTET }, payload: 'x' })
  t.equal(withBody.statusCode, 403)

  const plain = await createUpload(app, { 'upload-length': '0' })
  const cases: Array<[string, number, string]> = [
    [`final;${plain}`, 400, 'ERR_INVALID_CONCAT'],
    [`final;${finalPath}`, 400, 'ERR_INVALID_CONCAT'],
    ['final;/files/missing', 404, 'ERR_UPLOAD_NOT_FOUND'],
    ['final;/elsewhere/x', 404, 'ERR_UPLOAD_NOT_FOUND'],
    ['final;', 400, 'ERR_INVALID_CONCAT'],
    ['final; ', 400, 'ERR_INVALID_CONCAT'],
    ['whole', 400, 'ERR_INVALID_CONCAT'],
    ['final;http://[bad', 400, 'ERR_INVALID_CONCAT']
  ]
  for (const [value, status, code] of cases) {
    const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': value } })
    t.equal(response.statusCode, status, value)
    t.equal(response.json().code, code, value)
  }
  const big = await createUpload(app, { 'upload-length': '60', 'upload-concat': 'partial' })
  await patch(app, big, 0, 'x'.repeat(60))
  const big2 = await createUpload(app, { 'upload-length': '50', 'upload-concat': 'partial' })
  await patch(app, big2, 0, 'y'.repeat(50))
  const sum = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${big} ${big2}` } })
  t.equal(sum.statusCode, 413, 'two distinct parts summing past maxSize')
  t.equal(sum.json().code, 'ERR_MAX_SIZE_EXCEEDED')
  for (const value of [`final;${a} ${a}`, `final;${a} ${b} http://up.example${a}`]) {
    const twice = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, host: 'up.example', 'upload-concat': value } })
    t.equal(twice.statusCode, 400, `a part named twice is refused: ${value}`)
    t.equal(twice.json().code, 'ERR_CONCAT_DUPLICATE_PART')
  }
})

t.test('termination: disableTerminationForFinishedUploads refuses completed uploads only, in both dialects', async (t) => {
  const asked: string[] = []
  const { app } = await buildApp(t, { disableTerminationForFinishedUploads: true, hooks: { preTerminate: (_request, upload) => { asked.push(upload.id) } } })
  const remove = async (path: string, headers: Record<string, string> = TUS): Promise<Awaited<ReturnType<FastifyInstance['inject']>>> =>
    await app.inject({ method: 'DELETE', url: path, headers })
  const create = async (headers: Record<string, string>, payload?: string): Promise<string> => {
    const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, ...headers, ...(payload === undefined ? {} : { 'content-type': OCTET }) }, payload })
    t.equal(created.statusCode, 201)
    return new URL(created.headers.location as string).pathname
  }
  t.ok(app.tus.extensions.includes('termination'), 'termination is still offered')

  const finished = await create({ 'upload-length': '3' }, 'abc')
  const refused = await remove(finished)
  t.equal(refused.statusCode, 400)
  t.equal(refused.json().code, 'ERR_INVALID_TERMINATION')
  t.equal((await app.inject({ method: 'HEAD', url: finished, headers: TUS })).headers['upload-offset'], '3', 'the upload stays')
  t.same(asked, [], 'preTerminate is not asked about a refused termination')

  const unfinished = await create({ 'upload-length': '3' }, 'a')
  t.equal((await remove(unfinished)).statusCode, 204, 'an unfinished upload is still terminated')
  t.equal((await app.inject({ method: 'HEAD', url: unfinished, headers: TUS })).statusCode, 404)
  const deferred = await create({ 'upload-defer-length': '1' })
  t.equal((await remove(deferred)).statusCode, 204, 'so is one whose length is not known yet')

  const partA = await create({ 'upload-length': '2', 'upload-concat': 'partial' }, 'ab')
  const partB = await create({ 'upload-length': '2', 'upload-concat': 'partial' }, 'c')
  t.equal((await remove(partA)).json().code, 'ERR_INVALID_TERMINATION', 'a finished partial upload is complete')
  await patch(app, partB, 1, 'd')
  const final = await create({ 'upload-concat': `final;${partA} ${partB}` })
  t.equal((await remove(final)).json().code, 'ERR_INVALID_TERMINATION', 'a final upload is complete from its creation')
  const unfinishedPart = await create({ 'upload-length': '2', 'upload-concat': 'partial' }, 'x')
  t.equal((await remove(unfinishedPart)).statusCode, 204, 'an unfinished partial upload may go')

  const V8 = { 'upload-draft-interop-version': '8' }
  const draftDone = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1' }, payload: 'abc' })
  const draftRefused = await remove(new URL(draftDone.headers.location as string).pathname, V8)
  t.equal(draftRefused.statusCode, 400, 'the draft dialect too')
  t.match(draftRefused.headers['content-type'], /^application\/problem\+json/)
  t.equal(draftRefused.json().code, 'ERR_INVALID_TERMINATION')
  const draftOpen = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0' }, payload: 'ab' })
  t.equal((await remove(new URL(draftOpen.headers.location as string).pathname, V8)).statusCode, 204)
  t.equal(asked.length, 4, 'preTerminate runs for each termination that goes ahead')

  const { app: plain } = await buildApp(t)
  const done = await plain.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'content-type': OCTET }, payload: 'a' })
  t.equal((await plain.inject({ method: 'DELETE', url: new URL(done.headers.location as string).pathname, headers: TUS })).statusCode, 204, 'by default completed uploads may be terminated')
})

t.test('concatenation: the number of parts and the Upload-Concat size are bounded', async (t) => {
  const { app } = await buildApp(t, { maxConcatParts: 100 })
  const parts: string[] = []
  for (let i = 0; i < 101; i++) parts.push(await createUpload(app, { 'upload-length': '0', 'upload-concat': 'partial' }))
  const absolute = (list: string[]): string => `final;${list.map((path) => `http://uploads.example.com${path}`).join(' ')}`
  const hundred = absolute(parts.slice(0, 100))
  const final = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, host: 'uploads.example.com', 'upload-concat': hundred } })
  t.equal(final.statusCode, 201, '100 parts by absolute URL')
  const head = await app.inject({ method: 'HEAD', url: new URL(final.headers.location as string).pathname, headers: TUS })
  const echoed = head.headers['upload-concat'] as string
  t.equal(echoed, hundred, 'echoed as received')
  t.ok(Buffer.byteLength(`Upload-Concat: ${echoed}\r\n`) <= 8192, `fits in 8 KiB (${Buffer.byteLength(echoed)} bytes)`)
  const tooMany = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, host: 'uploads.example.com', 'upload-concat': absolute(parts) } })
  t.equal(tooMany.statusCode, 400, '101 parts')
  t.equal(tooMany.json().code, 'ERR_CONCAT_TOO_MANY_PARTS')

  // the longest ids (100 characters) in long absolute URLs: the value is refused rather than echoed past 8 KiB
  const { app: longIds } = await buildApp(t, { generateId: () => 'x'.repeat(90) + String(Math.random()).slice(2, 12).padEnd(10, '0') })
  const long: string[] = []
  for (let i = 0; i < 80; i++) long.push(await createUpload(longIds, { 'upload-length': '0', 'upload-concat': 'partial' }))
  const tooLong = await longIds.inject({ method: 'POST', url: '/files/', headers: { ...TUS, host: 'uploads.example.com', 'upload-concat': absolute(long) } })
  t.equal(tooLong.statusCode, 400)
  t.equal(tooLong.json().code, 'ERR_INVALID_CONCAT')
  t.match(tooLong.json().message, /longer than 8192 bytes/)
})

t.test('concatenation: authorize is asked about every part, with the action "concat"', async (t) => {
  const asked: Array<[string | undefined, string]> = []
  const { app } = await buildApp(t, {
    hooks: {
      authorize: (_request, upload, action) => {
        asked.push([upload?.id, action])
        if (action === 'concat' && upload?.metadata.owner !== 'alice') throw Object.assign(new Error('not yours'), { statusCode: 403, code: 'ERR_NOT_YOURS' })
      }
    }
  })
  const mine = await createUpload(app, { 'upload-length': '2', 'upload-concat': 'partial', 'upload-metadata': `owner ${Buffer.from('alice').toString('base64')}` })
  const theirs = await createUpload(app, { 'upload-length': '3', 'upload-concat': 'partial', 'upload-metadata': `owner ${Buffer.from('bob').toString('base64')}` })
  await patch(app, mine, 0, 'ab')
  await patch(app, theirs, 0, 'cde')
  let created = 0
  app.tus.on('upload-created', () => { created++ })
  asked.length = 0
  const refused = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${mine} ${theirs}` } })
  t.equal(refused.statusCode, 403, 'the hook\'s refusal')
  t.equal(refused.json().code, 'ERR_NOT_YOURS')
  t.equal(created, 0, 'nothing created')
  const id = (path: string): string => path.slice('/files/'.length)
  t.same(asked, [[undefined, 'create'], [id(mine), 'concat'], [id(theirs), 'concat']], 'create, then each part')
  const allowed = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${mine}` } })
  t.equal(allowed.statusCode, 201)
})

t.test('a part is locked while it is concatenated', async (t) => {
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  const { app } = await buildApp(t, { acquireLockTimeout: 200, hooks: { preCreate: async (_r, upload) => { if (upload.concat?.kind === 'final') await gate } } })
  const part = await createUpload(app, { 'upload-length': '2', 'upload-concat': 'partial' })
  await patch(app, part, 0, 'ab')
  const final = app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${part}` } })
  await sleep(50)
  const del = await app.inject({ method: 'DELETE', url: part, headers: TUS })
  t.equal(del.statusCode, 423, 'the part cannot be deleted while the final is built')
  release()
  t.equal((await final).statusCode, 201)
})

t.test('tus-js-client parallelUploads: 4', async (t) => {
  const { app, dir } = await buildApp(t, { fileStore: true })
  const base = await listen(app)
  const data = randomBytes(4 * 1024 * 1024 + 3)
  const url = await new Promise<string>((resolve, reject) => {
    const upload = new tusClient.Upload(data, {
      endpoint: `${base}/files/`,
      parallelUploads: 4,
      metadata: { filename: 'parallel.bin' },
      onError: reject,
      onSuccess: () => resolve(upload.url as string)
    })
    upload.start()
  })
  t.ok(dir)
  const download = await fetch(url)
  const bytes = Buffer.from(await download.arrayBuffer())
  t.equal(bytes.length, data.length)
  t.ok(bytes.equals(data), 'the final upload is the parts in order')
  const head = await fetch(url, { method: 'HEAD', headers: TUS })
  t.match(head.headers.get('upload-concat'), /^final;(http:\/\/127\.0\.0\.1:\d+\/files\/[0-9a-f]{32} ?){4}$/)
})

t.test('checksum: verified while streaming; a mismatch discards the chunk', async (t) => {
  for (const fileStore of [true, false]) {
    const { app } = await buildApp(t, { fileStore })
    const path = await createUpload(app, { 'upload-length': '10' })
    const good = await patch(app, path, 0, 'hello', { 'upload-checksum': `sha1 ${sha1('hello')}` })
    t.equal(good.statusCode, 204)
    t.equal(good.headers['upload-offset'], '5')
    const bad = await patch(app, path, 5, 'world', { 'upload-checksum': `sha1 ${sha1('WORLD')}` })
    t.equal(bad.statusCode, 460)
    t.equal(bad.json().code, 'ERR_CHECKSUM_MISMATCH')
    const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
    t.equal(head.headers['upload-offset'], '5', 'the offset did not move')
    const malformed: Array<[string, string]> = [
      ['sha3 AAAA', 'ERR_UNSUPPORTED_CHECKSUM_ALGORITHM'], ['sha1', 'ERR_INVALID_CHECKSUM'], ['sha1 !!!', 'ERR_INVALID_CHECKSUM'], ['sha1 a b', 'ERR_INVALID_CHECKSUM']
    ]
    for (const [value, code] of malformed) {
      const response = await patch(app, path, 5, 'world', { 'upload-checksum': value })
      t.equal(response.statusCode, 400, value)
      t.equal(response.json().code, code)
    }
    const digests: Record<string, string> = {
      md5: createHash('md5').update('world').digest('base64'),
      sha256: createHash('sha256').update('world').digest('base64'),
      sha512: createHash('sha512').update('world').digest('base64'),
      crc32: Buffer.from('3a771143', 'hex').toString('base64')
    }
    for (const [algorithm, digest] of Object.entries(digests)) {
      const fresh = await createUpload(app, { 'upload-length': '5' })
      const response = await patch(app, fresh, 0, 'world', { 'upload-checksum': `${algorithm} ${digest}` })
      t.equal(response.statusCode, 204, `${algorithm} matches`)
    }
    const created = await app.inject({
      method: 'POST',
      url: '/files/',
      headers: { ...TUS, 'upload-length': '5', 'content-type': OCTET, 'upload-checksum': `sha1 ${sha1('nope!')}` },
      payload: 'hello'
    })
    t.equal(created.statusCode, 460, 'creation-with-upload is verified too')
  }
})

t.test('checksum-trailer: a chunked body with its checksum at the end', async (t) => {
  const { app } = await buildApp(t, { fileStore: true })
  const base = await listen(app)
  const path = await createUpload(app, { 'upload-length': '12' })
  const send = async (offset: number, chunks: string[], trailer: string | undefined): Promise<{ status: number, offset: string | undefined, body: string }> =>
    await new Promise((resolve, reject) => {
      const request = httpRequest(`${base}${path}`, {
        method: 'PATCH',
        headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': String(offset), Trailer: 'Upload-Checksum', 'Transfer-Encoding': 'chunked' }
      }, (response) => {
        let body = ''
        response.on('data', (chunk) => { body += String(chunk) })
        response.on('end', () => resolve({ status: response.statusCode ?? 0, offset: response.headers['upload-offset'] as string | undefined, body }))
      })
      request.on('error', reject)
      for (const chunk of chunks) request.write(chunk)
      if (trailer !== undefined) request.addTrailers({ 'Upload-Checksum': trailer })
      request.end()
    })
  const good = await send(0, ['hello ', 'wor'], `sha256 ${createHash('sha256').update('hello wor').digest('base64')}`)
  t.equal(good.status, 204)
  t.equal(good.offset, '9')
  const bad = await send(9, ['ld!'], `md5 ${createHash('md5').update('LD!').digest('base64')}`)
  t.equal(bad.status, 460)
  const missing = await send(9, ['ld!'], undefined)
  t.equal(missing.status, 400, 'an announced trailer that never came')
  t.match(missing.body, /ERR_INVALID_CHECKSUM/)
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.headers['upload-offset'], '9')
  const last = await send(9, ['ld!'], `crc32 ${Buffer.alloc(4, 0).toString('base64')}`)
  t.equal(last.status, 460)
  const right = Buffer.alloc(4)
  const { crc32 } = await import('node:zlib')
  right.writeUInt32BE(crc32('ld!'))
  const done = await send(9, ['ld!'], `crc32 ${right.toString('base64')}`)
  t.equal(done.status, 204)
  t.equal((await app.inject({ method: 'GET', url: path })).body, 'hello world!')
})

t.test('expiration', async (t) => {
  const { app } = await buildApp(t, { fileStore: true, expiration: 300 })
  const options = await app.inject({ method: 'OPTIONS', url: '/files/' })
  t.match(options.headers['tus-extension'], /,expiration$/)
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '10' } })
  const expires = Date.parse(created.headers['upload-expires'] as string)
  // IMF-fixdate has whole seconds
  t.ok(expires > Date.now() - 1000 && expires <= Date.now() + 300, `Upload-Expires on POST: ${created.headers['upload-expires'] as string}`)
  t.match(created.headers['upload-expires'], /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/, 'IMF-fixdate')
  const path = new URL(created.headers.location as string).pathname
  const first = await patch(app, path, 0, 'hello')
  t.ok(first.headers['upload-expires'], 'Upload-Expires on PATCH')
  t.ok((await app.inject({ method: 'HEAD', url: path, headers: TUS })).headers['upload-expires'], 'and on HEAD')
  const done = await createUpload(app, { 'upload-length': '1' })
  const finished = await patch(app, done, 0, 'x')
  t.equal(finished.headers['upload-expires'], undefined, 'not for completed uploads')
  await sleep(1100)
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.statusCode, 410)
  t.equal(head.json().code, 'ERR_UPLOAD_EXPIRED')
  t.equal((await patch(app, path, 5, 'world')).statusCode, 410)
  t.equal((await app.inject({ method: 'GET', url: path })).statusCode, 410)
  t.equal((await app.inject({ method: 'HEAD', url: done, headers: TUS })).statusCode, 200, 'completed uploads never expire')
  t.equal(await app.tus.removeExpired(), 1)
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: TUS })).statusCode, 404)
  t.equal((await app.inject({ method: 'GET', url: done })).body, 'x')
})

t.test('expiration sweep runs between onReady and onClose', async (t) => {
  const { app } = await buildApp(t, { expiration: 50, expirationInterval: 30 })
  const path = await createUpload(app, { 'upload-length': '10' })
  await sleep(200)
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: TUS })).statusCode, 404, 'swept')
  const { app: off } = await buildApp(t)
  t.equal(await off.tus.removeExpired(), 0, 'nothing expires without the option')
})

t.test('downloads: type, disposition, ranges, validators', async (t) => {
  const { app } = await buildApp(t, { fileStore: true })
  const upload = async (metadata: Record<string, string>, data: string): Promise<string> => {
    const header = Object.entries(metadata).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',')
    const path = await createUpload(app, { 'upload-length': String(data.length), 'upload-metadata': header })
    await patch(app, path, 0, data)
    return path
  }
  const image = await upload({ filetype: 'image/png', filename: 'cat "pic".png' }, '0123456789')
  const whole = await app.inject({ method: 'GET', url: image })
  t.equal(whole.headers['content-type'], 'image/png')
  t.equal(whole.headers['content-disposition'], 'inline; filename="cat _pic_.png"; filename*=UTF-8\'\'cat%20%22pic%22.png')
  t.equal(whole.headers['accept-ranges'], 'bytes')
  t.equal(whole.headers['x-content-type-options'], 'nosniff')
  const tag = whole.headers.etag as string
  t.match(tag, /^"[^"]+"$/)
  t.equal((await app.inject({ method: 'GET', url: image, headers: { 'if-none-match': tag } })).statusCode, 304)
  const part = await app.inject({ method: 'GET', url: image, headers: { range: 'bytes=2-5' } })
  t.equal(part.statusCode, 206)
  t.equal(part.body, '2345')
  t.equal(part.headers['content-range'], 'bytes 2-5/10')
  t.equal(part.headers['content-length'], '4')
  t.equal((await app.inject({ method: 'GET', url: image, headers: { range: 'bytes=-3' } })).body, '789')
  t.equal((await app.inject({ method: 'GET', url: image, headers: { range: 'bytes=7-' } })).body, '789')
  t.equal((await app.inject({ method: 'GET', url: image, headers: { range: 'bytes=8-100' } })).body, '89')
  const unsatisfiable = await app.inject({ method: 'GET', url: image, headers: { range: 'bytes=10-' } })
  t.equal(unsatisfiable.statusCode, 416)
  t.equal(unsatisfiable.headers['content-range'], 'bytes */10')
  t.equal((await app.inject({ method: 'GET', url: image, headers: { range: 'bytes=1-2,4-5' } })).statusCode, 200, 'several ranges: the whole file')
  t.equal((await app.inject({ method: 'GET', url: image, headers: { range: 'bytes=5-2' } })).statusCode, 200, 'a malformed range is ignored')
  t.equal((await app.inject({ method: 'GET', url: image, headers: { range: 'bytes=2-5', 'if-range': '"other"' } })).statusCode, 200, 'If-Range mismatch: whole file')
  t.equal((await app.inject({ method: 'GET', url: image, headers: { range: 'bytes=2-5', 'if-range': tag } })).statusCode, 206)

  const html = await upload({ filetype: 'text/html', filename: 'päge.html' }, '<script>')
  const page = await app.inject({ method: 'GET', url: html })
  t.equal(page.headers['content-type'], 'application/octet-stream', 'active content is never served as such')
  t.equal(page.headers['content-disposition'], 'attachment; filename="p_ge.html"; filename*=UTF-8\'\'p%C3%A4ge.html', 'active content is never inline')
  for (const response of [whole, page]) {
    t.equal(response.headers['content-security-policy'], "default-src 'none'; sandbox", 'a download never runs as a page of the origin')
    t.equal(response.headers['cross-origin-resource-policy'], 'same-site')
  }
  for (const filetype of ['image/svg+xml', 'application/xhtml+xml', 'text/xml', 'application/javascript', 'TEXT/HTML; charset=utf-8', 'multipart/x-mixed-replace; boundary=x']) {
    const active = await app.inject({ method: 'GET', url: await upload({ filetype }, 'x') })
    t.equal(active.headers['content-type'], 'application/octet-stream', filetype)
    t.equal(active.headers['content-disposition'], 'attachment', filetype)
  }
  const junk = await upload({ filetype: 'text/html\r\nX-Evil: 1', filename: '../../etc/passwd' }, 'x')
  const safe = await app.inject({ method: 'GET', url: junk })
  t.equal(safe.headers['content-type'], 'application/octet-stream', 'an invalid filetype is not echoed')
  t.equal(safe.headers['content-disposition'], 'attachment; filename="passwd"; filename*=UTF-8\'\'passwd')
  const params = await upload({ filetype: 'audio/ogg; codecs=opus' }, 'x')
  const audio = await app.inject({ method: 'GET', url: params })
  t.equal(audio.headers['content-type'], 'audio/ogg; codecs=opus')
  t.equal(audio.headers['content-disposition'], 'inline')
  const empty = await upload({}, '')
  const nothing = await app.inject({ method: 'GET', url: empty, headers: { range: 'bytes=-1' } })
  t.equal(nothing.statusCode, 416)
})

t.test('CORS built in: allowed origins get headers, others none', async (t) => {
  const { app } = await buildApp(t)
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/files/',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'upload-checksum' }
  })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], 'https://app.example')
  t.match(preflight.headers['access-control-allow-methods'], /PATCH/)
  t.match(preflight.headers['access-control-allow-headers'], /Upload-Checksum/)
  t.equal(preflight.headers['access-control-max-age'], '86400')
  t.match(preflight.headers.vary, /Origin/)
  t.equal(preflight.headers['access-control-allow-credentials'], undefined)
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', origin: 'https://app.example' } })
  t.equal(created.headers['access-control-allow-origin'], 'https://app.example')
  for (const name of ['Location', 'Upload-Offset', 'Upload-Length', 'Upload-Metadata', 'Upload-Expires', 'Upload-Concat', 'Tus-Version', 'Tus-Checksum-Algorithm']) {
    t.match(created.headers['access-control-expose-headers'], name)
  }
  const error = await app.inject({ method: 'POST', url: '/files/', headers: { origin: 'https://app.example' } })
  t.equal(error.statusCode, 412)
  t.equal(error.headers['access-control-allow-origin'], 'https://app.example', 'errors are readable by the page too')
  const none = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })
  t.equal(none.headers['access-control-allow-origin'], undefined)

  const { app: strict } = await buildApp(t, {
    cors: { origin: /https:\/\/(app|admin)\.example\.com/, credentials: true, allowedHeaders: ['X-Custom'], exposedHeaders: ['X-Trace'], maxAge: 60 }
  })
  const allowed = await strict.inject({ method: 'OPTIONS', url: '/files/', headers: { origin: 'https://admin.example.com', 'access-control-request-method': 'POST' } })
  t.equal(allowed.headers['access-control-allow-origin'], 'https://admin.example.com')
  t.equal(allowed.headers['access-control-allow-credentials'], 'true')
  t.match(allowed.headers['access-control-allow-headers'], /X-Custom$/)
  t.equal(allowed.headers['access-control-max-age'], '60')
  const evil = await strict.inject({ method: 'OPTIONS', url: '/files/', headers: { origin: 'https://app.example.com.evil.io', 'access-control-request-method': 'POST' } })
  t.equal(evil.headers['access-control-allow-origin'], undefined, 'the RegExp is anchored')

  // credentials: never for every origin, never for the `null` origin anyone can send
  await t.rejects(buildApp(t, { cors: { credentials: true } }), { code: 'ERR_TUS_INVALID_OPTION', message: /cors\.credentials/ }, 'credentials need origins')
  await t.rejects(buildApp(t, { cors: { origin: ['https://app.example.com', 'null'], credentials: true } }), { code: 'ERR_TUS_INVALID_OPTION', message: /null/ })
  const { app: loose } = await buildApp(t, { cors: { origin: /.*/, credentials: true } })
  for (const method of ['OPTIONS', 'POST'] as const) {
    const nullOrigin = await loose.inject({ method, url: '/files/', headers: { ...TUS, 'upload-length': '1', origin: 'null', 'access-control-request-method': 'POST' } })
    t.equal(nullOrigin.headers['access-control-allow-origin'], undefined, `${method}: no CORS for Origin: null with credentials, even when a RegExp matches it`)
    t.equal(nullOrigin.headers['access-control-allow-credentials'], undefined)
  }
  const { app: anonymous } = await buildApp(t, { cors: true })
  const nullWithout = await anonymous.inject({ method: 'OPTIONS', url: '/files/', headers: { origin: 'null', 'access-control-request-method': 'POST' } })
  t.equal(nullWithout.headers['access-control-allow-origin'], 'null', 'without credentials a null origin is harmless and allowed')
  t.equal(nullWithout.headers['access-control-allow-credentials'], undefined)
  const get = await strict.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', origin: 'https://app.example.com' } })
  t.match(get.headers['access-control-expose-headers'], /X-Trace$/)

  const { app: listed } = await buildApp(t, { cors: { origin: ['https://a.example'] } })
  t.equal((await listed.inject({ method: 'OPTIONS', url: '/files/', headers: { origin: 'https://b.example' } })).headers['access-control-allow-origin'], undefined)
  const { app: single } = await buildApp(t, { cors: { origin: 'https://a.example' } })
  t.equal((await single.inject({ method: 'OPTIONS', url: '/files/', headers: { origin: 'https://a.example' } })).headers['access-control-allow-origin'], 'https://a.example')
  const { app: fn } = await buildApp(t, { cors: { origin: async (origin, request) => origin.endsWith('.example') && request.headers['x-ok'] === '1' } })
  t.equal((await fn.inject({ method: 'OPTIONS', url: '/files/', headers: { origin: 'https://a.example', 'x-ok': '1' } })).headers['access-control-allow-origin'], 'https://a.example')
  t.equal((await fn.inject({ method: 'OPTIONS', url: '/files/', headers: { origin: 'https://a.example' } })).headers['access-control-allow-origin'], undefined)
})

t.test('CORS off: @fastify/cors takes over', async (t) => {
  const { app } = await buildApp(t, { cors: false }, async (app) => {
    await app.register(cors, { origin: 'https://only.example', exposedHeaders: ['Location', 'Upload-Offset'], methods: ['POST', 'PATCH', 'HEAD', 'OPTIONS'] })
  })
  const preflight = await app.inject({ method: 'OPTIONS', url: '/files/', headers: { origin: 'https://only.example', 'access-control-request-method': 'PATCH' } })
  t.equal(preflight.headers['access-control-allow-origin'], 'https://only.example')
  t.match(preflight.headers['access-control-allow-methods'], /PATCH/)
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', origin: 'https://only.example' } })
  t.equal(created.statusCode, 201)
  t.equal(created.headers['access-control-allow-origin'], 'https://only.example')
  t.equal(created.headers['access-control-expose-headers'], 'Location, Upload-Offset', 'only the plugin the app chose speaks CORS')
})

t.test('bad CORS options are coded errors', async (t) => {
  const Fastify = (await import('fastify')).default
  const tus = (await import('../plugin/index.js')).default
  const { MemoryStore } = await import('../stores/memory.js')
  for (const [value, name] of [['yes', 'cors'], [{ origin: 5 }, 'cors.origin'], [{ credentials: 'y' }, 'cors.credentials'], [{ maxAge: -1 }, 'cors.maxAge'], [{ allowedHeaders: ['bad header'] }, 'cors.allowedHeaders']] as const) {
    const app = Fastify()
    const err = await app.register(tus, { store: new MemoryStore(), cors: value as never }).ready().then(() => undefined, (e: unknown) => e) as { code?: string, message?: string }
    t.equal(err?.code, 'ERR_TUS_INVALID_OPTION')
    t.match(err?.message, `"${name}"`)
    await app.close()
  }
})
