/**
 * The behaviour every store must have, as a runner-independent suite: `storeSuite(name, factory)`
 * returns cases that throw (through `node:assert`) on failure. docs/writing-a-store.md states
 * each rule and shows how to run the suite under node:test, tap, vitest or mocha.
 */
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { canConcat, canDeferLength, canExpire, canPlace, canServe, canTerminate } from '../stores/store.js'
import type { DataStore } from '../stores/store.js'
import { isCoded } from './suite.js'
import type { ConformanceCase, ConformanceSuite } from './suite.js'

export interface StoreFactory {
  (): Promise<{ store: DataStore, cleanup?: () => Promise<void> }>
}

const notFound = isCoded('ERR_UPLOAD_NOT_FOUND', 'UPLOAD_NOT_FOUND')
const exists = isCoded('ERR_UPLOAD_EXISTS', 'UPLOAD_EXISTS')
const mismatch = isCoded('OFFSET_MISMATCH')
const invalidStorage = isCoded('ERR_INVALID_STORAGE')
const storageTaken = isCoded('ERR_STORAGE_TAKEN')

let counter = 0
function newId (): string {
  return `c${process.pid}x${Date.now().toString(36)}x${(counter++).toString(36)}`
}

async function collect (stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const part of stream) parts.push(part as Buffer)
  return Buffer.concat(parts)
}

/** A body that yields `data` in pieces of `piece` bytes. */
export function bodyOf (data: Buffer, piece = 64 * 1024): Readable {
  return Readable.from((function * () {
    for (let i = 0; i < data.length; i += piece) yield data.subarray(i, i + piece)
  })(), { objectMode: false })
}

/** A body that yields `data` and then fails. */
function failingBody (data: Buffer): Readable {
  return Readable.from((async function * () {
    yield data
    throw new Error('connection reset')
  })(), { objectMode: false })
}

