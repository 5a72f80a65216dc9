/**
 * Lifecycle hooks and events: order, arguments, rejections and changes.
 */
import createError from '@fastify/error'
import Fastify, { type FastifyRequest } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import tus from '../plugin/index.js'
import type { UploadEvent } from '../plugin/index.js'
import { MemoryStore } from '../stores/memory.js'
import { buildApp, createUpload, OCTET, TUS } from './helpers/app.js'
import { rawRequest } from './helpers/http.js'

const Forbidden = createError('APP_FORBIDDEN', 'not yours', 403)
const Rejected = createError('APP_REJECTED', 'uploads of %s are not accepted', 422)

function pathOf (location: unknown): string {
  return new URL(location as string, 'http://x').pathname
}

t.test('every hook runs in order with the request and the upload', async (t) => {
  const calls: string[] = []
  const { app } = await buildApp(t, {
    hooks: {
      authorize: (request, upload, action) => { calls.push(`authorize:${action}:${upload?.offset ?? '-'}:${request.headers['x-user'] as string}`) },
      preCreate: async (_request, upload) => { calls.push(`preCreate:${upload.size ?? '?'}`) },
      postCreate: (_request, upload) => { calls.push(`postCreate:${upload.offset}`) },
      onUploadProgress: (_request, _upload, progress) => { calls.push(`progress:${progress.offset}`) },
      preFinish: (_request, upload) => { calls.push(`preFinish:${upload.offset}`) },
      onUploadComplete: (request, upload) => { calls.push(`complete:${upload.offset}:${request.method}`) },
      preTerminate: (_request, upload) => { calls.push(`preTerminate:${upload.offset}`) },
      postTerminate: (_request, upload) => { calls.push(`postTerminate:${upload.id.length}`) }
    }
  })
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '10', 'x-user': 'ann' } })
  const path = pathOf(created.headers.location)
  await app.inject({ method: 'HEAD', url: path, headers: { ...TUS, 'x-user': 'ann' } })
  await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'x-user': 'ann' }, payload: 'hello' })
  await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '5', 'x-user': 'ann' }, payload: 'world' })
  await app.inject({ method: 'GET', url: path, headers: { 'x-user': 'ann' } })
  await app.inject({ method: 'DELETE', url: path, headers: { ...TUS, 'x-user': 'ann' } })
  t.same(calls, [
    'authorize:create:-:ann', 'preCreate:10', 'postCreate:0',
    'authorize:head:0:ann',
    'authorize:patch:0:ann', 'progress:5',
    'authorize:patch:5:ann', 'progress:10', 'preFinish:10', 'complete:10:PATCH',
    'authorize:get:10:ann',
    'authorize:delete:10:ann', 'preTerminate:10', 'postTerminate:32'
  ])
})

t.test('authorize rejects with the error status, headers and message', async (t) => {
  const { app } = await buildApp(t, {
    hooks: {
      authorize: (request, upload, action) => {
        if (request.headers.authorization !== 'Bearer good') {
          const err = new Forbidden()
          ;(err as unknown as { headers: Record<string, string> }).headers = { 'www-authenticate': 'Bearer' }
          throw err
        }
        if (action !== 'create' && upload?.metadata.owner !== 'ann') throw new Forbidden()
      },
      preCreate: () => ({ metadata: { owner: 'ann' } })
    }
  })
  const denied = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })
  t.equal(denied.statusCode, 403)
  t.equal(denied.json().code, 'APP_FORBIDDEN')
  t.equal(denied.json().message, 'not yours')
  t.equal(denied.headers['www-authenticate'], 'Bearer')
  t.equal(denied.headers['tus-resumable'], '1.0.0')
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', authorization: 'Bearer good' } })
  t.equal(created.statusCode, 201)
  const head = await app.inject({ method: 'HEAD', url: pathOf(created.headers.location), headers: { ...TUS, authorization: 'Bearer good' } })
  t.equal(head.statusCode, 200)
  const stranger = await app.inject({ method: 'HEAD', url: pathOf(created.headers.location), headers: TUS })
  t.equal(stranger.statusCode, 403)
  const missing = await app.inject({ method: 'HEAD', url: '/files/nope', headers: { ...TUS, authorization: 'Bearer good' } })
  t.equal(missing.statusCode, 404)
})

