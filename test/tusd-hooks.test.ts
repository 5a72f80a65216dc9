/**
 * The tusd hook mapping in units: decoding hook responses as Go does, merging HTTP responses,
 * building hook requests, and each tusd hook type on its plugin hook (with a fake transport).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { canonicalHeaderKey, draftInfo, fileInfo, httpRequest } from '../bin/hooks/event.js'
import {
  decodeHookResponse, emptyHookResponse, mergeHttpResponse, parseHookResponse,
  type HookRequest, type HookResponse, type HookTransport, type HookType
} from '../bin/hooks/protocol.js'
import { replaceMetadata, storageRequest, TusdHooks } from '../bin/hooks/tusd.js'
import tus from '../plugin/index.js'
import { MemoryStore } from '../stores/memory.js'
import { OCTET, TUS } from './helpers/app.js'
import { rawRequest } from './helpers/http.js'

t.test('hook responses decode as Go fills tusd\'s structs', async (t) => {
  t.same(parseHookResponse('{}'), emptyHookResponse())
  t.same(parseHookResponse('null'), emptyHookResponse())
  t.same(decodeHookResponse({
    httpresponse: { statuscode: 418, body: 'teapot', header: { 'X-A': 'a', 'X-Null': null } },
    RejectUpload: null,
    stopUpload: true,
    Unknown: 1,
    changefileinfo: { id: 'new-id', metadata: { a: 'b' }, storage: { Path: '/x' } }
  }), {
    HTTPResponse: { StatusCode: 418, Body: 'teapot', Header: { 'X-A': 'a', 'X-Null': '' } },
    RejectUpload: false,
    RejectTermination: false,
    ChangeFileInfo: { ID: 'new-id', MetaData: { a: 'b' }, Storage: { Path: '/x' } },
    StopUpload: true
  }, 'keys match case-insensitively, unknown keys are ignored, null is the zero value')
  t.equal(decodeHookResponse({ StopUpload: true, stopupload: false }).StopUpload, false, 'a later key wins')
  t.same(decodeHookResponse({ HTTPResponse: null, ChangeFileInfo: { ID: null, MetaData: null } }), emptyHookResponse())
  t.same(decodeHookResponse({ HTTPResponse: { StatusCode: null, Body: null, Header: null } }), emptyHookResponse())
  for (const [bad, message] of [
    [{ HTTPResponse: { StatusCode: 1.5 } }, /StatusCode must be an integer/],
    [{ HTTPResponse: { StatusCode: '200' } }, /StatusCode must be an integer/],
    [{ HTTPResponse: { StatusCode: 1000 } }, /not an HTTP status/],
    [{ HTTPResponse: { Body: 1 } }, /Body must be a string/],
    [{ HTTPResponse: { Header: ['x'] } }, /Header must be an object/],
    [{ HTTPResponse: { Header: { 'X-A': 1 } } }, /Header.X-A must be a string/],
    [{ HTTPResponse: { Header: { 'Bad Name': 'x' } } }, /invalid header "Bad Name"/],
    [{ HTTPResponse: { Header: { 'X-A': 'line\nbreak' } } }, /invalid header "X-A"/],
    [{ HTTPResponse: 'x' }, /HTTPResponse must be a JSON object/],
    [{ ChangeFileInfo: { ID: 5 } }, /ChangeFileInfo.ID must be a string/],
    [{ ChangeFileInfo: { MetaData: 'x' } }, /ChangeFileInfo.MetaData must be an object/],
    [{ RejectTermination: 1 }, /RejectTermination must be a boolean/],
    [5, /HookResponse must be a JSON object/]
  ] as const) {
    t.throws(() => decodeHookResponse(bad), { name: 'HookResponseError', message }, JSON.stringify(bad))
  }
})

t.test('responses merge as tusd\'s MergeWith', async (t) => {
  const base = { StatusCode: 201, Body: 'a', Header: { A: '1', B: '1' } }
  t.same(mergeHttpResponse(base, { StatusCode: 0, Body: '', Header: { B: '2' } }), { StatusCode: 201, Body: 'a', Header: { A: '1', B: '2' } })
  t.same(mergeHttpResponse(base, { StatusCode: 200, Body: 'b', Header: {} }), { StatusCode: 200, Body: 'b', Header: { A: '1', B: '1' } })
  t.same(base, { StatusCode: 201, Body: 'a', Header: { A: '1', B: '1' } }, 'neither side changes')
})

t.test('metadata replacement becomes a plugin metadata change', async (t) => {
  t.same({ ...replaceMetadata({ a: '1', b: '2' }, { b: '3', c: '4' }) }, { a: null, b: '3', c: '4' })
  t.same({ ...replaceMetadata({ a: '1' }, {}) }, { a: null }, 'an empty map removes everything')
})

t.test('hook requests: uploads and HTTP requests as tusd describes them', async (t) => {
  t.equal(canonicalHeaderKey('upload-length'), 'Upload-Length')
  t.equal(canonicalHeaderKey('X-HTTP-METHOD-OVERRIDE'), 'X-Http-Method-Override')
  t.equal(canonicalHeaderKey('dnt'), 'Dnt')
  t.equal(canonicalHeaderKey('bad name'), 'bad name', 'names that are not tokens stay as they are')
  const created = new Date()
  t.same(fileInfo({ id: 'p', offset: 3, metadata: {}, concat: { kind: 'partial' }, createdAt: created, updatedAt: created }), {
    ID: 'p', Size: 0, SizeIsDeferred: true, Offset: 3, MetaData: {}, IsPartial: true, IsFinal: false, PartialUploads: null, Storage: null
  })
  t.match(fileInfo({ id: 'f', size: 9, offset: 9, metadata: { k: 'v' }, concat: { kind: 'final', parts: ['a', 'b'] }, createdAt: created, updatedAt: created }, (id) => ({ Type: 'x', Path: id })), {
    ID: 'f', Size: 9, SizeIsDeferred: false, IsPartial: false, IsFinal: true, PartialUploads: ['a', 'b'], Storage: { Type: 'x', Path: 'f' }
  })
  t.same(draftInfo({ id: 'generated', size: 4, metadata: { n: 'x' } }), {
    ID: '', Size: 4, SizeIsDeferred: false, Offset: 0, MetaData: { n: 'x' }, IsPartial: false, IsFinal: false, PartialUploads: null, Storage: null
  }, 'pre-create has no id yet')

  const app = Fastify()
  t.teardown(async () => await app.close())
  const seen: unknown[] = []
  app.all('/files/*', async (request) => { seen.push(httpRequest(request)); return '' })
  await app.listen({ port: 0, host: '::1' }).catch(async () => await app.listen({ port: 0, host: '127.0.0.1' }))
  const address = app.server.address() as { address: string, port: number }
  const base = address.address === '::1' ? `http://[::1]:${address.port}` : `http://127.0.0.1:${address.port}`
  await fetch(`${base}/files/x?y=1`, { method: 'POST', headers: { 'x-http-method-override': 'patch', 'x-multi': 'a' } })
  t.match(seen[0], {
    Method: 'PATCH',
    URI: '/files/x?y=1',
    RemoteAddr: address.address === '::1' ? /^\[::1\]:\d+$/ : /^127\.0\.0\.1:\d+$/,
    Header: { Host: [base.slice('http://'.length)], 'X-Http-Method-Override': ['patch'], 'X-Multi': ['a'] }
  })
  const injected = await app.inject({ method: 'GET', url: '/files/z', headers: { host: 'example.com' } })
  t.equal(injected.statusCode, 200)
  t.match(seen[1], { Method: 'GET', URI: '/files/z', Header: { Host: ['example.com'] } })
})

/** A transport that answers from a function and records every request. */
function fakeTransport (answer: (request: HookRequest) => Partial<HookResponse> | Promise<Partial<HookResponse>>): HookTransport & { calls: HookRequest[], closed: boolean } {
  const transport = {
    calls: [] as HookRequest[],
    closed: false,
    invoke: async (request: HookRequest): Promise<HookResponse> => {
      transport.calls.push(request)
      return { ...emptyHookResponse(), ...await answer(request) }
    },
    close: () => { transport.closed = true }
  }
  return transport
}

