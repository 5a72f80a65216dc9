/**
 * The contract of the GCS fake (test/helpers/gcs-fake.ts): the installed `@google-cloud/storage`
 * is the version the fake was written for, and every request the GCS store makes, sent by that
 * real SDK, gets the answer GCS gives: simple and resumable uploads, ranged downloads, metadata,
 * compose with its preconditions, deletes, listings with prefixes and pages, and object hashes
 * that match hashes computed here, independently of the fake and the SDK.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { FAKE_SDK_VERSION, GcsFake } from './helpers/gcs-fake.js'

const MiB = 1024 * 1024
const BUCKET = 'contract'

/** CRC32C, bit by bit (reflected Castagnoli polynomial), as GCS reports it: base64 of the big-endian value. */
function crc32c (data: Buffer): string {
  let crc = 0xffffffff
  for (const byte of data) {
    crc ^= byte
    for (let bit = 0; bit < 8; bit++) crc = (crc & 1) === 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1
  }
  const out = Buffer.alloc(4)
  out.writeUInt32BE((crc ^ 0xffffffff) >>> 0)
  return out.toString('base64')
}

function md5 (data: Buffer): string {
  return createHash('md5').update(data).digest('base64')
}

function statusOf (err: unknown): unknown {
  return (err as { code?: unknown }).code
}

t.test('the installed SDK is the one the fake was written for', async (t) => {
  const path = fileURLToPath(new URL('../node_modules/@google-cloud/storage/package.json', import.meta.url))
  const { version } = JSON.parse(await readFile(path, 'utf8')) as { version: string }
  t.equal(version, FAKE_SDK_VERSION,
    `@google-cloud/storage is ${version}, but test/helpers/gcs-fake.ts was written for ${FAKE_SDK_VERSION}: ` +
    'check the requests the new SDK sends against the fake (this file), fix the fake if needed, then bump FAKE_SDK_VERSION')
})

t.test('the independent CRC32C is right', async (t) => {
  // the check value of CRC-32C (RFC 3720 appendix B.4: 32 bytes of zeros)
  t.equal(Buffer.from(crc32c(Buffer.from('123456789')), 'base64').readUInt32BE(0), 0xe3069283)
  t.equal(Buffer.from(crc32c(Buffer.alloc(32)), 'base64').readUInt32BE(0), 0x8a9136aa)
})