t.test('an unauthorized request never interrupts an upload in progress', async (t) => {
  const { app } = await buildApp(t, {
    fileStore: true,
    hooks: { authorize: (request) => { if (request.headers['x-user'] !== 'ann') throw new Forbidden() } }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const path = await createUpload(app, { 'upload-length': '100', 'x-user': 'ann' })
  const patch = rawRequest(port, 'PATCH', path, { 'Tus-Resumable': '1.0.0', 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '100', 'X-User': 'ann' })
  patch.write(Buffer.alloc(50, 1))
  await sleep(100)
  const intruder = await app.inject({ method: 'HEAD', url: path, headers: { ...TUS, 'x-user': 'eve' } })
  t.equal(intruder.statusCode, 403)
  patch.write(Buffer.alloc(50, 2))
  const response = await patch.response
  t.equal(response?.status, 204, 'the PATCH finished undisturbed')
  t.equal(response?.headers['upload-offset'], '100')
})

t.test('preCreate: reject, rename, merge metadata, limit the size', async (t) => {
  const { app } = await buildApp(t, {
    hooks: {
      preCreate: [
        (_request, upload) => {
          if (upload.metadata.filetype === 'application/x-msdownload') throw new Rejected(upload.metadata.filetype)
        },
        (request, upload) => ({
          id: `u-${request.headers['x-user'] as string}-${upload.id.slice(0, 4)}`,
          metadata: { owner: request.headers['x-user'] as string, secret: null },
          maxSize: 10
        }),
        (_request, upload) => {
          if (!upload.id.startsWith('u-')) throw new Error('hooks see earlier changes')
          return { maxSize: 20 }
        }
      ]
    }
  })
  const exe = Buffer.from('application/x-msdownload').toString('base64')
  const rejected = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'upload-metadata': `filetype ${exe}` } })
  t.equal(rejected.statusCode, 422)
  t.equal(rejected.json().message, 'uploads of application/x-msdownload are not accepted')

  const created = await app.inject({
    method: 'POST',
    url: '/files/',
    headers: { ...TUS, 'upload-length': '10', 'x-user': 'bob', 'upload-metadata': 'secret cw==,name bg==' }
  })
  t.equal(created.statusCode, 201)
  const path = pathOf(created.headers.location)
  t.match(path, /^\/files\/u-bob-[0-9a-f]{4}$/)
  const info = await app.tus.store.get(path.split('/').pop() as string)
  t.same({ ...info.metadata }, { name: 'n', owner: 'bob' }, 'merged, with null removing a key')
  t.equal(info.maxSize, 10, 'the smallest limit wins')

  const large = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '11', 'x-user': 'bob' } })
  t.equal(large.statusCode, 413)
  t.equal(large.json().code, 'ERR_MAX_SIZE_EXCEEDED')

  const deferred = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-defer-length': '1', 'x-user': 'cy' } })
  const deferredPath = pathOf(deferred.headers.location)
  const tooMuch = await app.inject({ method: 'PATCH', url: deferredPath, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'x'.repeat(11) })
  t.equal(tooMuch.statusCode, 413, 'the per-upload limit binds a deferred upload')
  const declare = await app.inject({ method: 'PATCH', url: deferredPath, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'upload-length': '11' }, payload: '' })
  t.equal(declare.statusCode, 413)
})

t.test('hook errors without a status are a generic 500, logged; returning nothing is fine', async (t) => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(async () => await app.close())
  await app.register(tus, {
    store: new MemoryStore(),
    hooks: { preCreate: () => { throw new Error('database credentials leaked') } }
  })
  const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'ERR_INTERNAL_SERVER_ERROR')
  t.notMatch(response.body, /credentials/)
  t.ok(lines.some((line) => line.includes('database credentials leaked')))
  const { app: quiet } = await buildApp(t, { hooks: { preCreate: () => undefined, preFinish: async () => {} } })
  t.equal((await quiet.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '0' } })).statusCode, 201)
})

