/**
 * A locker for several server instances that share an etcd cluster (v3 API).
 *
 * - Each `lock()` call grants a lease of `ttl` (kept alive while it waits). The lock of upload `id` is the key
 *   `<keyPrefix>lock/<id>`, created in a transaction only if it does not exist, holding a random
 *   token and attached to that lease. Unlocking revokes the lease, which deletes the key only if
 *   it is still ours; giving up a wait revokes it too, so a create that lands after its caller
 *   gave up never blocks the upload.
 * - The holder keeps its lease alive every `renewInterval` ms. When etcd says the lease is gone,
 *   when the key is deleted or replaced behind its back, or when no keep-alive has been confirmed
 *   for `ttl - renewInterval` ms, the holder is told `'lost'` (in the last case before the lease
 *   can expire).
 * - A waiter asks the holder to release by writing `<keyPrefix>stop/<id>` = the holder's token
 *   (on the waiter's own lease, so it disappears with it). Every locker watches `<keyPrefix>`:
 *   a holder hears requests addressed to it, and waiters hear the lock key's deletion (an unlock,
 *   or the lease of a crashed holder expiring) and try again at once. A slow re-check every
 *   `recheckInterval` ms covers events missed while the watch reconnected.
 * - Every etcd call is bounded by `commandTimeout`; a failure makes `lock` (or `unlock`) reject
 *   with `LockUnavailable`.
 */
import { randomBytes } from 'node:crypto'
import { Etcd3, EtcdLeaseInvalidError, type IKeyValue, type IOptions, type Lease, type Watcher } from 'etcd3'
import { LocalQueue, waitInLine, type Place } from './local-queue.js'
import { LockTimeout, LockUnavailable, whenAborted } from './locker.js'
import { bounded, Wakeups } from './wakeups.js'
import type { Lock, Locker, LockOptions, ReleaseReason } from './locker.js'

export interface EtcdLockerOptions {
  /**
   * Where the locks live: an `Etcd3` client, one or more client URLs (`http://host:2379`), or
   * `Etcd3` options. A client you pass stays yours: `close()` does not close it.
   * Default `http://127.0.0.1:2379`.
   */
  etcd?: Etcd3 | string | string[] | IOptions | undefined
  /** Prefix of every key the locker writes. Default `tus/`. */
  keyPrefix?: string | undefined
  /** Lease lifetime in ms: whole seconds, at least 2000 (etcd's smallest lease). Default 10 000. */
  ttl?: number | undefined
  /** Milliseconds between keep-alives of a held lock's lease; less than half the TTL. Default a third of the TTL. */
  renewInterval?: number | undefined
  /** Longest time in ms a waiter goes without trying again when no event arrives. Default 1000. */
  recheckInterval?: number | undefined
  /** Longest time in ms one etcd call may take before the locker gives up on it. Default 3000. */
  commandTimeout?: number | undefined
}

interface Held {
  id: string
  token: string
  lease: Lease
  /** The etcd revision that created the lock key: older watch events say nothing about this lock. */
  revision: bigint
  onReleaseRequested: (reason: ReleaseReason) => void
  asked: Set<ReleaseReason>
  renewTimer: NodeJS.Timeout | undefined
  lostTimer: NodeJS.Timeout | undefined
  renewing: boolean
  lost: boolean
  done: boolean
}

export class EtcdLocker implements Locker {
  readonly keyPrefix: string
  readonly ttl: number
  readonly renewInterval: number
  readonly recheckInterval: number
  readonly commandTimeout: number
  readonly #client: Etcd3
  readonly #ownsClient: boolean
  #watcher: Watcher | undefined
  /** Resolves when the watch is first established. */
  #watching: Promise<void> | undefined
  #closed = false
  /** Locks this instance holds, by token. */
  readonly #held = new Map<string, Held>()
  /** Wake-up callbacks of the waiters in this instance, by upload id. */
  readonly #waiters = new Wakeups()
  /** This instance's waiters per id, in arrival order: only the first in line contends. */
  readonly #queue = new LocalQueue()

  constructor (options: EtcdLockerOptions = {}) {
    this.keyPrefix = options.keyPrefix ?? 'tus/'
    this.ttl = options.ttl ?? 10_000
    this.renewInterval = options.renewInterval ?? Math.floor(this.ttl / 3)
    this.recheckInterval = options.recheckInterval ?? 1000
    this.commandTimeout = options.commandTimeout ?? 3000
    if (typeof this.keyPrefix !== 'string') throw new TypeError('EtcdLocker: "keyPrefix" must be a string')
    for (const name of ['ttl', 'renewInterval', 'recheckInterval', 'commandTimeout'] as const) {
      if (!Number.isInteger(this[name]) || this[name] < 1) throw new TypeError(`EtcdLocker: "${name}" must be a positive integer`)
    }
    if (this.ttl < 2000 || this.ttl % 1000 !== 0) throw new TypeError('EtcdLocker: "ttl" must be whole seconds, at least 2000 ms')
    if (this.renewInterval * 2 >= this.ttl) throw new TypeError('EtcdLocker: "renewInterval" must be less than half of "ttl"')
    const etcd = options.etcd
    if (etcd instanceof Etcd3) {
      this.#client = etcd
      this.#ownsClient = false
    } else {
      const given = etcd ?? 'http://127.0.0.1:2379'
      const options = typeof given === 'string' || Array.isArray(given) ? { hosts: given } : given
      this.#client = new Etcd3({ ...options, faultHandling: { watchBackoff: cappedBackoff(50), ...options.faultHandling } })
      this.#ownsClient = true
    }
  }