async function appWith (t: Test, transport: HookTransport, enabled: readonly HookType[] = ['pre-create', 'post-create', 'post-receive', 'pre-finish', 'post-finish', 'pre-terminate', 'post-terminate'], lines: string[] = []): Promise<{ app: FastifyInstance, hooks: TusdHooks }> {
  const hooks = new TusdHooks({ transport, enabled })
  const app = Fastify({ logger: { level: 'info', stream: { write: (line: string) => { lines.push(line) } } } })
  app.addHook('onSend', hooks.onSend)
  await app.register(tus, { store: new MemoryStore(), progressInterval: 20, hooks: hooks.hooks })
  t.teardown(async () => { await app.close(); await hooks.close() })
  return { app, hooks }
}

t.test('pre-create: success responses merge into the 201, and into a pre-finish answer', async (t) => {
  const transport = fakeTransport((request): Partial<HookResponse> => {
    if (request.Type === 'pre-create') return { HTTPResponse: { StatusCode: 200, Body: 'created!', Header: { 'X-Pre-Create': '1' } } }
    if (request.Type === 'pre-finish') return { HTTPResponse: { StatusCode: 0, Body: '', Header: { 'X-Pre-Finish': '1' } } }
    return {}
  })
  const { app } = await appWith(t, transport)
  const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })
  t.equal(response.statusCode, 200)
  t.equal(response.body, 'created!')
  t.equal(response.headers['x-pre-create'], '1')
  t.match(response.headers['content-type'], /^text\/plain/)
  t.ok(response.headers.location)

  const empty = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '0' } })
  t.equal(empty.statusCode, 200, 'pre-create and pre-finish answers merge')
  t.equal(empty.headers['x-pre-create'], '1')
  t.equal(empty.headers['x-pre-finish'], '1')
  t.equal(empty.body, 'created!')
})