t.test('postCreate, onUploadComplete, postTerminate and progress errors are logged, never sent', async (t) => {
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(async () => await app.close())
  const boom = (): never => { throw new Error('hook boom') }
  await app.register(tus, {
    store: new MemoryStore(),
    hooks: { postCreate: boom, onUploadComplete: boom, postTerminate: boom, onUploadProgress: boom }
  })
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '2', 'content-type': OCTET }, payload: 'ab' })
  t.equal(created.statusCode, 201)
  const deleted = await app.inject({ method: 'DELETE', url: pathOf(created.headers.location), headers: TUS })
  t.equal(deleted.statusCode, 204)
  await sleep(20)
  t.equal(lines.filter((line) => line.includes('hook boom')).length, 4)
})

t.test('preFinish shapes the completing response; onUploadComplete runs after it is sent', async (t) => {
  const sequence: string[] = []
  const { app } = await buildApp(t, {
    hooks: {
      preFinish: [
        (_request, upload) => ({ headers: { 'x-file-url': `https://cdn.example/${upload.id}` } }),
        () => ({ body: { stored: true } })
      ],
      onUploadComplete: async (request) => { sequence.push(`complete:${request.method}`) }
    }
  }, (app) => {
    app.addHook('onSend', async (request, _reply, payload) => { sequence.push(`send:${request.method}`); return payload })
  })
  const path = await createUpload(app, { 'upload-length': '3' })
  const patch = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'abc' })
  t.equal(patch.statusCode, 200)
  t.same(patch.json(), { stored: true })
  t.equal(patch.headers['upload-offset'], '3')
  t.match(patch.headers['x-file-url'], /^https:\/\/cdn\.example\//)
  t.same(sequence, ['send:POST', 'send:PATCH', 'complete:PATCH'], 'onUploadComplete ran after the response')
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '0' } })
  t.equal(created.statusCode, 201, 'an empty upload completes at creation')
  t.same(created.json(), { stored: true })
})

t.test('preFinish may set the status of the completing PATCH and POST; the upload stays complete', async (t) => {
  const completed: string[] = []
  const { app } = await buildApp(t, {
    hooks: {
      preFinish: (request) => {
        const wanted = request.headers['x-want'] as string
        if (wanted === 'accepted') return { status: 202, body: { queued: true } }
        if (wanted === 'ok') return { status: 200 }
        if (wanted === 'refused') return { status: 422, headers: { 'x-why': 'virus' }, body: { message: 'infected' } }
        return undefined
      },
      onUploadComplete: (request, upload) => { completed.push(`${request.headers['x-want'] as string}:${upload.offset}`) }
    }
  })
  const patch = async (want: string): Promise<{ path: string, response: Awaited<ReturnType<typeof app.inject>> }> => {
    const path = await createUpload(app, { 'upload-length': '3' })
    const response = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'x-want': want }, payload: 'abc' })
    return { path, response }
  }
  const accepted = await patch('accepted')
  t.equal(accepted.response.statusCode, 202, 'the hook\'s status')
  t.same(accepted.response.json(), { queued: true })
  t.equal(accepted.response.headers['upload-offset'], '3', 'the tus headers stay')
  const ok = await patch('ok')
  t.equal(ok.response.statusCode, 200, 'a status without a body')
  t.equal(ok.response.body, '')
  const refused = await patch('refused')
  t.equal(refused.response.statusCode, 422, 'an error status is sent as asked')
  t.equal(refused.response.headers['x-why'], 'virus')
  t.same(refused.response.json(), { message: 'infected' })
  const head = await app.inject({ method: 'HEAD', url: refused.path, headers: TUS })
  t.equal(head.headers['upload-offset'], '3', 'the upload is complete whatever the status')
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '2', 'content-type': OCTET, 'x-want': 'ok' }, payload: 'ab' })
  t.equal(created.statusCode, 200, 'a creation-with-upload that completes takes the status too')
  t.ok(created.headers.location, 'and keeps its Location')
  await sleep(20)
  t.same(completed, ['accepted:3', 'ok:3', 'refused:3', 'ok:2'], 'onUploadComplete runs after each')
})

