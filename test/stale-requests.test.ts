/**
 * A request whose client has already gone (its connection or HTTP/2 stream closed before it got
 * the upload's lock, for example while it was held up behind a live request) never takes the lock
 * from a live request: the live body is not interrupted, and the client's resume succeeds.
 */
import { connect as connectHttp2, constants as h2, type ClientHttp2Session, type ClientHttp2Stream } from 'node:http2'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import t, { type Test } from 'tap'
import tus from '../plugin/index.js'
import { MemoryStore } from '../stores/memory.js'
import { buildApp, createUpload, OCTET, TUS } from './helpers/app.js'
import { rawRequest } from './helpers/http.js'

/** An authorize hook that holds back requests marked `x-stale` until the test lets them go. */
function holdBack (): { authorize: (request: FastifyRequest) => Promise<void>, arrived: Promise<FastifyRequest>, release: () => void } {
  let release!: () => void
  const released = new Promise<void>((resolve) => { release = resolve })
  let arrive!: (request: FastifyRequest) => void
  const arrived = new Promise<FastifyRequest>((resolve) => { arrive = resolve })
  return {
    authorize: async (request) => {
      if (request.headers['x-stale'] === undefined) return
      arrive(request)
      await released
    },
    arrived,
    release
  }
}

async function until (check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (check()) return
    await sleep(10)
  }
  throw new Error(`timed out waiting for ${what}`)
}

/** After the live request A ended: the client's resume C (HEAD, then PATCH of the rest) completes the upload. */
async function resume (t: Test, app: Pick<FastifyInstance, 'inject'>, path: string): Promise<void> {
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.headers['upload-offset'], '5', 'C: HEAD sees every byte A sent')
  const patch = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '5' }, payload: 'fghij' })
  t.equal(patch.statusCode, 204, 'C: the resume succeeds')
  t.equal(patch.headers['upload-offset'], '10')
}

t.test('HTTP/1.1: a PATCH whose connection closed before it got the lock does not interrupt the live PATCH', async (t) => {
  const hold = holdBack()
  const { app } = await buildApp(t, { hooks: { authorize: hold.authorize } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  const path = await createUpload(app, { 'upload-length': '10' })
  const headers = { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '5' }

  const a = rawRequest(port, 'PATCH', path, headers)
  a.write('ab')
  const b = rawRequest(port, 'PATCH', path, { ...headers, 'X-Stale': '1' })
  b.write('XXXXX')
  const stale = await hold.arrived
  b.socket.destroy()
  await until(() => stale.raw.socket.destroyed, 'the server to see B\'s connection close')
  hold.release()
  await sleep(100)
  a.write('cde')
  const answer = await a.response
  t.equal(answer?.status, 204, 'A was not interrupted by the stale B')
  t.equal(answer?.headers['upload-offset'], '5')
  await resume(t, app, path)
})

t.test('HTTP/2: a PATCH whose stream was reset before it got the lock does not interrupt the live PATCH', async (t) => {
  const hold = holdBack()
  const app = Fastify({ http2: true })
  await app.register(tus, { store: new MemoryStore(), hooks: { authorize: hold.authorize } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await app.close() })
  const session: ClientHttp2Session = connectHttp2(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)
  t.teardown(() => session.destroy())
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '10' } })
  const path = new URL(created.headers.location as string).pathname
  const headers = { ':method': 'PATCH', ':path': path, ...TUS, 'content-type': OCTET, 'upload-offset': '0' }

  const a: ClientHttp2Stream = session.request(headers)
  const answer = new Promise<{ status: number, offset: unknown }>((resolve) => {
    a.on('response', (received) => { resolve({ status: Number(received[':status']), offset: received['upload-offset'] }) })
  })
  a.resume()
  a.write('ab')
  const b = session.request({ ...headers, 'x-stale': '1' })
  b.on('error', () => {})
  b.write('XXXXX')
  const stale = await hold.arrived
  b.close(h2.NGHTTP2_CANCEL)
  const staleStream = (stale.raw as unknown as { stream: { closed: boolean } }).stream
  await until(() => staleStream.closed, 'the server to see B\'s stream reset')
  hold.release()
  await sleep(100)
  a.end('cde')
  const result = await answer
  t.equal(result.status, 204, 'A was not interrupted by the stale B')
  t.equal(result.offset, '5')
  await resume(t, app, path)
})

t.test('HTTP/2: a request waiting for the lock stops waiting when its stream is reset', async (t) => {
  let open!: () => void
  const gate = new Promise<void>((resolve) => { open = resolve })
  let holding!: () => void
  const held = new Promise<void>((resolve) => { holding = resolve })
  const app = Fastify({ http2: true })
  await app.register(tus, {
    store: new MemoryStore(),
    // the holder: a DELETE whose preTerminate hook keeps the lock until the test opens the gate
    hooks: { preTerminate: async () => { holding(); await gate } }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await app.close() })
  const waits: Array<{ acquired: boolean, timedOut: boolean, waiter: boolean }> = []
  app.tus.on('lock-wait', (event) => { waits.push({ acquired: event.acquired, timedOut: event.timedOut, waiter: event.request.headers['x-waiter'] !== undefined }) })
  const session: ClientHttp2Session = connectHttp2(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)
  t.teardown(() => session.destroy())
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '10' } })
  const path = new URL(created.headers.location as string).pathname

  const deletion = app.inject({ method: 'DELETE', url: path, headers: TUS })
  await held
  const waiter = session.request({ ':method': 'PATCH', ':path': path, ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'x-waiter': '1' })
  waiter.on('error', () => {})
  waiter.write('ab')
  await sleep(100)
  waiter.close(h2.NGHTTP2_CANCEL)
  await until(() => waits.some((wait) => wait.waiter), 'the waiter\'s lock wait to end')
  t.same(waits.find((wait) => wait.waiter), { acquired: false, timedOut: false, waiter: true }, 'it gave up while the holder still held the lock')
  open()
  t.equal((await deletion).statusCode, 204, 'the holder finished undisturbed')
})
