/**
 * Concurrency on real sockets: racing PATCHes and DELETEs on one upload never accept two
 * writes at one offset and never leave a mixed or corrupt file; idle connections do not starve
 * other clients.
 */
import { readdir, readFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import t from 'tap'
import { buildApp, createUpload, OCTET } from './helpers/app.js'
import type { FastifyInstance } from 'fastify'

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
}

async function send (url: string, init: RequestInit): Promise<number> {
  try {
    const response = await fetch(url, init)
    await response.arrayBuffer()
    return response.status
  } catch {
    return 0
  }
}

const ROUNDS = Number(process.env.RACE_ROUNDS ?? 100)
const SIZE = 64 * 1024

t.test(`${ROUNDS} rounds of two PATCHes at the same offset`, async (t) => {
  const { app, dir } = await buildApp(t, { fileStore: true })
  const base = await listen(app)
  let accepted = 0
  let bad = 0
  for (let round = 0; round < ROUNDS; round++) {
    const path = await createUpload(app, { 'upload-length': String(SIZE) })
    const patch = (fill: number): Promise<number> => send(`${base}${path}`, {
      method: 'PATCH',
      headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': OCTET, 'Upload-Offset': '0' },
      body: Buffer.alloc(SIZE, fill)
    })
    const statuses = await Promise.all([patch(0x41), patch(0x42)])
    const ok = statuses.filter((status) => status === 204).length
    accepted += ok
    const data = await readFile(join(dir as string, path.split('/').pop() as string))
    const head = await app.inject({ method: 'HEAD', url: path, headers: { 'tus-resumable': '1.0.0' } })
    const homogeneous = data.length === 0 || data.every((byte) => byte === data[0])
    if (ok > 1 || !homogeneous || Number(head.headers['upload-offset']) !== data.length || (ok === 1 && data.length !== SIZE)) {
      bad++
      t.fail(`round ${round}: statuses ${statuses.join(',')}, ${data.length} bytes, offset ${head.headers['upload-offset'] as string}, homogeneous ${String(homogeneous)}`)
    }
  }
  t.equal(bad, 0, 'never two accepted, never mixed bytes, offset always the stored size')
  t.ok(accepted >= 1, `${accepted} of ${ROUNDS} rounds had a winner`)
})

t.test('DELETE racing PATCH leaves no trace and no crash', async (t) => {
  const { app, dir } = await buildApp(t, { fileStore: true })
  const base = await listen(app)
  for (let round = 0; round < 30; round++) {
    const path = await createUpload(app, { 'upload-length': String(SIZE) })
    const [patch, del] = await Promise.all([
      send(`${base}${path}`, { method: 'PATCH', headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': OCTET, 'Upload-Offset': '0' }, body: Buffer.alloc(SIZE, 1) }),
      send(`${base}${path}`, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } })
    ])
    t.ok([204, 400, 404].includes(patch), `round ${round}: PATCH ${patch}`)
    t.equal(del, 204, `round ${round}: DELETE`)
  }
  t.same(await readdir(dir as string), [], 'every upload and lock file is gone')
  t.equal((await app.inject({ method: 'OPTIONS', url: '/files/' })).statusCode, 204, 'still serving')
})

t.test('200 idle connections do not starve a normal client', async (t) => {
  const { app } = await buildApp(t, { fileStore: true })
  const base = await listen(app)
  const port = Number(new URL(base).port)
  const idle: Socket[] = []
  t.teardown(() => { for (const socket of idle) socket.destroy() })
  await Promise.all(Array.from({ length: 200 }, async (_, i) => await new Promise<void>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => {
      // half of them send part of a request head and stall, the others send nothing
      if (i % 2 === 0) socket.write('PATCH /files/x HTTP/1.1\r\nHost: a\r\n')
      resolve()
    })
    socket.on('error', () => {})
    idle.push(socket)
  })))
  const started = Date.now()
  const created = await fetch(`${base}/files/`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '5', 'Content-Type': OCTET }, body: 'hello' })
  t.equal(created.status, 201)
  t.equal(created.headers.get('upload-offset'), '5')
  t.ok(Date.now() - started < 2000, `served in ${Date.now() - started} ms`)
})

t.test('a storm of HEADs on one upload is served without lock timeouts', async (t) => {
  const { FileLocker } = await import('../locks/file.js')
  const { FileStore } = await import('../stores/file.js')
  const { tempDir } = await import('./helpers/app.js')
  const dir = await tempDir(t)
  const { app } = await buildApp(t, { store: new FileStore({ directory: dir }), locker: new FileLocker({ directory: dir }), acquireLockTimeout: 5000 })
  const base = await listen(app)
  const path = await createUpload(app, { 'upload-length': '10' })
  const statuses = await Promise.all(Array.from({ length: 300 }, async () => await send(`${base}${path}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })))
  t.same([...new Set(statuses)], [200])
})
