/**
 * The tus 1.0.0 core, creation, creation-with-upload, creation-defer-length and termination,
 * status by status and header by header, through `app.inject`.
 */
import Fastify from 'fastify'
import t from 'tap'
import tus, { metadataBytes } from '../plugin/index.js'
import { MemoryStore } from '../stores/memory.js'
import type { DataStore, Metadata } from '../stores/store.js'
import { buildApp, createUpload, OCTET, TUS } from './helpers/app.js'

t.test('OPTIONS advertises version, extensions and max size', async (t) => {
  const { app } = await buildApp(t, { maxSize: 1000 })
  for (const url of ['/files/', '/files', '/files/some-id']) {
    const response = await app.inject({ method: 'OPTIONS', url, headers: { 'tus-resumable': '0.2.2' } })
    t.equal(response.statusCode, 204, `${url}: Tus-Resumable is ignored on OPTIONS`)
    t.equal(response.headers['tus-version'], '1.0.0')
    t.equal(response.headers['tus-extension'], 'creation,creation-with-upload,termination,concatenation,creation-defer-length,checksum,checksum-trailer')
    t.equal(response.headers['tus-checksum-algorithm'], 'sha1,md5,sha256,sha512,crc32')
    t.equal(response.headers['tus-max-size'], '1000')
    t.equal(response.headers['tus-resumable'], '1.0.0')
  }
  const { app: unlimited } = await buildApp(t)
  const response = await unlimited.inject({ method: 'OPTIONS', url: '/files/' })
  t.equal(response.headers['tus-max-size'], undefined, 'no Tus-Max-Size without a limit')
})

t.test('extensions follow the store and the switches', async (t) => {
  const minimal: DataStore = new MemoryStore()
  const bare: DataStore = { create: minimal.create.bind(minimal), get: minimal.get.bind(minimal), write: minimal.write.bind(minimal) }
  const { app } = await buildApp(t, { store: bare })
  const response = await app.inject({ method: 'OPTIONS', url: '/files/' })
  t.equal(response.headers['tus-extension'], 'creation,creation-with-upload,checksum,checksum-trailer')
  const deferred = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-defer-length': '1' } })
  t.equal(deferred.statusCode, 501)
  t.equal(deferred.json().code, 'ERR_NOT_IMPLEMENTED')
  const path = await createUpload(app)
  const del = await app.inject({ method: 'DELETE', url: path, headers: TUS })
  t.equal(del.statusCode, 405, 'no DELETE without termination')
  t.equal(del.headers.allow, 'OPTIONS, HEAD, PATCH')
  const get = await app.inject({ method: 'GET', url: path })
  t.equal(get.statusCode, 405, 'no GET without a store that serves')

  const { app: switched } = await buildApp(t, { disableTermination: true, disableDownload: true })
  const { app: noConcat } = await buildApp(t, { disableConcatenation: true })
  const plain = await noConcat.inject({ method: 'OPTIONS', url: '/files/' })
  t.notMatch(plain.headers['tus-extension'], /concatenation/)
  const refused = await noConcat.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'upload-concat': 'partial' } })
  t.equal(refused.statusCode, 400)
  t.equal(refused.json().code, 'ERR_INVALID_CONCAT')
  const options = await switched.inject({ method: 'OPTIONS', url: '/files/' })
  t.equal(options.headers['tus-extension'], 'creation,creation-with-upload,concatenation,creation-defer-length,checksum,checksum-trailer')
  const upload = await createUpload(switched)
  t.equal((await switched.inject({ method: 'DELETE', url: upload, headers: TUS })).statusCode, 405)
  t.equal((await switched.inject({ method: 'GET', url: upload })).statusCode, 405)
})

t.test('Tus-Resumable: 412 with Tus-Version when missing or unsupported', async (t) => {
  const { app } = await buildApp(t)
  const path = await createUpload(app)
  const requests = [
    { method: 'POST' as const, url: '/files/', headers: { 'upload-length': '1' } },
    { method: 'POST' as const, url: '/files/', headers: { 'tus-resumable': '0.2.2', 'upload-length': '1' } },
    { method: 'PATCH' as const, url: path, headers: { 'upload-offset': '0', 'content-type': OCTET } },
    { method: 'DELETE' as const, url: path, headers: {} },
    { method: 'HEAD' as const, url: path, headers: { 'tus-resumable': '2.0.0' } },
    { method: 'GET' as const, url: path, headers: { 'tus-resumable': '2.0.0' } }
  ]
  for (const request of requests) {
    const response = await app.inject(request)
    t.equal(response.statusCode, 412, `${request.method} ${JSON.stringify(request.headers)}`)
    t.equal(response.headers['tus-version'], '1.0.0')
    t.equal(response.headers['tus-resumable'], '1.0.0')
  }
  const head = await app.inject({ method: 'HEAD', url: path })
  t.equal(head.statusCode, 200, 'HEAD without Tus-Resumable is served (browsers, proxies)')
})

