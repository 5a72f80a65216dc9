/**
 * The S3 store's objects on a real radosgw: concatenation (server-side copies and assembled
 * parts), termination, expiration, metadata, and ids that must never reach S3.
 */
import { CreateMultipartUploadCommand, PutObjectCommand } from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import t, { type Test } from 'tap'
import { S3Store, type S3StoreOptions } from '../stores/s3.js'
import { UploadNotFound } from '../stores/store.js'
import { bodyOf } from './conformance/store.js'
import { s3Server, withS3, type S3Server } from './helpers/ceph-s3.js'
import { collect, getText, head, multipartUploads, objects, recordCommands } from './helpers/s3-inspect.js'

const MiB = 1024 * 1024

interface Setup {
  server: S3Server
  bucket: string
  store: S3Store
  /** Names of the commands the store sent. */
  sent: string[]
  client: ReturnType<S3Server['client']>
}

async function setup (t: Test, options: Partial<S3StoreOptions> = {}): Promise<Setup> {
  const server = await s3Server()
  const bucket = await server.bucket()
  const storeClient = server.client()
  const sent = recordCommands(storeClient)
  const client = server.client()
  t.teardown(() => {
    storeClient.destroy()
    client.destroy()
  })
  const store = new S3Store({ client: storeClient, bucket, partSize: 5 * MiB, ...options })
  return { server, bucket, store, sent, client }
}

async function partial (store: S3Store, id: string, data: Buffer): Promise<void> {
  await store.create({ id, size: data.length, metadata: {}, concat: { kind: 'partial' } })
  await store.write(id, { offset: 0, body: bodyOf(data) })
}

function count (names: string[], name: string): number {
  return names.filter((sent) => sent === name).length
}