t.test('preFinish may not set a status or header that breaks the protocol: a logged 500', async (t) => {
  const lines: string[] = []
  const answers: Record<string, unknown> = {
    redirect: { status: 302 },
    interim: { status: 103 },
    reset: { status: 205 },
    partial: { status: 206 },
    text: { status: '202' },
    empty: { status: 204, body: 'x' },
    offset: { headers: { 'Upload-Offset': '0' } },
    length: { headers: { 'content-length': '1' } }
  }
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } })
  await app.register(tus, { store: new MemoryStore(), hooks: { preFinish: (request) => answers[request.headers['x-want'] as string] as never } })
  t.teardown(async () => await app.close())
  for (const want of Object.keys(answers)) {
    const path = await createUpload(app, { 'upload-length': '1' })
    const response = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'x-want': want }, payload: 'a' })
    t.equal(response.statusCode, 500, want)
    t.equal(response.json().code, 'ERR_INTERNAL_SERVER_ERROR', want)
    t.notMatch(response.body, /preFinish/, `${want}: no internal text`)
  }
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '0' } })
  t.equal(created.statusCode, 201, 'a hook that asks for nothing changes nothing')
  const hooked = Fastify({ logger: false })
  await hooked.register(tus, { store: new MemoryStore(), hooks: { preFinish: [() => ({ headers: { 'x-first': '1' } }), () => ({ headers: { Location: '/elsewhere' } })] } })
  t.teardown(async () => await hooked.close())
  const creation = await hooked.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '0' } })
  t.equal(creation.statusCode, 500, 'no Location on a creation: it is the upload\'s URL')
  t.equal(creation.headers['x-first'], undefined, 'nothing of what the hooks asked for is sent')
  const path = await createUpload(hooked, { 'upload-length': '1' })
  const append = await hooked.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'a' })
  t.equal(append.statusCode, 204, 'a Location on an append (the processed file) is fine')
  t.equal(append.headers.location, '/elsewhere')
  t.ok(lines.some((line) => line.includes('preFinish returned the status 302')), 'the reason is logged')
})

t.test('preTerminate can refuse a termination', async (t) => {
  const { app } = await buildApp(t, { hooks: { preTerminate: () => { throw new Forbidden() } } })
  const path = await createUpload(app)
  const response = await app.inject({ method: 'DELETE', url: path, headers: TUS })
  t.equal(response.statusCode, 403)
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: TUS })).statusCode, 200, 'the upload is still there')
})

