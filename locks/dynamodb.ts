/**
 * A locker for several server instances that share one DynamoDB table.
 *
 * - The lock of upload `id` is the item whose partition key `id` is `<keyPrefix><id>`. It holds
 *   the holder's random token (`owner`), the end of its lease (`leaseUntil`, ms since the epoch)
 *   and the same instant in seconds (`expiresAt`, the table's TTL attribute, so DynamoDB removes
 *   items abandoned by crashed holders). It is written with a condition: the item is absent or
 *   its lease has ended. Unlocking deletes it with the condition that `owner` is still ours.
 * - The holder looks at its item every `pollInterval` ms (one strongly consistent read), and
 *   every `renewInterval` ms that look is a conditional renewal of the lease instead. When the
 *   item is gone or owned by someone else, or no renewal has been confirmed for
 *   `ttl - renewInterval` ms, the holder is told `'lost'` while its lease still runs.
 * - A waiter asks the holder to release by setting the item's `release` attribute (once per
 *   holder); the holder sees it at its next look, within `pollInterval` ms. The waiter retries its
 *   conditional write every `pollInterval` ms (sooner when the lease ends before): no busy loop.
 *   Inside one process the holder is told directly and local waiters wake at its unlock.
 * - Every DynamoDB call is bounded by `commandTimeout`; a call that fails or times out makes
 *   `lock` (or `unlock`) reject with `LockUnavailable`. A write whose answer never came is undone
 *   with a conditional delete, so it does not block the upload for a whole lease.
 * - Leases compare wall clocks: the hosts' clocks must agree to better than `renewInterval`.
 */
import { randomBytes } from 'node:crypto'
import {
  CreateTableCommand,
  DeleteItemCommand,
  DescribeTableCommand,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  UpdateItemCommand,
  UpdateTimeToLiveCommand,
  waitUntilTableExists,
  type AttributeValue,
  type DynamoDBClientConfig
} from '@aws-sdk/client-dynamodb'
import { LocalQueue, waitInLine, type Place } from './local-queue.js'
import { LockTimeout, LockUnavailable, whenAborted } from './locker.js'
import { Wakeups } from './wakeups.js'
import type { Lock, Locker, LockOptions, ReleaseReason } from './locker.js'

export interface DynamoLockerOptions {
  /**
   * A `DynamoDBClient`, or its configuration (region, endpoint, credentials). A client you pass
   * stays yours: `close()` does not destroy it. Default: a client from the environment
   * (`AWS_REGION`, credentials chain).
   */
  client?: DynamoDBClient | DynamoDBClientConfig | undefined
  /** The table (partition key `id`, a string; see `createLockTable`). Default `tus-locks`. */
  table?: string | undefined
  /** Prefix of the items' keys, so several deployments can share a table. Default `tus:lock:`. */
  keyPrefix?: string | undefined
  /** Lease of a lock in ms; the holder keeps renewing it. Default 10 000. */
  ttl?: number | undefined
  /** Milliseconds between renewals of a held lease; less than half the TTL. Default a third of the TTL. */
  renewInterval?: number | undefined
  /**
   * Milliseconds between two looks of a holder at its item (release requests, loss) and between
   * two attempts of a waiter. Less than `renewInterval`. Default 500.
   */
  pollInterval?: number | undefined
  /** Longest time in ms one DynamoDB call may take before the locker gives up on it. Default 3000. */
  commandTimeout?: number | undefined
}

interface Held {
  id: string
  key: string
  token: string
  onReleaseRequested: (reason: ReleaseReason) => void
  asked: Set<ReleaseReason>
  pollTimer: NodeJS.Timeout | undefined
  lostTimer: NodeJS.Timeout | undefined
  /** When the last confirmed-or-not renewal was sent. */
  renewedAt: number
  busy: boolean
  lost: boolean
  done: boolean
}

/** What a conditional call answers when its condition did not hold. */
const CONDITION_FAILED = Symbol('condition failed')

type Item = Record<string, AttributeValue>

export class DynamoLocker implements Locker {
  readonly table: string
  readonly keyPrefix: string
  readonly ttl: number
  readonly renewInterval: number
  readonly pollInterval: number
  readonly commandTimeout: number
  readonly #client: DynamoDBClient
  readonly #ownsClient: boolean
  #closed = false
  /** Locks this instance holds, by token. */
  readonly #held = new Map<string, Held>()
  readonly #waiters = new Wakeups()
  readonly #queue = new LocalQueue()