withS3(t, () => {
  t.test('concatenation copies whole parts on the server and assembles the rest', async (t) => {
    const { store, sent } = await setup(t)
    const a = randomBytes(6 * MiB)
    const b = randomBytes(5 * MiB + 3)
    const c = randomBytes(1000)
    const d = randomBytes(11 * MiB)
    await partial(store, 'a', a)
    await partial(store, 'b', b)
    await partial(store, 'c', c)
    await partial(store, 'd', d)
    const expected = Buffer.concat([a, b, c, d, a])
    await store.create({ id: 'final', size: expected.length, metadata: {}, concat: { kind: 'final', parts: ['a', 'b', 'c', 'd', 'a'] } })
    sent.length = 0
    await store.concat('final', ['a', 'b', 'c', 'd', 'a'])
    // 5 MiB parts over a (6), b (5+), c (1000 B), d (11), a (6): a[0,5) and d[…] lie in one partial each
    t.ok(count(sent, 'UploadPartCopyCommand') >= 3, `${count(sent, 'UploadPartCopyCommand')} parts copied on the server`)
    t.ok(count(sent, 'UploadPartCommand') >= 2, 'parts spanning partials are assembled')
    const info = await store.get('final')
    t.equal(info.offset, expected.length)
    t.ok((await collect(await store.read('final'))).equals(expected))
    t.ok((await collect(await store.read('a'))).equals(a), 'the partials stay')
  })

  t.test('partials of whole parts are only copied', async (t) => {
    const { store, sent } = await setup(t)
    const a = randomBytes(5 * MiB)
    const b = randomBytes(10 * MiB)
    await partial(store, 'a', a)
    await partial(store, 'b', b)
    await store.create({ id: 'final', size: 15 * MiB, metadata: {}, concat: { kind: 'final', parts: ['a', 'b'] } })
    sent.length = 0
    await store.concat('final', ['a', 'b'])
    t.equal(count(sent, 'UploadPartCopyCommand'), 3)
    t.equal(count(sent, 'UploadPartCommand'), 0, 'no byte went through the server')
    t.ok((await collect(await store.read('final'))).equals(Buffer.concat([a, b])))
  })

  t.test('small partials are assembled into one part', async (t) => {
    const { store, sent } = await setup(t)
    const pieces = [randomBytes(100), Buffer.alloc(0), randomBytes(70_000), randomBytes(1)]
    for (const [index, piece] of pieces.entries()) await partial(store, `p${index}`, piece)
    const ids = pieces.map((_, index) => `p${index}`)
    const expected = Buffer.concat(pieces)
    await store.create({ id: 'final', size: expected.length, metadata: {}, concat: { kind: 'final', parts: ids } })
    sent.length = 0
    await store.concat('final', ids)
    t.equal(count(sent, 'UploadPartCopyCommand'), 0)
    t.equal(count(sent, 'UploadPartCommand'), 1)
    t.ok((await collect(await store.read('final'))).equals(expected))

    await store.create({ id: 'empty-final', size: 0, metadata: {}, concat: { kind: 'final', parts: ['p1'] } })
    await store.concat('empty-final', ['p1'])
    t.equal((await store.get('empty-final')).offset, 0)
    await t.rejects(store.concat('nope', ['p0']), UploadNotFound)
    await store.create({ id: 'open', size: 10, metadata: {}, concat: { kind: 'partial' } })
    await store.create({ id: 'final-2', size: 10, metadata: {}, concat: { kind: 'final', parts: ['open'] } })
    await t.rejects(store.concat('final-2', ['open']), /not complete/)
  })

  t.test('termination removes every object and the multipart upload', async (t) => {
    const { store, client, bucket } = await setup(t, { objectPrefix: 'in/' })
    await store.create({ id: 'open', size: 20 * MiB, metadata: {} })
    await store.write('open', { offset: 0, body: bodyOf(randomBytes(7 * MiB)) })
    await store.create({ id: 'done', size: 6, metadata: {} })
    await store.write('done', { offset: 0, body: bodyOf(Buffer.from('abcdef')) })
    t.same(Object.keys(await objects(client, bucket)).sort(), ['in/done', 'in/done.info', 'in/open.info', 'in/open.part'])
    t.equal((await multipartUploads(client, bucket)).length, 1)
    // a create that crashed left a second multipart upload on the same key
    await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'in/open' }))
    await store.remove('open')
    await store.remove('done')
    t.same(await objects(client, bucket), {}, 'the bucket is empty')
    t.same(await multipartUploads(client, bucket), [], 'no multipart upload is left')
    await t.rejects(store.get('open'), UploadNotFound)
    await store.remove('open')
  })

  t.test('expiration removes unfinished uploads and orphans, never finished ones', async (t) => {
    const { store, client, bucket } = await setup(t)
    await store.create({ id: 'stale', size: 10 * MiB, metadata: {} })
    await store.write('stale', { offset: 0, body: bodyOf(randomBytes(6 * MiB)) })
    await store.create({ id: 'deferred', metadata: {} })
    await store.create({ id: 'finished', size: 3, metadata: {} })
    await store.write('finished', { offset: 0, body: bodyOf(Buffer.from('abc')) })
    await store.create({ id: 'zero', size: 0, metadata: {} })
    // an orphan: a multipart upload whose info object was never written
    await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'orphan' }))
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'orphan.part', Body: 'x' }))
    t.equal(await store.removeExpired(new Date(Date.now() - 60_000)), 0)
    t.equal((await multipartUploads(client, bucket)).length, 3, 'nothing recent was touched')
    t.equal(await store.removeExpired(new Date(Date.now() + 60_000)), 2)
    t.same(Object.keys(await objects(client, bucket)).sort(), ['finished', 'finished.info', 'zero', 'zero.info'])
    t.same(await multipartUploads(client, bucket), [])
    t.equal((await store.get('finished')).offset, 3)
  })

  t.test('metadata lives in the info object; the object gets only a valid content type', async (t) => {
    const { store, client, bucket } = await setup(t)
    const metadata = { filename: 'bär ✓ 名前.txt', filetype: 'text/plain; charset=utf-8', note: '\u0000\n"quoted"', empty: '' }
    await store.create({ id: 'meta', size: 4, metadata })
    t.same((await store.get('meta')).metadata, metadata)
    await store.write('meta', { offset: 0, body: bodyOf(Buffer.from('data')) })
    const object = await head(client, bucket, 'meta')
    t.equal(object.contentType, 'text/plain; charset=utf-8')
    t.same(object.metadata, {}, 'no user metadata header carries upload metadata')
    t.same(JSON.parse(await getText(client, bucket, 'meta.info')).metadata, metadata)
    await store.create({ id: 'bad-type', size: 1, metadata: { filetype: 'tëxt/plain' } })
    await store.write('bad-type', { offset: 0, body: bodyOf(Buffer.from('x')) })
    t.equal((await head(client, bucket, 'bad-type')).contentType, 'application/octet-stream', 'an invalid type is not sent')
  })

  t.test('objects carry the Content-Type and Content-Disposition downloads get: no active content', async (t) => {
    const { store, client, bucket } = await setup(t)
    const cases: Array<{ id: string, metadata: Record<string, string>, size: number, type: string, disposition: string }> = [
      { id: 'page', metadata: { filetype: 'text/html', filename: 'päge.html' }, size: 5, type: 'application/octet-stream', disposition: 'attachment; filename="p_ge.html"; filename*=UTF-8\'\'p%C3%A4ge.html' },
      { id: 'vector', metadata: { filetype: 'image/svg+xml', filename: 'x.svg' }, size: 6 * MiB, type: 'application/octet-stream', disposition: 'attachment; filename="x.svg"; filename*=UTF-8\'\'x.svg' },
      { id: 'picture', metadata: { filetype: 'image/png', filename: '../cat.png' }, size: 3, type: 'image/png', disposition: 'inline; filename="cat.png"; filename*=UTF-8\'\'cat.png' },
      { id: 'empty', metadata: { filetype: 'application/xhtml+xml' }, size: 0, type: 'application/octet-stream', disposition: 'attachment' }
    ]
    for (const { id, metadata, size, type, disposition } of cases) {
      await store.create({ id, size, metadata })
      if (size > 0) await store.write(id, { offset: 0, body: bodyOf(Buffer.alloc(size, 60)) })
      const object = await head(client, bucket, id)
      t.equal(object.contentType, type, `${id}: Content-Type`)
      t.equal(object.contentDisposition, disposition, `${id}: Content-Disposition`)
    }
  })

  t.test('ids that could leave the namespace never reach S3', async (t) => {
    const { store, sent } = await setup(t)
    sent.length = 0
    for (const id of ['../x', '', 'a/b', '..', 'x.info', 'ü', 'a'.repeat(201)]) {
      await t.rejects(store.get(id), UploadNotFound, `get ${JSON.stringify(id)}`)
      await t.rejects(store.write(id, { offset: 0, body: bodyOf(Buffer.from('x')) }), UploadNotFound)
      await t.rejects(store.read(id), UploadNotFound)
      await t.rejects(store.declareLength(id, 1), UploadNotFound)
      await t.rejects(store.concat(id, ['a']), UploadNotFound)
      await store.remove(id)
      await t.rejects(store.create({ id, size: 1, metadata: {} }), TypeError)
    }
    t.same(sent, [], 'no request was sent')
  })

  t.test('create refuses an id that exists, also when two race', async (t) => {
    const { store } = await setup(t)
    const results = await Promise.allSettled([
      store.create({ id: 'twin', size: 10, metadata: {} }),
      store.create({ id: 'twin', size: 10, metadata: {} })
    ])
    t.equal(results.filter((result) => result.status === 'fulfilled').length, 1)
    t.match(results.find((result) => result.status === 'rejected'), { reason: { code: 'ERR_UPLOAD_EXISTS' } })
  })

  t.test('options are checked', async (t) => {
    const server = await s3Server()
    t.throws(() => new S3Store({ bucket: '', s3: server.config }), TypeError)
    t.throws(() => new S3Store({ bucket: 'b' }), TypeError)
    t.throws(() => new S3Store({ bucket: 'b', s3: server.config, partSize: 4 * MiB }), RangeError)
    t.throws(() => new S3Store({ bucket: 'b', s3: server.config, maxBufferedBytes: MiB }), RangeError)
    t.throws(() => new S3Store({ bucket: 'b', s3: server.config, maxConcurrentPartUploads: 0 }), RangeError)
    const store = new S3Store({ bucket: 'b', s3: server.config, maxBufferedBytes: 16 * MiB, maxParts: 100 })
    t.equal(store.maxUploadSize, 16 * MiB * 100)
    await t.rejects(store.create({ id: 'huge', size: 16 * MiB * 100 + 1, metadata: {} }), RangeError)
    store.destroy()
  })
})
