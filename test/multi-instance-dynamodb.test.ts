/**
 * Two Fastify instances (the plugin on one shared upload directory, a DynamoLocker each) sharing
 * one DynamoDB table (dynalite): what a deployment behind a load balancer without sticky sessions
 * relies on when its locks live in DynamoDB.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import tus from '../plugin/index.js'
import { createLockTable, DynamoLocker } from '../locks/dynamodb.js'
import { FileStore } from '../stores/file.js'
import { tempDir } from './helpers/app.js'
import { startDynalite, withDynalite, type DynaliteServer } from './helpers/dynalite.js'
import { rawRequest } from './helpers/http.js'

const TUS = { 'Tus-Resumable': '1.0.0' }
const OCTET = 'application/offset+octet-stream'

interface Instance { port: number, url: string }

interface Cluster {
  dynalite: DynaliteServer
  dir: string
  a: Instance
  b: Instance
}

async function instance (t: Test, dir: string, dynalite: DynaliteServer): Promise<Instance> {
  const locker = new DynamoLocker({ client: dynalite.client(t), table: 'locks', commandTimeout: 1000 })
  const app = Fastify({ logger: false })
  await app.register(tus, { store: new FileStore({ directory: dir }), locker })
  t.teardown(async () => {
    await app.close()
    await locker.close()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  return { port, url: `http://127.0.0.1:${port}/files/` }
}

async function cluster (t: Test): Promise<Cluster> {
  const dynalite = await startDynalite(t)
  await createLockTable(dynalite.client(t), 'locks')
  const dir = await tempDir(t)
  const [a, b] = await Promise.all([instance(t, dir, dynalite), instance(t, dir, dynalite)])
  return { dynalite, dir, a, b }
}

async function create (server: Instance, length: number): Promise<string> {
  const created = await fetch(server.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length) } })
  if (created.status !== 201) throw new Error(`create: ${created.status}`)
  return new URL(created.headers.get('location') as string).pathname
}

function on (server: Instance, path: string): string {
  return `http://127.0.0.1:${server.port}${path}`
}

async function patch (server: Instance, path: string, offset: number, body: Buffer): Promise<{ status: number, body: string }> {
  const response = await fetch(on(server, path), {
    method: 'PATCH',
    headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': String(offset) },
    body
  })
  return { status: response.status, body: await response.text() }
}

async function offsetOf (server: Instance, path: string): Promise<number> {
  const head = await fetch(on(server, path), { method: 'HEAD', headers: TUS })
  if (head.status !== 200) throw new Error(`HEAD: ${head.status}`)
  return Number(head.headers.get('upload-offset'))
}

withDynalite(t, () => {
  t.test('a HEAD on B takes a stalled upload over from A within 2 s, and B completes it', async (t) => {
    const { dir, a, b } = await cluster(t)
    const path = await create(a, 1000)
    const first = randomBytes(400)
    const stalled = rawRequest(a.port, 'PATCH', path, { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '1000' })
    stalled.write(first)
    await sleep(300)
    const started = Date.now()
    const head = await fetch(on(b, path), { method: 'HEAD', headers: TUS })
    const waited = Date.now() - started
    t.equal(head.status, 200)
    t.equal(head.headers.get('upload-offset'), '400')
    t.ok(waited < 2000, `B got the lock from A in ${waited} ms`)
    const old = await stalled.response
    t.equal(old?.status, 400)
    t.match(old?.body, /ERR_UPLOAD_INTERRUPTED/)
    const rest = randomBytes(600)
    t.equal((await patch(b, path, 400, rest)).status, 204)
    t.same(await readFile(join(dir, path.split('/').pop() as string)), Buffer.concat([first, rest]), 'bytes identical')
  })

  t.test('100 rounds of racing PATCHes at one offset on A and B: never two accepted, never mixed bytes', async (t) => {
    const { dir, a, b } = await cluster(t)
    const rounds = 100
    const chunk = 32 * 1024
    const path = await create(a, rounds * chunk)
    const file = join(dir, path.split('/').pop() as string)
    let offset = 0
    let accepted = 0
    const statuses = new Map<string, number>()
    for (let round = 0; round < rounds; round++) {
      const bodyA = randomBytes(chunk)
      const bodyB = randomBytes(chunk)
      const [ra, rb] = await Promise.all([patch(a, path, offset, bodyA), patch(b, path, offset, bodyB)])
      for (const r of [ra, rb]) {
        const key = r.status === 204 ? '204' : `${r.status} ${/"code":"(\w+)"/.exec(r.body)?.[1] ?? '(no code)'}`
        statuses.set(key, (statuses.get(key) ?? 0) + 1)
      }
      const ok = [ra, rb].filter((r) => r.status >= 200 && r.status < 300)
      if (ok.length > 1) t.fail(`round ${round}: both PATCHes were accepted`)
      const next = await offsetOf(b, path)
      const written = (await readFile(file)).subarray(offset)
      if (written.length !== next - offset) t.fail(`round ${round}: file holds ${written.length} new bytes, offset moved ${next - offset}`)
      const fromA = bodyA.subarray(0, written.length).equals(written)
      const fromB = bodyB.subarray(0, written.length).equals(written)
      if (!fromA && !fromB) t.fail(`round ${round}: the ${written.length} new bytes are not a prefix of either body`)
      if (ra.status === 204 && !(fromA && written.length === chunk)) t.fail(`round ${round}: A was accepted but its bytes are not what is stored`)
      if (rb.status === 204 && !(fromB && written.length === chunk)) t.fail(`round ${round}: B was accepted but its bytes are not what is stored`)
      accepted += ok.length
      offset = next
    }
    t.comment(`answers: ${JSON.stringify(Object.fromEntries(statuses))}`)
    t.ok(accepted > 0, `${accepted} of ${rounds} rounds had a winner`)
    for (const key of statuses.keys()) {
      t.match(key, /^(204|409 ERR_MISMATCHED_OFFSET|400 ERR_UPLOAD_INTERRUPTED)$/, `expected answer: ${key}`)
    }
  })

  t.test('dynalite restarted during an upload: requests fail cleanly with a code, then the upload resumes', async (t) => {
    const { dynalite, dir, a, b } = await cluster(t)
    const path = await create(a, 1000)
    const first = randomBytes(400)
    const stalled = rawRequest(a.port, 'PATCH', path, { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '1000' })
    stalled.write(first)
    await sleep(300)

    await dynalite.stop()
    const started = Date.now()
    const head = await fetch(on(b, path), { method: 'HEAD', headers: TUS })
    t.equal(head.status, 503, 'HEAD while DynamoDB is down: 503')
    const append = await fetch(on(b, path), { method: 'PATCH', headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '400' }, body: 'world' })
    t.equal(append.status, 503, 'a PATCH needs the lock: 503 while DynamoDB is down')
    t.match(await append.text(), /ERR_LOCKER_UNAVAILABLE/)
    t.ok(Date.now() - started < 5000, 'all answered within the command timeout')

    const old = await stalled.response
    t.equal(old?.status, 503, 'the stalled PATCH on A is stopped: its lease could not be renewed')
    t.match(old?.body, /ERR_LOCK_LOST/)
    await dynalite.start()

    let offset = -1
    const end = Date.now() + 20_000
    while (offset < 0 && Date.now() < end) {
      offset = await offsetOf(b, path).catch(async () => { await sleep(200); return -1 })
    }
    t.equal(offset, 400, 'the bytes received before the outage are kept (once the old lease has ended)')
    const rest = randomBytes(600)
    t.equal((await patch(a, path, 400, rest)).status, 204, 'A resumes the upload')
    t.same(await readFile(join(dir, path.split('/').pop() as string)), Buffer.concat([first, rest]), 'bytes identical')
  })
})