t.test('metadata that is not UTF-8: MetaData carries U+FFFD as tusd\'s JSON does; an unchanged value keeps its bytes', async (t) => {
  const transport = fakeTransport((request) => request.Type === 'pre-create'
    ? { ChangeFileInfo: { ID: '', MetaData: { ...request.Event.Upload.MetaData, added: 'x' }, Storage: null } }
    : {})
  const { app } = await appWith(t, transport, ['pre-create', 'post-create'])
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'upload-metadata': 'raw /wDD,name YQ==' } })
  t.equal(created.statusCode, 201)
  t.same(transport.calls[0]?.Event.Upload.MetaData, { raw: '\ufffd\u0000\ufffd', name: 'a' })
  const head = await app.inject({ method: 'HEAD', url: new URL(created.headers.location as string).pathname, headers: TUS })
  t.equal(head.headers['upload-metadata'], 'raw /wDD,name YQ==,added eA==', 'the hook echoed the text: the bytes stay')
})

t.test('pre-create: a later error drops its success response; a bad id is a 500', async (t) => {
  const transport = fakeTransport((request) => request.Event.Upload.MetaData.bad === undefined
    ? { HTTPResponse: { StatusCode: 202, Body: '', Header: { 'X-Ok': '1' } } }
    : { ChangeFileInfo: { ID: '../escape', MetaData: null, Storage: null } })
  const { app } = await appWith(t, transport, ['pre-create'])
  const tooLarge = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '2', 'content-type': OCTET }, payload: 'abc' })
  t.equal(tooLarge.statusCode, 413)
  t.equal(tooLarge.headers['x-ok'], undefined)
  t.equal(tooLarge.json().code, 'ERR_UPLOAD_SIZE_EXCEEDED')
  const bad = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '2', 'upload-metadata': 'bad' } })
  t.equal(bad.statusCode, 500)
  t.equal(bad.json().message, 'Internal server error')
})

