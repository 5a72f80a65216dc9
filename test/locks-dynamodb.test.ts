/**
 * DynamoLocker against dynalite: the shared conformance suite (two instances, separate clients)
 * and what only a lease in a table has: expiry, renewal, loss, release requests through the item,
 * a bounded request rate, DynamoDB going away.
 */
import { DeleteItemCommand, GetItemCommand, PutItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { LockTimeout, LockUnavailable } from '../locks/locker.js'
import type { Lock, Locker, ReleaseReason } from '../locks/locker.js'
import { createLockTable, DynamoLocker, type DynamoLockerOptions } from '../locks/dynamodb.js'
import { lockerConformance } from './conformance/locker.js'
import { CREDENTIALS, startDynalite, withDynalite, type DynaliteServer } from './helpers/dynalite.js'

let counter = 0
const newId = (): string => `d${process.pid}x${(counter++).toString(36)}`
const TABLE = 'tus-locks'

const timers = new Set<NodeJS.Timeout>()
t.teardown(() => { for (const timer of timers) clearTimeout(timer) })

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

/** Counts the calls a client sends, by command name. */
function countCalls (client: DynamoDBClient): Map<string, number> {
  const counts = new Map<string, number>()
  client.middlewareStack.add((next, context) => async (args) => {
    const name = context.commandName ?? '?'
    counts.set(name, (counts.get(name) ?? 0) + 1)
    return await next(args)
  }, { step: 'initialize', name: 'countCalls' })
  return counts
}

withDynalite(t, () => {
  let server: DynaliteServer
  let admin: DynamoDBClient
  t.before(async () => {
    server = await startDynalite(t)
    admin = server.client(t)
    await createLockTable(admin, TABLE)
  })

  const locker = (t: Test, options: DynamoLockerOptions = {}): DynamoLocker => {
    const created = new DynamoLocker({ client: server.client(t), table: TABLE, ...options })
    t.teardown(async () => await created.close())
    return created
  }

  const itemOf = async (key: string): Promise<Record<string, { S?: string, N?: string }> | undefined> =>
    (await admin.send(new GetItemCommand({ TableName: TABLE, Key: { id: { S: key } }, ConsistentRead: true }))).Item

  lockerConformance(t, 'DynamoLocker (two instances on clients of their own)', async () => {
    const config = { endpoint: server.endpoint, region: 'us-east-1', credentials: CREDENTIALS }
    const a = new DynamoLocker({ client: config })
    const b = new DynamoLocker({ client: config })
    return { a, b, cleanup: async () => { await a.close(); await b.close() } }
  })

  t.test('createLockTable is idempotent and reports TTL support', async (t) => {
    const again = await createLockTable(admin, TABLE)
    t.same(again, { created: false, timeToLive: false }, 'existed; dynalite has no TTL operation')
    const other = await createLockTable(admin, `t-${newId()}`)
    t.equal(other.created, true)
  })

  t.test('the item holds owner, lease and TTL attribute, and is gone after unlock', async (t) => {
    const a = locker(t, { keyPrefix: 'k:', ttl: 5000 })
    const id = newId()
    const before = Date.now()
    const { lock } = await take(a, id)
    const item = await itemOf(`k:${id}`)
    t.type(item?.owner?.S, 'string')
    const lease = Number(item?.leaseUntil?.N)
    t.ok(lease >= before + 5000 && lease <= Date.now() + 5000, 'lease ends a TTL after the write')
    t.equal(Number(item?.expiresAt?.N), Math.ceil(lease / 1000), 'TTL attribute in seconds')
    await lock.unlock()
    t.equal(await itemOf(`k:${id}`), undefined)
  })

  t.test('an item left by a dead holder is taken once its lease has ended', async (t) => {
    const b = locker(t)
    const id = newId()
    const leaseUntil = Date.now() + 800
    await admin.send(new PutItemCommand({
      TableName: TABLE,
      Item: { id: { S: `tus:lock:${id}` }, owner: { S: 'dead' }, leaseUntil: { N: String(leaseUntil) }, expiresAt: { N: String(Math.ceil(leaseUntil / 1000)) } }
    }))
    await t.rejects(take(b, id, within(300)), LockTimeout, 'held while the lease runs')
    const { lock } = await take(b, id, within(3000))
    t.ok(Date.now() >= leaseUntil, 'taken after the lease ended')
    t.ok(Date.now() - leaseUntil < 700, 'soon after the lease ended')
    await lock.unlock()
  })

  t.test('renewal keeps a lock held long after its TTL; the holder sees the release request in the item', async (t) => {
    const a = locker(t, { ttl: 600, pollInterval: 50 })
    const b = locker(t, { ttl: 600, pollInterval: 50 })
    const id = newId()
    const holder = await take(a, id)
    const started = Date.now()
    while (Date.now() - started < 2000) {
      await t.rejects(take(b, id, within(200)), LockTimeout)
    }
    t.ok((await itemOf(`tus:lock:${id}`))?.release !== undefined, 'the request is an attribute of the item')
    t.same(holder.asked, ['requested'], 'asked to release, never lost')
    await holder.lock.unlock()
    const next = await take(b, id, within(1000))
    await next.lock.unlock()
  })

  t.test('"lost" when the item is deleted or overwritten; the old holder\'s unlock leaves the new item alone', async (t) => {
    const a = locker(t, { ttl: 3000 })
    const id = newId()
    const key = `tus:lock:${id}`
    const first = await take(a, id)
    await admin.send(new DeleteItemCommand({ TableName: TABLE, Key: { id: { S: key } } }))
    t.ok(await until(() => first.asked.includes('lost'), 1000), 'deleted: told within a poll interval')
    await first.lock.unlock()
    const second = await take(a, id)
    await admin.send(new PutItemCommand({
      TableName: TABLE, Item: { id: { S: key }, owner: { S: 'someone-else' }, leaseUntil: { N: String(Date.now() + 10_000) } }
    }))
    t.ok(await until(() => second.asked.includes('lost'), 1000), 'overwritten: told within a poll interval')
    await second.lock.unlock()
    t.equal((await itemOf(key))?.owner?.S, 'someone-else')
    await admin.send(new DeleteItemCommand({ TableName: TABLE, Key: { id: { S: key } } }))
  })

  t.test('request rate: a holder makes one call per poll interval, a waiter at most two, no busy loop', async (t) => {
    const holderClient = server.client(t)
    const waiterClient = server.client(t)
    const holderCalls = countCalls(holderClient)
    const waiterCalls = countCalls(waiterClient)
    const options = { table: TABLE, ttl: 6000, pollInterval: 200 }
    const a = new DynamoLocker({ client: holderClient, ...options })
    const b = new DynamoLocker({ client: waiterClient, ...options })
    t.teardown(async () => { await a.close(); await b.close() })
    const id = newId()
    const holder = await take(a, id)
    await t.rejects(take(b, id, within(2000)), LockTimeout)
    const total = (counts: Map<string, number>): number => [...counts.values()].reduce((x, y) => x + y, 0)
    t.comment(`holder ${JSON.stringify(Object.fromEntries(holderCalls))}, waiter ${JSON.stringify(Object.fromEntries(waiterCalls))}`)
    // 2 s at one look per 200 ms: about 10 looks (plus the put); a waiter: a put and a read per 200 ms, one release request
    t.ok(total(holderCalls) <= 14, `holder made ${total(holderCalls)} calls in 2 s`)
    t.ok(total(waiterCalls) <= 2 * 11 + 1, `waiter made ${total(waiterCalls)} calls in 2 s`)
    t.equal(waiterCalls.get('UpdateItemCommand'), 1, 'one release request')
    t.same(holder.asked, ['requested'])
    await holder.lock.unlock()
  })

  t.test('DynamoDB going away: the holder hears "lost", a waiter a clean error, then all works again', async (t) => {
    const options = { ttl: 1200, pollInterval: 100, commandTimeout: 300 }
    const a = locker(t, options)
    const b = locker(t, options)
    const id = newId()
    const holder = await take(a, id)
    const waiting = take(b, id, within(20_000)).then(() => 'granted', (err: unknown) => err)
    t.ok(await until(() => holder.asked.includes('requested'), 1000), 'holder asked to release')
    await server.stop()
    const stoppedAt = Date.now()
    t.type(await waiting, LockUnavailable, 'the waiter fails with LockUnavailable')
    t.ok(Date.now() - stoppedAt < 1500, `waiter failed after ${Date.now() - stoppedAt} ms`)
    t.ok(await until(() => holder.asked.includes('lost'), 1500), 'holder told "lost" before its lease could end')
    await t.rejects(take(b, newId(), within(5000)), LockUnavailable, 'locking while DynamoDB is down fails cleanly')
    await t.rejects(holder.lock.unlock(), LockUnavailable, 'unlock says it could not reach DynamoDB')
    await holder.lock.unlock()
    await server.start()
    t.ok(await eventually(async () => { await a.ready(); await b.ready() }, 10_000), 'both lockers reach it again')
    const again = await take(b, id, within(3000))
    const waiter = take(a, id, within(5000))
    t.ok(await until(() => again.asked.includes('requested'), 3000), 'locking and release requests work again')
    await again.lock.unlock()
    await (await waiter).lock.unlock()
  })

  t.test('a crowd on one instance gets the lock in arrival order, one contender at a time', async (t) => {
    const a = locker(t)
    const b = locker(t)
    const id = newId()
    const holder = await take(b, id)
    const order: number[] = []
    let inside = 0
    let most = 0
    const crowd = Array.from({ length: 20 }, async (_, i) => {
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
    t.same(order, Array.from({ length: 20 }, (_, i) => i), 'in arrival order')
    t.equal(most, 1, 'exclusive')
  })

  t.test('ready() checks the table; options are checked; close() leaves a client passed in alone', async (t) => {
    await locker(t).ready()
    await t.rejects(locker(t, { table: 'missing-table' }).ready(), { name: 'ResourceNotFoundException' })
    t.throws(() => new DynamoLocker({ ttl: 0 }), TypeError)
    t.throws(() => new DynamoLocker({ ttl: 1000, renewInterval: 500 }), TypeError)
    t.throws(() => new DynamoLocker({ ttl: 3000, renewInterval: 500, pollInterval: 500 }), TypeError)
    t.throws(() => new DynamoLocker({ table: '' }), TypeError)
    t.throws(() => new DynamoLocker({ commandTimeout: 1.5 }), TypeError)
    const client = server.client(t)
    const borrowed = new DynamoLocker({ client, table: TABLE })
    await (await take(borrowed, newId())).lock.unlock()
    await borrowed.close()
    await borrowed.close()
    await t.rejects(take(borrowed, newId()), LockUnavailable, 'a closed locker refuses')
    t.ok(await itemOf('nothing') === undefined && client.config !== undefined, 'the client passed in still works')
    const again = new DynamoLocker({ client, table: TABLE })
    await (await take(again, newId())).lock.unlock()
    await again.close()
  })
})
