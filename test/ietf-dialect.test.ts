/**
 * The IETF draft dialect's edges through `inject`: how it is switched on and off, creation by
 * PUT/PATCH, lengths (declared, from Content-Length, deferred and fixed on completion), limits,
 * bad input (always a coded problem+json 4xx), hooks, and coexistence with tus v1.
 */
import Fastify from 'fastify'
import t from 'tap'
import tus from '../plugin/index.js'
import { MemoryStore } from '../stores/memory.js'
import type { DataStore } from '../stores/store.js'
import { buildApp, createUpload, TUS } from './helpers/app.js'

const PROBLEMS = 'https://iana.org/assignments/http-problem-types#'
const V8 = { 'upload-draft-interop-version': '8' }
const PU = { 'content-type': 'application/partial-upload' }

function pathOf (location: unknown): string {
  return new URL(String(location), 'http://localhost').pathname
}

t.test('switching: the option, unknown versions, and tus v1 untouched', async (t) => {
  const { app: off } = await buildApp(t, { ietfDraft: false })
  const refused = await off.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1' }, payload: 'hi' })
  t.equal(refused.statusCode, 412, 'with ietfDraft: false a draft request is a tus request without Tus-Resumable')
  t.equal(refused.headers['tus-resumable'], '1.0.0')
  const offCollection = await off.inject({ method: 'PUT', url: '/files/', headers: { ...V8, 'upload-complete': '?1' }, payload: 'hi' })
  t.equal(offCollection.statusCode, 404, 'no PUT creation when off')

  const { app } = await buildApp(t)
  for (const version of ['2', '9', '99', 'x', '6, 7']) {
    const response = await app.inject({ method: 'POST', url: '/files/', headers: { 'upload-draft-interop-version': version, 'upload-complete': '?1' }, payload: 'hi' })
    t.equal(response.statusCode, 412, `version ${JSON.stringify(version)} is not the draft`)
    t.equal(response.headers['upload-draft-interop-version'], undefined)
  }
  for (const method of ['PUT', 'PATCH'] as const) {
    const response = await app.inject({ method, url: '/files/', headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' } })
    t.equal(response.statusCode, 404, `tus v1 ${method} on the collection answers as before`)
    if (method === 'PATCH') t.equal(response.json().code, 'ERR_UPLOAD_NOT_FOUND', 'PATCH: the upload route with an empty id, as before')
    else t.equal(response.headers['tus-resumable'], undefined, 'PUT: no route, as before')
  }
  const override = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'x-http-method-override': 'DELETE' } })
  t.equal(override.statusCode, 405)
  t.equal(override.headers.allow, 'OPTIONS, POST, PUT, PATCH')
  t.equal(override.json().code, 'ERR_INVALID_METHOD_OVERRIDE')
  t.equal(override.headers['content-type'], 'application/problem+json')
})

t.test('creation by PUT and PATCH, media type and file name as metadata', async (t) => {
  const { app } = await buildApp(t)
  for (const method of ['PUT', 'PATCH'] as const) {
    const response = await app.inject({
      method,
      url: '/files/',
      headers: { ...V8, 'upload-complete': '?1', 'content-type': 'image/png', 'content-disposition': 'inline; filename="a \\"b\\".png"' },
      payload: 'png bytes'
    })
    t.equal(response.statusCode, 201, method)
    t.equal(response.headers['upload-complete'], '?1')
    t.equal(response.headers['upload-offset'], '9')
    const id = pathOf(response.headers.location).split('/').pop() as string
    const info = await app.tus.store.get(id)
    t.same({ ...info.metadata }, { filetype: 'image/png', filename: 'a "b".png' })
    const download = await app.inject({ method: 'GET', url: pathOf(response.headers.location), headers: V8 })
    t.equal(download.body, 'png bytes', 'GET downloads a completed draft upload')
    t.equal(download.headers['upload-draft-interop-version'], '8')
  }
  const token = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1', 'content-disposition': 'attachment; filename=plain.txt' }, payload: 'x' })
  const id = pathOf(token.headers.location).split('/').pop() as string
  t.equal((await app.tus.store.get(id)).metadata.filename, 'plain.txt')
})