t.test('rejections without a body keep the JSON error, with the hook\'s status and headers', async (t) => {
  const transport = fakeTransport((request): Partial<HookResponse> => request.Type === 'pre-create'
    ? { RejectUpload: true, HTTPResponse: { StatusCode: 0, Body: '', Header: { 'X-Why': 'quota' } } }
    : { RejectTermination: true, HTTPResponse: { StatusCode: 423, Body: '', Header: {} } })
  const { app } = await appWith(t, transport, ['pre-create', 'pre-terminate'])
  const rejected = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })
  t.equal(rejected.statusCode, 400)
  t.equal(rejected.json().code, 'ERR_UPLOAD_REJECTED')
  t.equal(rejected.headers['x-why'], 'quota')

  const { app: plain } = await appWith(t, fakeTransport((request) => request.Type === 'pre-terminate' ? { RejectTermination: true } : {}), ['pre-terminate'])
  const created = await plain.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })
  const path = new URL(created.headers.location as string).pathname
  const refused = await plain.inject({ method: 'DELETE', url: path, headers: TUS })
  t.equal(refused.statusCode, 400)
  t.equal(refused.json().code, 'ERR_UPLOAD_TERMINATION_REJECTED')
  t.equal((await plain.inject({ method: 'HEAD', url: path, headers: TUS })).statusCode, 200)
})

t.test('pre-terminate: a success response merges into the 204', async (t) => {
  const { app } = await appWith(t, fakeTransport(() => ({ HTTPResponse: { StatusCode: 0, Body: '', Header: { 'X-Bye': '1' } } })), ['pre-terminate'])
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })
  const deleted = await app.inject({ method: 'DELETE', url: new URL(created.headers.location as string).pathname, headers: TUS })
  t.equal(deleted.statusCode, 204)
  t.equal(deleted.headers['x-bye'], '1')
})

t.test('pre-finish: status, body and headers shape the completing response', async (t) => {
  const { app } = await appWith(t, fakeTransport((request) => request.Type === 'pre-finish'
    ? { HTTPResponse: { StatusCode: 202, Body: '{"url":"x"}', Header: { 'Content-Type': 'application/json', Link: '<x>; rel="item"' } } }
    : {}), ['pre-finish'])
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '2' } })
  t.equal(created.statusCode, 201)
  const patch = await app.inject({ method: 'PATCH', url: new URL(created.headers.location as string).pathname, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'ab' })
  t.equal(patch.statusCode, 202)
  t.same(patch.json(), { url: 'x' })
  t.equal(patch.headers.link, '<x>; rel="item"')
  t.equal(patch.headers['upload-offset'], '2')

  const { app: bodyOnly } = await appWith(t, fakeTransport(() => ({ HTTPResponse: { StatusCode: 0, Body: 'done', Header: {} } })), ['pre-finish'])
  const zero = await bodyOnly.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '0' } })
  t.equal(zero.statusCode, 201)
  t.equal(zero.body, 'done')
})

t.test('pre-finish: the status goes through the plugin\'s checks; a redirect or a tus header is refused', async (t) => {
  const { app } = await appWith(t, fakeTransport((request): Partial<HookResponse> => {
    const name = request.Event.Upload.MetaData.name
    if (name === 'redirect') return { HTTPResponse: { StatusCode: 302, Body: '', Header: { 'X-A': '1' } } }
    if (name === 'offset') return { HTTPResponse: { StatusCode: 0, Body: '', Header: { 'Upload-Offset': '0' } } }
    return { HTTPResponse: { StatusCode: 418, Body: 'short and stout', Header: {} } }
  }), ['pre-finish'])
  const finish = async (name: string): Promise<Awaited<ReturnType<typeof app.inject>>> => {
    const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'upload-metadata': `name ${Buffer.from(name).toString('base64')}` } })
    return await app.inject({ method: 'PATCH', url: new URL(created.headers.location as string).pathname, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'a' })
  }
  const teapot = await finish('teapot')
  t.equal(teapot.statusCode, 418, 'an error status is sent as the hook asked')
  t.equal(teapot.body, 'short and stout')
  for (const name of ['redirect', 'offset']) {
    const refused = await finish(name)
    t.equal(refused.statusCode, 500, name)
    t.equal(refused.json().code, 'ERR_INTERNAL_SERVER_ERROR', name)
    t.equal(refused.headers['x-a'], undefined, `${name}: nothing of the answer is merged`)
  }
})

