/**
 * A locker for several server instances that share one Redis (standalone, Sentinel or Cluster).
 *
 * - The lock of upload `id` is the key `<keyPrefix><id>`, holding a random token. It is taken
 *   with `SET key token NX PX ttl` and released by a compare-and-delete script, so an unlock
 *   never removes a lock that someone else holds now.
 * - The holder renews the key's TTL every `renewInterval` ms. When a renewal finds the key gone
 *   or owned by someone else, or Redis has not confirmed a renewal for `ttl - renewInterval` ms,
 *   the holder is told its lock is `'lost'` while the key is still there (unless it was deleted
 *   behind its back), so it can stop before anyone else can take the lock.
 * - Lockers talk over one pub/sub channel, `<keyPrefix>events`, on a connection of their own: a
 *   waiter publishes `r:<holder's token>` to ask that holder to release, and the unlock script
 *   publishes `u:<id>` so waiters try again at once. A waiter also tries again when the key's TTL
 *   runs out (its holder died) and every `recheckInterval` ms in case a message was lost.
 * - Waiters race for a freed lock (no queue); a waiter that loses asks the new holder in turn.
 * - Every Redis command is bounded by `commandTimeout`. A command that fails or times out makes
 *   `lock` (or `unlock`) reject with `LockUnavailable`; a lock taken by a command that answered
 *   too late is given back at once.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Redis, type Cluster, type RedisOptions } from 'ioredis'
import { LocalQueue, waitInLine, type Place } from './local-queue.js'
import { LockTimeout, LockUnavailable, whenAborted } from './locker.js'
import { bounded, Wakeups } from './wakeups.js'
import type { Lock, Locker, LockOptions, ReleaseReason } from './locker.js'

/** A client of ioredis: `Redis` (also Sentinel-configured) or `Cluster`. */
export type RedisClient = Redis | Cluster

export interface RedisLockerOptions {
  /**
   * Where the locks live: an ioredis client (`Redis`, a Sentinel-configured `Redis` or a
   * `Cluster`), a URL (`redis://`, `rediss://`, `unix:///path/redis.sock`) or ioredis options.
   * A client you pass stays yours: `close()` does not quit it. Default `redis://127.0.0.1:6379`.
   */
  redis?: RedisClient | string | RedisOptions | undefined
  /** Prefix of the lock keys and of the pub/sub channel. Default `tus:lock:`. */
  keyPrefix?: string | undefined
  /** Lifetime of a lock key in ms; the holder keeps renewing it. Default 10 000. */
  ttl?: number | undefined
  /** Milliseconds between renewals of a held lock; less than half the TTL. Default a third of the TTL. */
  renewInterval?: number | undefined
  /** Longest time in ms a waiter goes without trying again when no message arrives. Default 1000. */
  recheckInterval?: number | undefined
  /** Longest time in ms one Redis command may take before the locker gives up on it. Default 3000. */
  commandTimeout?: number | undefined
}

interface Held {
  id: string
  key: string
  token: string
  onReleaseRequested: (reason: ReleaseReason) => void
  asked: Set<ReleaseReason>
  renewTimer: NodeJS.Timeout | undefined
  lostTimer: NodeJS.Timeout | undefined
  renewing: boolean
  /** Told `'lost'`: no more renewals. */
  lost: boolean
  done: boolean
}

/** What the acquire script answers: `[1]`, or `[0, owner's token, owner's PTTL]`. */
type AcquireReply = [1] | [0, string, number]

class Script {
  readonly sha: string
  constructor (readonly source: string) {
    this.sha = createHash('sha1').update(source).digest('hex')
  }
}

const ACQUIRE = new Script(`
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {1} end
return {0, redis.call('get', KEYS[1]) or '', redis.call('pttl', KEYS[1])}`)

const RENEW = new Script(`
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0`)

const UNLOCK = new Script(`
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('del', KEYS[1])
redis.call('publish', ARGV[2], ARGV[3])
return 1`)

export class RedisLocker implements Locker {
  readonly keyPrefix: string
  readonly ttl: number
  readonly renewInterval: number
  readonly recheckInterval: number
  readonly commandTimeout: number
  readonly #client: RedisClient
  readonly #ownsClient: boolean
  readonly #channel: string
  #subscriber: RedisClient | undefined
  #subscribed: Promise<void> | undefined
  #closed = false
  /** Locks this instance holds, by token. */
  readonly #held = new Map<string, Held>()
  /** Wake-up callbacks of the waiters in this instance, by upload id. */
  readonly #waiters = new Wakeups()
  /** This instance's waiters per id, in arrival order: only the first in line contends. */
  readonly #queue = new LocalQueue()

