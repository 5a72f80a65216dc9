/**
 * The Redis locker against a real redis-server: the shared locker suite (two instances, separate
 * connections) and what only a distributed lock has: expiry, renewal, loss, Redis going away.
 */
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Cluster, Redis } from 'ioredis'
import t, { type Test } from 'tap'
import { LockTimeout, LockUnavailable } from '../locks/locker.js'
import type { Lock, Locker, ReleaseReason } from '../locks/locker.js'
import { RedisLocker, type RedisLockerOptions } from '../locks/redis.js'
import { lockerConformance } from './conformance/locker.js'
import { childEnv } from './helpers/env.js'
import { startRedis, startSentinel, withRedis, type RedisServer } from './helpers/redis-server.js'

const root = fileURLToPath(new URL('../', import.meta.url))
let counter = 0
const newId = (): string => `r${process.pid}x${(counter++).toString(36)}`

const timers = new Set<NodeJS.Timeout>()
t.teardown(() => { for (const timer of timers) clearTimeout(timer) })

/** A signal that aborts after `ms` (its timer keeps the process alive while a test waits; cleared at the end). */
function within (ms: number): AbortSignal {
  const controller = new AbortController()
  const timer = setTimeout(() => {
    timers.delete(timer)
    controller.abort(new Error('timeout'))
  }, ms)
  timers.add(timer)
  return controller.signal
}

async function take (locker: Locker, id: string, signal = within(10_000)): Promise<{ lock: Lock, asked: ReleaseReason[] }> {
  const asked: ReleaseReason[] = []
  const lock = await locker.lock(id, { signal, onReleaseRequested: (reason) => asked.push(reason) })
  return { lock, asked }
}

async function until (check: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) return false
    await sleep(5)
  }
  return true
}

/** Retries `fn` until it resolves; false if it never did within `ms`. */
async function eventually (fn: () => Promise<void>, ms: number): Promise<boolean> {
  const end = Date.now() + ms
  for (;;) {
    try {
      await fn()
      return true
    } catch {
      if (Date.now() > end) return false
      await sleep(100)
    }
  }
}