t.test('lengths: declared, inconsistent, deferred and fixed on completion, empty', async (t) => {
  const { app } = await buildApp(t, { maxSize: 100 })
  const inconsistent = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1', 'upload-length': '999' }, payload: 'hello world' })
  t.equal(inconsistent.statusCode, 400)
  t.equal(inconsistent.json().type, `${PROBLEMS}inconsistent-upload-length`)
  t.equal(inconsistent.json().code, 'ERR_INCONSISTENT_UPLOAD_LENGTH')
  t.equal(inconsistent.headers['upload-complete'], '?0')
  const six = await app.inject({ method: 'POST', url: '/files/', headers: { 'upload-draft-interop-version': '6', 'upload-complete': '?1', 'upload-length': '999' }, payload: 'hello world' })
  t.equal(six.json().type, 'about:blank', 'no inconsistent-upload-length type before 7')
  t.equal(six.json().code, 'ERR_INCONSISTENT_UPLOAD_LENGTH')

  const tooBig = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0', 'upload-length': '101' } })
  t.equal(tooBig.statusCode, 413, 'maxSize applies to draft creation')
  t.equal(tooBig.headers['upload-limit'], 'min-size=0, max-size=100')
  t.equal(tooBig.json().code, 'ERR_MAX_SIZE_EXCEEDED')

  const invalid = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': 'true' }, payload: 'x' })
  t.equal(invalid.statusCode, 400)
  t.equal(invalid.json().code, 'ERR_INVALID_UPLOAD_COMPLETE')
  const missing = await app.inject({ method: 'POST', url: '/files/', headers: V8, payload: 'x' })
  t.equal(missing.json().code, 'ERR_INVALID_UPLOAD_COMPLETE', 'creation needs the completion field')
  const badLength = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0', 'upload-length': '1.5' } })
  t.equal(badLength.json().code, 'ERR_INVALID_UPLOAD_LENGTH')
  const parameter = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1;foo=1' }, payload: 'x' })
  t.equal(parameter.statusCode, 201, 'sf parameters are allowed')

  const empty = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1', 'content-length': '0' } })
  t.equal(empty.statusCode, 201)
  t.equal(empty.headers['upload-complete'], '?1', 'an empty complete creation is a zero-length upload')

  // deferred: incomplete creation without a length, appends, a chunked completing append fixes it
  const deferred = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0' }, payload: 'abc' })
  t.equal(deferred.statusCode, 201)
  const path = pathOf(deferred.headers.location)
  let head = await app.inject({ method: 'HEAD', url: path, headers: V8 })
  t.equal(head.headers['upload-length'], undefined, 'no length yet')
  t.equal(head.headers['upload-offset'], '3')
  const { Readable } = await import('node:stream')
  const chunked = await app.inject({
    method: 'PATCH', url: path, headers: { ...V8, ...PU, 'upload-complete': '?1', 'upload-offset': '3' }, payload: Readable.from([Buffer.from('de'), Buffer.from('f')])
  })
  t.equal(chunked.statusCode, 204)
  t.equal(chunked.headers['upload-complete'], '?1')
  head = await app.inject({ method: 'HEAD', url: path, headers: V8 })
  t.equal(head.headers['upload-length'], '6', 'the completing append fixed the length')

  // a declared length and a completing append that disagrees with it
  const declared = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0', 'upload-length': '10' } })
  const declaredPath = pathOf(declared.headers.location)
  const short = await app.inject({ method: 'PATCH', url: declaredPath, headers: { ...V8, ...PU, 'upload-complete': '?1', 'upload-offset': '0' }, payload: 'abc' })
  t.equal(short.statusCode, 400)
  t.equal(short.json().type, `${PROBLEMS}inconsistent-upload-length`)
  const changed = await app.inject({ method: 'PATCH', url: declaredPath, headers: { ...V8, ...PU, 'upload-complete': '?0', 'upload-offset': '0', 'upload-length': '11' }, payload: 'abc' })
  t.equal(changed.json().code, 'ERR_INCONSISTENT_UPLOAD_LENGTH', 'the length never changes')
  const chunkedShort = await app.inject({
    method: 'PATCH', url: declaredPath, headers: { ...V8, ...PU, 'upload-complete': '?1', 'upload-offset': '0' }, payload: Readable.from([Buffer.from('abc')])
  })
  t.equal(chunkedShort.statusCode, 400, 'a chunked completing append that falls short')
  t.equal(chunkedShort.headers['upload-offset'], '3', 'its bytes are kept')

  // overruns: more bytes than the known length is an inconsistent length (400), not tus's 413
  const overCreate = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0', 'upload-length': '2' }, payload: 'abc' })
  t.equal(overCreate.statusCode, 400)
  t.equal(overCreate.json().type, `${PROBLEMS}inconsistent-upload-length`)
  const sized = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0', 'upload-length': '5' } })
  const sizedPath = pathOf(sized.headers.location)
  const overAppend = await app.inject({ method: 'PATCH', url: sizedPath, headers: { ...V8, ...PU, 'upload-complete': '?0', 'upload-offset': '0' }, payload: 'abcdefg' })
  t.equal(overAppend.statusCode, 400)
  t.equal(overAppend.json().code, 'ERR_UPLOAD_INVALIDATED', '8: the upload is invalid after an overrun')
  t.equal(overAppend.json().type, `${PROBLEMS}inconsistent-upload-length`)
  t.equal(overAppend.headers['upload-offset'], '0', 'refused before reading')
  const sizedAgain = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0', 'upload-length': '5' } })
  const overChunked = await app.inject({
    method: 'PATCH', url: pathOf(sizedAgain.headers.location), headers: { ...V8, ...PU, 'upload-complete': '?0', 'upload-offset': '0' }, payload: Readable.from([Buffer.from('abcd'), Buffer.from('efg')])
  })
  t.equal(overChunked.statusCode, 400, 'a chunked body that goes past the length')
  t.equal(overChunked.json().code, 'ERR_UPLOAD_INVALIDATED')

  // a deferred upload gets its length on a PATCH, within the limit
  const later = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0' } })
  const laterPath = pathOf(later.headers.location)
  const over = await app.inject({ method: 'PATCH', url: laterPath, headers: { ...V8, ...PU, 'upload-complete': '?0', 'upload-offset': '0', 'upload-length': '101' }, payload: 'a' })
  t.equal(over.statusCode, 413)
  const badOffset = await app.inject({ method: 'PATCH', url: laterPath, headers: { ...V8, ...PU, 'upload-complete': '?0', 'upload-offset': '-1' }, payload: 'a' })
  t.equal(badOffset.json().code, 'ERR_INVALID_OFFSET')
  const finish = await app.inject({ method: 'PATCH', url: laterPath, headers: { ...V8, ...PU, 'upload-complete': '?1', 'upload-offset': '0', 'upload-length': '0' } })
  t.equal(finish.statusCode, 204, 'an empty completing append')
  t.equal(finish.headers['upload-complete'], '?1')
})

