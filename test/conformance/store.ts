/**
 * The behaviour every store must have. Each store's test file calls `storeConformance` with a
 * factory; a store that lacks an optional capability skips the tests of that capability.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import type { Test } from 'tap'
import {
  OffsetMismatch, UploadExists, UploadNotFound, canConcat, canDeferLength, canExpire, canServe, canTerminate
} from '../../stores/store.js'
import type { DataStore } from '../../stores/store.js'

export interface StoreFactory {
  (): Promise<{ store: DataStore, cleanup?: () => Promise<void> }>
}

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

export function storeConformance (t: Test, name: string, factory: StoreFactory): void {
  t.test(`${name}: store conformance`, async (t) => {
    const { store, cleanup } = await factory()
    if (cleanup !== undefined) t.teardown(cleanup)

    t.test('create then get', async (t) => {
      const id = newId()
      const created = await store.create({ id, size: 11, metadata: { filename: 'a.txt', empty: '', name: 'bär ✓' } })
      t.equal(created.id, id)
      t.equal(created.size, 11)
      t.equal(created.offset, 0)
      const got = await store.get(id)
      t.same(got.metadata, { filename: 'a.txt', empty: '', name: 'bär ✓' })
      t.equal(got.offset, 0)
      t.equal(got.size, 11)
      t.ok(got.createdAt instanceof Date)
      t.ok(got.updatedAt instanceof Date)
      await t.rejects(store.create({ id, size: 1, metadata: {} }), UploadExists)
    })

    t.test('a per-upload size limit is kept', async (t) => {
      const id = newId()
      await store.create({ id, size: 10, metadata: {}, maxSize: 1234 })
      t.equal((await store.get(id)).maxSize, 1234)
      const plain = newId()
      await store.create({ id: plain, size: 1, metadata: {} })
      t.equal((await store.get(plain)).maxSize, undefined)
    })

    t.test('metadata values that are not UTF-8 keep their bytes', async (t) => {
      const id = newId()
      const binaryMetadata = { raw: Buffer.from([0xff, 0x00, 0xc3]).toString('base64') }
      await store.create({ id, size: 1, metadata: { raw: '\ufffd\u0000\ufffd', text: 'ok' }, binaryMetadata })
      const got = await store.get(id)
      t.same(got.metadata, { raw: '\ufffd\u0000\ufffd', text: 'ok' })
      t.same(got.binaryMetadata, binaryMetadata)
      const plain = newId()
      await store.create({ id: plain, size: 1, metadata: { text: 'ok' } })
      t.equal((await store.get(plain)).binaryMetadata, undefined)
    })

    t.test('unknown and unsafe ids are not found', async (t) => {
      await t.rejects(store.get(newId()), UploadNotFound)
      await t.rejects(store.get('../../etc/passwd'), UploadNotFound)
      await t.rejects(store.write(newId(), { offset: 0, body: bodyOf(Buffer.from('x')) }), UploadNotFound)
    })

    t.test('writes append and report what they stored', async (t) => {
      const id = newId()
      const data = randomBytes(300 * 1024)
      await store.create({ id, size: data.length, metadata: {} })
      t.equal(await store.write(id, { offset: 0, body: bodyOf(data.subarray(0, 100 * 1024)) }), 100 * 1024)
      t.equal((await store.get(id)).offset, 100 * 1024)
      await t.rejects(store.write(id, { offset: 0, body: bodyOf(Buffer.from('nope')) }), OffsetMismatch)
      t.equal(await store.write(id, { offset: 100 * 1024, body: bodyOf(Buffer.alloc(0)) }), 0)
      t.equal(await store.write(id, { offset: 100 * 1024, body: bodyOf(data.subarray(100 * 1024)) }), 200 * 1024)
      const info = await store.get(id)
      t.equal(info.offset, data.length)
      if (canServe(store)) t.same(await collect(await store.read(id)), data)
    })

    t.test('a failing body keeps the bytes that arrived', async (t) => {
      const id = newId()
      await store.create({ id, size: 100, metadata: {} })
      const written = await store.write(id, { offset: 0, body: failingBody(Buffer.from('0123456789')) })
      t.equal(written, 10)
      t.equal((await store.get(id)).offset, 10)
    })

    t.test('a chunk rejected before commit leaves the offset unchanged', async (t) => {
      const id = newId()
      await store.create({ id, size: 8, metadata: {} })
      await store.write(id, { offset: 0, body: bodyOf(Buffer.from('abcd')) })
      const refusal = new Error('checksum mismatch')
      await t.rejects(store.write(id, {
        offset: 4,
        body: bodyOf(Buffer.from('XXXX')),
        beforeCommit: () => { throw refusal }
      }), refusal)
      t.equal((await store.get(id)).offset, 4)
      let verified = false
      await store.write(id, { offset: 4, body: bodyOf(Buffer.from('efgh')), beforeCommit: () => { verified = true } })
      t.ok(verified)
      t.equal((await store.get(id)).offset, 8)
      if (canServe(store)) t.equal((await collect(await store.read(id))).toString(), 'abcdefgh')
    })

    t.test('several MiB in one write keep every byte', async (t) => {
      const id = newId()
      const data = randomBytes(6 * 1024 * 1024 + 123)
      await store.create({ id, size: data.length, metadata: {} })
      t.equal(await store.write(id, { offset: 0, body: bodyOf(data) }), data.length)
      t.equal((await store.get(id)).offset, data.length)
      if (canServe(store)) {
        const back = await collect(await store.read(id))
        t.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'))
      }
    })

    t.test('deferred length', { skip: !canDeferLength(store) && 'store does not defer lengths' }, async (t) => {
      if (!canDeferLength(store)) return
      const id = newId()
      const created = await store.create({ id, metadata: {} })
      t.equal(created.size, undefined)
      await store.write(id, { offset: 0, body: bodyOf(Buffer.from('hello ')) })
      await store.declareLength(id, 11)
      await store.write(id, { offset: 6, body: bodyOf(Buffer.from('world')) })
      const info = await store.get(id)
      t.equal(info.size, 11)
      t.equal(info.offset, 11)
      if (canServe(store)) t.equal((await collect(await store.read(id))).toString(), 'hello world')
    })

    t.test('ranges', { skip: !canServe(store) && 'store does not serve downloads' }, async (t) => {
      if (!canServe(store)) return
      const id = newId()
      await store.create({ id, size: 10, metadata: {} })
      await store.write(id, { offset: 0, body: bodyOf(Buffer.from('0123456789')) })
      t.equal((await collect(await store.read(id, { start: 2, end: 5 }))).toString(), '2345')
      t.equal((await collect(await store.read(id, { start: 9, end: 9 }))).toString(), '9')
      await t.rejects(store.read(newId()), UploadNotFound)
    })

    t.test('termination', { skip: !canTerminate(store) && 'store does not terminate' }, async (t) => {
      if (!canTerminate(store)) return
      const id = newId()
      await store.create({ id, size: 3, metadata: {} })
      await store.write(id, { offset: 0, body: bodyOf(Buffer.from('abc')) })
      await store.remove(id)
      await t.rejects(store.get(id), UploadNotFound)
      await store.remove(id)
      await store.remove(newId())
    })

    t.test('concatenation', { skip: !canConcat(store) && 'store does not concatenate' }, async (t) => {
      if (!canConcat(store)) return
      const a = newId()
      const b = newId()
      const final = newId()
      const partA = randomBytes(1000)
      const partB = randomBytes(2345)
      await store.create({ id: a, size: partA.length, metadata: {}, concat: { kind: 'partial' } })
      await store.create({ id: b, size: partB.length, metadata: {}, concat: { kind: 'partial' } })
      await store.write(a, { offset: 0, body: bodyOf(partA) })
      await store.write(b, { offset: 0, body: bodyOf(partB) })
      const value = `final;/files/${a} http://up.example/files/${b} /files/${a}`
      await store.create({ id: final, size: partA.length * 2 + partB.length, metadata: { k: 'v' }, concat: { kind: 'final', parts: [a, b, a], value } })
      await store.concat(final, [a, b, a])
      const info = await store.get(final)
      t.equal(info.offset, info.size)
      t.same(info.concat, { kind: 'final', parts: [a, b, a], value }, 'the value as received is kept')
      t.same((await store.get(a)).concat, { kind: 'partial' })
      if (canServe(store)) t.same(await collect(await store.read(final)), Buffer.concat([partA, partB, partA]))
      await t.rejects(store.concat(newId(), [a]), UploadNotFound)
    })

    t.test('expiration', { skip: !canExpire(store) && 'store does not expire' }, async (t) => {
      if (!canExpire(store)) return
      const unfinished = newId()
      const finished = newId()
      await store.create({ id: unfinished, size: 10, metadata: {} })
      await store.write(unfinished, { offset: 0, body: bodyOf(Buffer.from('abc')) })
      await store.create({ id: finished, size: 3, metadata: {} })
      await store.write(finished, { offset: 0, body: bodyOf(Buffer.from('abc')) })
      t.equal(await store.removeExpired(new Date(Date.now() - 60_000)), 0, 'recent uploads stay')
      const removed = await store.removeExpired(new Date(Date.now() + 60_000))
      t.ok(removed >= 1)
      await t.rejects(store.get(unfinished), UploadNotFound)
      t.equal((await store.get(finished)).offset, 3, 'completed uploads never expire')
    })
  })
}