t.test('creation: 201 with Location; lengths and metadata checked', async (t) => {
  const { app } = await buildApp(t, { maxSize: 100 })
  const created = await app.inject({
    method: 'POST',
    url: '/files/',
    headers: { ...TUS, host: 'uploads.example:8080', 'upload-length': '100', 'upload-metadata': 'filename YS50eHQ=,flag' }
  })
  t.equal(created.statusCode, 201)
  t.match(created.headers.location, /^http:\/\/uploads\.example:8080\/files\/[0-9a-f]{32}$/)
  t.equal(created.headers['tus-resumable'], '1.0.0')
  t.equal(created.headers['upload-offset'], undefined, 'no Upload-Offset without a body')
  const head = await app.inject({ method: 'HEAD', url: new URL(created.headers.location as string).pathname, headers: TUS })
  t.equal(head.headers['upload-metadata'], 'filename YS50eHQ=,flag')

  const cases: Array<[Record<string, string>, number, string]> = [
    [{}, 400, 'ERR_INVALID_UPLOAD_LENGTH'],
    [{ 'upload-length': '-1' }, 400, 'ERR_INVALID_UPLOAD_LENGTH'],
    [{ 'upload-length': '+5' }, 400, 'ERR_INVALID_UPLOAD_LENGTH'],
    [{ 'upload-length': '05' }, 400, 'ERR_INVALID_UPLOAD_LENGTH'],
    [{ 'upload-length': '1.5' }, 400, 'ERR_INVALID_UPLOAD_LENGTH'],
    [{ 'upload-length': '101' }, 413, 'ERR_MAX_SIZE_EXCEEDED'],
    [{ 'upload-length': '5', 'upload-defer-length': '1' }, 400, 'ERR_AMBIGUOUS_UPLOAD_LENGTH'],
    [{ 'upload-defer-length': '2' }, 400, 'ERR_INVALID_UPLOAD_LENGTH_DEFER'],
    [{ 'upload-length': '5', 'upload-metadata': 'a b c' }, 400, 'ERR_INVALID_METADATA'],
    [{ 'upload-length': '5', 'upload-metadata': 'a !!!' }, 400, 'ERR_INVALID_METADATA'],
    [{ 'upload-length': '5', 'upload-metadata': 'a YQ==,a YQ==' }, 400, 'ERR_INVALID_METADATA']
  ]
  for (const [headers, status, code] of cases) {
    const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, ...headers } })
    t.equal(response.statusCode, status, JSON.stringify(headers))
    t.equal(response.json().code, code)
    t.equal(response.headers['tus-resumable'], '1.0.0')
  }
})

t.test('Location: relative, forwarded, generated ids', async (t) => {
  const { app: relative } = await buildApp(t, { relativeLocation: true, path: '/uploads' })
  const a = await relative.inject({ method: 'POST', url: '/uploads', headers: { ...TUS, 'upload-length': '1' } })
  t.match(a.headers.location, /^\/uploads\/[0-9a-f]{32}$/)

  const { app: proxied } = await buildApp(t, { respectForwardedHeaders: true })
  const forwardedCases: Array<[Record<string, string>, RegExp]> = [
    [{ 'x-forwarded-host': 'cdn.example', 'x-forwarded-proto': 'https' }, /^https:\/\/cdn\.example\/files\//],
    [{ forwarded: 'for=1.2.3.4;host="files.example:443";proto=https, host=other' }, /^https:\/\/files\.example\/files\//],
    [{ forwarded: 'proto=http;host=plain.example:80' }, /^http:\/\/plain\.example\/files\//],
    [{ 'x-forwarded-host': 'evil.example/<script>', host: 'ok.example' }, /^http:\/\/ok\.example\/files\//],
    [{ 'x-forwarded-proto': 'gopher', host: 'ok.example' }, /^http:\/\/ok\.example\/files\//]
  ]
  for (const [headers, location] of forwardedCases) {
    const response = await proxied.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', ...headers } })
    t.match(response.headers.location, location, JSON.stringify(headers))
  }
  const { app: ignoring } = await buildApp(t)
  const plain = await ignoring.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', host: 'a.example', 'x-forwarded-host': 'b.example' } })
  t.match(plain.headers.location, /^http:\/\/a\.example\/files\//, 'forwarded headers ignored unless asked')

  let n = 0
  const { app: named } = await buildApp(t, { generateId: async (request) => `user-${request.headers['x-user'] as string}-${n++}` })
  const named1 = await named.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'x-user': 'ann' } })
  t.match(named1.headers.location, /\/files\/user-ann-0$/)
  const bad = await named.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'x-user': '../x' } })
  t.equal(bad.statusCode, 500, 'an invalid generated id is a server error')
  t.equal(bad.json().code, 'ERR_INTERNAL_SERVER_ERROR')
  t.notMatch(bad.body, /generateId/, 'without internal detail')
})