t.test('preFinish may set the status of the completing append and creation', async (t) => {
  const { app } = await buildApp(t, { hooks: { preFinish: (request) => ({ status: Number(request.headers['x-status']) }) } })
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0' }, payload: 'ab' })
  t.equal(created.statusCode, 201, 'no preFinish before the upload completes')
  const done = await app.inject({ method: 'PATCH', url: pathOf(created.headers.location), headers: { ...V8, ...PU, 'upload-complete': '?1', 'upload-offset': '2', 'x-status': '202' }, payload: 'cd' })
  t.equal(done.statusCode, 202)
  t.equal(done.headers['upload-complete'], '?1')
  t.equal(done.headers['upload-offset'], '4')
  const whole = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1', 'x-status': '200' }, payload: 'abc' })
  t.equal(whole.statusCode, 200)
  t.ok(whole.headers.location)
  const redirect = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1', 'x-status': '308' }, payload: 'abc' })
  t.equal(redirect.statusCode, 500, 'a redirect is refused')
  t.equal(redirect.json().code, 'ERR_INTERNAL_SERVER_ERROR')
})

t.test('hooks, preFinish bodies, errors and stores without deferred lengths', async (t) => {
  const { app } = await buildApp(t, {
    hooks: {
      authorize: (request, _upload, action) => {
        if (request.headers.authorization !== 'ok') throw Object.assign(new Error('no'), { statusCode: 403, code: 'ERR_FORBIDDEN' })
        if (action === 'delete') throw Object.assign(new Error('kept'), { statusCode: 400, code: 'ERR_UPLOAD_TERMINATION_REJECTED', headers: { 'x-why': 'policy' } })
      },
      preFinish: () => ({ body: { done: true } })
    }
  })
  const forbidden = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1' }, payload: 'x' })
  t.equal(forbidden.statusCode, 403)
  t.same(forbidden.json(), { type: 'about:blank', title: 'Forbidden', status: 403, detail: 'no', code: 'ERR_FORBIDDEN' })
  const auth = { ...V8, authorization: 'ok' }
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...auth, 'upload-complete': '?0' }, payload: 'ab' })
  const path = pathOf(created.headers.location)
  const done = await app.inject({ method: 'PATCH', url: path, headers: { ...auth, ...PU, 'upload-complete': '?1', 'upload-offset': '2' }, payload: 'cd' })
  t.equal(done.statusCode, 200, 'a preFinish body makes the completing append a 200')
  t.same(done.json(), { done: true })
  t.equal(done.headers['upload-complete'], '?1')
  const refused = await app.inject({ method: 'DELETE', url: path, headers: auth })
  t.equal(refused.statusCode, 400)
  t.equal(refused.headers['x-why'], 'policy', 'error headers are kept')
  const missing = await app.inject({ method: 'HEAD', url: '/files/nope', headers: auth })
  t.equal(missing.statusCode, 404)

  const memory = new MemoryStore()
  const bare: DataStore = { create: memory.create.bind(memory), get: memory.get.bind(memory), write: memory.write.bind(memory) }
  const plain = Fastify()
  await plain.register(tus, { store: bare })
  t.teardown(async () => await plain.close())
  const noDefer = await plain.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0' } })
  t.equal(noDefer.statusCode, 501)
  t.equal(noDefer.json().code, 'ERR_NOT_IMPLEMENTED')
  const sized = await plain.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1' }, payload: 'abc' })
  t.equal(sized.statusCode, 201, 'Content-Length gives the length without deferral')
  const noDelete = await plain.inject({ method: 'DELETE', url: pathOf(sized.headers.location), headers: V8 })
  t.equal(noDelete.statusCode, 405)
})