export function storeSuite (name: string, factory: StoreFactory): ConformanceSuite {
  let made: Awaited<ReturnType<StoreFactory>> | undefined
  const store = (): DataStore => {
    if (made === undefined) throw new Error('storeSuite: setup() was not run')
    return made.store
  }
  const lacks = (has: (store: DataStore) => boolean, reason: string) => () => (has(store()) ? false : reason)
  const always = (): false => false

  const cases: ConformanceCase[] = [{
    name: 'create then get',
    skip: always,
    run: async () => {
      const s = store()
      const id = newId()
      const created = await s.create({ id, size: 11, metadata: { filename: 'a.txt', empty: '', name: 'bär ✓' } })
      assert.equal(created.id, id)
      assert.equal(created.size, 11)
      assert.equal(created.offset, 0)
      const got = await s.get(id)
      assert.deepEqual(got.metadata, { filename: 'a.txt', empty: '', name: 'bär ✓' })
      assert.equal(got.offset, 0)
      assert.equal(got.size, 11)
      assert.ok(got.createdAt instanceof Date)
      assert.ok(got.updatedAt instanceof Date)
      await assert.rejects(s.create({ id, size: 1, metadata: {} }), exists)
    }
  }, {
    name: 'a per-upload size limit is kept',
    skip: always,
    run: async () => {
      const s = store()
      const id = newId()
      await s.create({ id, size: 10, metadata: {}, maxSize: 1234 })
      assert.equal((await s.get(id)).maxSize, 1234)
      const plain = newId()
      await s.create({ id: plain, size: 1, metadata: {} })
      assert.equal((await s.get(plain)).maxSize, undefined)
    }
  }, {
    name: 'metadata values that are not UTF-8 keep their bytes',
    skip: always,
    run: async () => {
      const s = store()
      const id = newId()
      const binaryMetadata = { raw: Buffer.from([0xff, 0x00, 0xc3]).toString('base64') }
      await s.create({ id, size: 1, metadata: { raw: '\ufffd\u0000\ufffd', text: 'ok' }, binaryMetadata })
      const got = await s.get(id)
      assert.deepEqual(got.metadata, { raw: '\ufffd\u0000\ufffd', text: 'ok' })
      assert.deepEqual(got.binaryMetadata, binaryMetadata)
      const plain = newId()
      await s.create({ id: plain, size: 1, metadata: { text: 'ok' } })
      assert.equal((await s.get(plain)).binaryMetadata, undefined)
    }
  }, {
    name: 'unknown and unsafe ids are not found',
    skip: always,
    run: async () => {
      const s = store()
      await assert.rejects(s.get(newId()), notFound)
      await assert.rejects(s.get('../../etc/passwd'), notFound)
      await assert.rejects(s.write(newId(), { offset: 0, body: bodyOf(Buffer.from('x')) }), notFound)
    }
  }, {
    name: 'writes append and report what they stored',
    skip: always,
    run: async () => {
      const s = store()
      const id = newId()
      const data = randomBytes(300 * 1024)
      await s.create({ id, size: data.length, metadata: {} })
      assert.equal(await s.write(id, { offset: 0, body: bodyOf(data.subarray(0, 100 * 1024)) }), 100 * 1024)
      assert.equal((await s.get(id)).offset, 100 * 1024)
      await assert.rejects(s.write(id, { offset: 0, body: bodyOf(Buffer.from('nope')) }), mismatch)
      assert.equal(await s.write(id, { offset: 100 * 1024, body: bodyOf(Buffer.alloc(0)) }), 0)
      assert.equal(await s.write(id, { offset: 100 * 1024, body: bodyOf(data.subarray(100 * 1024)) }), 200 * 1024)
      assert.equal((await s.get(id)).offset, data.length)
      if (canServe(s)) assert.deepEqual(await collect(await s.read(id)), data)
    }
  }, {
    name: 'a failing body keeps the bytes that arrived',
    skip: always,
    run: async () => {
      const s = store()
      const id = newId()
      await s.create({ id, size: 100, metadata: {} })
      const written = await s.write(id, { offset: 0, body: failingBody(Buffer.from('0123456789')) })
      assert.equal(written, 10)
      assert.equal((await s.get(id)).offset, 10)
    }
  }, {
    name: 'a chunk rejected before commit leaves the offset unchanged',
    skip: always,
    run: async () => {
      const s = store()
      const id = newId()
      await s.create({ id, size: 8, metadata: {} })
      await s.write(id, { offset: 0, body: bodyOf(Buffer.from('abcd')) })
      const refusal = new Error('checksum mismatch')
      await assert.rejects(s.write(id, {
        offset: 4,
        body: bodyOf(Buffer.from('XXXX')),
        beforeCommit: () => { throw refusal }
      }), (err) => err === refusal)
      assert.equal((await s.get(id)).offset, 4)
      let verified = false
      await s.write(id, { offset: 4, body: bodyOf(Buffer.from('efgh')), beforeCommit: () => { verified = true } })
      assert.ok(verified)
      assert.equal((await s.get(id)).offset, 8)
      if (canServe(s)) assert.equal((await collect(await s.read(id))).toString(), 'abcdefgh')
    }
  }, {
    name: 'under one lock lease, every call sees the calls before it',
    skip: always,
    run: async () => {
      // a store may remember an upload under a lease; what it remembers must follow every write
      const s = store()
      const id = newId()
      const lease = `lease-${id}`
      const data = randomBytes(300 * 1024)
      const deferred = canDeferLength(s)
      await s.create({ id, size: deferred ? undefined : data.length, metadata: {} }, { lease })
      assert.equal((await s.get(id, { lease })).offset, 0)
      assert.equal(await s.write(id, { offset: 0, body: bodyOf(data.subarray(0, 1000)), lease }), 1000)
      assert.equal((await s.get(id, { lease })).offset, 1000)
      await assert.rejects(s.write(id, { offset: 0, body: bodyOf(Buffer.from('nope')), lease }), mismatch)
      assert.equal(await s.write(id, { offset: 1000, body: failingBody(data.subarray(1000, 2000)), lease }), 1000)
      assert.equal((await s.get(id, { lease })).offset, 2000)
      const refusal = new Error('checksum mismatch')
      await assert.rejects(s.write(id, {
        offset: 2000, body: bodyOf(randomBytes(5000)), lease, beforeCommit: () => { throw refusal }
      }), (err) => err === refusal)
      assert.equal((await s.get(id, { lease })).offset, 2000)
      assert.equal(await s.write(id, { offset: 2000, body: bodyOf(data.subarray(2000, 100 * 1024)), lease }), 100 * 1024 - 2000)
      assert.equal((await s.get(id, { lease })).offset, 100 * 1024)
      // the same upload asked without the lease, and under a new one, is the same
      assert.equal((await s.get(id)).offset, 100 * 1024)
      assert.equal((await s.get(id, { lease: `${lease}-next` })).offset, 100 * 1024)
      if (deferred && canDeferLength(s)) {
        await s.declareLength(id, data.length)
        assert.equal((await s.get(id, { lease })).size, data.length)
      }
      assert.equal(await s.write(id, { offset: 100 * 1024, body: bodyOf(data.subarray(100 * 1024)), lease }), 200 * 1024)
      assert.equal((await s.get(id, { lease })).offset, 300 * 1024)
      if (canServe(s)) assert.deepEqual(await collect(await s.read(id)), data)
    }
  }, {
    name: 'several MiB in one write keep every byte',
    skip: always,
    run: async () => {
      const s = store()
      const id = newId()
      const data = randomBytes(6 * 1024 * 1024 + 123)
      await s.create({ id, size: data.length, metadata: {} })
      assert.equal(await s.write(id, { offset: 0, body: bodyOf(data) }), data.length)
      assert.equal((await s.get(id)).offset, data.length)
      if (canServe(s)) {
        const back = await collect(await s.read(id))
        assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'))
      }
    }
  }, {
    name: 'deferred length',
    skip: lacks(canDeferLength, 'store does not defer lengths'),
    run: async () => {
      const s = store()
      if (!canDeferLength(s)) return
      const id = newId()
      const created = await s.create({ id, metadata: {} })
      assert.equal(created.size, undefined)
      await s.write(id, { offset: 0, body: bodyOf(Buffer.from('hello ')) })
      await s.declareLength(id, 11)
      await s.write(id, { offset: 6, body: bodyOf(Buffer.from('world')) })
      const info = await s.get(id)
      assert.equal(info.size, 11)
      assert.equal(info.offset, 11)
      if (canServe(s)) assert.equal((await collect(await s.read(id))).toString(), 'hello world')
    }
  }, {
    name: 'ranges',
    skip: lacks(canServe, 'store does not serve downloads'),
    run: async () => {
      const s = store()
      if (!canServe(s)) return
      const id = newId()
      await s.create({ id, size: 10, metadata: {} })
      await s.write(id, { offset: 0, body: bodyOf(Buffer.from('0123456789')) })
      assert.equal((await collect(await s.read(id, { start: 2, end: 5 }))).toString(), '2345')
      assert.equal((await collect(await s.read(id, { start: 9, end: 9 }))).toString(), '9')
      await assert.rejects(s.read(newId()), notFound)
    }
  }, {
    name: 'termination',
    skip: lacks(canTerminate, 'store does not terminate'),
    run: async () => {
      const s = store()
      if (!canTerminate(s)) return
      const id = newId()
      await s.create({ id, size: 3, metadata: {} })
      await s.write(id, { offset: 0, body: bodyOf(Buffer.from('abc')) })
      await s.remove(id)
      await assert.rejects(s.get(id), notFound)
      await s.remove(id)
      await s.remove(newId())
    }
  }, {
    name: 'concatenation',
    skip: lacks(canConcat, 'store does not concatenate'),
    run: async () => {
      const s = store()
      if (!canConcat(s)) return
      const a = newId()
      const b = newId()
      const final = newId()
      const partA = randomBytes(1000)
      const partB = randomBytes(2345)
      await s.create({ id: a, size: partA.length, metadata: {}, concat: { kind: 'partial' } })
      await s.create({ id: b, size: partB.length, metadata: {}, concat: { kind: 'partial' } })
      await s.write(a, { offset: 0, body: bodyOf(partA) })
      await s.write(b, { offset: 0, body: bodyOf(partB) })
      const value = `final;/files/${a} http://up.example/files/${b} /files/${a}`
      await s.create({ id: final, size: partA.length * 2 + partB.length, metadata: { k: 'v' }, concat: { kind: 'final', parts: [a, b, a], value } })
      await s.concat(final, [a, b, a])
      const info = await s.get(final)
      assert.equal(info.offset, info.size)
      assert.deepEqual(info.concat, { kind: 'final', parts: [a, b, a], value }, 'the value as received is kept')
      assert.deepEqual((await s.get(a)).concat, { kind: 'partial' })
      if (canServe(s)) assert.deepEqual(await collect(await s.read(final)), Buffer.concat([partA, partB, partA]))
      await assert.rejects(s.concat(newId(), [a]), notFound)
    }
  }, {
    name: 'expiration',
    skip: lacks(canExpire, 'store does not expire'),
    run: async () => {
      const s = store()
      if (!canExpire(s)) return
      const unfinished = newId()
      const finished = newId()
      await s.create({ id: unfinished, size: 10, metadata: {} })
      await s.write(unfinished, { offset: 0, body: bodyOf(Buffer.from('abc')) })
      await s.create({ id: finished, size: 3, metadata: {} })
      await s.write(finished, { offset: 0, body: bodyOf(Buffer.from('abc')) })
      assert.equal(await s.removeExpired(new Date(Date.now() - 60_000)), 0, 'recent uploads stay')
      assert.ok(await s.removeExpired(new Date(Date.now() + 60_000)) >= 1)
      await assert.rejects(s.get(unfinished), notFound)
      assert.equal((await s.get(finished)).offset, 3, 'completed uploads never expire')
    }
  }, {
    name: 'per-upload storage',
    skip: lacks(canPlace, 'store does not place uploads'),
    run: async () => {
      const s = store()
      if (!canPlace(s)) return
      const field = s.storageFields[0] as string
      const place = `placed-${newId()}/data.bin`
      const id = newId()
      const created = await s.create({ id, size: 3, metadata: {}, storage: { [field]: place } })
      assert.ok(created.storage !== undefined, 'create reports where the upload is')
      await s.write(id, { offset: 0, body: bodyOf(Buffer.from('abc')) })
      const got = await s.get(id)
      assert.equal(got.offset, 3)
      assert.deepEqual(got.storage, created.storage, 'get reports the same place')
      if (canServe(s)) assert.equal((await collect(await s.read(id))).toString(), 'abc')
      await assert.rejects(s.create({ id: newId(), size: 3, metadata: {}, storage: { [field]: place } }), storageTaken, 'a place is one upload\'s')
      for (const bad of ['../escape', '/absolute', 'a/../../b', 'nul\u0000']) {
        const other = newId()
        await assert.rejects(s.create({ id: other, size: 3, metadata: {}, storage: { [field]: bad } }), invalidStorage, JSON.stringify(bad))
        await assert.rejects(s.get(other), notFound, 'nothing was created')
      }
      if (canTerminate(s)) {
        await s.remove(id)
        await assert.rejects(s.get(id), notFound)
        const again = newId()
        await s.create({ id: again, size: 0, metadata: {}, storage: { [field]: place } })
        await s.remove(again)
      }
    }
  }]

  return {
    name: `${name}: store conformance`,
    setup: async () => { made = await factory() },
    teardown: async () => { await made?.cleanup?.() },
    cases
  }
}
