/**
 * The S3 store when things go wrong: S3 refusing parts (errors injected into the client in
 * front of a real radosgw), a full quota, a crash between the last part and the completion,
 * uploads whose objects vanished, and servers that answer with errors.
 */
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, ListPartsCommand, S3Client, UploadPartCommand
} from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { S3Store } from '../stores/s3.js'
import { StoreFull, UploadNotFound } from '../stores/store.js'
import { bodyOf } from './conformance/store.js'
import { s3Server, withS3 } from './helpers/ceph-s3.js'
import { collect, head, multipartUploads, recordCommands } from './helpers/s3-inspect.js'

const MiB = 1024 * 1024

/** Makes `client` fail the commands `fails` picks, before they reach S3. */
function inject (client: S3Client, fails: (name: string, input: Record<string, unknown>) => Error | undefined): void {
  client.middlewareStack.add((next, context) => async (args) => {
    const error = fails(String(context.commandName), args.input as Record<string, unknown>)
    if (error !== undefined) throw error
    return await next(args)
  }, { step: 'initialize', name: 'injectFailures' })
}

withS3(t, () => {
  t.test('a part S3 refuses fails the write; the bytes before it stay and the upload resumes', async (t) => {
    const server = await s3Server()
    const bucket = await server.bucket()
    const client = server.client()
    let failing = true
    inject(client, (name, input) => name === 'UploadPartCommand' && input.PartNumber === 2 && failing
      ? Object.assign(new Error('We encountered an internal error'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } })
      : undefined)
    const store = new S3Store({ client, bucket, partSize: 5 * MiB, maxConcurrentPartUploads: 4 })
    t.teardown(() => client.destroy())
    const data = randomBytes(20 * MiB)
    await store.create({ id: 'refused', size: data.length, metadata: {} })
    await t.rejects(store.write('refused', { offset: 0, body: bodyOf(data) }), { name: 'InternalError' })
    t.equal((await store.get('refused')).offset, 5 * MiB, 'part 1 counts; whatever landed after the gap does not')
    failing = false
    await store.write('refused', { offset: 5 * MiB, body: bodyOf(data.subarray(5 * MiB)) })
    t.ok((await collect(await store.read('refused'))).equals(data))
  })

  t.test('a file-buffered part is sent again after a network error', async (t) => {
    const server = await s3Server()
    const client = server.client()
    const sent = recordCommands(client)
    let failures = 1
    inject(client, (name) => name === 'UploadPartCommand' && failures-- > 0 ? new Error('socket hang up') : undefined)
    const directory = await mkdtemp(join(tmpdir(), 'tus-s3-retry-'))
    const store = new S3Store({ client, bucket: await server.bucket(), partSize: 5 * MiB, bufferDirectory: directory })
    t.teardown(async () => {
      client.destroy()
      await rm(directory, { recursive: true, force: true })
    })
    const data = randomBytes(6 * MiB)
    await store.create({ id: 'retry', size: data.length, metadata: {} })
    t.equal(await store.write('retry', { offset: 0, body: bodyOf(data) }), data.length)
    t.equal(sent.filter((name) => name === 'UploadPartCommand').length, 3, 'two parts, one sent twice')
    t.ok((await collect(await store.read('retry'))).equals(data))
  })

  t.test('a full quota is StoreFull', async (t) => {
    const server = await s3Server()
    const store = new S3Store({ s3: server.quotaConfig, bucket: await server.bucket({ quota: true }), partSize: 5 * MiB })
    t.teardown(() => store.destroy())
    await store.create({ id: 'full', size: 20 * MiB, metadata: {} })
    await t.rejects(store.write('full', { offset: 0, body: bodyOf(randomBytes(12 * MiB)) }), StoreFull)
  })

  t.test('a crash between the last part and the completion is finished by the next request', async (t) => {
    const server = await s3Server()
    const bucket = await server.bucket()
    const client = server.client()
    t.teardown(() => client.destroy())
    const store = new S3Store({ s3: server.config, bucket, partSize: 5 * MiB })
    t.teardown(() => store.destroy())
    const data = randomBytes(7 * MiB)
    for (const id of ['by-get', 'by-write', 'by-read']) {
      await store.create({ id, size: data.length, metadata: {} })
      await store.write(id, { offset: 0, body: bodyOf(data.subarray(0, 6 * MiB)) })
      const upload = (await multipartUploads(client, bucket)).find((upload) => upload.key === id)
      // the process stored the last part and died
      await client.send(new UploadPartCommand({ Bucket: bucket, Key: id, UploadId: upload?.uploadId, PartNumber: 2, Body: data.subarray(5 * MiB) }))
    }
    t.equal((await store.get('by-get')).offset, data.length)
    t.equal((await head(client, bucket, 'by-get')).size, data.length, 'get completed the object')
    t.equal(await store.write('by-write', { offset: data.length, body: bodyOf(Buffer.alloc(0)) }), 0)
    t.equal((await head(client, bucket, 'by-write')).size, data.length, 'write completed the object')
    t.ok((await collect(await store.read('by-read'))).equals(data), 'read completed the object')
  })

  t.test('an upload completed by a process that died before saying so', async (t) => {
    const server = await s3Server()
    const bucket = await server.bucket()
    const client = server.client()
    t.teardown(() => client.destroy())
    const store = new S3Store({ s3: server.config, bucket, partSize: 5 * MiB })
    t.teardown(() => store.destroy())
    await store.create({ id: 'silent', size: 3, metadata: {} })
    const [upload] = await multipartUploads(client, bucket)
    const part = await client.send(new UploadPartCommand({ Bucket: bucket, Key: 'silent', UploadId: upload?.uploadId, PartNumber: 1, Body: Buffer.from('abc') }))
    await client.send(new CompleteMultipartUploadCommand({
      Bucket: bucket, Key: 'silent', UploadId: upload?.uploadId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] }
    }))
    const info = await store.get('silent')
    t.equal(info.offset, 3)
    t.equal((await collect(await store.read('silent'))).toString(), 'abc')
    await t.rejects(store.write('silent', { offset: 0, body: bodyOf(Buffer.from('x')) }), { code: 'OFFSET_MISMATCH' })
    t.equal(await store.write('silent', { offset: 3, body: bodyOf(Buffer.alloc(0)) }), 0)
  })

  t.test('an upload whose multipart upload vanished is not found; an unfinished one is not served', async (t) => {
    const server = await s3Server()
    const bucket = await server.bucket()
    const client = server.client()
    t.teardown(() => client.destroy())
    const store = new S3Store({ s3: server.config, bucket })
    t.teardown(() => store.destroy())
    await store.create({ id: 'gone', size: 10, metadata: {} })
    await store.create({ id: 'open', size: 10, metadata: {} })
    const upload = (await multipartUploads(client, bucket)).find((upload) => upload.key === 'gone')
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'gone', UploadId: upload?.uploadId }))
    await t.rejects(store.get('gone'), UploadNotFound)
    await t.rejects(store.read('open'), /not complete/)
    await store.remove('gone')
    await t.rejects(client.send(new ListPartsCommand({ Bucket: bucket, Key: 'gone', UploadId: upload?.uploadId })))
  })

  t.test('errors from S3 other than "not found" reach the caller', async (t) => {
    const server = await s3Server()
    const bucket = await server.bucket()
    const good = new S3Store({ s3: server.config, bucket })
    await good.create({ id: 'x', size: 10, metadata: {} })
    const wrong = new S3Store({ s3: { ...server.config, credentials: { accessKeyId: 'tus-test', secretAccessKey: 'wrong' } }, bucket })
    t.teardown(() => {
      good.destroy()
      wrong.destroy()
    })
    await t.rejects(wrong.get('x'), { name: 'SignatureDoesNotMatch' })
    const refused = await wrong.create({ id: 'y', size: 1, metadata: {} }).then(() => undefined, (err: unknown) => err)
    t.equal((refused as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode, 403)
    await t.rejects(wrong.remove('x'))
    await t.rejects(wrong.removeExpired(new Date()))
    const missing = new S3Store({ s3: server.config, bucket: 'no-such-bucket' })
    t.teardown(() => missing.destroy())
    await t.rejects(missing.create({ id: 'z', size: 1, metadata: {} }), { name: 'NoSuchBucket' })
  })
})