t.test('non-blocking hooks are not awaited; their failures are logged', async (t) => {
  const lines: string[] = []
  let release: () => void = () => {}
  const gate = new Promise<void>((resolve) => { release = resolve })
  const transport = fakeTransport(async (request) => {
    if (request.Type === 'post-create') await gate
    if (request.Type === 'post-finish') throw new Error('receiver down')
    return {}
  })
  const { app, hooks } = await appWith(t, transport, ['post-create', 'post-finish', 'post-terminate'], lines)
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'content-type': OCTET }, payload: 'a' })
  t.equal(created.statusCode, 201, 'answered while post-create is still running')
  await app.inject({ method: 'DELETE', url: new URL(created.headers.location as string).pathname, headers: TUS })
  await sleep(20)
  t.same(transport.calls.map((call) => call.Type), ['post-create', 'post-finish', 'post-terminate'])
  t.ok(lines.some((line) => line.includes('tusd post-finish hook failed: receiver down')), 'logged')
  const closing = hooks.close()
  await sleep(20)
  t.equal(transport.closed, false, 'close waits for running calls')
  release()
  await closing
  t.equal(transport.closed, true)
})

t.test('a failing blocking hook is a 500 with the detail in the log only', async (t) => {
  const lines: string[] = []
  const { app } = await appWith(t, fakeTransport(() => { throw new Error('connect ECONNREFUSED secret-host:9000') }), ['pre-create'], lines)
  const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })
  t.equal(response.statusCode, 500)
  t.notMatch(response.body, /secret-host/)
  t.ok(lines.some((line) => line.includes('tusd pre-create hook failed: connect ECONNREFUSED secret-host:9000')))
})

t.test('answers may set only final statuses and no Location or hop-by-hop headers', async (t) => {
  for (const status of [100, 101, 103, 199]) {
    t.throws(() => decodeHookResponse({ HTTPResponse: { StatusCode: status } }), { name: 'HookResponseError', message: /not a final status/ }, String(status))
  }
  for (const status of [0, 200, 204, 302, 599]) t.equal(decodeHookResponse({ HTTPResponse: { StatusCode: status } }).HTTPResponse.StatusCode, status)
  for (const name of ['Location', 'location', 'Connection', 'Keep-Alive', 'Transfer-Encoding', 'Upgrade', 'TE', 'Trailer', 'Proxy-Authenticate', 'Proxy-Authorization', 'Content-Length']) {
    t.throws(() => parseHookResponse(JSON.stringify({ HTTPResponse: { Header: { [name]: 'x' } } })), { name: 'HookResponseError', message: /may not set/ }, name)
  }
  t.same(decodeHookResponse({ HTTPResponse: { Header: { 'X-Location': 'a', 'Content-Type': 'text/plain' } } }).HTTPResponse.Header, { 'X-Location': 'a', 'Content-Type': 'text/plain' }, 'other headers pass')
  // through a transport that decodes the answer, the whole answer is a failed hook: 500, nothing applied
  const lines: string[] = []
  const transport = fakeTransport(() => decodeHookResponse({ RejectUpload: true, HTTPResponse: { StatusCode: 403, Header: { Location: 'https://evil.example/' } } }))
  const { app } = await appWith(t, transport, ['pre-create'], lines)
  const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })
  t.equal(response.statusCode, 500)
  t.equal(response.headers.location, undefined)
  t.ok(lines.some((line) => line.includes('tusd pre-create hook failed: HTTPResponse.Header may not set \\"Location\\"')), 'the log says what was refused')
  const informational = await appWith(t, fakeTransport(() => decodeHookResponse({ HTTPResponse: { StatusCode: 101, Header: { Upgrade: 'websocket' } } })), ['pre-create'])
  t.equal((await informational.app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })).statusCode, 500)
})