t.test('the SDK against the fake', async (t) => {
  const fake = await GcsFake.start()
  t.teardown(async () => { await fake.close() })
  const storage = fake.storage()
  const bucket = storage.bucket(BUCKET)
  fake.buckets.bucket(BUCKET)

  t.test('simple upload, metadata, hashes', async (t) => {
    const data = randomBytes(100_000)
    const file = bucket.file('simple/a.bin')
    await file.save(data, { resumable: false, contentType: 'application/x-a', preconditionOpts: { ifGenerationMatch: 0 } })
    t.equal(fake.calls('upload.multipart', 'simple/a.bin').length, 1, 'a multipart upload')
    const [metadata] = await file.getMetadata()
    t.equal(fake.calls('object.get', 'simple/a.bin').length, 1)
    t.equal(Number(metadata.size), data.length)
    t.equal(metadata.contentType, 'application/x-a')
    t.equal(metadata.crc32c, crc32c(data), 'crc32c as computed here')
    t.equal(metadata.md5Hash, md5(data), 'md5Hash as computed here')
    t.match(String(metadata.generation), /^\d+$/)
    t.same(file.metadata.generation, metadata.generation, 'the upload answer is the resource')

    // ifGenerationMatch 0: only if it does not exist
    const again = await file.save(Buffer.from('x'), { resumable: false, preconditionOpts: { ifGenerationMatch: 0 } }).then(() => 0, statusOf)
    t.equal(again, 412, 'a second create fails its precondition')
    t.same((await file.download())[0], data, 'and changed nothing')
  })

  t.test('an upload GCS stored differently is refused and removed by the SDK', async (t) => {
    fake.inject({ operation: 'upload.multipart', object: 'simple/corrupt.bin', corrupt: (data) => Buffer.concat([data, Buffer.from('!')]) })
    const file = bucket.file('simple/corrupt.bin')
    await t.rejects(file.save(randomBytes(1000), { resumable: false }), /did not match the data from the server/)
    t.equal((await file.exists())[0], false)
  })

  t.test('resumable upload in several chunks', async (t) => {
    const data = randomBytes(MiB + 12_345)
    const file = bucket.file('resumable/b.bin')
    await new Promise<void>((resolve, reject) => {
      const stream = file.createWriteStream({ resumable: true, chunkSize: 256 * 1024, contentType: 'application/x-b', preconditionOpts: { ifGenerationMatch: 0 } })
      stream.on('error', reject).on('finish', resolve)
      stream.end(data)
    })
    t.equal(fake.calls('upload.resumable.create', 'resumable/b.bin').length, 1, 'one session')
    t.ok(fake.calls('upload.resumable.put', 'resumable/b.bin').length >= 5, 'chunks of 256 KiB')
    const [metadata] = await file.getMetadata()
    t.equal(Number(metadata.size), data.length)
    t.equal(metadata.crc32c, crc32c(data))
    t.equal(metadata.md5Hash, md5(data))
    t.equal(metadata.contentType, 'application/x-b')
    t.same((await file.download())[0], data)
  })

  t.test('downloads with ranges', async (t) => {
    const data = randomBytes(64 * 1024)
    const file = bucket.file('range/c.bin')
    await file.save(data, { resumable: false })
    t.same((await file.download({ start: 10, end: 19 }))[0], data.subarray(10, 20), 'start and end, inclusive')
    t.same((await file.download({ start: 60_000 }))[0], data.subarray(60_000), 'from start to the end')
    const streamed: Buffer[] = []
    for await (const chunk of file.createReadStream({ start: 1000, end: 1999 })) streamed.push(chunk as Buffer)
    t.same(Buffer.concat(streamed), data.subarray(1000, 2000), 'a ranged read stream')
    const ranged = fake.calls('object.media', 'range/c.bin')
    t.ok(ranged.length >= 3)
    t.ok(ranged.every((request) => request.query.alt === 'media'))
    t.same(ranged.map((request) => request.headers.range), ['bytes=10-19', 'bytes=60000-', 'bytes=1000-1999'])
    t.same(ranged.map((request) => request.status), [206, 206, 206])
    // a whole download is checked by the SDK against the hashes the fake sends
    t.same((await file.download({ validation: 'crc32c' }))[0], data)
    t.same((await file.download({ validation: 'md5' }))[0], data)
  })

  t.test('compose, pinned to generations, with preconditions', async (t) => {
    const parts = [randomBytes(1000), randomBytes(70_000), Buffer.from('tail')]
    const files = parts.map((_, i) => bucket.file(`compose/part${i}`))
    for (const [i, part] of parts.entries()) await files[i]?.save(part, { resumable: false })
    const pinned = await Promise.all(files.map(async (file) => {
      const [metadata] = await file.getMetadata()
      return bucket.file(file.name, { generation: metadata.generation as string })
    }))
    const target = bucket.file('compose/whole')
    target.metadata = { contentType: 'application/x-whole' }
    const [, response] = await bucket.combine(pinned, target, { ifGenerationMatch: 0 })
    const whole = Buffer.concat(parts)
    const made = response as { size?: string, crc32c?: string, md5Hash?: string, componentCount?: number, contentType?: string }
    t.equal(Number(made.size), whole.length)
    t.equal(made.crc32c, crc32c(whole), 'the composite CRC32C is the CRC32C of the concatenation')
    t.equal(made.md5Hash, undefined, 'composite objects have no MD5, as on GCS')
    t.equal(made.componentCount, 3)
    t.equal(made.contentType, 'application/x-whole')
    const [request] = fake.calls('object.compose', 'compose/whole')
    t.equal(request?.query.ifGenerationMatch, '0')
    t.same((request?.json as { sourceObjects: Array<{ name: string, generation?: string }> }).sourceObjects.map((source) => [source.name, source.generation !== undefined]),
      [['compose/part0', true], ['compose/part1', true], ['compose/part2', true]], 'sources pinned to their generations')
    t.same((await target.download())[0], whole)

    t.equal(await bucket.combine(pinned, bucket.file('compose/whole'), { ifGenerationMatch: 0 }).then(() => 0, statusOf), 412,
      'ifGenerationMatch 0 on an existing destination: 412')
    // a source replaced since it was seen is not composed
    await files[0]?.save(Buffer.from('new'), { resumable: false })
    t.equal(await bucket.combine(pinned, bucket.file('compose/other'), { ifGenerationMatch: 0 }).then(() => 0, statusOf), 404,
      'a source generation that is gone: 404')
    t.equal((await bucket.file('compose/other').exists())[0], false)
    t.equal(await bucket.combine(Array.from({ length: 33 }, () => pinned[1] as typeof target), bucket.file('compose/many')).then(() => 0, statusOf), 400,
      'more than 32 sources: 400')
  })

  t.test('delete', async (t) => {
    const file = bucket.file('delete/d.bin')
    await file.save(Buffer.from('d'), { resumable: false })
    const [metadata] = await file.getMetadata()
    t.equal(await file.delete({ ifGenerationMatch: Number(metadata.generation) + 1 }).then(() => 0, statusOf), 412, 'another generation: 412')
    await file.delete({ ifGenerationMatch: metadata.generation as string })
    t.equal((await file.exists())[0], false)
    t.equal(await file.delete().then(() => 0, statusOf), 404, 'deleting a missing object: 404')
    t.equal(await file.getMetadata().then(() => 0, statusOf), 404, 'metadata of a missing object: 404')
    t.equal(await file.download().then(() => 0, statusOf), 404, 'download of a missing object: 404')
  })

  t.test('list with a prefix, in pages', async (t) => {
    const names = Array.from({ length: 7 }, (_, i) => `list/x.${i}`)
    for (const name of names) await bucket.file(name).save(Buffer.from(name), { resumable: false })
    await bucket.file('list/y').save(Buffer.from('y'), { resumable: false })
    await bucket.file('listed').save(Buffer.from('z'), { resumable: false })
    const seen: string[] = []
    let pageToken: string | undefined
    let pages = 0
    do {
      const [files, next] = await bucket.getFiles({ prefix: 'list/x.', autoPaginate: false, maxResults: 3, pageToken })
      t.ok(files.length <= 3)
      for (const file of files) {
        seen.push(file.name)
        t.equal(file.metadata.crc32c, crc32c(Buffer.from(file.name)), `${file.name}: listed with its CRC32C`)
        t.equal(Number(file.metadata.size), file.name.length)
      }
      pageToken = (next as { pageToken?: string } | null)?.pageToken
      pages++
    } while (pageToken !== undefined)
    t.same(seen, names, 'every object under the prefix, in name order, once')
    t.equal(pages, 3, 'in pages of 3')
    const [all] = await bucket.getFiles({ prefix: 'list/' })
    t.same(all.map((file) => file.name), [...names, 'list/y'], 'autoPaginate; a prefix is not a directory')
    const [none] = await bucket.getFiles({ prefix: 'nothing/' })
    t.same(none, [])
  })

  t.test('every request the SDK sent was one the fake knows', async (t) => {
    t.same(fake.requests.filter((request) => request.operation === 'unknown').map((request) => `${request.method} ${request.path}`), [])
    t.notOk(fake.requests.some((request) => request.headers.authorization !== undefined), 'no credentials were sent to the custom endpoint')
  })
})