  constructor (options: DynamoLockerOptions = {}) {
    this.table = options.table ?? 'tus-locks'
    this.keyPrefix = options.keyPrefix ?? 'tus:lock:'
    this.ttl = options.ttl ?? 10_000
    this.renewInterval = options.renewInterval ?? Math.floor(this.ttl / 3)
    this.pollInterval = options.pollInterval ?? Math.min(500, Math.floor(this.renewInterval / 2))
    this.commandTimeout = options.commandTimeout ?? 3000
    if (typeof this.table !== 'string' || this.table === '') throw new TypeError('DynamoLocker: "table" must be a non-empty string')
    if (typeof this.keyPrefix !== 'string') throw new TypeError('DynamoLocker: "keyPrefix" must be a string')
    for (const name of ['ttl', 'renewInterval', 'pollInterval', 'commandTimeout'] as const) {
      if (!Number.isInteger(this[name]) || this[name] < 1) throw new TypeError(`DynamoLocker: "${name}" must be a positive integer`)
    }
    if (this.renewInterval * 2 >= this.ttl) throw new TypeError('DynamoLocker: "renewInterval" must be less than half of "ttl"')
    if (this.pollInterval >= this.renewInterval) throw new TypeError('DynamoLocker: "pollInterval" must be less than "renewInterval"')
    const client = options.client
    if (client instanceof DynamoDBClient) {
      this.#client = client
      this.#ownsClient = false
    } else {
      this.#client = new DynamoDBClient(client ?? {})
      this.#ownsClient = true
    }
  }

