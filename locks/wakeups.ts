/**
 * Pieces every locker shares: the callbacks waiting on an id (how a locker wakes its waiters
 * when something happens to that id), and a time bound on calls to a lock backend.
 */
import { LockUnavailable } from './locker.js'

export class Wakeups {
  readonly #byId = new Map<string, Set<() => void>>()

  add (id: string, fn: () => void): void {
    let set = this.#byId.get(id)
    if (set === undefined) {
      set = new Set()
      this.#byId.set(id, set)
    }
    set.add(fn)
  }

  remove (id: string, fn: () => void): void {
    const set = this.#byId.get(id)
    if (set === undefined) return
    set.delete(fn)
    if (set.size === 0) this.#byId.delete(id)
  }

  /** Calls everyone waiting on `id`. */
  wake (id: string): void {
    const set = this.#byId.get(id)
    if (set !== undefined) for (const fn of set) fn()
  }

  /** Calls everyone, whatever they wait on. */
  wakeAll (): void {
    for (const set of this.#byId.values()) for (const fn of set) fn()
  }
}

/** Waits for a backend call at most `ms`; any failure becomes `LockUnavailable`. */
export async function bounded<T> (id: string, call: Promise<T>, ms: number, backend: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${backend} did not answer within ${ms} ms`)), ms)
  })
  try {
    return await Promise.race([call, timeout])
  } catch (err) {
    throw new LockUnavailable(id, { cause: err })
  } finally {
    clearTimeout(timer)
  }
}
