/**
 * The S3 store holds no more than its buffer budget, however large the upload and however many
 * uploads share the store, in memory and in temporary files.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { S3Store } from '../stores/s3.js'
import { s3Server, withS3 } from './helpers/ceph-s3.js'
import { collect, generatedBody, sha256 } from './helpers/s3-inspect.js'

const MiB = 1024 * 1024

withS3(t, () => {
  t.test('64 MiB stream through a 16 MiB memory budget', async (t) => {
    const server = await s3Server()
    const store = new S3Store({
      s3: server.config, bucket: await server.bucket(), partSize: 5 * MiB, maxBufferedBytes: 16 * MiB, maxConcurrentPartUploads: 4
    })
    t.teardown(() => store.destroy())
    const size = 64 * MiB + 12_345
    const { body, digest } = generatedBody(size)
    await store.create({ id: 'big', size, metadata: {} })
    t.equal(await store.write('big', { offset: 0, body }), size)
    const stats = store.bufferStats
    t.ok(stats.peak <= 16 * MiB, `peak ${stats.peak} bytes within the budget`)
    t.ok(stats.peak >= 10 * MiB, `parts were filled while others uploaded (peak ${stats.peak})`)
    t.equal(stats.inUse, 0, 'every buffer was given back')
    t.equal(sha256(await collect(await store.read('big'))), await digest)
  })

  t.test('a deferred-length stream through temporary files', async (t) => {
    const server = await s3Server()
    const directory = await mkdtemp(join(tmpdir(), 'tus-s3-buffers-'))
    const store = new S3Store({
      s3: server.config, bucket: await server.bucket(), partSize: 6 * MiB, maxBufferedBytes: 12 * MiB, bufferDirectory: join(directory, 'parts')
    })
    t.teardown(async () => {
      store.destroy()
      await rm(directory, { recursive: true, force: true })
    })
    const size = 40 * MiB + 1
    const { body, digest } = generatedBody(size, 7)
    await store.create({ id: 'deferred', metadata: {} })
    t.equal(await store.write('deferred', { offset: 0, body }), size)
    t.equal((await store.get('deferred')).offset, size)
    await store.declareLength('deferred', size)
    t.equal(sha256(await collect(await store.read('deferred'))), await digest)
    t.ok(store.bufferStats.peak <= 12 * MiB)
    t.same(await readdir(join(directory, 'parts')), [], 'no temporary file is left')
  })

  t.test('uploads sharing a store share its budget without blocking each other', async (t) => {
    const server = await s3Server()
    const store = new S3Store({
      s3: server.config, bucket: await server.bucket(), partSize: 5 * MiB, maxBufferedBytes: 10 * MiB, maxConcurrentPartUploads: 2
    })
    t.teardown(() => store.destroy())
    const size = 21 * MiB
    const uploads = [1, 2, 3, 4].map((seed) => ({ id: `u${seed}`, ...generatedBody(size, seed) }))
    for (const { id } of uploads) await store.create({ id, size, metadata: {} })
    const written = await Promise.all(uploads.map(async ({ id, body }) => await store.write(id, { offset: 0, body })))
    t.same(written, [size, size, size, size])
    t.ok(store.bufferStats.peak <= 10 * MiB, `peak ${store.bufferStats.peak}`)
    for (const { id, digest } of uploads) t.equal(sha256(await collect(await store.read(id))), await digest, id)
  })
})