t.test('HEAD reports offset, length, metadata, no-store', async (t) => {
  const { app } = await buildApp(t)
  const path = await createUpload(app, { 'upload-length': '11' })
  await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'upload-offset': '0', 'content-type': OCTET }, payload: 'hello' })
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], '5')
  t.equal(head.headers['upload-length'], '11')
  t.equal(head.headers['cache-control'], 'no-store')
  t.equal(head.headers['upload-metadata'], undefined, 'no Upload-Metadata when there is none')
  t.equal(head.headers['upload-defer-length'], undefined)
  t.equal(head.body, '')
  for (const url of ['/files/nope', '/files/..%2F..%2Fetc%2Fpasswd', '/files/a.b', '/files/%00']) {
    const missing = await app.inject({ method: 'HEAD', url, headers: TUS })
    t.equal(missing.statusCode, 404, url)
    t.equal(missing.headers['upload-offset'], undefined)
    t.equal(missing.headers['tus-resumable'], '1.0.0')
  }
  const long = await app.inject({ method: 'HEAD', url: `/files/${'x'.repeat(101)}`, headers: TUS })
  t.equal(long.statusCode, 414, 'ids longer than any we issue are refused by the router')
})

t.test('PATCH: 204 with the new offset; every check in order', async (t) => {
  const { app } = await buildApp(t)
  const path = await createUpload(app, { 'upload-length': '11' })
  const patch = async (headers: Record<string, string>, payload = 'hello'): Promise<{ statusCode: number, headers: Record<string, unknown>, json: () => { code: string } }> =>
    await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, ...headers }, payload })

  const first = await patch({ 'upload-offset': '0' })
  t.equal(first.statusCode, 204)
  t.equal(first.headers['upload-offset'], '5')
  t.equal(first.headers['tus-resumable'], '1.0.0')

  const cases: Array<[Record<string, string>, number, string]> = [
    [{ 'content-type': 'application/octet-stream', 'upload-offset': '5' }, 415, 'ERR_INVALID_CONTENT_TYPE'],
    [{}, 400, 'ERR_INVALID_OFFSET'],
    [{ 'upload-offset': '-5' }, 400, 'ERR_INVALID_OFFSET'],
    [{ 'upload-offset': 'five' }, 400, 'ERR_INVALID_OFFSET'],
    [{ 'upload-offset': '0' }, 409, 'ERR_MISMATCHED_OFFSET'],
    [{ 'upload-offset': '6' }, 409, 'ERR_MISMATCHED_OFFSET'],
    [{ 'upload-offset': '5', 'upload-length': 'x' }, 400, 'ERR_INVALID_UPLOAD_LENGTH'],
    [{ 'upload-offset': '5', 'upload-length': '12' }, 400, 'ERR_INVALID_UPLOAD_LENGTH']
  ]
  for (const [headers, status, code] of cases) {
    const response = await patch(headers)
    t.equal(response.statusCode, status, JSON.stringify(headers))
    t.equal(response.json().code, code)
  }
  const noType = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'upload-offset': '5' }, payload: 'hello' })
  t.equal(noType.statusCode, 415, 'no Content-Type')
  t.equal(noType.headers['tus-resumable'], '1.0.0')
  const parameters = await patch({ 'upload-offset': '5', 'content-type': 'Application/Offset+Octet-Stream; x=y', 'upload-length': '11' }, ' ')
  t.equal(parameters.statusCode, 204, 'media type parameters, case and a repeated equal length are fine')
  t.equal(parameters.headers['upload-offset'], '6')

  const tooLong = await patch({ 'upload-offset': '6' }, 'world!')
  t.equal(tooLong.statusCode, 413, 'a Content-Length past the end is refused before reading')
  t.equal(tooLong.json().code, 'ERR_UPLOAD_SIZE_EXCEEDED')
  const last = await patch({ 'upload-offset': '6' }, 'world')
  t.equal(last.headers['upload-offset'], '11')
  const again = await patch({ 'upload-offset': '11' }, '')
  t.equal(again.statusCode, 204, 'a PATCH on a complete upload changes nothing')
  t.equal(again.headers['upload-offset'], '11')
  const missing = await app.inject({ method: 'PATCH', url: '/files/nope', headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'x' })
  t.equal(missing.statusCode, 404)
  const body = await app.inject({ method: 'GET', url: path })
  t.equal(body.body, 'hello world')
})