withRedis(t, () => {
  let redis: RedisServer
  let admin: Redis
  t.before(async () => {
    redis = await startRedis(t)
    admin = new Redis({ path: redis.socket, maxRetriesPerRequest: 1 })
    admin.on('error', () => {})
    t.teardown(() => admin.disconnect())
  })

  /** A locker on its own connections, closed at teardown. */
  const locker = (t: Test, options: RedisLockerOptions = {}): RedisLocker => {
    const created = new RedisLocker({ redis: redis.url, ...options })
    t.teardown(async () => await created.close())
    return created
  }

  lockerConformance(t, 'RedisLocker (two instances from a URL)', async () => {
    const a = new RedisLocker({ redis: redis.url })
    const b = new RedisLocker({ redis: redis.url })
    return { a, b, cleanup: async () => { await a.close(); await b.close() } }
  })

  lockerConformance(t, 'RedisLocker (two instances on clients passed in, key prefix)', async () => {
    const clientA = new Redis({ path: redis.socket })
    const clientB = new Redis(redis.url)
    const a = new RedisLocker({ redis: clientA, keyPrefix: 'other:' })
    const b = new RedisLocker({ redis: clientB, keyPrefix: 'other:' })
    return {
      a,
      b,
      cleanup: async () => {
        await a.close()
        await b.close()
        clientA.disconnect()
        clientB.disconnect()
      }
    }
  })

  t.test('on a Redis Cluster (one node owning every slot)', async (t) => {
    const node = await startRedis(t, { cluster: true })
    const nodes = [{ host: '127.0.0.1', port: node.port as number }]
    const clients = [new Cluster(nodes), new Cluster(nodes)] as const
    t.teardown(() => { for (const client of clients) client.disconnect() })
    lockerConformance(t, 'RedisLocker (two instances on Cluster clients)', async () => {
      const a = new RedisLocker({ redis: clients[0] })
      const b = new RedisLocker({ redis: clients[1] })
      return { a, b, cleanup: async () => { await a.close(); await b.close() } }
    })
  })

  t.test('behind Redis Sentinel (clients that ask a Sentinel for the master)', async (t) => {
    const master = await startRedis(t, { tcp: true })
    const sentinel = await startSentinel(t, master)
    const options = { sentinels: [{ host: '127.0.0.1', port: sentinel.port }], name: sentinel.name }
    lockerConformance(t, 'RedisLocker (two instances on Sentinel-configured clients)', async () => {
      const clients = [new Redis(options), new Redis(options)] as const
      const a = new RedisLocker({ redis: clients[0] })
      const b = new RedisLocker({ redis: clients[1] })
      return {
        a,
        b,
        cleanup: async () => {
          await a.close()
          await b.close()
          for (const client of clients) client.disconnect()
        }
      }
    })
    lockerConformance(t, 'RedisLocker (two instances from Sentinel options)', async () => {
      const a = new RedisLocker({ redis: options })
      const b = new RedisLocker({ redis: options })
      return { a, b, cleanup: async () => { await a.close(); await b.close() } }
    })
  })

  t.test('the key holds a token with a TTL, and is gone after unlock', async (t) => {
    const a = locker(t, { keyPrefix: 'k:', ttl: 5000 })
    const id = newId()
    const { lock } = await take(a, id)
    const token = await admin.get(`k:${id}`)
    t.type(token, 'string')
    const pttl = await admin.pttl(`k:${id}`)
    t.ok(pttl > 4000 && pttl <= 5000, `PTTL ${pttl}`)
    await lock.unlock()
    t.equal(await admin.exists(`k:${id}`), 0)
  })

  t.test('a lock expires after its TTL when its holder process dies without unlocking', async (t) => {
    const id = newId()
    const ttl = 1500
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/redis-lock-holder.ts', redis.url, id, String(ttl)], {
      cwd: root, env: childEnv(), stdio: ['ignore', 'pipe', 'inherit']
    })
    const exited = once(child, 'exit')
    t.teardown(async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
    })
    let out = ''
    child.stdout.on('data', (chunk) => { out += String(chunk) })
    t.ok(await until(() => out.includes('locked'), 20_000), 'child took the lock')
    child.kill('SIGKILL')
    await exited
    const killedAt = Date.now()
    const b = locker(t, { recheckInterval: 5000 })
    await t.rejects(take(b, id, within(300)), LockTimeout, 'still locked right after the crash')
    const { lock } = await take(b, id, within(5000))
    const waited = Date.now() - killedAt
    t.ok(waited < ttl + 500, `taken ${waited} ms after the crash (TTL ${ttl} ms): the waiter woke at the expiry, not at a recheck`)
    await lock.unlock()
  })

  t.test('renewal keeps a lock held long after its TTL', async (t) => {
    const a = locker(t, { ttl: 300 })
    const b = locker(t, { ttl: 300 })
    const id = newId()
    const holder = await take(a, id)
    const started = Date.now()
    while (Date.now() - started < 1500) {
      await t.rejects(take(b, id, within(200)), LockTimeout)
    }
    t.ok(await admin.pttl(`tus:lock:${id}`) > 0, 'key still alive after 5 TTLs')
    t.same(holder.asked, ['requested'], 'asked to release, never lost')
    await holder.lock.unlock()
    const next = await take(b, id, within(1000))
    await next.lock.unlock()
  })

  t.test('"lost" when the key is deleted behind the holder\'s back', async (t) => {
    const a = locker(t, { ttl: 600 })
    const id = newId()
    const holder = await take(a, id)
    await admin.del(`tus:lock:${id}`)
    t.ok(await until(() => holder.asked.includes('lost'), 1000), 'told within a renewal interval')
    t.same(holder.asked, ['lost'])
    await holder.lock.unlock()
  })

  t.test('"lost" when the key is overwritten, and the old holder\'s unlock leaves it alone', async (t) => {
    const a = locker(t, { ttl: 600 })
    const id = newId()
    const holder = await take(a, id)
    await admin.set(`tus:lock:${id}`, 'someone-else', 'PX', 10_000)
    t.ok(await until(() => holder.asked.includes('lost'), 1000), 'told within a renewal interval')
    await holder.lock.unlock()
    await holder.lock.unlock()
    t.equal(await admin.get(`tus:lock:${id}`), 'someone-else')
    await admin.del(`tus:lock:${id}`)
  })

  t.test('a holder whose renewals stall is told "lost" before its key can expire, and stops renewing', async (t) => {
    const ttl = 900
    const a = locker(t, { ttl, commandTimeout: 2000 })
    const id = newId()
    const acquiredAt = Date.now()
    const holder = await take(a, id)
    let lostAt = 0
    const watch = until(() => holder.asked.includes('lost'), 3000).then((ok) => { lostAt = Date.now(); return ok })
    // shorter than the TTL: the renewal stalled behind the pause still succeeds when it ends
    await admin.call('CLIENT', 'PAUSE', '700', 'WRITE')
    t.ok(await watch, 'told "lost"')
    t.ok(lostAt - acquiredAt < ttl, `told after ${lostAt - acquiredAt} ms, before the ${ttl} ms TTL could run out`)
    await sleep(acquiredAt + 1000 - Date.now())
    t.equal(await admin.exists(`tus:lock:${id}`), 1, 'the stalled renewal ran when the pause ended (scenario check)')
    await sleep(acquiredAt + 800 + ttl + 300 - Date.now())
    t.equal(await admin.exists(`tus:lock:${id}`), 0, 'the key expired after the stalled renewal: nothing renewed it again')
    t.same(holder.asked, ['lost'], 'told once')
    await holder.lock.unlock()
  })

  t.test('a lock taken by a command that answered too late is given back at once', async (t) => {
    const a = locker(t, { ttl: 30_000 })
    const b = locker(t, { ttl: 30_000 })
    const id = newId()
    await take(a, newId()).then(async ({ lock }) => await lock.unlock()) // connected and subscribed
    await admin.call('CLIENT', 'PAUSE', '400', 'WRITE')
    await t.rejects(take(a, id, within(100)), LockTimeout)
    // the SET ran when the pause ended; without the give-back the key would block b for 30 s
    const started = Date.now()
    const { lock } = await take(b, id, within(3000))
    t.ok(Date.now() - started < 1500, 'free soon after the pause')
    await lock.unlock()
  })

  t.test('Redis going away: the holder hears "lost", a waiter a clean error, then all works again', async (t) => {
    const options = { ttl: 900, recheckInterval: 200, commandTimeout: 300 }
    const a = locker(t, options)
    const b = locker(t, options)
    const id = newId()
    const holder = await take(a, id)
    const waiting = take(b, id, within(20_000)).then(() => 'granted', (err: unknown) => err)
    t.ok(await until(() => holder.asked.includes('requested'), 1000), 'holder asked to release')
    await redis.stop()
    const stoppedAt = Date.now()
    const waited = await waiting
    t.type(waited, LockUnavailable, 'the waiter fails with LockUnavailable')
    t.ok(Date.now() - stoppedAt < 1500, `waiter failed after ${Date.now() - stoppedAt} ms`)
    t.ok(await until(() => holder.asked.includes('lost'), 1500), 'holder told "lost" before its key could expire')
    await t.rejects(take(b, newId(), within(5000)), LockUnavailable, 'locking while Redis is down fails cleanly')
    await t.rejects(holder.lock.unlock(), LockUnavailable, 'unlock says it could not reach Redis')
    await holder.lock.unlock()

    await redis.start()
    // each client reconnects on its own schedule (ioredis backs off up to 2 s)
    t.ok(await eventually(async () => { await a.ready(); await b.ready() }, 10_000), 'both lockers reconnect')
    const again = await take(b, id, within(2000))
    const waiter = take(a, id, within(5000))
    t.ok(await until(() => again.asked.includes('requested'), 3000), 'the same id can be locked again, and release requests work again')
    await again.lock.unlock()
    await (await waiter).lock.unlock()
  })

  t.test('a holder hears "lost" as soon as it reconnects to a Redis that restarted empty', async (t) => {
    const a = locker(t, { ttl: 9000 })
    const id = newId()
    const holder = await take(a, id)
    await redis.stop()
    await redis.start()
    const restartedAt = Date.now()
    t.ok(await until(() => holder.asked.includes('lost'), 2500), 'told "lost"')
    const took = Date.now() - restartedAt
    t.ok(took < 1500, `told ${took} ms after the restart, before the next renewal (every 3000 ms)`)
    await holder.lock.unlock()
  })

  t.test('ready() checks the connection', async (t) => {
    await locker(t).ready()
    const nowhere = locker(t, { redis: { path: `${redis.socket}.missing`, maxRetriesPerRequest: 0 }, commandTimeout: 300 })
    const started = Date.now()
    await t.rejects(nowhere.ready())
    t.ok(Date.now() - started < 1000, 'rejects within the command timeout')
  })

  t.test('a crowd on one instance gets the lock in arrival order, one contender at a time', async (t) => {
    const a = locker(t)
    const b = locker(t)
    const id = newId()
    const holder = await take(b, id)
    const order: number[] = []
    let inside = 0
    let most = 0
    const crowd = Array.from({ length: 40 }, async (_, i) => {
      const { lock } = await take(a, id, within(20_000))
      order.push(i)
      most = Math.max(most, ++inside)
      await sleep(2)
      inside--
      await lock.unlock()
    })
    t.ok(await until(() => holder.asked.includes('requested'), 2000), 'the holder on the other instance was asked')
    await holder.lock.unlock()
    await Promise.all(crowd)
    t.same(order, Array.from({ length: 40 }, (_, i) => i), 'in arrival order')
    t.equal(most, 1, 'exclusive')
  })

  t.test('options are checked; close() quits only its own connections', async (t) => {
    t.throws(() => new RedisLocker({ redis: redis.url, ttl: 0 }), TypeError)
    t.throws(() => new RedisLocker({ redis: redis.url, ttl: 1000, renewInterval: 500 }), TypeError)
    t.throws(() => new RedisLocker({ redis: redis.url, commandTimeout: 1.5 }), TypeError)
    t.throws(() => new RedisLocker({ redis: redis.url, keyPrefix: 3 as unknown as string }), TypeError)
    const own = new RedisLocker({ redis: { path: redis.socket } })
    await (await take(own, newId())).lock.unlock()
    await own.close()
    await own.close()
    await t.rejects(take(own, newId()), LockUnavailable, 'a closed locker refuses')
    const client = new Redis(redis.url)
    const borrowed = new RedisLocker({ redis: client })
    await (await take(borrowed, newId())).lock.unlock()
    await borrowed.close()
    t.equal(await client.ping(), 'PONG', 'the client passed in still works')
    client.disconnect()
  })
})