  async lock (id: string, options: LockOptions): Promise<Lock> {
    if (typeof id !== 'string' || id === '') throw new TypeError('DynamoLocker: the lock id must be a non-empty string')
    const key = this.keyPrefix + id
    const token = randomBytes(12).toString('base64url')
    const aborted = whenAborted(id, options.signal)
    let wake: () => void = () => {}
    const listener = (): void => wake()
    this.#waiters.add(id, listener)
    const place = this.#queue.join(id)
    const askedOwners = new Set<string>()
    let sentAt: number
    try {
      if (place.ahead !== undefined) {
        for (const held of this.#held.values()) if (held.id === id) ask(held, 'requested')
        await waitInLine(place.ahead, aborted.promise, () => new Promise((resolve) => { wake = resolve }), () => this.#checkOpen(id))
      }
      for (;;) {
        if (options.signal.aborted) throw new LockTimeout(id, { cause: options.signal.reason })
        this.#checkOpen(id)
        const changed = new Promise<void>((resolve) => { wake = resolve })
        sentAt = Date.now()
        const attempt = this.#call(id, async (abortSignal) => await this.#client.send(new PutItemCommand({
          TableName: this.table,
          Item: this.#leaseItem(key, token, sentAt),
          ConditionExpression: 'attribute_not_exists(#id) OR #lease < :now',
          ExpressionAttributeNames: { '#id': 'id', '#lease': 'leaseUntil' },
          ExpressionAttributeValues: { ':now': { N: String(sentAt) } }
        }), { abortSignal }))
        let taken: boolean
        try {
          taken = (await Promise.race([attempt, aborted.promise])) !== CONDITION_FAILED
        } catch (err) {
          // the write may still land: undo it so it does not block everyone for a lease
          attempt.then(() => {}, () => {}).finally(() => { this.#delete(id, key, token).catch(ignore) })
          throw err
        }
        if (taken) break
        const current = await Promise.race([this.#read(id, key), aborted.promise])
        let delay = this.pollInterval
        if (current === undefined) {
          delay = 0
        } else {
          const owner = current.owner?.S ?? ''
          const leaseUntil = Number(current.leaseUntil?.N ?? 0)
          delay = Math.max(0, Math.min(this.pollInterval, leaseUntil - Date.now() + 1))
          if (!askedOwners.has(owner)) {
            askedOwners.add(owner)
            this.#askToRelease(id, key, owner)
          }
        }
        if (delay === 0) continue
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

  /** Resolves once the table can be described; rejects with the reason otherwise. Handy at startup. */
  async ready (): Promise<void> {
    try {
      await this.#call('(readiness check)', async (abortSignal) =>
        await this.#client.send(new DescribeTableCommand({ TableName: this.table }), { abortSignal }))
    } catch (err) {
      throw err instanceof LockUnavailable && err.cause !== undefined ? err.cause : err
    }
  }

  /**
   * Stops renewing (locks still held end with their lease), fails waiters with `LockUnavailable`,
   * and destroys the client if the locker created it.
   */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const held of this.#held.values()) stopTimers(held)
    this.#held.clear()
    this.#waiters.wakeAll()
    if (this.#ownsClient) this.#client.destroy()
  }

  #checkOpen (id: string): void {
    if (this.#closed) throw new LockUnavailable(id, { cause: new Error('DynamoLocker is closed') })
  }

  #leaseItem (key: string, token: string, now: number): Item {
    const leaseUntil = now + this.ttl
    return {
      id: { S: key },
      owner: { S: token },
      leaseUntil: { N: String(leaseUntil) },
      expiresAt: { N: String(Math.ceil(leaseUntil / 1000)) }
    }
  }

  #hold (id: string, key: string, token: string, onReleaseRequested: (reason: ReleaseReason) => void, sentAt: number, place: Place): Lock {
    const held: Held = {
      id, key, token, onReleaseRequested, asked: new Set(), pollTimer: undefined, lostTimer: undefined, renewedAt: sentAt, busy: false, lost: false, done: false
    }
    this.#held.set(token, held)
    this.#armLost(held, sentAt)
    held.pollTimer = setInterval(() => { this.#look(held).catch(ignore) }, this.pollInterval)
    held.pollTimer.unref()
    if (place.followed()) ask(held, 'requested')
    return {
      unlock: async () => {
        if (held.done) return
        held.done = true
        stopTimers(held)
        this.#held.delete(token)
        try {
          await this.#delete(id, key, token)
        } finally {
          place.leave()
          this.#waiters.wake(id)
        }
      }
    }
  }

  /** Reads the item (or renews the lease when due) and tells the holder what it finds. */
  async #look (held: Held): Promise<void> {
    if (held.busy || held.done || held.lost) return
    held.busy = true
    const sentAt = Date.now()
    const renewing = sentAt - held.renewedAt >= this.renewInterval - this.pollInterval / 2
    const lastRenewal = held.renewedAt
    try {
      let item: Item | undefined
      if (renewing) {
        held.renewedAt = sentAt
        const lease = this.#leaseItem(held.key, held.token, sentAt)
        const renewed = await this.#call(held.id, async (abortSignal) => await this.#client.send(new UpdateItemCommand({
          TableName: this.table,
          Key: { id: { S: held.key } },
          UpdateExpression: 'SET #lease = :lease, #expires = :expires',
          ConditionExpression: '#owner = :token',
          ExpressionAttributeNames: { '#lease': 'leaseUntil', '#expires': 'expiresAt', '#owner': 'owner' },
          ExpressionAttributeValues: { ':lease': lease.leaseUntil as AttributeValue, ':expires': lease.expiresAt as AttributeValue, ':token': { S: held.token } },
          ReturnValues: 'ALL_NEW'
        }), { abortSignal }))
        if (held.done || held.lost) return
        if (renewed === CONDITION_FAILED) {
          this.#lose(held)
          return
        }
        this.#armLost(held, sentAt)
        item = renewed.Attributes
      } else {
        item = await this.#read(held.id, held.key)
        if (held.done || held.lost) return
        if (item?.owner?.S !== held.token) {
          this.#lose(held)
          return
        }
      }
      if (item?.release !== undefined) ask(held, 'requested')
    } catch {
      // DynamoDB cannot be reached: the next look tries the renewal again; the lost timer decides
      if (renewing) held.renewedAt = lastRenewal
    } finally {
      held.busy = false
    }
  }

  /** The lease written at `sentAt` runs until `sentAt + ttl`: give up a renewal interval before. */
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

