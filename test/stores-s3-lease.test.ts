/**
 * The S3 store under a lock lease (`LeaseOptions.lease`, `Chunk.lease`) on a real radosgw: a
 * chain of PATCHes costs no S3 request besides its parts, what the store remembers is always
 * what S3 holds (checked against a second store on the same bucket after every step of a random
 * chain), and another lease, another process's writes or a failed write make it read S3 again.
 */
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { S3Store, type S3StoreOptions } from '../stores/s3.js'
import type { Chunk } from '../stores/store.js'
import { bodyOf } from './conformance/store.js'
import { s3Server, withS3 } from './helpers/ceph-s3.js'
import { collect, recordCommands } from './helpers/s3-inspect.js'

const MiB = 1024 * 1024

interface Setup {
  store: S3Store
  /** The commands `store` sent so far (emptied by the caller). */
  sent: string[]
  /** Another store on the same bucket: another process, or this one after a restart. */
  other: S3Store
}

async function setup (t: Test, options: Partial<S3StoreOptions> = {}): Promise<Setup> {
  const server = await s3Server()
  const bucket = await server.bucket()
  const client = server.client()
  const sent = recordCommands(client)
  const store = new S3Store({ client, bucket, partSize: 5 * MiB, ...options })
  const other = new S3Store({ s3: server.config, bucket, partSize: 5 * MiB, ...options })
  t.teardown(() => { client.destroy(); other.destroy() })
  return { store, sent, other }
}

withS3(t, () => {
  t.test('a leased chain of PATCHes sends S3 its parts and nothing else', async (t) => {
    const { store, sent, other } = await setup(t)
    const data = randomBytes(20 * MiB)
    const lease = 'lease-1'
    await store.create({ id: 'chain', size: data.length, metadata: {} }, { lease })
    for (let offset = 0; offset < 15 * MiB; offset += 5 * MiB) {
      sent.length = 0
      const upload = await store.get('chain', { lease })
      t.equal(upload.offset, offset)
      t.same(sent, [], `the get at ${offset / MiB} MiB sends nothing`)
      t.equal(await store.write('chain', { offset, body: bodyOf(data.subarray(offset, offset + 5 * MiB)), lease }), 5 * MiB)
      t.same(sent, ['UploadPartCommand'], 'the write sends its part and nothing else')
      t.equal((await other.get('chain')).offset, offset + 5 * MiB, 'S3 holds what the store remembers')
    }
    sent.length = 0
    t.equal(await store.write('chain', { offset: 15 * MiB, body: bodyOf(data.subarray(15 * MiB)), lease }), 5 * MiB)
    t.same(sent.filter((name) => name !== 'UploadPartCommand').sort(),
      ['CompleteMultipartUploadCommand', 'DeleteObjectCommand', 'PutObjectCommand'], 'the last write completes the object')
    sent.length = 0
    const done = await store.get('chain', { lease })
    t.equal(done.offset, data.length)
    t.same(sent, [], 'a complete upload is remembered too')
    t.ok((await collect(await other.read('chain'))).equals(data))
  })

  t.test('without a lease, or under another one, the store reads S3', async (t) => {
    const { store, sent, other } = await setup(t)
    const data = randomBytes(16 * MiB)
    await store.create({ id: 'moved', size: data.length, metadata: {} }, { lease: 'a' })
    t.equal(await store.write('moved', { offset: 0, body: bodyOf(data.subarray(0, 2 * MiB)), lease: 'a' }), 2 * MiB)
    // the lock went to another process, which wrote; ours comes back with a new lease
    t.equal(await other.write('moved', { offset: 2 * MiB, body: bodyOf(data.subarray(2 * MiB, 9 * MiB)) }), 7 * MiB)
    sent.length = 0
    t.equal((await store.get('moved', { lease: 'b' })).offset, 9 * MiB, 'a new lease sees the other process\'s bytes')
    t.ok(sent.includes('ListPartsCommand'), 'it listed the parts again')
    t.equal(await store.write('moved', { offset: 9 * MiB, body: bodyOf(data.subarray(9 * MiB, 12 * MiB)), lease: 'b' }), 3 * MiB)
    t.equal(await other.write('moved', { offset: 12 * MiB, body: bodyOf(data.subarray(12 * MiB)) }), 4 * MiB)
    // a write or get that names no lease never trusts what was remembered
    await t.rejects(store.write('moved', { offset: 12 * MiB, body: bodyOf(data.subarray(12 * MiB)) }), { name: 'OffsetMismatch' })
    sent.length = 0
    t.equal((await store.get('moved')).offset, data.length)
    t.ok(sent.length > 0, `a get without a lease reads S3 (${sent.join(', ')})`)
    t.ok((await collect(await store.read('moved'))).equals(data))
  })

  t.test('a write that fails leaves nothing remembered', async (t) => {
    const { store, sent, other } = await setup(t)
    const data = randomBytes(12 * MiB)
    const lease = 'l'
    await store.create({ id: 'refused', size: data.length, metadata: {} }, { lease })
    await store.write('refused', { offset: 0, body: bodyOf(data.subarray(0, MiB)), lease })
    const refusal = new Error('checksum mismatch')
    await t.rejects(store.write('refused', {
      offset: MiB, body: bodyOf(randomBytes(8 * MiB)), lease, beforeCommit: () => { throw refusal }
    }), refusal)
    sent.length = 0
    t.equal((await store.get('refused', { lease })).offset, MiB, 'the offset did not move')
    t.ok(sent.includes('ListPartsCommand'), 'and it was read from S3')
    await store.write('refused', { offset: MiB, body: bodyOf(data.subarray(MiB)), lease })
    t.ok((await collect(await other.read('refused'))).equals(data))
  })

  t.test('what a random leased chain leaves is what S3 holds, after every step', async (t) => {
    const { store, sent, other } = await setup(t)
    const size = 37 * MiB + 12345
    const data = randomBytes(size)
    const lease = 'random'
    // sizes below, at and across the part size, so leftovers come, grow, go into parts and stay
    const lengths = [MiB, 3 * MiB, 7 * MiB + 1, 5 * MiB, 4 * MiB - 1, 2, 9 * MiB, MiB]
    await store.create({ id: 'walk', metadata: {} }, { lease })
    let offset = 0
    let step = 0
    while (offset < size) {
      const length = Math.min(lengths[step % lengths.length] as number, size - offset)
      const chunk: Chunk = { offset, body: bodyOf(data.subarray(offset, offset + length)), lease }
      if (step === 3) {
        // a refused chunk: its parts reach S3 but must never count
        await t.rejects(store.write('walk', { ...chunk, beforeCommit: () => { throw new Error('no') } }))
      } else {
        if (step === 4) await store.declareLength('walk', size)
        const verified: number[] = []
        if (step % 2 === 1) chunk.beforeCommit = () => { verified.push(1) }
        t.equal(await store.write('walk', chunk), length)
        offset += length
      }
      sent.length = 0
      const remembered = await store.get('walk', { lease })
      // after a refused chunk the store reads S3 again; after any other write it knows
      t.equal(sent.length === 0, step !== 3, `step ${step}: the get sent ${sent.join(', ') || 'nothing'}`)
      const stored = await other.get('walk')
      t.equal(remembered.offset, offset, `step ${step}: the remembered offset`)
      t.equal(stored.offset, offset, `step ${step}: S3's offset`)
      t.equal(remembered.size, stored.size, `step ${step}: the length`)
      step++
    }
    t.ok((await collect(await other.read('walk'))).equals(data), 'the object is the bytes sent')
  })
})
