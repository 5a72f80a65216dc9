/**
 * S3 store upload throughput against a plain `@aws-sdk/lib-storage` `Upload` of the same bytes
 * to the same server, in one process. By default it starts the test radosgw (see
 * test/helpers/ceph-s3.ts; stopped when the benchmark exits); `--endpoint` and `--bucket` point
 * it at another S3 (credentials from the AWS environment).
 *
 *   npx tsx bench/s3.ts                      # 256 MiB, 3 rounds
 *   npx tsx bench/s3.ts --size 1GiB --rounds 5
 *   npx tsx bench/s3.ts --endpoint http://127.0.0.1:9000 --bucket bench
 *
 * Cases: the store taking the whole body in one write (a single PATCH); the store taking it as a
 * chain of 8 MiB PATCHes (a client with chunkSize 8 MiB), each a `get` then a `write` under one
 * lock lease, as the plugin makes them behind the file locker; the plain SDK doing what such a
 * chain can do at best (one 8 MiB UploadPart after another: a client sends the next PATCH only
 * after the previous one was answered, and the answer waits for the part to be stored); and
 * lib-storage with its defaults (5 MiB parts, 4 at once) and with the store's part size and
 * concurrency (8 MiB, 8 at once), which a single PATCH can match but a chain cannot.
 */
import {
  CompleteMultipartUploadCommand, CreateBucketCommand, CreateMultipartUploadCommand, DeleteObjectCommand, S3Client,
  UploadPartCommand, type S3ClientConfig
} from '@aws-sdk/client-s3'
import { Upload } from '@aws-sdk/lib-storage'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { parseArgs } from 'node:util'
import { S3Store } from '../stores/s3.js'
import { s3Server } from '../test/helpers/ceph-s3.js'

const MiB = 1024 * 1024
const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '256MiB' },
    rounds: { type: 'string', default: '3' },
    endpoint: { type: 'string' },
    bucket: { type: 'string' }
  }
})
const SIZE = Number(/^(\d+)MiB$/.exec(values.size)?.[1] ?? 0) * MiB || Number(/^(\d+)GiB$/.exec(values.size)?.[1] ?? 0) * 1024 * MiB
if (SIZE === 0) throw new Error('--size must be like 256MiB or 1GiB')
const ROUNDS = Number(values.rounds)

