/**
 * Several `fastify-tus` processes, one Redis, one shared upload directory: what a deployment
 * behind a load balancer without sticky sessions relies on.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { tempDir } from './helpers/app.js'
import { startServer, type RunningServer } from './helpers/cli.js'
import { rawRequest } from './helpers/http.js'
import { startRedis, withRedis, type RedisServer } from './helpers/redis-server.js'

const TUS = { 'Tus-Resumable': '1.0.0' }
const OCTET = 'application/offset+octet-stream'

interface Cluster {
  redis: RedisServer
  dir: string
  a: RunningServer
  b: RunningServer
}

async function cluster (t: Test): Promise<Cluster> {
  const redis = await startRedis(t)
  const dir = await tempDir(t)
  const args = ['--port', '0', '--upload-dir', dir, '--locker', 'redis', '--redis-url', redis.url, '--log-level', 'warn']
  const [a, b] = await Promise.all([startServer(t, args), startServer(t, args)])
  return { redis, dir, a, b }
}

async function create (server: RunningServer, length: number): Promise<string> {
  const created = await fetch(server.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(length) } })
  if (created.status !== 201) throw new Error(`create: ${created.status}`)
  return new URL(created.headers.get('location') as string).pathname
}

function on (server: RunningServer, path: string): string {
  return `http://127.0.0.1:${server.port}${path}`
}

async function patch (server: RunningServer, path: string, offset: number, body: Buffer): Promise<{ status: number, body: string }> {
  const response = await fetch(on(server, path), {
    method: 'PATCH',
    headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': String(offset) },
    body
  })
  return { status: response.status, body: await response.text() }
}

async function offsetOf (server: RunningServer, path: string): Promise<number> {
  const head = await fetch(on(server, path), { method: 'HEAD', headers: TUS })
  if (head.status !== 200) throw new Error(`HEAD: ${head.status}`)
  return Number(head.headers.get('upload-offset'))
}

withRedis(t, () => {
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

  t.test('a storm of 300 HEADs on one upload, split over A and B, is served without lock timeouts', async (t) => {
    const { a, b } = await cluster(t)
    const path = await create(a, 10)
    const started = Date.now()
    const statuses = await Promise.all(Array.from({ length: 300 }, async (_, i) => {
      const response = await fetch(on(i % 2 === 0 ? a : b, path), { method: 'HEAD', headers: TUS }).catch(() => undefined)
      return response?.status ?? 0
    }))
    t.same([...new Set(statuses)], [200])
    t.comment(`served in ${Date.now() - started} ms`)
  })

  t.test('Redis restarted during an upload: requests fail cleanly with a code, then the upload resumes', async (t) => {
    const { redis, dir, a, b } = await cluster(t)
    const path = await create(a, 1000)
    const first = randomBytes(400)
    const stalled = rawRequest(a.port, 'PATCH', path, { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '1000' })
    stalled.write(first)
    await sleep(300)

    await redis.stop()
    const started = Date.now()
    const head = await fetch(on(b, path), { method: 'HEAD', headers: TUS })
    t.equal(head.status, 503, 'HEAD while Redis is down: 503')
    const withBody = await fetch(b.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10', 'Content-Type': OCTET }, body: 'hello' })
    t.equal(withBody.status, 503, 'creation-with-upload writes bytes, so it needs the lock: 503 while Redis is down')
    t.match(await withBody.text(), /ERR_LOCKER_UNAVAILABLE/)
    const post = await fetch(b.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10' } })
    t.equal(post.status, 201, 'a creation without a body under a random id needs no lock: it works while Redis is down')
    const append = await fetch(post.headers.get('location') as string, { method: 'PATCH', headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '0' }, body: 'world' })
    t.equal(append.status, 503, 'a PATCH needs the lock: 503 while Redis is down')
    t.match(await append.text(), /ERR_LOCKER_UNAVAILABLE/)
    t.ok(Date.now() - started < 12000, 'all answered within the command timeout')

    await redis.start()
    const old = await stalled.response
    t.equal(old?.status, 503, 'the stalled PATCH on A is stopped: its lock is gone')
    t.match(old?.body, /ERR_LOCK_LOST/)

    let offset = -1
    const end = Date.now() + 15_000
    while (offset < 0 && Date.now() < end) {
      offset = await offsetOf(b, path).catch(async () => { await sleep(200); return -1 })
    }
    t.equal(offset, 400, 'the bytes received before the outage are kept')
    const rest = randomBytes(600)
    t.equal((await patch(a, path, 400, rest)).status, 204, 'A resumes the upload')
    t.same(await readFile(join(dir, path.split('/').pop() as string)), Buffer.concat([first, rest]), 'bytes identical')
    t.equal(a.child.exitCode, null, 'A still running')
    t.equal(b.child.exitCode, null, 'B still running')
    t.notMatch(a.output() + b.output(), /uncaught|unhandled/i, 'nothing crashed')
  })
})