t.test('coexistence: tus v1 HEAD on a draft upload, draft HEAD on a tus upload, expiry', async (t) => {
  const { app } = await buildApp(t, { expiration: 1 })
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0', 'upload-length': '10' }, payload: 'abc' })
  const path = pathOf(created.headers.location)
  await new Promise((resolve) => setTimeout(resolve, 10))
  const tusHead = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(tusHead.statusCode, 410, 'expired for tus too (expiration: 1 ms)')
  const draftHead = await app.inject({ method: 'HEAD', url: path, headers: V8 })
  t.equal(draftHead.statusCode, 410)
  t.equal(draftHead.headers['cache-control'], 'no-store')

  const { app: keep } = await buildApp(t)
  const draft = await keep.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0', 'upload-length': '10' }, payload: 'abc' })
  const asTus = await keep.inject({ method: 'HEAD', url: pathOf(draft.headers.location), headers: TUS })
  t.equal(asTus.statusCode, 200, 'a draft upload answers tus HEADs')
  t.equal(asTus.headers['upload-offset'], '3')
  t.equal(asTus.headers['tus-resumable'], '1.0.0')
  const tusPath = await createUpload(keep)
  const asDraft = await keep.inject({ method: 'HEAD', url: tusPath, headers: V8 })
  t.equal(asDraft.statusCode, 200)
  t.equal(asDraft.headers['upload-complete'], '?0')
  t.equal(asDraft.headers['upload-length'], '11')
  t.equal(asDraft.headers['upload-limit'], 'min-size=0')
})