let config: S3ClientConfig
let bucket: string
if (values.endpoint !== undefined) {
  config = { endpoint: values.endpoint, forcePathStyle: true, region: process.env.AWS_REGION ?? 'us-east-1' }
  bucket = values.bucket ?? 'bench'
} else {
  process.stdout.write('starting radosgw …\n')
  const server = await s3Server()
  config = server.config
  bucket = await server.bucket()
}
config = { requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED', ...config }
const client = new S3Client(config)
if (values.endpoint !== undefined && values.bucket === undefined) await client.send(new CreateBucketCommand({ Bucket: bucket })).catch(() => {})

// 64 MiB of random bytes, repeated: enough that nothing is served from a tiny cache
const block = randomBytes(Math.min(SIZE, 64 * MiB))
function body (): Readable {
  return Readable.from((function * () {
    for (let at = 0; at < SIZE; at += 64 * 1024) {
      const offset = at % block.length
      yield block.subarray(offset, offset + Math.min(64 * 1024, SIZE - at))
    }
  })(), { objectMode: false })
}

/** The body cut into 8 MiB buffers, as a client with chunkSize 8 MiB reads its file. */
async function * eightMiB (source: Readable): AsyncGenerator<Buffer> {
  let pending: Buffer[] = []
  let length = 0
  for await (const piece of source) {
    pending.push(piece as Buffer)
    length += (piece as Buffer).length
    if (length >= 8 * MiB) {
      const all = Buffer.concat(pending)
      yield all.subarray(0, 8 * MiB)
      pending = [all.subarray(8 * MiB)]
      length -= 8 * MiB
    }
  }
  if (length > 0) yield Buffer.concat(pending)
}

let counter = 0
const store = new S3Store({ client, bucket, objectPrefix: 'bench/' })

/** Each case uploads SIZE bytes and returns how to delete them (not timed). */
const cases: Record<string, () => Promise<() => Promise<void>>> = {
  'S3Store, one write': async () => {
    const id = `one${counter++}`
    await store.create({ id, size: SIZE, metadata: {} })
    if (await store.write(id, { offset: 0, body: body() }) !== SIZE) throw new Error('short write')
    return async () => await store.remove(id)
  },
  'S3Store, chain of 8 MiB PATCHes': async () => {
    const id = `chunked${counter++}`
    // one lease for the whole chain: the file locker keeps the lock between the PATCHes
    const lease = `bench-${id}`
    await store.create({ id, size: SIZE, metadata: {} }, { lease })
    const chunks = eightMiB(body())
    let offset = 0
    for await (const chunk of chunks) {
      // each PATCH: the plugin reads the upload (its offset) and then hands the body to the store
      const upload = await store.get(id, { lease })
      if (upload.offset !== offset) throw new Error(`offset ${upload.offset}, expected ${offset}`)
      offset += await store.write(id, { offset, body: Readable.from([chunk]), lease })
    }
    if (offset !== SIZE) throw new Error('short chain')
    return async () => await store.remove(id)
  },
  'plain SDK, one 8 MiB UploadPart after another': async () => {
    const Key = `bench/seq${counter++}`
    const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key }))
    const UploadId = created.UploadId as string
    const Parts: Array<{ PartNumber: number, ETag: string | undefined }> = []
    for await (const chunk of eightMiB(body())) {
      const PartNumber = Parts.length + 1
      const part = await client.send(new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber, Body: chunk, ContentLength: chunk.length }))
      Parts.push({ PartNumber, ETag: part.ETag })
    }
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key, UploadId, MultipartUpload: { Parts } }))
    return async () => { await client.send(new DeleteObjectCommand({ Bucket: bucket, Key })) }
  },
  'lib-storage, defaults (5 MiB, 4 at once)': async () => {
    const Key = `bench/lib${counter++}`
    await new Upload({ client, params: { Bucket: bucket, Key, Body: body() } }).done()
    return async () => { await client.send(new DeleteObjectCommand({ Bucket: bucket, Key })) }
  },
  'lib-storage, 8 MiB parts, 8 at once': async () => {
    const Key = `bench/lib${counter++}`
    await new Upload({ client, params: { Bucket: bucket, Key, Body: body() }, partSize: 8 * MiB, queueSize: 8 }).done()
    return async () => { await client.send(new DeleteObjectCommand({ Bucket: bucket, Key })) }
  }
}

const rates: Record<string, number[]> = {}
for (let round = 1; round <= ROUNDS; round++) {
  for (const [name, run] of Object.entries(cases)) {
    const started = performance.now()
    const cleanup = await run()
    const rate = SIZE / MiB / ((performance.now() - started) / 1000)
    await cleanup()
    ;(rates[name] ??= []).push(rate)
    process.stdout.write(`round ${round}: ${name}: ${rate.toFixed(1)} MiB/s\n`)
  }
}

const median = (list: number[]): number => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0
const baseline = median(rates['lib-storage, 8 MiB parts, 8 at once'] ?? [])
const sequential = median(rates['plain SDK, one 8 MiB UploadPart after another'] ?? [])
process.stdout.write(`\n${SIZE / MiB} MiB, median of ${ROUNDS} rounds (Node ${process.version})\n\n`)
process.stdout.write('| case | MiB/s | ÷ lib-storage (8 MiB, 8 at once) | ÷ sequential UploadParts |\n| --- | ---: | ---: | ---: |\n')
for (const [name, list] of Object.entries(rates)) {
  const rate = median(list)
  process.stdout.write(`| ${name} | ${rate.toFixed(1)} | ${(rate / baseline).toFixed(2)}× | ${(rate / sequential).toFixed(2)}× |\n`)
}
process.stdout.write(`\nS3Store peak buffered bytes: ${(store.bufferStats.peak / MiB).toFixed(0)} MiB (budget ${(store.bufferStats.limit / MiB).toFixed(0)} MiB)\n`)
client.destroy()
// the radosgw we started stops with this process
process.exit(0)