  async lock (id: string, options: LockOptions): Promise<Lock> {
    if (typeof id !== 'string' || id === '') throw new TypeError('EtcdLocker: the lock id must be a non-empty string')
    if (this.#closed) throw new LockUnavailable(id, { cause: new Error('EtcdLocker is closed') })
    const key = `${this.keyPrefix}lock/${id}`
    const token = randomBytes(12).toString('base64url')
    const aborted = whenAborted(id, options.signal)
    let wake: () => void = () => {}
    const listener = (): void => wake()
    this.#waiters.add(id, listener)
    const place = this.#queue.join(id)
    /** When the last grant or keep-alive that etcd confirmed was sent: the lease lives `ttl` from then. */
    let confirmedAt = 0
    let lease: Lease | undefined
    let askedOwner: string | undefined
    let revision = 0n
    try {
      if (place.ahead !== undefined) {
        for (const held of this.#held.values()) if (held.id === id) ask(held, 'requested')
        await waitInLine(place.ahead, aborted.promise, () => new Promise((resolve) => { wake = resolve }), () => {
          if (this.#closed) throw new LockUnavailable(id, { cause: new Error('EtcdLocker is closed') })
        })
      }
      await Promise.race([this.#bound(id, this.#watch()), aborted.promise])
      confirmedAt = Date.now()
      lease = this.#client.lease(this.ttl / 1000, { autoKeepAlive: false, deadline: this.#deadline() })
      lease.on('lost', ignore)
      const leaseId = await Promise.race([this.#bound(id, lease.grant()), aborted.promise])
      for (;;) {
        if (options.signal.aborted) throw new LockTimeout(id, { cause: options.signal.reason })
        if (this.#closed) throw new LockUnavailable(id, { cause: new Error('EtcdLocker is closed') })
        const changed = new Promise<void>((resolve) => { wake = resolve })
        if (Date.now() - confirmedAt >= this.renewInterval) {
          // a long wait: the lease must still be alive when the lock is finally created on it
          const sentAt = Date.now()
          await Promise.race([this.#bound(id, lease.keepaliveOnce({ deadline: this.#deadline() })), aborted.promise])
          confirmedAt = sentAt
        }
        const result = await Promise.race([this.#bound(id, this.#client
          .if(key, 'Create', '==', 0)
          .then(this.#client.put(key).value(token).lease(leaseId))
          .else(this.#client.get(key))
          .options({ deadline: this.#deadline() })
          .commit()), aborted.promise])
        if (result.succeeded) {
          revision = BigInt(result.header.revision)
          break
        }
        const owner = result.responses[0]?.response_range.kvs[0]?.value.toString()
        if (owner !== undefined) {
          const local = this.#held.get(owner)
          if (local !== undefined) {
            ask(local, 'requested')
          } else if (owner !== askedOwner) {
            askedOwner = owner
            await Promise.race([this.#bound(id, lease.put(`${this.keyPrefix}stop/${id}`).value(owner)
              .options({ deadline: this.#deadline() }).exec()), aborted.promise])
          }
        }
        let timer: NodeJS.Timeout | undefined
        const slept = new Promise<void>((resolve) => { timer = setTimeout(resolve, Math.min(this.recheckInterval, this.renewInterval)) })
        try {
          await Promise.race([changed, slept, aborted.promise])
        } finally {
          clearTimeout(timer)
        }
      }
    } catch (err) {
      place.leave()
      // deletes anything written on the lease, including a lock created after we gave up
      lease?.revoke({ deadline: this.#deadline() }).catch(ignore)
      throw err
    } finally {
      aborted.dispose()
      this.#waiters.remove(id, listener)
    }
    return this.#hold(id, token, lease, revision, options.onReleaseRequested, confirmedAt, place)
  }

  /**
   * Cancels the watch, and closes the client if the locker created it. Locks still held stop
   * being kept alive and expire after their TTL; waiters fail with `LockUnavailable`.
   */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const held of this.#held.values()) stopTimers(held)
    this.#held.clear()
    this.#waiters.wakeAll()
    const watcher = this.#watcher
    this.#watcher = undefined
    if (watcher !== undefined) await this.#bound('close', watcher.cancel()).catch(ignore)
    if (this.#ownsClient) this.#client.close()
  }

  #hold (
    id: string, token: string, lease: Lease, revision: bigint, onReleaseRequested: (reason: ReleaseReason) => void, confirmedAt: number, place: Place
  ): Lock {
    const held: Held = {
      id, token, lease, revision, onReleaseRequested, asked: new Set(), renewTimer: undefined, lostTimer: undefined, renewing: false, lost: false, done: false
    }
    this.#held.set(token, held)
    this.#armLost(held, confirmedAt)
    held.renewTimer = setInterval(() => { this.#renew(held).catch(ignore) }, this.renewInterval)
    held.renewTimer.unref()
    // someone of this instance queued behind us meanwhile: they asked for the lock too
    if (place.followed()) ask(held, 'requested')
    return {
      unlock: async () => {
        if (held.done) return
        held.done = true
        stopTimers(held)
        this.#held.delete(token)
        try {
          // the lock key and any release request for it live on this lease
          await this.#bound(id, lease.revoke({ deadline: this.#deadline() }))
        } catch (err) {
          // a lease that expired already took the key with it
          if (!(err instanceof LockUnavailable && err.cause instanceof EtcdLeaseInvalidError)) throw err
        } finally {
          place.leave()
          this.#waiters.wake(id)
        }
      }
    }
  }

  async #renew (held: Held): Promise<void> {
    if (held.renewing || held.done || held.lost) return
    held.renewing = true
    const sentAt = Date.now()
    try {
      await this.#bound(held.id, held.lease.keepaliveOnce({ deadline: this.#deadline() }))
      if (!held.done && !held.lost) this.#armLost(held, sentAt)
    } catch (err) {
      // an expired lease is lost for sure; otherwise etcd may just be unreachable: the lost timer decides
      if (err instanceof LockUnavailable && err.cause instanceof EtcdLeaseInvalidError) this.#lose(held)
    } finally {
      held.renewing = false
    }
  }

  /** The lease confirmed at `sentAt` lives at least until `sentAt + ttl`: give up a renewal interval before. */
  #armLost (held: Held, sentAt: number): void {
    clearTimeout(held.lostTimer)
    held.lostTimer = setTimeout(() => this.#lose(held), Math.max(0, sentAt + this.ttl - this.renewInterval - Date.now()))
    held.lostTimer.unref()
  }

  #lose (held: Held): void {
    if (held.done || held.lost) return
    held.lost = true
    stopTimers(held)
    this.#held.delete(held.token)
    ask(held, 'lost')
  }

  /** One watch on the whole prefix, for release requests and for lock keys that go away. */
  async #watch (): Promise<void> {
    if (this.#watcher === undefined) {
      // it reconnects by itself and resumes where it stopped
      const watcher = this.#client.watch().prefix(this.keyPrefix).watcher()
      watcher.on('error', ignore)
      watcher.on('put', this.#onPut)
      watcher.on('delete', this.#onDelete)
      this.#watcher = watcher
      this.#watching = new Promise((resolve) => watcher.once('connected', () => resolve()))
    }
    await this.#watching
  }

  #onPut = (kv: IKeyValue): void => {
    const key = kv.key.toString()
    if (key.startsWith(`${this.keyPrefix}stop/`)) {
      const held = this.#held.get(kv.value.toString())
      if (held !== undefined) ask(held, 'requested')
      return
    }
    // a lock key rewritten with a token that is not its holder's: the holder lost it
    const id = this.#lockId(key)
    if (id === undefined) return
    for (const held of this.#held.values()) {
      if (held.id === id && isNewer(kv, held) && held.token !== kv.value.toString()) this.#lose(held)
    }
  }

  #onDelete = (kv: IKeyValue): void => {
    const id = this.#lockId(kv.key.toString())
    if (id === undefined) return
    // deleted while someone here still holds it (not by its own unlock): that holder lost it
    for (const held of this.#held.values()) if (held.id === id && isNewer(kv, held)) this.#lose(held)
    this.#waiters.wake(id)
  }

  #lockId (key: string): string | undefined {
    const prefix = `${this.keyPrefix}lock/`
    return key.startsWith(prefix) ? key.slice(prefix.length) : undefined
  }

  async #bound<T> (id: string, call: Promise<T>): Promise<T> {
    return await bounded(id, call, this.commandTimeout, 'etcd')
  }

  #deadline (): number {
    return Date.now() + this.commandTimeout
  }
}

/** Whether a watch event happened after the holder created its lock key (events can arrive late). */
function isNewer (kv: IKeyValue, held: Held): boolean {
  return BigInt(kv.mod_revision) > held.revision
}

/**
 * Delays between watch reconnections for clients the locker creates: doubling from `ms` up to
 * 2 s (etcd3's default grows to 30 s, which would also hold a closed client's process that long).
 */
function cappedBackoff (ms: number): { duration: number, next: () => ReturnType<typeof cappedBackoff> } {
  return { duration: ms, next: () => cappedBackoff(Math.min(ms * 2, 2000)) }
}

function ask (held: Held, reason: ReleaseReason): void {
  if (held.asked.has(reason)) return
  held.asked.add(reason)
  held.onReleaseRequested(reason)
}

function stopTimers (held: Held): void {
  clearInterval(held.renewTimer)
  clearTimeout(held.lostTimer)
  held.renewTimer = undefined
  held.lostTimer = undefined
}

function ignore (): void {}
