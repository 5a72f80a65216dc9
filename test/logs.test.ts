/**
 * Structured log events: lifecycle at info, chunks at debug, each through `request.log` so the
 * request id ties an upload's events together. Metadata values never reach the logs.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { connect } from 'node:net'
import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import tus from '../plugin/index.js'
import { MemoryStore } from '../stores/memory.js'
import { OCTET, tempDir, TUS } from './helpers/app.js'
import { startServer } from './helpers/cli.js'

interface Line {
  level: number
  reqId?: string
  event?: string
  msg?: string
  [key: string]: unknown
}

async function logged (t: Test, options: Record<string, unknown> = {}): Promise<{ app: FastifyInstance, lines: Line[], raw: () => string }> {
  const lines: Line[] = []
  let raw = ''
  const stream = new Writable({
    write (chunk: Buffer, _encoding, done) {
      raw += chunk.toString()
      for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text) as Line)
      done()
    }
  })
  const app = Fastify({ logger: { level: 'debug', stream } })
  await app.register(tus, { store: new MemoryStore(), ...options })
  t.teardown(async () => await app.close())
  await app.ready()
  return { app, lines, raw: () => raw }
}

const events = (lines: Line[]): Line[] => lines.filter((line) => line.event !== undefined)

async function until (check: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000
  while (!check() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
}

t.test('an upload logs created, chunk written and finished with its request ids', async (t) => {
  const { app, lines, raw } = await logged(t)
  const create = await app.inject({
    method: 'POST',
    url: '/files/',
    headers: { ...TUS, 'upload-length': '11', 'upload-metadata': 'filename c2VjcmV0LnR4dA==,type dGV4dA==', 'content-type': OCTET },
    payload: 'hello'
  })
  t.equal(create.statusCode, 201)
  const path = new URL(create.headers.location as string).pathname
  const id = path.split('/').pop() as string
  const patch = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '5' }, payload: ' world' })
  t.equal(patch.statusCode, 204)
  const del = await app.inject({ method: 'DELETE', url: path, headers: TUS })
  t.equal(del.statusCode, 204)

  const seen = events(lines)
  t.same(seen.map((line) => line.event), [
    'tus.upload.created', 'tus.chunk.written',
    'tus.chunk.written', 'tus.upload.finished',
    'tus.upload.terminated'
  ])
  const [created, firstChunk, secondChunk, finished, terminated] = seen as [Line, Line, Line, Line, Line]
  t.match(created, { level: 30, uploadId: id, size: 11, metadataKeys: ['filename', 'type'] })
  t.notMatch(raw(), /secret|c2VjcmV0/, 'metadata values are not logged')
  t.match(firstChunk, { level: 20, uploadId: id, bytes: 5, offset: 5 })
  t.type(firstChunk.durationMs, 'number')
  t.equal(firstChunk.reqId, created.reqId, 'creation-with-upload: one request id')
  t.match(secondChunk, { level: 20, uploadId: id, bytes: 6, offset: 11 })
  t.match(finished, { level: 30, uploadId: id, size: 11 })
  t.equal(finished.reqId, secondChunk.reqId, 'the PATCH: chunk and finish share its request id')
  t.not(secondChunk.reqId, created.reqId)
  t.match(terminated, { level: 30, uploadId: id, reason: 'deleted', offset: 11 })
  // the request id of each event is the one Fastify logged the request with
  for (const event of seen) t.ok(lines.some((line) => line.msg === 'incoming request' && line.reqId === event.reqId))
})

t.test('no chunk events at info level', async (t) => {
  const lines: Line[] = []
  const stream = new Writable({ write (chunk: Buffer, _e, done) { lines.push(JSON.parse(chunk.toString()) as Line); done() } })
  const app = Fastify({ logger: { level: 'info', stream } })
  await app.register(tus, { store: new MemoryStore() })
  t.teardown(async () => await app.close())
  const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '2', 'content-type': OCTET }, payload: 'ok' })
  t.equal(response.statusCode, 201)
  t.same(events(lines).map((line) => line.event), ['tus.upload.created', 'tus.upload.finished'])
})

t.test('an interrupted body and a lock timeout are logged', async (t) => {
  const { app, lines } = await logged(t, { acquireLockTimeout: 100 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const create = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '10' } })
  const path = new URL(create.headers.location as string).pathname
  const id = path.split('/').pop() as string

  // a client that goes away after 4 of 10 bytes
  const socket = connect(port, '127.0.0.1')
  await new Promise((resolve) => socket.once('connect', resolve))
  socket.write(`PATCH ${path} HTTP/1.1\r\nHost: x\r\nTus-Resumable: 1.0.0\r\nContent-Type: ${OCTET}\r\nUpload-Offset: 0\r\nContent-Length: 10\r\n\r\nabcd`)
  await new Promise((resolve) => setTimeout(resolve, 150))
  socket.destroy()
  await until(() => lines.some((line) => line.event === 'tus.upload.interrupted'))
  const interrupted = lines.find((line) => line.event === 'tus.upload.interrupted')
  t.match(interrupted, { level: 30, uploadId: id, reason: 'aborted', bytes: 4, offset: 4 })

  const stubborn = await app.tus.options.locker.lock(id, { signal: new AbortController().signal, onReleaseRequested: () => {} })
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.statusCode, 423)
  await stubborn.unlock()
  const timeout = lines.find((line) => line.event === 'tus.lock.timeout')
  t.match(timeout, { level: 30, uploadId: id, timeoutMs: 100 })
  t.ok(lines.some((line) => line.reqId === timeout?.reqId && line.msg === 'request completed' && line.res !== undefined), 'with the request id of the 423')
})

t.test('every line of a request on an upload carries its id once, Fastify\'s own lines included', async (t) => {
  const { app, lines, raw } = await logged(t)
  const create = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '5', 'content-type': OCTET }, payload: 'he' })
  t.equal(create.statusCode, 201)
  const path = new URL(create.headers.location as string).pathname
  const id = path.split('/').pop() as string
  const patch = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '1' }, payload: 'llo' })
  t.equal(patch.statusCode, 409, 'a refused request is logged with the id too')
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.statusCode, 200)
  const requestIds = new Set([create, patch, head].map((res) => res.headers['request-id']))
  const mine = lines.filter((line) => line.reqId !== undefined && (line.msg === 'request completed' || line.event !== undefined))
  t.ok(mine.filter((line) => line.msg === 'request completed').length >= 3, 'Fastify logged each response')
  for (const line of mine) t.equal(line.uploadId, id, `${line.event ?? line.msg ?? ''} carries the upload id`)
  t.notMatch(raw(), /"uploadId":"[^"]*"[^\n]*"uploadId"/, 'never twice in one line')
  t.ok(requestIds.size > 0)
})

t.test('the command writes its JSON lines in batches: within a second when idle, and all of them at exit', async (t) => {
  const dir = await tempDir(t)
  const server = await startServer(t, ['--port', '0', '--upload-dir', dir])
  const res = await fetch(`${server.url}missing1`, { method: 'HEAD', headers: TUS })
  t.equal(res.status, 404)
  const deadline = Date.now() + 5000
  while (!server.output().includes('request completed') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
  t.match(server.output(), /"msg":"request completed"/, 'an idle server writes what it has within about a second')
  // requests right before a graceful stop: their lines are written before the process ends
  for (let i = 0; i < 3; i++) {
    const answered = await fetch(`${server.url}last${i}`, { method: 'HEAD', headers: TUS })
    t.equal(answered.status, 404)
  }
  t.equal(await server.kill('SIGTERM'), 0)
  for (let i = 0; i < 3; i++) t.match(server.output(), `"url":"/files/last${i}"`, `the line of request ${i} was written at exit`)
})