t.test('random draft requests: never a 5xx, errors are coded problems', async (t) => {
  const fc = (await import('fast-check')).default
  const { app } = await buildApp(t, { maxSize: 50 })
  const known = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0' }, payload: 'abc' })
  const knownPath = pathOf(known.headers.location)
  const sfBoolean = fc.constantFrom('?0', '?1', '?1;a=1', 'true', '1', '', '?2', '"x"', undefined)
  const sfInteger = fc.option(fc.oneof(fc.nat({ max: 60 }).map(String), fc.constantFrom('-1', '1.5', '9999999999999999', 'x', '')), { nil: undefined })
  await fc.assert(fc.asyncProperty(
    fc.record({
      method: fc.constantFrom('POST', 'PUT', 'PATCH', 'HEAD', 'DELETE', 'OPTIONS', 'GET'),
      url: fc.constantFrom('/files/', knownPath, '/files/nope', '/files/..%2Fx'),
      version: fc.integer({ min: 3, max: 8 }).map(String),
      complete: sfBoolean,
      incomplete: sfBoolean,
      offset: sfInteger,
      length: sfInteger,
      type: fc.constantFrom('application/partial-upload', 'text/plain', undefined),
      body: fc.option(fc.string({ maxLength: 60 }), { nil: undefined })
    }),
    async ({ method, url, version, complete, incomplete, offset, length, type, body }) => {
      const headers: Record<string, string> = { 'upload-draft-interop-version': version }
      if (complete !== undefined) headers['upload-complete'] = complete
      if (incomplete !== undefined) headers['upload-incomplete'] = incomplete
      if (offset !== undefined) headers['upload-offset'] = offset
      if (length !== undefined) headers['upload-length'] = length
      if (type !== undefined) headers['content-type'] = type
      // PUT on an upload is no route of ours (Fastify's own 404)
      if (method === 'PUT' && url !== '/files/') return true
      const response = await app.inject({ method: method as 'POST', url, headers, ...(body === undefined || method === 'GET' || method === 'HEAD' ? {} : { payload: body }) })
      if (response.statusCode >= 500) return false
      if (response.statusCode >= 400 && method !== 'HEAD') {
        if (response.headers['content-type'] !== 'application/problem+json') return false
        if (!/^ERR_[A-Z_]+$/.test(String(response.json().code))) return false
      }
      return response.headers['upload-draft-interop-version'] === version
    }
  ), { numRuns: 300, seed: 20261124 })
  t.pass('300 random draft requests')
})

t.test('integer fields are sf-integers: a Decimal is refused, not read as an integer', async (t) => {
  const { app } = await buildApp(t)
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0', 'upload-length': '10' } })
  const path = pathOf(created.headers.location)
  for (const value of ['0.0', '0.5', '10.0']) {
    const offset = await app.inject({ method: 'PATCH', url: path, headers: { ...V8, ...PU, 'upload-complete': '?0', 'upload-offset': value }, payload: 'a' })
    t.equal(offset.statusCode, 400, `Upload-Offset: ${value}`)
    t.equal(offset.headers['content-type'], 'application/problem+json')
    t.equal(offset.json().code, 'ERR_INVALID_OFFSET')
    const creation = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0', 'upload-length': value } })
    t.equal(creation.statusCode, 400, `Upload-Length: ${value} on a creation`)
    t.equal(creation.headers['content-type'], 'application/problem+json')
    t.equal(creation.json().code, 'ERR_INVALID_UPLOAD_LENGTH')
    const append = await app.inject({ method: 'PATCH', url: path, headers: { ...V8, ...PU, 'upload-complete': '?0', 'upload-offset': '0', 'upload-length': value }, payload: 'a' })
    t.equal(append.statusCode, 400, `Upload-Length: ${value} on an append`)
    t.equal(append.json().code, 'ERR_INVALID_UPLOAD_LENGTH')
  }
  const version = await app.inject({ method: 'POST', url: '/files/', headers: { 'upload-draft-interop-version': '8.0', 'upload-complete': '?1' }, payload: 'hi' })
  t.equal(version.statusCode, 412, 'Upload-Draft-Interop-Version: 8.0 is not a draft request')
  const params = await app.inject({ method: 'PATCH', url: path, headers: { ...V8, ...PU, 'upload-complete': '?0', 'upload-offset': '0;x=1' }, payload: 'a' })
  t.equal(params.statusCode, 204, 'an sf-integer with parameters is still one')
  t.equal((await app.tus.store.get(path.split('/').pop() as string)).offset, 1, 'only the valid append was stored')
})