t.test('creation-defer-length', async (t) => {
  const { app } = await buildApp(t, { maxSize: 20 })
  const path = await createUpload(app, { 'upload-defer-length': '1' })
  let head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.headers['upload-defer-length'], '1')
  t.equal(head.headers['upload-length'], undefined)
  const part = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'hello ' })
  t.equal(part.headers['upload-offset'], '6')
  const small = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '6', 'upload-length': '3' }, payload: '' })
  t.equal(small.statusCode, 400, 'a length below the offset')
  const large = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '6', 'upload-length': '21' }, payload: '' })
  t.equal(large.statusCode, 413, 'a length above maxSize')
  const tooMuch = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '6' }, payload: 'x'.repeat(15) })
  t.equal(tooMuch.statusCode, 413, 'a deferred upload is still bound by maxSize')
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: TUS })).headers['upload-offset'], '6', 'refused before reading')
  const rest = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '6', 'upload-length': '11' }, payload: 'world' })
  t.equal(rest.statusCode, 204)
  t.equal(rest.headers['upload-offset'], '11')
  head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.headers['upload-length'], '11')
  t.equal(head.headers['upload-defer-length'], undefined)
  const change = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '11', 'upload-length': '12' }, payload: '' })
  t.equal(change.statusCode, 400, 'the length never changes once set')
})

t.test('creation-with-upload', async (t) => {
  const { app } = await buildApp(t)
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '11', 'content-type': OCTET }, payload: 'hello' })
  t.equal(created.statusCode, 201)
  t.equal(created.headers['upload-offset'], '5')
  const path = new URL(created.headers.location as string).pathname
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.headers['upload-offset'], '5')

  const whole = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3', 'content-type': OCTET }, payload: 'abc' })
  t.equal(whole.headers['upload-offset'], '3')
  const download = await app.inject({ method: 'GET', url: new URL(whole.headers.location as string).pathname })
  t.equal(download.body, 'abc')

  const tooLong = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '2', 'content-type': OCTET }, payload: 'abc' })
  t.equal(tooLong.statusCode, 413, 'a body longer than the upload is refused before creating it')

  const otherType = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3', 'content-type': 'application/json' }, payload: '{"a":1}' })
  t.equal(otherType.statusCode, 415, 'a body of another type is not silently dropped')
  const emptyOther = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3', 'content-type': 'text/plain' } })
  t.equal(emptyOther.statusCode, 201, 'a content type without a body is harmless')
  t.equal(emptyOther.headers['upload-offset'], undefined)
})

t.test('an empty upload is complete at once and downloadable', async (t) => {
  const { app } = await buildApp(t)
  const path = await createUpload(app, { 'upload-length': '0' })
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.headers['upload-offset'], '0')
  t.equal(head.headers['upload-length'], '0')
  const get = await app.inject({ method: 'GET', url: path })
  t.equal(get.statusCode, 200)
  t.equal(get.headers['content-length'], '0')
})

t.test('termination', async (t) => {
  const { app } = await buildApp(t, { fileStore: true })
  const path = await createUpload(app, { 'upload-length': '5' })
  await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'hel' })
  const del = await app.inject({ method: 'DELETE', url: path, headers: TUS })
  t.equal(del.statusCode, 204)
  t.equal(del.headers['tus-resumable'], '1.0.0')
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: TUS })).statusCode, 404)
  t.equal((await app.inject({ method: 'DELETE', url: path, headers: TUS })).statusCode, 404)
  const done = await createUpload(app, { 'upload-length': '0' })
  t.equal((await app.inject({ method: 'DELETE', url: done, headers: TUS })).statusCode, 204, 'completed uploads can be deleted')
})