  #askToRelease (id: string, key: string, owner: string): void {
    const local = this.#held.get(owner)
    if (local !== undefined) {
      ask(local, 'requested')
      return
    }
    if (owner === '') return
    this.#call(id, async (abortSignal) => await this.#client.send(new UpdateItemCommand({
      TableName: this.table,
      Key: { id: { S: key } },
      UpdateExpression: 'SET #release = :at',
      ConditionExpression: '#owner = :owner',
      ExpressionAttributeNames: { '#release': 'release', '#owner': 'owner' },
      ExpressionAttributeValues: { ':at': { N: String(Date.now()) }, ':owner': { S: owner } }
    }), { abortSignal })).catch(ignore)
  }

  async #read (id: string, key: string): Promise<Item | undefined> {
    const got = await this.#call(id, async (abortSignal) => await this.#client.send(new GetItemCommand({
      TableName: this.table,
      Key: { id: { S: key } },
      ConsistentRead: true
    }), { abortSignal }))
    return got === CONDITION_FAILED ? undefined : got.Item
  }

  /** Deletes the item if it still holds `token`. */
  async #delete (id: string, key: string, token: string): Promise<void> {
    await this.#call(id, async (abortSignal) => await this.#client.send(new DeleteItemCommand({
      TableName: this.table,
      Key: { id: { S: key } },
      ConditionExpression: '#owner = :token',
      ExpressionAttributeNames: { '#owner': 'owner' },
      ExpressionAttributeValues: { ':token': { S: token } }
    }), { abortSignal }))
  }

  /**
   * Runs one call bounded by `commandTimeout` (aborted when it runs over). A failed condition
   * answers `CONDITION_FAILED`; any other failure rejects with `LockUnavailable`.
   */
  async #call<T> (id: string, run: (abortSignal: AbortSignal) => Promise<T>): Promise<T | typeof CONDITION_FAILED> {
    const controller = new AbortController()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        const err = new Error(`DynamoDB did not answer within ${this.commandTimeout} ms`)
        controller.abort(err)
        reject(err)
      }, this.commandTimeout)
    })
    const call = run(controller.signal)
    call.catch(ignore)
    try {
      return await Promise.race([call, timeout])
    } catch (err) {
      if (isConditionFailed(err)) return CONDITION_FAILED
      throw new LockUnavailable(id, { cause: err })
    } finally {
      clearTimeout(timer)
    }
  }
}

export interface CreateLockTableResult {
  /** Whether the table was created now (false: it existed). */
  created: boolean
  /** Whether expiry of abandoned items (TTL on `expiresAt`) is on; false where the service does not offer it. */
  timeToLive: boolean
}

/**
 * Creates the lock table if it does not exist (partition key `id` of type string, on-demand
 * billing), waits until it is active and turns on TTL on `expiresAt`. Needs
 * `dynamodb:CreateTable`, `dynamodb:DescribeTable` and `dynamodb:UpdateTimeToLive`.
 */
export async function createLockTable (client: DynamoDBClient, name: string, options: { maxWaitTime?: number } = {}): Promise<CreateLockTableResult> {
  let created = true
  try {
    await client.send(new CreateTableCommand({
      TableName: name,
      AttributeDefinitions: [{ AttributeName: 'id', AttributeType: 'S' }],
      KeySchema: [{ AttributeName: 'id', KeyType: 'HASH' }],
      BillingMode: 'PAY_PER_REQUEST'
    }))
  } catch (err) {
    if ((err as { name?: string }).name !== 'ResourceInUseException') throw err
    created = false
  }
  await waitUntilTableExists({ client, maxWaitTime: (options.maxWaitTime ?? 120_000) / 1000, minDelay: 1 }, { TableName: name })
  let timeToLive = true
  try {
    await client.send(new UpdateTimeToLiveCommand({
      TableName: name,
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true }
    }))
  } catch (err) {
    const name = (err as { name?: string }).name
    if (name === 'ValidationException' && /already enabled/i.test((err as Error).message)) {
      // turned on before
    } else if (name === 'UnknownOperationException') {
      timeToLive = false // DynamoDB look-alikes without TTL (dynalite)
    } else {
      throw err
    }
  }
  return { created, timeToLive }
}

function isConditionFailed (err: unknown): boolean {
  return (err as { name?: string } | undefined)?.name === 'ConditionalCheckFailedException'
}

function ask (held: Held, reason: ReleaseReason): void {
  if (held.asked.has(reason)) return
  held.asked.add(reason)
  held.onReleaseRequested(reason)
}

function stopTimers (held: Held): void {
  clearInterval(held.pollTimer)
  clearTimeout(held.lostTimer)
}

function ignore (): void {}
