/**
 * One process's waiters for a distributed lock, per id, in arrival order. Only the first in line
 * contends for the shared lock, so a crowd of requests for one upload in one process makes one
 * contender (not a stampede on the backend at every unlock), and they get the lock in order.
 */
export interface Place {
  /** Resolves when everyone of this process who came earlier has left; `undefined` when first. */
  ahead: Promise<void> | undefined
  /** Whether someone of this process queued behind this place. */
  followed: () => boolean
  /** Leaves the line (after unlocking, or when giving up); safe to call twice. */
  leave: () => void
}

export class LocalQueue {
  /** Per id, a promise that settles when the last one in line leaves. */
  readonly #tails = new Map<string, Promise<void>>()

  join (id: string): Place {
    const ahead = this.#tails.get(id)
    let leave!: () => void
    const left = new Promise<void>((resolve) => { leave = resolve })
    const tail = (ahead ?? Promise.resolve()).then(async () => await left)
    this.#tails.set(id, tail)
    tail.then(() => { if (this.#tails.get(id) === tail) this.#tails.delete(id) }, () => {})
    return { ahead, followed: () => this.#tails.get(id) !== tail, leave }
  }
}

/**
 * Waits for `ahead`, or for `aborted` to reject. `changed` gives a promise that settles on the
 * locker's next wake-up (an unlock notice, or the locker closing); `check` runs after each and may
 * throw to stop waiting.
 */
export async function waitInLine (ahead: Promise<void>, aborted: Promise<never>, changed: () => Promise<void>, check: () => void): Promise<void> {
  let done = false
  const settled = ahead.then(() => { done = true })
  for (;;) {
    check()
    await Promise.race([settled, changed(), aborted])
    if (done) return
  }
}
