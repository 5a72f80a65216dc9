/**
 * The S3 store's parts and leftover object on a real radosgw: what lands where, resuming with a
 * new store instance (as after a crash), bodies that end early, deferred lengths, refused
 * chunks, and the states a crash can leave behind.
 */
import { UploadPartCommand } from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { S3Store, type S3StoreOptions } from '../stores/s3.js'
import { bodyOf } from './conformance/store.js'
import { s3Server, withS3, type S3Server } from './helpers/ceph-s3.js'
import { collect, failingBody, getText, head, multipartUploads, objects, parts } from './helpers/s3-inspect.js'

const MiB = 1024 * 1024

interface Setup {
  server: S3Server
  bucket: string
  store: S3Store
  /** Another store on the same bucket, as a restarted server would have. */
  restart: () => S3Store
}

async function setup (t: Test, options: Partial<S3StoreOptions> = {}): Promise<Setup> {
  const server = await s3Server()
  const bucket = await server.bucket()
  const stores: S3Store[] = []
  const make = (): S3Store => {
    const store = new S3Store({ s3: server.config, bucket, partSize: 5 * MiB, ...options })
    stores.push(store)
    return store
  }
  t.teardown(() => { for (const store of stores) store.destroy() })
  return { server, bucket, store: make(), restart: make }
}