  constructor (options: RedisLockerOptions = {}) {
    this.keyPrefix = options.keyPrefix ?? 'tus:lock:'
    this.ttl = options.ttl ?? 10_000
    this.renewInterval = options.renewInterval ?? Math.floor(this.ttl / 3)
    this.recheckInterval = options.recheckInterval ?? 1000
    this.commandTimeout = options.commandTimeout ?? 3000
    if (typeof this.keyPrefix !== 'string') throw new TypeError('RedisLocker: "keyPrefix" must be a string')
    for (const name of ['ttl', 'renewInterval', 'recheckInterval', 'commandTimeout'] as const) {
      if (!Number.isInteger(this[name]) || this[name] < 1) throw new TypeError(`RedisLocker: "${name}" must be a positive integer`)
    }
    if (this.renewInterval * 2 >= this.ttl) throw new TypeError('RedisLocker: "renewInterval" must be less than half of "ttl"')
    this.#channel = `${this.keyPrefix}events`
    const redis = options.redis
    if (isClient(redis)) {
      this.#client = redis
      this.#ownsClient = false
    } else {
      this.#client = typeof redis === 'string' ? new Redis(redis) : new Redis(redis ?? {})
      this.#client.on('error', ignore)
      this.#ownsClient = true
    }
    this.#client.on('ready', this.#onReconnect)
  }