t.test('GET downloads only complete uploads', async (t) => {
  const { app } = await buildApp(t, { fileStore: true })
  const path = await createUpload(app, { 'upload-length': '5' })
  const partial = await app.inject({ method: 'GET', url: path })
  t.equal(partial.statusCode, 409)
  t.equal(partial.json().code, 'ERR_INCOMPLETE_UPLOAD')
  await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'hello' })
  const whole = await app.inject({ method: 'GET', url: path })
  t.equal(whole.statusCode, 200)
  t.equal(whole.body, 'hello')
  t.equal(whole.headers['content-length'], '5')
  t.equal(whole.headers['content-type'], 'application/octet-stream')
  t.equal(whole.headers['x-content-type-options'], 'nosniff')
  t.equal((await app.inject({ method: 'GET', url: '/files/nope' })).statusCode, 404)
})

t.test('X-HTTP-Method-Override picks the method on every route', async (t) => {
  const { app } = await buildApp(t)
  const path = await createUpload(app, { 'upload-length': '5' })
  const patched = await app.inject({
    method: 'POST',
    url: path,
    headers: { ...TUS, 'x-http-method-override': 'PATCH', 'content-type': OCTET, 'upload-offset': '0' },
    payload: 'hello'
  })
  t.equal(patched.statusCode, 204)
  t.equal(patched.headers['upload-offset'], '5')
  const head = await app.inject({ method: 'POST', url: path, headers: { ...TUS, 'x-http-method-override': 'head' } })
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], '5')
  const deleted = await app.inject({ method: 'POST', url: path, headers: { ...TUS, 'x-http-method-override': 'DELETE' } })
  t.equal(deleted.statusCode, 204)
  const plainPost = await app.inject({ method: 'POST', url: path, headers: TUS })
  t.equal(plainPost.statusCode, 405, 'POST on an upload without override')
  const unknown = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'x-http-method-override': 'BREW' } })
  t.equal(unknown.statusCode, 405)
  t.equal(unknown.json().code, 'ERR_INVALID_METHOD_OVERRIDE')
  t.equal(unknown.headers.allow, 'OPTIONS, POST')
})

t.test('an honest 405: GET with downloads off, DELETE with termination off, either on a store that cannot, in both dialects', async (t) => {
  const V8 = { 'upload-draft-interop-version': '8' }
  const off = await buildApp(t, { disableDownload: true, disableTermination: true })
  const path = await createUpload(off.app, { 'upload-length': '0' })
  const cases = [
    { method: 'GET' as const, code: 'ERR_DOWNLOAD_DISABLED' },
    { method: 'DELETE' as const, code: 'ERR_TERMINATION_DISABLED' }
  ]
  for (const { method, code } of cases) {
    const tusAnswer = await off.app.inject({ method, url: path, headers: TUS })
    t.equal(tusAnswer.statusCode, 405, `tus ${method}`)
    t.equal(tusAnswer.json().code, code)
    t.equal(tusAnswer.headers.allow, 'OPTIONS, HEAD, PATCH')
    const draft = await off.app.inject({ method, url: path, headers: V8 })
    t.equal(draft.statusCode, 405, `draft ${method}`)
    t.equal(draft.headers['content-type'], 'application/problem+json')
    t.equal(draft.json().code, code)
    t.equal(draft.headers.allow, 'OPTIONS, HEAD, PATCH')
    const overridden = await off.app.inject({ method: 'POST', url: path, headers: { ...TUS, 'x-http-method-override': method } })
    t.equal(overridden.statusCode, 405)
    t.equal(overridden.json().code, 'ERR_INVALID_METHOD_OVERRIDE', `an override naming ${method} keeps its code`)
  }
  const head = await off.app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.statusCode, 200, 'the upload is still there')

  // a store with only the core: no downloads, no termination
  const memory = new MemoryStore()
  const core: DataStore = { create: async (u) => await memory.create(u), get: async (id) => await memory.get(id), write: async (id, c) => await memory.write(id, c) }
  const bare = await buildApp(t, { store: core })
  const bareUpload = await createUpload(bare.app, { 'upload-length': '0' })
  for (const method of ['GET', 'DELETE'] as const) {
    for (const headers of [TUS, V8]) {
      const answer = await bare.app.inject({ method, url: bareUpload, headers })
      t.equal(answer.statusCode, 405, `${method} on a store that cannot`)
      t.equal(answer.json().code, 'ERR_METHOD_NOT_SUPPORTED')
      t.equal(answer.headers.allow, 'OPTIONS, HEAD, PATCH')
    }
  }
  const plainPost = await bare.app.inject({ method: 'POST', url: bareUpload, headers: TUS })
  t.equal(plainPost.statusCode, 405, 'POST on an upload without override')
  t.equal(plainPost.json().code, 'ERR_METHOD_NOT_SUPPORTED')
  t.equal(plainPost.json().message, 'POST is not supported on this URL')
})

