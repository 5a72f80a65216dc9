/**
 * The behaviour every locker must have, as a runner-independent suite. The factory returns two
 * lockers sharing one lock space (the same object twice for an in-process locker, two instances
 * for a locker that works across processes or hosts).
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Lock, Locker, ReleaseReason } from '../locks/locker.js'
import { isCoded } from './suite.js'
import type { ConformanceCase, ConformanceSuite } from './suite.js'

export interface LockerFactory {
  (): Promise<{ a: Locker, b: Locker, cleanup?: () => Promise<void> }>
}

const timedOut = isCoded('ERR_LOCK_TIMEOUT', 'LOCK_TIMEOUT')

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

export function lockerSuite (name: string, factory: LockerFactory): ConformanceSuite {
  let made: Awaited<ReturnType<LockerFactory>> | undefined
  const pair = (): { a: Locker, b: Locker } => {
    if (made === undefined) throw new Error('lockerSuite: setup() was not run')
    return made
  }
  const always = (): false => false

  const cases: ConformanceCase[] = [{
    name: 'a free lock is granted, and again after unlock',
    skip: always,
    run: async () => {
      const { a, b } = pair()
      const id = newId()
      const first = await take(a, id)
      await first.lock.unlock()
      await first.lock.unlock()
      const second = await take(b, id)
      await second.lock.unlock()
      assert.deepEqual(first.asked, [])
    }
  }, {
    name: 'a waiter asks the holder to release and gets the lock when it does',
    skip: always,
    run: async () => {
      const { a, b } = pair()
      const id = newId()
      const holder = await take(a, id)
      let granted = false
      const waiting = take(b, id).then((value) => { granted = true; return value })
      assert.ok(await until(() => holder.asked.length > 0), 'holder was asked to release')
      assert.deepEqual(holder.asked, ['requested'])
      await sleep(50)
      assert.ok(!granted, 'not granted while held')
      const started = Date.now()
      await holder.lock.unlock()
      const waiter = await waiting
      assert.ok(Date.now() - started < 3000, 'handover is prompt')
      await waiter.lock.unlock()
    }
  }, {
    name: 'waiting ends with LockTimeout when the signal aborts, and the holder keeps the lock',
    skip: always,
    run: async () => {
      const { a, b } = pair()
      const id = newId()
      const holder = await take(a, id)
      await assert.rejects(take(b, id, within(100)), timedOut)
      await assert.rejects(take(b, id, AbortSignal.abort()), timedOut)
      // still held: a third request must wait too
      await assert.rejects(take(a, id, within(50)), timedOut)
      await holder.lock.unlock()
      const next = await take(b, id, within(3000))
      await next.lock.unlock()
    }
  }, {
    name: 'a stale unlock never releases the next holder',
    skip: always,
    run: async () => {
      const { a, b } = pair()
      const id = newId()
      const first = await take(a, id)
      await first.lock.unlock()
      const second = await take(b, id)
      await first.lock.unlock()
      await assert.rejects(take(a, id, within(100)), timedOut, 'second still holds it')
      await second.lock.unlock()
    }
  }, {
    name: 'different ids do not block each other',
    skip: always,
    run: async () => {
      const { a, b } = pair()
      const one = await take(a, newId())
      const two = await take(b, newId(), within(1000))
      assert.deepEqual(one.asked, [])
      await one.lock.unlock()
      await two.lock.unlock()
    }
  }, {
    name: 'several waiters all get the lock in turn, each exclusive',
    skip: always,
    run: async () => {
      const { a, b } = pair()
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
      assert.equal(done, 5)
      assert.equal(maxInside, 1)
    }
  }]

  return {
    name: `${name}: locker conformance`,
    setup: async () => { made = await factory() },
    teardown: async () => {
      for (const timer of timers) clearTimeout(timer)
      timers.clear()
      await made?.cleanup?.()
    },
    cases
  }
}
