/**
 * In-process locker: one holder per upload id, waiters queued in arrival order. A waiter asks the
 * holder to release and then waits on a promise; nothing polls.
 */
import { LockTimeout, whenAborted } from './locker.js'
import type { Lock, Locker, LockOptions, ReleaseReason } from './locker.js'

interface Holder {
  onReleaseRequested: (reason: ReleaseReason) => void
  asked: boolean
}

interface Waiter {
  holder: Holder
  grant: () => void
}

interface Entry {
  holder: Holder
  waiters: Waiter[]
}

export class MemoryLocker implements Locker {
  readonly #entries = new Map<string, Entry>()

  async lock (id: string, options: LockOptions): Promise<Lock> {
    // a caller that has given up already never disturbs the holder
    if (options.signal.aborted) throw new LockTimeout(id, { cause: options.signal.reason })
    const holder: Holder = { onReleaseRequested: options.onReleaseRequested, asked: false }
    const entry = this.#entries.get(id)
    if (entry === undefined) {
      this.#entries.set(id, { holder, waiters: [] })
      return this.#lockFor(id, holder)
    }
    let grant!: () => void
    const granted = new Promise<void>((resolve) => { grant = resolve })
    const waiter: Waiter = { holder, grant }
    entry.waiters.push(waiter)
    askToRelease(entry.holder)
    const aborted = whenAborted(id, options.signal)
    try {
      await Promise.race([granted, aborted.promise])
    } catch (err) {
      const index = entry.waiters.indexOf(waiter)
      if (index !== -1) {
        entry.waiters.splice(index, 1)
        throw err
      }
      // granted in the same tick as the abort: give the lock on and report the timeout
      this.#release(id, holder)
      throw err
    } finally {
      aborted.dispose()
    }
    return this.#lockFor(id, holder)
  }

  #lockFor (id: string, holder: Holder): Lock {
    let released = false
    return {
      unlock: async () => {
        if (released) return
        released = true
        this.#release(id, holder)
      }
    }
  }

  #release (id: string, holder: Holder): void {
    const entry = this.#entries.get(id)
    if (entry === undefined || entry.holder !== holder) return
    const next = entry.waiters.shift()
    if (next === undefined) {
      this.#entries.delete(id)
      return
    }
    entry.holder = next.holder
    next.grant()
    // someone else is already waiting behind the new holder: it should hand over in turn
    if (entry.waiters.length > 0) askToRelease(next.holder)
  }
}

function askToRelease (holder: Holder): void {
  if (holder.asked) return
  holder.asked = true
  holder.onReleaseRequested('requested')
}