t.test('post-receive: StopUpload after the body ended changes nothing', async (t) => {
  const lines: string[] = []
  const { app } = await appWith(t, fakeTransport(async () => {
    await sleep(50)
    return { StopUpload: true, HTTPResponse: { StatusCode: 402, Body: 'x', Header: {} } }
  }), ['post-receive'], lines)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3' } })
  const path = new URL(created.headers.location as string).pathname
  const patch = rawRequest(port, 'PATCH', path, { 'Tus-Resumable': '1.0.0', 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '3' })
  patch.write('abc')
  t.equal((await patch.response)?.status, 204)
  await sleep(100)
  t.ok(lines.some((line) => line.includes('asked to stop an upload whose request had ended')))
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: TUS })).headers['upload-offset'], '3')
})

t.test('pre-create: a ChangeFileInfo.ID that names an existing upload is 409 ERR_UPLOAD_EXISTS; that upload keeps its bytes', async (t) => {
  const transport = fakeTransport((request) => request.Type === 'pre-create'
    ? { ChangeFileInfo: { ID: 'fixed-name', MetaData: null, Storage: null } }
    : {})
  const { app } = await appWith(t, transport, ['pre-create'])
  const first = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3', 'content-type': OCTET }, payload: 'abc' })
  t.equal(first.statusCode, 201)
  const again = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3', 'content-type': OCTET }, payload: 'xyz' })
  t.equal(again.statusCode, 409)
  t.equal(again.json().code, 'ERR_UPLOAD_EXISTS')
  const head = await app.inject({ method: 'HEAD', url: '/files/fixed-name', headers: TUS })
  t.equal(head.headers['upload-offset'], '3')
  const upload = await app.tus.store.get('fixed-name')
  t.equal(upload.offset, 3, 'the first upload is untouched')
})

t.test('pre-create: ChangeFileInfo.Storage asks the store for a place (Type and empty values left out)', async (t) => {
  t.same(storageRequest({ Type: 'filestore', Path: 'a/b.bin', InfoPath: '' }), { Path: 'a/b.bin' })
  t.equal(storageRequest({ Type: 'filestore' }), undefined, 'nothing but Type: the store\'s usual place')
  const place = (request: HookRequest): Record<string, string> => request.Event.Upload.MetaData.place === undefined ? { Type: 'memory' } : { Path: 'x.bin' }
  const { app } = await appWith(t, fakeTransport((request): Partial<HookResponse> => request.Type === 'pre-create'
    ? { ChangeFileInfo: { ID: '', MetaData: null, Storage: place(request) } }
    : {}), ['pre-create'])
  const usual = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })
  t.equal(usual.statusCode, 201)
  const placed = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'upload-metadata': 'place' } })
  t.equal(placed.statusCode, 400, 'a store that cannot place uploads refuses, never ignores the hook')
  t.equal(placed.json().code, 'ERR_STORAGE_UNSUPPORTED')
})

t.test('events report a placed upload\'s Storage as the store describes it', async (t) => {
  const upload = { id: 'u', offset: 0, metadata: {}, createdAt: new Date(0), updatedAt: new Date(0), storage: { Type: 'filestore', Path: '/d/a.bin', InfoPath: '/d/u.info' } }
  t.same(fileInfo(upload, () => ({ Type: 'filestore', Path: '/d/u' })).Storage, { Type: 'filestore', Path: '/d/a.bin', InfoPath: '/d/u.info' })
})