t.test('progress is reported while the body streams and once at the end', async (t) => {
  const progress: number[] = []
  const { app } = await buildApp(t, { fileStore: true, progressInterval: 50, hooks: { onUploadProgress: (_r, _u, p) => { progress.push(p.bytes) } } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const path = await createUpload(app, { 'upload-length': '300' })
  const request = rawRequest(port, 'PATCH', path, { 'Tus-Resumable': '1.0.0', 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '300' })
  for (let i = 0; i < 3; i++) {
    request.write(Buffer.alloc(100, i))
    await sleep(120)
  }
  const response = await request.response
  t.equal(response?.status, 204)
  t.same([...new Set(progress)], [100, 200, 300], 'reports while streaming, in order, only when bytes arrived')
  t.equal(progress.at(-1), 300, 'and a last one when the request ends')
  t.ok(progress.length <= 4)
})

t.test('addHook, events and the completed-uploads iterator', async (t) => {
  const app = Fastify()
  await app.register(tus, { store: new MemoryStore() })
  const order: string[] = []
  app.tus.addHook('preFinish', () => { order.push('first') }).addHook('preFinish', async () => { order.push('second') })
  t.throws(() => app.tus.addHook('nope' as unknown as 'preFinish', () => {}), /unknown hook/)
  t.throws(() => app.tus.addHook('preFinish', 'x' as never), /must be a function/)
  t.throws(() => app.tus.addHook('nope' as unknown as 'preFinish', () => {}), { code: 'ERR_TUS_INVALID_HOOK' })
  const thrown = (() => { try { app.tus.addHook('nope' as unknown as 'preFinish', () => {}) } catch (err) { return err } })()
  t.ok(thrown instanceof TypeError, 'still a TypeError')
  const events: string[] = []
  app.tus.on('upload-created', ({ upload }) => { events.push(`created:${upload.size ?? '?'}`) })
  app.tus.on('upload-progress', ({ bytes }) => { events.push(`progress:${bytes}`) })
  app.tus.on('upload-complete', ({ upload }) => { events.push(`complete:${upload.offset}`) })
  app.tus.on('upload-terminated', ({ upload }) => { events.push(`terminated:${upload.offset}`) })
  app.tus.on('chunk-written', ({ bytes, reason }) => { events.push(`chunk:${bytes}:${reason}`) })
  app.tus.on('lock-wait', ({ timedOut }) => { events.push(`lock:${String(timedOut)}`) })
  const collected: UploadEvent[] = []
  const consumer = (async () => {
    for await (const event of app.tus.completedUploads()) collected.push(event)
  })()
  const path = await createUpload(app, { 'upload-length': '2' })
  await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'ok' })
  await app.inject({ method: 'DELETE', url: path, headers: TUS })
  await createUpload(app, { 'upload-length': '0' })
  t.same(order, ['first', 'second', 'first', 'second'], 'both uploads completed: each ran both hooks in order')
  // a creation that someone hears of (here an upload-created listener) holds the new upload's lock
  t.same(events, ['lock:false', 'created:2', 'lock:false', 'progress:2', 'chunk:2:complete', 'complete:2', 'lock:false', 'terminated:2', 'lock:false', 'created:0', 'complete:0'])
  await app.close()
  await consumer
  t.same(collected.map((event) => event.upload.size), [2, 0], 'the iterator saw both and ended with the app')
  const aborted = new AbortController()
  aborted.abort()
  for await (const event of app.tus.completedUploads(aborted.signal)) t.fail(`unexpected ${event.upload.id}`)
})

t.test('bad hook options are coded errors', async (t) => {
  for (const [hooks, name] of [[{ nope: () => {} }, 'hooks.nope'], [{ preCreate: 'x' }, 'hooks.preCreate'], [{ preCreate: [() => {}, 1] }, 'hooks.preCreate'], ['x', 'hooks']] as const) {
    const app = Fastify()
    const err = await app.register(tus, { store: new MemoryStore(), hooks: hooks as never }).ready().then(() => undefined, (e: unknown) => e) as { code?: string, message?: string }
    t.equal(err?.code, 'ERR_TUS_INVALID_OPTION')
    t.match(err?.message, `"${name}"`)
    await app.close()
  }
})