  async lock (id: string, options: LockOptions): Promise<Lock> {
    if (typeof id !== 'string' || id === '') throw new TypeError('RedisLocker: the lock id must be a non-empty string')
    const key = this.keyPrefix + id
    const token = randomBytes(12).toString('base64url')
    const aborted = whenAborted(id, options.signal)
    let wake: () => void = () => {}
    const listener = (): void => wake()
    this.#waiters.add(id, listener)
    const place = this.#queue.join(id)
    let sentAt: number
    try {
      if (place.ahead !== undefined) {
        for (const held of this.#held.values()) if (held.id === id) ask(held, 'requested')
        await waitInLine(place.ahead, aborted.promise, () => new Promise((resolve) => { wake = resolve }), () => {
          if (this.#closed) throw new LockUnavailable(id, { cause: new Error('RedisLocker is closed') })
        })
      }
      await Promise.race([this.#subscribe(id), aborted.promise])
      for (;;) {
        if (options.signal.aborted) throw new LockTimeout(id, { cause: options.signal.reason })
        if (this.#closed) throw new LockUnavailable(id, { cause: new Error('RedisLocker is closed') })
        const changed = new Promise<void>((resolve) => { wake = resolve })
        sentAt = Date.now()
        const attempt = this.#eval(ACQUIRE, key, [token, this.ttl]) as Promise<AcquireReply>
        let reply: AcquireReply
        try {
          reply = await Promise.race([this.#bound(id, attempt), aborted.promise])
        } catch (err) {
          // the command may still run: a lock it takes then must not block everyone for a TTL
          attempt.then((late) => { if (late[0] === 1) this.#release(key, token, id).catch(ignore) }, ignore)
          throw err
        }
        if (reply[0] === 1) break
        const [, owner, pttl] = reply
        this.#askToRelease(id, owner)
        const delay = pttl > 0 ? Math.min(pttl + 1, this.recheckInterval) : pttl === -2 ? 0 : this.recheckInterval
        let timer: NodeJS.Timeout | undefined
        const slept = new Promise<void>((resolve) => { timer = setTimeout(resolve, delay) })
        try {
          await Promise.race([changed, slept, aborted.promise])
        } finally {
          clearTimeout(timer)
        }
      }
    } catch (err) {
      place.leave()
      throw err
    } finally {
      aborted.dispose()
      this.#waiters.remove(id, listener)
    }
    return this.#hold(id, key, token, options.onReleaseRequested, sentAt, place)
  }

  /**
   * Resolves once Redis answers and the pub/sub channel is subscribed; rejects with the reason
   * otherwise. Optional: `lock` does the same on first use. Handy for a check at startup.
   */
  async ready (): Promise<void> {
    try {
      await this.#subscribe('(readiness check)')
      await this.#bound('(readiness check)', this.#client.ping())
    } catch (err) {
      throw err instanceof LockUnavailable && err.cause !== undefined ? err.cause : err
    }
  }

  /**
   * Quits the pub/sub connection, and the main one if the locker created it. Locks still held
   * stop being renewed and expire after their TTL; waiters fail with `LockUnavailable`.
   */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#client.off('ready', this.#onReconnect)
    for (const held of this.#held.values()) stopTimers(held)
    this.#held.clear()
    this.#waiters.wakeAll()
    const connections = [this.#subscriber, this.#ownsClient ? this.#client : undefined]
    await Promise.all(connections.map(async (connection) => {
      if (connection === undefined) return
      // QUIT lets replies in flight arrive; a connection that is not up has none, and QUIT would wait in its queue
      if (connection.status === 'ready') await this.#bound('close', connection.quit()).catch(ignore)
      connection.disconnect()
    }))
  }

  #hold (id: string, key: string, token: string, onReleaseRequested: (reason: ReleaseReason) => void, sentAt: number, place: Place): Lock {
    const held: Held = {
      id, key, token, onReleaseRequested, asked: new Set(), renewTimer: undefined, lostTimer: undefined, renewing: false, lost: false, done: false
    }
    this.#held.set(token, held)
    this.#armLost(held, sentAt)
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
          await this.#release(key, token, id)
        } finally {
          place.leave()
          this.#waiters.wake(id)
        }
      }
    }
  }

  /** Deletes the key if it still holds `token`, and tells the waiters. */
  async #release (key: string, token: string, id: string): Promise<void> {
    await this.#bound(id, this.#eval(UNLOCK, key, [token, this.#channel, `u:${id}`]))
  }

  async #renew (held: Held): Promise<void> {
    if (held.renewing || held.done || held.lost) return
    held.renewing = true
    const sentAt = Date.now()
    try {
      const renewed = await this.#bound(held.id, this.#eval(RENEW, held.key, [held.token, this.ttl]))
      // unlocked, or already given up by the lost timer while this renewal was on its way
      if (held.done || held.lost) return
      if (renewed === 1) this.#armLost(held, sentAt)
      else this.#lose(held)
    } catch {
      // Redis cannot be reached: the lost timer decides
    } finally {
      held.renewing = false
    }
  }

  /** The key set or renewed at `sentAt` lives at least until `sentAt + ttl`: give up a renewal interval before. */
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

  #askToRelease (id: string, owner: string): void {
    const local = this.#held.get(owner)
    if (local !== undefined) {
      ask(local, 'requested')
      return
    }
    if (owner === '') return
    this.#bound(id, this.#client.publish(this.#channel, `r:${owner}`)).catch(ignore)
  }

  /**
   * After a reconnection Redis may be a new one (restarted without persistence, or a failover):
   * check every held lock at once instead of at the next renewal.
   */
  #onReconnect = (): void => {
    for (const held of this.#held.values()) this.#renew(held).catch(ignore)
  }

  #onMessage = (channel: string, message: string): void => {
    if (channel !== this.#channel) return
    if (message.startsWith('u:')) {
      this.#waiters.wake(message.slice(2))
    } else if (message.startsWith('r:')) {
      const held = this.#held.get(message.slice(2))
      if (held !== undefined) ask(held, 'requested')
    }
  }

  async #subscribe (id: string): Promise<void> {
    if (this.#closed) throw new LockUnavailable(id, { cause: new Error('RedisLocker is closed') })
    let subscriber = this.#subscriber
    if (subscriber === undefined) {
      subscriber = duplicate(this.#client)
      subscriber.on('error', ignore)
      subscriber.on('message', this.#onMessage)
      this.#subscriber = subscriber
    }
    this.#subscribed ??= subscriber.subscribe(this.#channel).then(() => {})
    const subscribed = this.#subscribed
    try {
      await this.#bound(id, subscribed)
    } catch (err) {
      if (this.#subscribed === subscribed) this.#subscribed = undefined
      throw err
    }
  }

  /** Runs a script by its hash, sending its source only when Redis does not know it yet. */
  async #eval (script: Script, key: string, args: Array<string | number>): Promise<unknown> {
    try {
      return await this.#client.evalsha(script.sha, 1, key, ...args)
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err
      return await this.#client.eval(script.source, 1, key, ...args)
    }
  }

  async #bound<T> (id: string, call: Promise<T>): Promise<T> {
    return await bounded(id, call, this.commandTimeout, 'Redis')
  }
}

function isClient (value: unknown): value is RedisClient {
  return typeof value === 'object' && value !== null &&
    typeof (value as RedisClient).duplicate === 'function' && typeof (value as RedisClient).evalsha === 'function'
}

/** A second connection like `client` (the two classes' `duplicate` signatures differ). */
function duplicate (client: RedisClient): RedisClient {
  return client.isCluster ? (client as Cluster).duplicate() : (client as Redis).duplicate()
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
