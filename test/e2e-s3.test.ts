/**
 * The `fastify-tus` command on the S3 store (a real radosgw), driven by tus-js-client: a
 * server killed with SIGKILL mid-upload and restarted, parallel uploads (concatenation), and a
 * stream of unknown length; and examples/s3.ts.
 */
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import { tempDir } from './helpers/app.js'
import { s3Server, withS3, type S3Server } from './helpers/ceph-s3.js'
import { freePort, startServer, type RunningServer } from './helpers/cli.js'
import { runExample } from './helpers/example.js'
import { collect, sha256 } from './helpers/s3-inspect.js'

const MiB = 1024 * 1024

// the command reads its credentials from the standard AWS environment
process.env.AWS_ACCESS_KEY_ID = 'tus-test'
process.env.AWS_SECRET_ACCESS_KEY = 'tus-test'
delete process.env.AWS_PROFILE
delete process.env.AWS_REGION

interface Command {
  server: S3Server
  bucket: string
  args: string[]
  start: () => Promise<RunningServer>
  /** The stored object of the upload at `url`. */
  object: (url: string) => Promise<Buffer>
}

async function command (t: Test, extra: string[] = []): Promise<Command> {
  const server = await s3Server()
  const bucket = await server.bucket()
  const client = server.client()
  t.teardown(() => client.destroy())
  const port = await freePort()
  const args = ['--port', String(port), '--upload-dir', await tempDir(t), '--log-level', 'warn', '--s3-bucket', bucket,
    '--s3-endpoint', server.endpoint, '--s3-force-path-style', '--s3-object-prefix', 'tus/', '--s3-part-size', '5MiB', ...extra]
  return {
    server,
    bucket,
    args,
    start: async () => await startServer(t, args),
    object: async (url) => {
      const result = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `tus/${url.split('/').pop() ?? ''}` }))
      return await collect(result.Body as Readable)
    }
  }
}

async function upload (input: Buffer | Readable, options: tus.UploadOptions): Promise<string> {
  return await new Promise<string>((resolve, reject) => {
    const running = new tus.Upload(input as never, {
      retryDelays: [200, 500, 1000, 1000, 2000, 2000, 4000],
      ...options,
      onError: reject,
      onSuccess: () => resolve(running.url as string)
    })
    running.start()
  })
}

withS3(t, () => {
  t.test('resume after SIGKILL keeps every byte', async (t) => {
    const { start, object, server: s3, bucket } = await command(t)
    let server = await start()
    t.match(server.output(), /uploads in s3:\/\/t-[0-9a-f]+\/tus\//)
    const data = randomBytes(32 * MiB + 99)
    let killedAt = 0
    let restarted: Promise<void> | undefined
    const url = await upload(data, {
      endpoint: server.url,
      chunkSize: 4 * MiB,
      metadata: { filename: 'größe.bin', filetype: 'application/octet-stream' },
      onProgress: (sent) => {
        if (killedAt === 0 && sent >= 14 * MiB) {
          killedAt = sent
          restarted = (async () => {
            await server.kill('SIGKILL')
            server = await start()
          })()
        }
      }
    })
    await restarted
    t.ok(killedAt > 0, `the server was killed after ${(killedAt / MiB).toFixed(1)} MiB had been sent`)
    t.equal(sha256(await object(url)), sha256(data), 'the object holds every byte')
    const client = s3.client()
    t.teardown(() => client.destroy())
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket }))
    t.same((listed.Contents ?? []).map((object) => object.Key).filter((key) => key?.endsWith('.info')).length, 1,
      'the client resumed its upload instead of starting a new one')
    const head = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
    t.equal(head.headers.get('upload-offset'), String(data.length))
    const download = await fetch(url, { headers: { Range: 'bytes=5-9' } })
    t.equal(download.status, 206)
    t.same(Buffer.from(await download.arrayBuffer()), data.subarray(5, 10))
  })

  t.test('parallel uploads are concatenated in the bucket', async (t) => {
    const { start, object } = await command(t)
    const server = await start()
    for (const [size, parallelUploads] of [[12 * MiB + 1, 3], [23 * MiB, 2]] as const) {
      const data = randomBytes(size)
      const url = await upload(data, { endpoint: server.url, parallelUploads, chunkSize: 3 * MiB })
      t.equal(sha256(await object(url)), sha256(data), `${parallelUploads} parallel uploads of ${size} bytes`)
    }
  })

  t.test('a stream of unknown length', async (t) => {
    const { start, object } = await command(t, ['--s3-buffer-dir', await tempDir(t)])
    const server = await start()
    const data = randomBytes(11 * MiB + 5)
    const pieces = Readable.from((function * () {
      for (let at = 0; at < data.length; at += 300 * 1024) yield data.subarray(at, at + 300 * 1024)
    })(), { objectMode: false })
    const url = await upload(pieces, { endpoint: server.url, uploadLengthDeferred: true, chunkSize: MiB })
    t.equal(sha256(await object(url)), sha256(data))
    const head = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
    t.equal(head.headers.get('upload-length'), String(data.length))
  })

  t.test('examples/s3.ts stores an upload in the bucket', async (t) => {
    const s3 = await s3Server()
    const bucket = await s3.bucket()
    const { base } = await runExample(t, 's3.ts', { PORT: '0', S3_BUCKET: bucket, S3_ENDPOINT: s3.endpoint })
    const data = randomBytes(6 * MiB)
    const url = await upload(data, { endpoint: `${base}/files/`, chunkSize: 2 * MiB, metadata: { filename: 'ok.bin' } })
    const client = s3.client()
    t.teardown(() => client.destroy())
    const stored = await client.send(new GetObjectCommand({ Bucket: bucket, Key: `tus/${url.split('/').pop() ?? ''}` }))
    t.equal(sha256(await collect(stored.Body as Readable)), sha256(data))
    const options = await fetch(`${base}/files/`, { method: 'OPTIONS' })
    t.match(options.headers.get('tus-extension'), /expiration/)
    t.ok(Number(options.headers.get('tus-max-size')) > 0, "the store's limit is announced")
  })
})