t.test('internal errors become a generic 500 with the detail only in the log', async (t) => {
  const broken = new MemoryStore()
  broken.get = async () => { throw new Error('secret database password is hunter2') }
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(async () => await app.close())
  await app.register(tus, { store: broken })
  const path = await createUpload(app, { 'upload-length': '5' })
  const patch = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'x' })
  t.equal(patch.statusCode, 500)
  t.equal(patch.json().code, 'ERR_INTERNAL_SERVER_ERROR')
  t.notMatch(patch.body, /hunter2/)
  t.equal(patch.headers['tus-resumable'], '1.0.0')
  t.ok(lines.some((line) => line.includes('hunter2')), 'the detail is logged')
})

t.test('the plugin works under an outer prefix and with a root path', async (t) => {
  const { app } = await buildApp(t, { path: '/' }, async (app) => {
    app.get('/health', async () => 'ok')
  })
  const created = await app.inject({ method: 'POST', url: '/', headers: { ...TUS, 'upload-length': '1', host: 'h' } })
  t.equal(created.statusCode, 201)
  t.match(created.headers.location, /^http:\/\/h\/[0-9a-f]{32}$/)
  t.equal((await app.inject({ method: 'GET', url: '/health' })).body, 'ok', 'other routes keep working')
})

t.test('metadata values that are not UTF-8 are kept and echoed byte for byte', async (t) => {
  const seen: Array<{ metadata: Metadata, binaryMetadata?: Metadata | undefined }> = []
  const { app } = await buildApp(t, {
    fileStore: true,
    hooks: {
      preCreate: (_request, draft) => {
        seen.push({ metadata: { ...draft.metadata }, binaryMetadata: draft.binaryMetadata })
        return draft.metadata.replace === undefined ? undefined : { metadata: { replace: 'text now' } }
      },
      postCreate: (_request, upload) => { seen.push({ metadata: { ...upload.metadata }, binaryMetadata: upload.binaryMetadata }) }
    }
  })
  // 0xff 0x00 0xc3 and a lone continuation byte: not UTF-8
  const value = 'raw /wDD,name YsOkcg==,odd gA=='
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'upload-metadata': value } })
  t.equal(created.statusCode, 201, 'accepted, not a 400')
  const path = new URL(created.headers.location as string).pathname
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.headers['upload-metadata'], value, 'the same base64 on HEAD')
  t.same(seen[0], { metadata: { raw: '\ufffd\u0000\ufffd', name: 'bär', odd: '\ufffd' }, binaryMetadata: { raw: '/wDD', odd: 'gA==' } }, 'preCreate sees text and bytes')
  t.same(seen[1]?.binaryMetadata, { raw: '/wDD', odd: 'gA==' }, 'so does postCreate')
  t.same(metadataBytes((await app.tus.store.get(path.slice('/files/'.length))), 'raw'), Buffer.from([0xff, 0x00, 0xc3]), 'metadataBytes gives the exact bytes')

  const replaced = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'upload-metadata': 'replace /w==,keep gA==' } })
  const again = await app.inject({ method: 'HEAD', url: new URL(replaced.headers.location as string).pathname, headers: TUS })
  t.equal(again.headers['upload-metadata'], `replace ${Buffer.from('text now').toString('base64')},keep gA==`, 'a value a hook replaced loses its old bytes')

  const draft = await app.inject({ method: 'POST', url: '/files/', headers: { 'upload-draft-interop-version': '6', 'upload-complete': '?0', 'upload-metadata': 'raw /wDD' } })
  t.equal(draft.statusCode, 201)
  const draftHead = await app.inject({ method: 'HEAD', url: new URL(draft.headers.location as string).pathname, headers: TUS })
  t.equal(draftHead.headers['upload-metadata'], 'raw /wDD', 'the draft dialect keeps the bytes too')
})
