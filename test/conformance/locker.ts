/**
 * The behaviour every locker must have. Each locker's test file calls `lockerConformance` with a
 * factory that returns two lockers sharing one lock space (the same object twice for an
 * in-process locker, two instances for a locker that works across processes or hosts).
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { LockTimeout } from '../../locks/locker.js'
import type { Lock, Locker, ReleaseReason } from '../../locks/locker.js'

export interface LockerFactory {
  (): Promise<{ a: Locker, b: Locker, cleanup?: () => Promise<void> }>
}

let counter = 0
function newId (): string {
  return `l${process.pid}x${Date.now().toString(36)}x${(counter++).toString(36)}`
}

const timers = new Set<NodeJS.Timeout>()

/**
 * Like AbortSignal.timeout, but its timer keeps the process alive while a test waits. The suite
 * clears the timers left at its end, so they do not hold the process up after the last test.
 */
function within (ms: number): AbortSignal {
  const controller = new AbortController()
  const timer = setTimeout(() => {
    timers.delete(timer)
    controller.abort(new Error('timeout'))
  }, ms)
  timers.add(timer)
  return controller.signal
}

function forever (): AbortSignal {
  return new AbortController().signal
}

/** Locks and records release requests. */
async function take (locker: Locker, id: string, signal = forever()): Promise<{ lock: Lock, asked: ReleaseReason[] }> {
  const asked: ReleaseReason[] = []
  const lock = await locker.lock(id, { signal, onReleaseRequested: (reason) => asked.push(reason) })
  return { lock, asked }
}

async function until (check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) return false
    await sleep(5)
  }
  return true
}

export function lockerConformance (t: Test, name: string, factory: LockerFactory): void {
  t.test(`${name}: locker conformance`, async (t) => {
    const { a, b, cleanup } = await factory()
    t.teardown(() => { for (const timer of timers) clearTimeout(timer) })
    if (cleanup !== undefined) t.teardown(cleanup)

    t.test('a free lock is granted, and again after unlock', async (t) => {
      const id = newId()
      const first = await take(a, id)
      await first.lock.unlock()
      await first.lock.unlock()
      const second = await take(b, id)
      await second.lock.unlock()
      t.same(first.asked, [])
    })

    t.test('a waiter asks the holder to release and gets the lock when it does', async (t) => {
      const id = newId()
      const holder = await take(a, id)
      let granted = false
      const waiting = take(b, id).then((value) => { granted = true; return value })
      t.ok(await until(() => holder.asked.length > 0), 'holder was asked to release')
      t.same(holder.asked, ['requested'])
      await sleep(50)
      t.notOk(granted, 'not granted while held')
      const started = Date.now()
      await holder.lock.unlock()
      const waiter = await waiting
      t.ok(Date.now() - started < 3000, 'handover is prompt')
      await waiter.lock.unlock()
    })

    t.test('waiting ends with LockTimeout when the signal aborts, and the holder keeps the lock', async (t) => {
      const id = newId()
      const holder = await take(a, id)
      await t.rejects(take(b, id, within(100)), LockTimeout)
      await t.rejects(take(b, id, AbortSignal.abort()), LockTimeout)
      // still held: a third request must wait too
      await t.rejects(take(a, id, within(50)), LockTimeout)
      await holder.lock.unlock()
      const next = await take(b, id, within(3000))
      await next.lock.unlock()
    })

    t.test('a stale unlock never releases the next holder', async (t) => {
      const id = newId()
      const first = await take(a, id)
      await first.lock.unlock()
      const second = await take(b, id)
      await first.lock.unlock()
      await t.rejects(take(a, id, within(100)), LockTimeout, 'second still holds it')
      await second.lock.unlock()
    })

    t.test('different ids do not block each other', async (t) => {
      const one = await take(a, newId())
      const two = await take(b, newId(), within(1000))
      t.same(one.asked, [])
      await one.lock.unlock()
      await two.lock.unlock()
    })

    t.test('several waiters all get the lock in turn, each exclusive', async (t) => {
      const id = newId()
      let inside = 0
      let maxInside = 0
      let done = 0
      const worker = async (locker: Locker): Promise<void> => {
        const { lock } = await take(locker, id, within(10_000))
        inside++
        maxInside = Math.max(maxInside, inside)
        await sleep(10)
        inside--
        done++
        await lock.unlock()
      }
      await Promise.all([worker(a), worker(b), worker(a), worker(b), worker(a)])
      t.equal(done, 5)
      t.equal(maxInside, 1)
    })
  })
}
