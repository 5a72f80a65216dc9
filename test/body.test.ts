/**
 * Bodies on real sockets: what arrives is kept whatever happens to the connection, and a newer
 * request for an upload takes it over at once.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { FileStore } from '../stores/file.js'
import { buildApp, createUpload, OCTET, TUS } from './helpers/app.js'
import { rawRequest } from './helpers/http.js'
import type { FastifyInstance } from 'fastify'

async function listen (app: FastifyInstance): Promise<number> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

async function offsetOf (app: FastifyInstance, path: string): Promise<string | undefined> {
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  return head.headers['upload-offset'] as string | undefined
}

function patchHead (offset: number, extra: Record<string, string> = {}): Record<string, string> {
  return { 'Tus-Resumable': '1.0.0', 'Content-Type': OCTET, 'Upload-Offset': String(offset), ...extra }
}

t.test('a client that goes away mid-body keeps what it sent', async (t) => {
  const { app } = await buildApp(t, { fileStore: true })
  const port = await listen(app)
  const path = await createUpload(app, { 'upload-length': '1000' })
  const request = rawRequest(port, 'PATCH', path, patchHead(0, { 'Content-Length': '1000' }))
  request.write(Buffer.alloc(400, 1))
  await sleep(150)
  request.socket.destroy()
  await sleep(100)
  t.equal(await offsetOf(app, path), '400')
})

t.test('a connection reset (RST) mid-body keeps what arrived and the server stays up', async (t) => {
  const { app } = await buildApp(t, { fileStore: true })
  const port = await listen(app)
  const path = await createUpload(app, { 'upload-length': '1000' })
  const request = rawRequest(port, 'PATCH', path, patchHead(0, { 'Content-Length': '1000' }))
  request.write(Buffer.alloc(600, 1))
  await sleep(150)
  request.socket.resetAndDestroy()
  await sleep(100)
  t.equal(await offsetOf(app, path), '600')
  const rest = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '600' }, payload: Buffer.alloc(400, 2) })
  t.equal(rest.statusCode, 204)
})

t.test('a store that fails mid-write gives a coded 500 and the server stays up', async (t) => {
  const { MemoryStore } = await import('../stores/memory.js')
  const store = new MemoryStore()
  store.write = async () => { throw new Error('connection to backend refused') }
  const { app } = await buildApp(t, { store })
  const path = await createUpload(app, { 'upload-length': '5' })
  const response = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'hello' })
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'ERR_INTERNAL_SERVER_ERROR')
  t.notMatch(response.body, /refused/)
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: TUS })).statusCode, 200)
})

t.test('a stalled body ends after networkTimeout; its bytes are kept', async (t) => {
  const { app } = await buildApp(t, { fileStore: true, networkTimeout: 300 })
  const port = await listen(app)
  const path = await createUpload(app, { 'upload-length': '1000' })
  const started = Date.now()
  const request = rawRequest(port, 'PATCH', path, patchHead(0, { 'Content-Length': '1000' }))
  for (let i = 0; i < 5; i++) {
    request.write(Buffer.alloc(20, 2))
    await sleep(150) // each chunk pushes the deadline forward
  }
  const response = await request.response
  t.ok(Date.now() - started >= 700, 'each chunk pushed the deadline forward: only silence ends the body')
  t.equal(response?.status, 408)
  t.match(response?.body, /ERR_READ_TIMEOUT/)
  t.equal(response?.headers.connection, 'close')
  t.equal(await offsetOf(app, path), '100')
})

t.test('a chunked body longer than the upload stores exactly the rest, then 413', async (t) => {
  const { app } = await buildApp(t, { fileStore: true })
  const port = await listen(app)
  const path = await createUpload(app, { 'upload-length': '10' })
  const request = rawRequest(port, 'PATCH', path, patchHead(0, { 'Transfer-Encoding': 'chunked' }))
  request.write('f\r\n0123456789abcde\r\n0\r\n\r\n')
  const response = await request.response
  t.equal(response?.status, 413)
  t.match(response?.body, /ERR_UPLOAD_SIZE_EXCEEDED/)
  t.equal(await offsetOf(app, path), '10')
  t.equal((await app.inject({ method: 'GET', url: path })).body, '0123456789')
})

t.test('a newer request takes over a stalled PATCH at once (lock exchange)', async (t) => {
  const { app } = await buildApp(t, { fileStore: true })
  const port = await listen(app)
  const path = await createUpload(app, { 'upload-length': '1000' })
  const stalled = rawRequest(port, 'PATCH', path, patchHead(0, { 'Content-Length': '1000' }))
  stalled.write(Buffer.alloc(300, 3))
  await sleep(150)
  const started = Date.now()
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.ok(Date.now() - started < 1000, 'the HEAD did not wait for the stalled body')
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], '300')
  const old = await stalled.response
  t.equal(old?.status, 400)
  t.match(old?.body, /ERR_UPLOAD_INTERRUPTED/)
  // the client resumes where the server says
  const resume = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '300' }, payload: Buffer.alloc(700, 4) })
  t.equal(resume.statusCode, 204)
  t.equal(resume.headers['upload-offset'], '1000')
})

t.test('a lock held past acquireLockTimeout is a 423', async (t) => {
  const { app } = await buildApp(t, { acquireLockTimeout: 100 })
  const path = await createUpload(app, { 'upload-length': '5' })
  const id = path.split('/').pop() as string
  const stubborn = await app.tus.options.locker.lock(id, { signal: new AbortController().signal, onReleaseRequested: () => {} })
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.statusCode, 423)
  t.equal(head.json().code, 'ERR_LOCK_TIMEOUT')
  await stubborn.unlock()
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: TUS })).statusCode, 200)
})

t.test('shutdown ends bodies in flight with 503 and keeps their bytes', async (t) => {
  const { app, dir } = await buildApp(t, { fileStore: true })
  const port = await listen(app)
  const path = await createUpload(app, { 'upload-length': '1000' })
  const request = rawRequest(port, 'PATCH', path, patchHead(0, { 'Content-Length': '1000' }))
  request.write(Buffer.alloc(250, 5))
  await sleep(150)
  const closing = app.close()
  const response = await request.response
  await closing
  t.equal(response?.status, 503)
  t.match(response?.body, /ERR_SERVER_SHUTDOWN/)
  const store = new FileStore({ directory: dir as string })
  t.equal((await store.get(path.split('/').pop() as string)).offset, 250)
})

t.test('creation-with-upload: an interrupted body still answers 201 with the offset', async (t) => {
  const { app } = await buildApp(t, { fileStore: true, networkTimeout: 200 })
  const port = await listen(app)
  const request = rawRequest(port, 'POST', '/files/', {
    'Tus-Resumable': '1.0.0', 'Upload-Length': '100', 'Content-Type': OCTET, 'Content-Length': '100'
  })
  request.write(Buffer.alloc(40, 6))
  const response = await request.response
  t.equal(response?.status, 201)
  t.equal(response?.headers['upload-offset'], '40')
  t.match(response?.headers.location, /\/files\/[0-9a-f]{32}$/)
})