withS3(t, () => {
  t.test('a remainder smaller than a part waits in the .part object and goes first into the next part', async (t) => {
    const { server, bucket, store, restart } = await setup(t)
    const client = server.client()
    t.teardown(() => client.destroy())
    const data = randomBytes(12 * MiB)
    await store.create({ id: 'leftover', size: data.length, metadata: {} })
    t.equal(await store.write('leftover', { offset: 0, body: bodyOf(data.subarray(0, MiB)) }), MiB)
    let listing = await objects(client, bucket)
    t.equal(listing['leftover.part'], MiB, '1 MiB waits in leftover.part')
    t.equal((await head(client, bucket, 'leftover.part')).metadata['tus-start'], '0', 'it starts at offset 0')
    const [upload] = await multipartUploads(client, bucket)
    t.ok(upload !== undefined)
    t.same(await parts(client, bucket, 'leftover', upload?.uploadId ?? ''), {}, 'no part yet')
    const info = JSON.parse(await getText(client, bucket, 'leftover.info'))
    t.equal(info.uploadId, upload?.uploadId, 'the info object names the multipart upload')
    t.equal((await restart().get('leftover')).offset, MiB)

    t.equal(await store.write('leftover', { offset: MiB, body: bodyOf(data.subarray(MiB, 8 * MiB)) }), 7 * MiB)
    t.same(await parts(client, bucket, 'leftover', upload?.uploadId ?? ''), { 1: 5 * MiB }, 'the leftover went into part 1')
    listing = await objects(client, bucket)
    t.equal(listing['leftover.part'], 3 * MiB, 'a new leftover holds the rest')
    t.equal((await head(client, bucket, 'leftover.part')).metadata['tus-start'], String(5 * MiB))
    t.equal((await restart().get('leftover')).offset, 8 * MiB)

    t.equal(await store.write('leftover', { offset: 8 * MiB, body: bodyOf(data.subarray(8 * MiB)) }), 4 * MiB)
    listing = await objects(client, bucket)
    t.equal(listing.leftover, data.length, 'the object is complete')
    t.equal(listing['leftover.part'], undefined, 'and the leftover is gone')
    t.same(await multipartUploads(client, bucket), [])
    t.ok((await collect(await restart().read('leftover'))).equals(data))
    t.equal(JSON.parse(await getText(client, bucket, 'leftover.info')).completed, true)
  })

  t.test('a new store instance resumes where the old one stopped', async (t) => {
    const { store, restart } = await setup(t)
    const data = randomBytes(17 * MiB + 5)
    await store.create({ id: 'resume', size: data.length, metadata: { name: 'x' } })
    await store.write('resume', { offset: 0, body: bodyOf(data.subarray(0, 7 * MiB + 3)) })
    const second = restart()
    const info = await second.get('resume')
    t.equal(info.offset, 7 * MiB + 3)
    t.same(info.metadata, { name: 'x' })
    await second.write('resume', { offset: info.offset, body: bodyOf(data.subarray(info.offset, 11 * MiB)) })
    const third = restart()
    const offset = (await third.get('resume')).offset
    t.equal(offset, 11 * MiB)
    await third.write('resume', { offset, body: bodyOf(data.subarray(offset)) })
    t.ok((await collect(await restart().read('resume'))).equals(data))
  })

  t.test('bodies that end early mid-part keep every byte they delivered', async (t) => {
    const { store, restart } = await setup(t, { partSize: 8 * MiB })
    const data = randomBytes(30 * MiB)
    await store.create({ id: 'cut', size: data.length, metadata: {} })
    // 3 MiB, then the connection breaks: the bytes wait in the leftover
    t.equal(await store.write('cut', { offset: 0, body: failingBody(data.subarray(0, 3 * MiB)) }), 3 * MiB)
    t.equal((await restart().get('cut')).offset, 3 * MiB)
    // 3 + 10 MiB: one 8 MiB part, and 5 MiB (a valid part size) become a part of their own
    t.equal(await store.write('cut', { offset: 3 * MiB, body: failingBody(data.subarray(3 * MiB, 13 * MiB)) }), 10 * MiB)
    t.equal((await restart().get('cut')).offset, 13 * MiB)
    // an aborted signal ends the body too
    const controller = new AbortController()
    const body = Readable.from((function * () {
      for (let at = 13 * MiB; at < 20 * MiB; at += 256 * 1024) {
        if (at >= 15 * MiB) controller.abort()
        yield data.subarray(at, at + 256 * 1024)
      }
    })(), { objectMode: false })
    const kept = await store.write('cut', { offset: 13 * MiB, body, signal: controller.signal })
    t.ok(kept >= 2 * MiB && kept < 7 * MiB, `kept ${kept} bytes of an aborted body`)
    const offset = (await restart().get('cut')).offset
    t.equal(offset, 13 * MiB + kept)
    await restart().write('cut', { offset, body: bodyOf(data.subarray(offset)) })
    t.ok((await collect(await restart().read('cut'))).equals(data))
  })

  t.test('deferred length, smaller than the minimum part', async (t) => {
    const { server, bucket, store, restart } = await setup(t)
    const client = server.client()
    t.teardown(() => client.destroy())
    await store.create({ id: 'small', metadata: {} })
    await store.write('small', { offset: 0, body: bodyOf(Buffer.from('tiny ')) })
    await store.write('small', { offset: 5, body: bodyOf(Buffer.from('upload')) })
    t.equal((await restart().get('small')).size, undefined)
    // the length arrives with an empty PATCH: the upload completes right away
    await restart().declareLength('small', 11)
    t.equal((await head(client, bucket, 'small')).size, 11, 'the object exists')
    const info = await store.get('small')
    t.equal(info.offset, 11)
    t.equal(info.size, 11)
    t.equal((await collect(await store.read('small'))).toString(), 'tiny upload')

    await store.create({ id: 'empty', metadata: {} })
    await store.declareLength('empty', 0)
    t.equal((await store.get('empty')).offset, 0)
    t.equal((await head(client, bucket, 'empty')).size, 0, 'an empty deferred upload is an empty object')
    t.same(await multipartUploads(client, bucket), [])
  })

  t.test('deferred length, larger than one part', async (t) => {
    const { server, bucket, store, restart } = await setup(t)
    const client = server.client()
    t.teardown(() => client.destroy())
    const data = randomBytes(13 * MiB + 77)
    await store.create({ id: 'large', metadata: {} })
    await store.write('large', { offset: 0, body: bodyOf(data.subarray(0, 6 * MiB)) })
    await restart().write('large', { offset: 6 * MiB, body: bodyOf(data.subarray(6 * MiB, 12 * MiB)) })
    t.equal((await store.get('large')).offset, 12 * MiB)
    await store.declareLength('large', data.length)
    t.equal(await store.write('large', { offset: 12 * MiB, body: bodyOf(data.subarray(12 * MiB)) }), MiB + 77)
    t.equal((await head(client, bucket, 'large')).size, data.length)
    t.ok((await collect(await restart().read('large'))).equals(data))
    await t.rejects(store.declareLength('large', 5), /already has a length/)
  })

  t.test('a refused chunk that reached S3 parts never counts, and later writes replace it', async (t) => {
    const { store, restart } = await setup(t)
    const data = randomBytes(25 * MiB)
    await store.create({ id: 'checked', size: data.length, metadata: {} })
    await store.write('checked', { offset: 0, body: bodyOf(data.subarray(0, 3 * MiB)) })
    const refusal = new Error('checksum mismatch')
    // 12 MiB of wrong bytes after the 3 MiB leftover: parts 1 and 2 are uploaded before the check
    await t.rejects(store.write('checked', {
      offset: 3 * MiB,
      body: bodyOf(randomBytes(12 * MiB)),
      beforeCommit: () => { throw refusal }
    }), refusal)
    t.equal((await store.get('checked')).offset, 3 * MiB, 'the offset did not move')
    t.equal((await restart().get('checked')).offset, 3 * MiB, 'not after a restart either')
    // a shorter chunk overwrites part 1 only; part 2 of the refused chunk must still not count
    await store.write('checked', { offset: 3 * MiB, body: bodyOf(data.subarray(3 * MiB, 7 * MiB)) })
    t.equal((await restart().get('checked')).offset, 7 * MiB)
    let verified = 0
    await store.write('checked', {
      offset: 7 * MiB,
      body: bodyOf(data.subarray(7 * MiB)),
      beforeCommit: () => { verified++ }
    })
    t.equal(verified, 1)
    t.equal((await restart().get('checked')).offset, data.length)
    t.ok((await collect(await store.read('checked'))).equals(data))
  })

  t.test('states a crash can leave behind never count bytes that are not there', async (t) => {
    const { server, bucket, store, restart } = await setup(t)
    const client = server.client()
    t.teardown(() => client.destroy())
    const data = randomBytes(22 * MiB)
    await store.create({ id: 'crash', size: data.length, metadata: {} })
    await store.write('crash', { offset: 0, body: bodyOf(data.subarray(0, 2 * MiB)) })
    const [upload] = await multipartUploads(client, bucket)
    const uploadId = upload?.uploadId ?? ''
    const put = async (number: number, bytes: Buffer): Promise<void> => {
      await client.send(new UploadPartCommand({ Bucket: bucket, Key: 'crash', UploadId: uploadId, PartNumber: number, Body: bytes }))
    }
    // a write stored part 1 (the 2 MiB leftover and 3 MiB more) and died before replacing the leftover
    await put(1, data.subarray(0, 5 * MiB))
    t.equal((await restart().get('crash')).offset, 5 * MiB, 'the old leftover no longer counts')
    // parts were uploaded concurrently and part 3 (other bytes) landed while part 2 did not
    await put(3, randomBytes(5 * MiB))
    t.equal((await restart().get('crash')).offset, 5 * MiB, 'a part after a gap does not count')
    // a short write fills the gap with part 2; part 3 is stale and must stay out
    await store.write('crash', { offset: 5 * MiB, body: bodyOf(data.subarray(5 * MiB, 11 * MiB)) })
    t.equal((await restart().get('crash')).offset, 11 * MiB, 'part 2 and the new leftover count, part 3 does not')
    await store.write('crash', { offset: 11 * MiB, body: bodyOf(data.subarray(11 * MiB)) })
    t.ok((await collect(await restart().read('crash'))).equals(data))
  })
})