t.test('an append past the length never completes the upload; 8 invalidates it', async (t) => {
  const { Readable } = await import('node:stream')
  for (const version of ['6', '7', '8']) {
    const completed: string[] = []
    const { app } = await buildApp(t)
    app.tus.on('upload-complete', ({ upload }) => { completed.push(upload.id) })
    const IV = { 'upload-draft-interop-version': version }
    for (const completes of ['?0', '?1']) {
      const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...IV, 'upload-complete': '?0', 'upload-length': '5' }, payload: 'ab' })
      const path = pathOf(created.headers.location)
      const over = await app.inject({
        method: 'PATCH', url: path, headers: { ...IV, ...PU, 'upload-complete': completes, 'upload-offset': '2' }, payload: Readable.from([Buffer.from('cd'), Buffer.from('efg')])
      })
      t.equal(over.statusCode, 400, `${version}, ${completes}: a chunked overrun is refused`)
      t.equal(over.headers['content-type'], 'application/problem+json')
      t.not(over.headers['upload-complete'], '?1', 'not reported complete')
      const head = await app.inject({ method: 'HEAD', url: path, headers: IV })
      if (version === '8') {
        t.equal(over.json().code, 'ERR_UPLOAD_INVALIDATED')
        t.equal(head.statusCode, 404, '8: the invalid upload is gone')
        const again = await app.inject({ method: 'PATCH', url: path, headers: { ...IV, ...PU, 'upload-complete': '?1', 'upload-offset': '4' }, payload: 'e' })
        t.equal(again.statusCode, 404, '8: later appends are refused')
      } else {
        t.equal(over.json().code, 'ERR_INCONSISTENT_UPLOAD_LENGTH')
        t.equal(head.headers['upload-complete'], '?0', `${version}: still incomplete after the overrun`)
        t.equal(head.headers['upload-offset'], '4', 'the byte that would reach the length is not stored')
        const done = await app.inject({ method: 'PATCH', url: path, headers: { ...IV, ...PU, 'upload-complete': '?1', 'upload-offset': '4' }, payload: 'e' })
        t.equal(done.headers['upload-complete'], '?1', 'a completing request with the right length completes it')
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20))
    t.equal(completed.length, version === '8' ? 0 : 2, 'only completing requests finished uploads')
  }
})

t.test('8: a creation whose chunked body goes past its Upload-Length invalidates the upload; 7 keeps it incomplete', async (t) => {
  const { Readable } = await import('node:stream')
  for (const version of ['7', '8']) {
    const { app } = await buildApp(t)
    const created: string[] = []
    app.tus.on('upload-created', ({ upload }) => { created.push(upload.id) })
    const IV = { 'upload-draft-interop-version': version }
    const over = await app.inject({
      method: 'POST', url: '/files/', headers: { ...IV, 'upload-complete': '?0', 'upload-length': '3', 'transfer-encoding': 'chunked' }, payload: Readable.from([Buffer.from('ab'), Buffer.from('cd')])
    })
    t.equal(over.statusCode, 400, `${version}: refused`)
    const id = created[0] as string
    const head = await app.inject({ method: 'HEAD', url: `/files/${id}`, headers: IV })
    if (version === '8') {
      t.equal(over.json().code, 'ERR_UPLOAD_INVALIDATED')
      t.equal(over.headers.location, undefined, 'no URL for an upload that is gone')
      t.equal(head.statusCode, 404, '8: the invalid upload is gone')
    } else {
      t.equal(over.json().code, 'ERR_INCONSISTENT_UPLOAD_LENGTH')
      t.equal(head.headers['upload-complete'], '?0', `${version}: still incomplete`)
    }
  }
})

t.test('3 to 6: a successful append that does not complete the upload is a 201', async (t) => {
  const { app } = await buildApp(t)
  for (const version of [3, 4, 5, 6, 7, 8]) {
    const IV = { 'upload-draft-interop-version': String(version) }
    const more = version === 3 ? { 'upload-incomplete': '?1' } : { 'upload-complete': '?0' }
    const last = version === 3 ? { 'upload-incomplete': '?0' } : { 'upload-complete': '?1' }
    const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...IV, ...more, 'upload-length': '4' } })
    const path = pathOf(created.headers.location)
    const type = version >= 6 ? PU : {}
    const append = await app.inject({ method: 'PATCH', url: path, headers: { ...IV, ...type, ...more, 'upload-offset': '0' }, payload: 'ab' })
    t.equal(append.statusCode, version <= 6 ? 201 : 204, `${version}: a non-completing append`)
    t.equal(append.headers['upload-offset'], '2')
    const done = await app.inject({ method: 'PATCH', url: path, headers: { ...IV, ...type, ...last, 'upload-offset': '2' }, payload: 'cd' })
    t.equal(done.statusCode, 204, `${version}: a completing append without a body from the application`)
  }
})