t.test('stopUpload: a progress hook stops the body, the upload is terminated, the client gets ERR_UPLOAD_STOPPED', async (t) => {
  const events: string[] = []
  const StopCustom = createError('APP_QUOTA', 'quota used up', 402)
  const { app } = await buildApp(t, {
    fileStore: true,
    progressInterval: 20,
    hooks: {
      onUploadProgress: (request, upload, progress) => {
        if (progress.bytes < 50) return
        const custom = request.headers['x-custom'] === '1' ? new StopCustom() : undefined
        events.push(`stop:${upload.id.length}:${String(app.tus.stopUpload(request, custom))}`)
        events.push(`again:${String(app.tus.stopUpload(request))}`)
      },
      postTerminate: (_request, upload) => { events.push(`postTerminate:${upload.offset}`) },
      onUploadComplete: () => { events.push('complete') }
    }
  })
  app.tus.on('upload-terminated', ({ upload }) => { events.push(`terminated:${upload.offset}`) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port

  const path = await createUpload(app, { 'upload-length': '100' })
  const patch = rawRequest(port, 'PATCH', path, { 'Tus-Resumable': '1.0.0', 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '100' })
  patch.write(Buffer.alloc(60, 1))
  const response = await patch.response
  t.equal(response?.status, 400)
  t.equal(JSON.parse(response?.body ?? '{}').code, 'ERR_UPLOAD_STOPPED')
  t.equal(response?.headers['upload-offset'], undefined)
  t.same(events, ['stop:32:true', 'again:false', 'stop:32:false', 'again:false', 'terminated:60', 'postTerminate:60'],
    'the final progress report comes too late to stop anything')
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: TUS })).statusCode, 404, 'the upload is gone')

  events.length = 0
  const post = rawRequest(port, 'POST', '/files/', {
    'Tus-Resumable': '1.0.0', 'Content-Type': OCTET, 'Upload-Length': '100', 'Content-Length': '100', 'X-Custom': '1'
  })
  post.write(Buffer.alloc(70, 2))
  const created = await post.response
  t.equal(created?.status, 402, 'the error given to stopUpload is sent')
  t.equal(JSON.parse(created?.body ?? '{}').code, 'APP_QUOTA')
  t.equal(created?.headers.location, undefined, 'no Location for an upload that is gone')
  t.same(events, ['stop:32:true', 'again:false', 'stop:32:false', 'again:false', 'terminated:70', 'postTerminate:70'])

  t.equal(app.tus.stopUpload({} as FastifyRequest), false, 'a request without a body in flight: nothing to stop')
})

t.test('stopUpload on a store that cannot remove uploads still stops the body', async (t) => {
  const store = new MemoryStore()
  const limited = { create: store.create.bind(store), get: store.get.bind(store), write: store.write.bind(store) }
  const { app } = await buildApp(t, {
    store: limited,
    progressInterval: 20,
    hooks: { onUploadProgress: (request, _upload, progress) => { if (progress.bytes >= 10) app.tus.stopUpload(request) } }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const path = await createUpload(app, { 'upload-length': '100' })
  const patch = rawRequest(port, 'PATCH', path, { 'Tus-Resumable': '1.0.0', 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '100' })
  patch.write(Buffer.alloc(10, 1))
  const response = await patch.response
  t.equal(response?.status, 400)
  t.equal(JSON.parse(response?.body ?? '{}').code, 'ERR_UPLOAD_STOPPED')
  t.equal((await store.get(path.split('/').pop() as string)).offset, 10, 'the bytes stay; the store cannot remove them')
})

t.test('stopUpload: a store that fails to remove the upload still answers ERR_UPLOAD_STOPPED; the failure is logged', async (t) => {
  const lines: string[] = []
  const store = new MemoryStore()
  store.remove = async () => { throw new Error('disk on fire') }
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } })
  t.teardown(async () => await app.close())
  const terminated: string[] = []
  await app.register(tus, {
    store,
    progressInterval: 20,
    hooks: {
      onUploadProgress: (request) => { app.tus.stopUpload(request) },
      postTerminate: (_request, upload) => { terminated.push(upload.id) }
    }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const path = await createUpload(app, { 'upload-length': '100' })
  const patch = rawRequest(port, 'PATCH', path, { 'Tus-Resumable': '1.0.0', 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '100' })
  patch.write(Buffer.alloc(10, 1))
  const response = await patch.response
  t.equal(response?.status, 400)
  t.equal(JSON.parse(response?.body ?? '{}').code, 'ERR_UPLOAD_STOPPED')
  t.ok(lines.some((line) => line.includes('could not remove a stopped upload') && line.includes('disk on fire')))
  t.same(terminated, [], 'postTerminate only runs when the upload is gone')
})
