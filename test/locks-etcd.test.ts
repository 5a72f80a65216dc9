/**
 * The etcd locker against a real etcd: the shared locker suite (two instances, separate
 * clients) and what only a distributed lock has: lease expiry, keep-alive, loss, etcd going away.
 */
import { spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { Etcd3 } from 'etcd3'
import t, { type Test } from 'tap'
import { LockTimeout, LockUnavailable } from '../locks/locker.js'
import type { Lock, Locker, ReleaseReason } from '../locks/locker.js'
import { EtcdLocker, type EtcdLockerOptions } from '../locks/etcd.js'
import { lockerConformance } from './conformance/locker.js'
import { childEnv } from './helpers/env.js'
import { startEtcd, withEtcd, type EtcdServer } from './helpers/etcd-server.js'

const root = fileURLToPath(new URL('../', import.meta.url))
let counter = 0
const newId = (): string => `e${process.pid}x${(counter++).toString(36)}`

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
      await sleep(200)
    }
  }
}

withEtcd(t, () => {
  let etcd: EtcdServer
  let admin: Etcd3
  t.before(async () => {
    etcd = await startEtcd(t)
    admin = new Etcd3({ hosts: etcd.url })
    t.teardown(() => admin.close())
  })

  const locker = (t: Test, options: EtcdLockerOptions = {}): EtcdLocker => {
    const created = new EtcdLocker({ etcd: etcd.url, ...options })
    t.teardown(async () => await created.close())
    return created
  }

  lockerConformance(t, 'EtcdLocker (two instances from a URL)', async () => {
    const a = new EtcdLocker({ etcd: etcd.url })
    const b = new EtcdLocker({ etcd: [etcd.url] })
    return { a, b, cleanup: async () => { await a.close(); await b.close() } }
  })

  lockerConformance(t, 'EtcdLocker (two instances on clients passed in, key prefix)', async () => {
    const clients = [new Etcd3({ hosts: etcd.url }), new Etcd3({ hosts: etcd.url })] as const
    const a = new EtcdLocker({ etcd: clients[0], keyPrefix: 'other/' })
    const b = new EtcdLocker({ etcd: clients[1], keyPrefix: 'other/' })
    return {
      a,
      b,
      cleanup: async () => {
        await a.close()
        await b.close()
        for (const client of clients) client.close()
      }
    }
  })

  t.test('the key holds a token on a lease, and is gone after unlock', async (t) => {
    const a = locker(t, { keyPrefix: 'k/', ttl: 5000 })
    const id = newId()
    const { lock } = await take(a, id)
    t.type(await admin.get(`k/lock/${id}`).string(), 'string')
    await lock.unlock()
    await lock.unlock()
    t.equal(await admin.get(`k/lock/${id}`).string(), null)
  })

  t.test('a lock is freed when its holder process dies: the waiter wakes when the lease expires', async (t) => {
    const id = newId()
    const ttl = 2000
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/etcd-lock-holder.ts', etcd.url, id, String(ttl)], {
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
    const b = locker(t, { recheckInterval: 10_000, ttl: 30_000 })
    await t.rejects(take(b, id, within(300)), LockTimeout, 'still locked right after the crash')
    const { lock } = await take(b, id, within(6000))
    const waited = Date.now() - killedAt
    // etcd checks lease expiry about every 500 ms; b re-checks only every 10 s, so only the delete event can explain this
    t.ok(waited < ttl + 1500, `taken ${waited} ms after the crash (TTL ${ttl} ms)`)
    await lock.unlock()
  })

  t.test('keep-alives hold a lock long after its TTL', async (t) => {
    const a = locker(t, { ttl: 2000 })
    const b = locker(t, { ttl: 2000 })
    const id = newId()
    const holder = await take(a, id)
    const started = Date.now()
    while (Date.now() - started < 5000) {
      await t.rejects(take(b, id, within(500)), LockTimeout)
    }
    t.same(holder.asked, ['requested'], 'asked to release, never lost')
    await holder.lock.unlock()
    await (await take(b, id, within(1000))).lock.unlock()
  })

  t.test('a waiter that waits longer than the TTL still gets a lock that lasts', async (t) => {
    const a = locker(t, { ttl: 2000 })
    const b = locker(t, { ttl: 2000 })
    const id = newId()
    const holder = await take(a, id)
    const waiting = take(b, id, within(15_000))
    await sleep(4500)
    await holder.lock.unlock()
    const waiter = await waiting
    await sleep(3000)
    t.same(waiter.asked, [], 'not lost: its lease was kept alive while it waited')
    await t.rejects(take(a, id, within(300)), LockTimeout, 'still held')
    await waiter.lock.unlock()
  })

  t.test('"lost" when the key is deleted behind the holder\'s back', async (t) => {
    const a = locker(t)
    const id = newId()
    const holder = await take(a, id)
    await admin.delete().key(`tus/lock/${id}`)
    t.ok(await until(() => holder.asked.includes('lost'), 1000), 'told at once (watch)')
    await holder.lock.unlock()
  })

  t.test('"lost" when the key is overwritten, and the old holder\'s unlock leaves it alone', async (t) => {
    const a = locker(t)
    const id = newId()
    const holder = await take(a, id)
    await admin.put(`tus/lock/${id}`).value('someone-else')
    t.ok(await until(() => holder.asked.includes('lost'), 1000), 'told at once (watch)')
    await holder.lock.unlock()
    t.equal(await admin.get(`tus/lock/${id}`).string(), 'someone-else')
    await admin.delete().key(`tus/lock/${id}`)
  })

  t.test('"lost" when the lease is revoked behind the holder\'s back', async (t) => {
    const a = locker(t, { ttl: 3000 })
    const id = newId()
    const holder = await take(a, id)
    const lease = (await admin.get(`tus/lock/${id}`).exec()).kvs[0]?.lease as string
    const revoked = spawnSync('etcdctl', ['--endpoints', etcd.url, 'lease', 'revoke', BigInt(lease).toString(16)], { encoding: 'utf8' })
    t.equal(revoked.status, 0, `etcdctl lease revoke: ${revoked.stdout}${revoked.stderr}`)
    t.ok(await until(() => holder.asked.includes('lost'), 1000), 'told at once (the key went with the lease)')
    await holder.lock.unlock()
  })

  t.test('etcd going away: the holder hears "lost", a waiter a clean error, then all works again', async (t) => {
    const options = { ttl: 2000, recheckInterval: 200, commandTimeout: 400 }
    const a = locker(t, options)
    const b = locker(t, options)
    const id = newId()
    const holder = await take(a, id)
    const waiting = take(b, id, within(20_000)).then(() => 'granted', (err: unknown) => err)
    t.ok(await until(() => holder.asked.includes('requested'), 2000), 'holder asked to release')
    await etcd.stop()
    const stoppedAt = Date.now()
    t.type(await waiting, LockUnavailable, 'the waiter fails with LockUnavailable')
    t.ok(Date.now() - stoppedAt < 2000, `waiter failed after ${Date.now() - stoppedAt} ms`)
    t.ok(await until(() => holder.asked.includes('lost'), 2500), 'holder told "lost"')
    t.ok(Date.now() - stoppedAt < 2000, 'before its lease could expire')
    await t.rejects(take(b, newId(), within(5000)), LockUnavailable, 'locking while etcd is down fails cleanly')
    await t.rejects(holder.lock.unlock(), LockUnavailable, 'unlock says it could not reach etcd')

    await etcd.start()
    // the etcd3 client stops trying a host for 5 s after three failures in a row (its default circuit breaker)
    const id2 = newId()
    t.ok(await eventually(async () => { await (await take(a, id2, within(1000))).lock.unlock() }, 20_000), 'A works again')
    t.ok(await eventually(async () => { await (await take(b, id2, within(1000))).lock.unlock() }, 20_000), 'B works again')
    const again = await take(b, id, within(3000))
    const next = take(a, id, within(10_000))
    t.ok(await until(() => again.asked.includes('requested'), 5000), 'the same id can be locked again, and release requests work again')
    await again.lock.unlock()
    await (await next).lock.unlock()
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

  t.test('options are checked; close() closes only its own client', async (t) => {
    t.throws(() => new EtcdLocker({ etcd: etcd.url, ttl: 1500 }), TypeError)
    t.throws(() => new EtcdLocker({ etcd: etcd.url, ttl: 2000, renewInterval: 1000 }), TypeError)
    t.throws(() => new EtcdLocker({ etcd: etcd.url, recheckInterval: 0 }), TypeError)
    t.throws(() => new EtcdLocker({ etcd: etcd.url, keyPrefix: 1 as unknown as string }), TypeError)
    const own = new EtcdLocker({ etcd: { hosts: etcd.url } })
    await (await take(own, newId())).lock.unlock()
    await own.close()
    await own.close()
    await t.rejects(take(own, newId()), LockUnavailable, 'a closed locker refuses')
    const client = new Etcd3({ hosts: etcd.url })
    const borrowed = new EtcdLocker({ etcd: client })
    await (await take(borrowed, newId())).lock.unlock()
    await borrowed.close()
    await client.put('still').value('works')
    t.equal(await client.get('still').string(), 'works', 'the client passed in still works')
    client.close()
  })
})
