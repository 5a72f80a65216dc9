/**
 * The `fastify-tus` command on the GCS store, driven by tus-js-client: an upload aborted by the
 * client and resumed, a server killed with SIGKILL mid-upload and restarted, parallel uploads
 * (concatenation), a stream of unknown length, ranged downloads, and DELETE removing every
 * object; and examples/gcs.ts.
 *
 * The GCS fake (test/helpers/gcs-fake.ts) runs in this process on a loopback port and the
 * command, a child process, reaches it through `--gcs-endpoint`. With `GCS_BUCKET` set (and
 * Google credentials in the environment) everything runs on that real bucket instead, under a
 * prefix of its own that is deleted at the end (test/helpers/gcs.ts).
 */
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import { tempDir } from './helpers/app.js'
import { startServer, freePort, type RunningServer } from './helpers/cli.js'
import { runExample } from './helpers/example.js'
import { gcsTarget } from './helpers/gcs.js'

const MiB = 1024 * 1024
const TUS = { 'Tus-Resumable': '1.0.0' }

const target = await gcsTarget()
t.teardown(target.close)
t.comment(target.fake === undefined ? `on the real bucket gs://${target.bucket} (GCS_BUCKET)` : `on the GCS fake at ${target.fake.url} (set GCS_BUCKET for a real bucket)`)

function sha256 (data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

function idOf (url: string): string {
  return url.split('/').pop() ?? ''
}

interface Command {
  prefix: string
  start: () => Promise<RunningServer>
  /** The finished object of the upload at `url`, read through the SDK. */
  object: (url: string) => Promise<Buffer>
  /** Names of every object of the upload at `url`. */
  objectsOf: (url: string) => Promise<string[]>
}

/** The GCS flags of the command: the fake's endpoint, or none for a real bucket. */
function gcsFlags (prefix: string): string[] {
  const flags = ['--gcs-bucket', target.bucket, '--gcs-object-prefix', prefix]
  return target.fake === undefined ? flags : [...flags, '--gcs-endpoint', target.fake.url]
}

async function command (t: Test): Promise<Command> {
  const prefix = target.prefix()
  const args = ['--port', String(await freePort()), '--upload-dir', await tempDir(t), '--log-level', 'warn', ...gcsFlags(prefix)]
  const bucket = target.storage.bucket(target.bucket)
  return {
    prefix,
    start: async () => await startServer(t, args),
    object: async (url) => (await bucket.file(`${prefix}${idOf(url)}`).download())[0],
    objectsOf: async (url) => (await target.names(prefix)).filter((name) => name === `${prefix}${idOf(url)}` || name.startsWith(`${prefix}${idOf(url)}.`))
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

async function head (url: string): Promise<Response> {
  return await fetch(url, { method: 'HEAD', headers: TUS })
}

async function remove (t: Test, url: string, objectsOf: (url: string) => Promise<string[]>): Promise<void> {
  const deleted = await fetch(url, { method: 'DELETE', headers: TUS })
  t.equal(deleted.status, 204, 'DELETE answers 204')
  t.same(await objectsOf(url), [], 'DELETE removed every object of the upload')
  t.equal((await head(url)).status, 404, 'the upload is gone')
}

t.test('an upload aborted by the client resumes where it stopped', async (t) => {
  const { start, object, objectsOf, prefix } = await command(t)
  const server = await start()
  t.match(server.output(), new RegExp(`uploads in gs://${target.bucket}/${prefix.replace(/[/.]/g, '\\$&')}`))
  const data = randomBytes(9 * MiB + 77)
  // first run: stopped by the client after a few chunks
  let aborted = false
  const url = await new Promise<string>((resolve, reject) => {
    const running: tus.Upload = new tus.Upload(data as never, {
      endpoint: server.url,
      chunkSize: MiB,
      metadata: { filename: 'größe.bin', filetype: 'application/x-test' },
      onError: reject,
      onProgress: (sent) => {
        if (!aborted && sent >= 3 * MiB + 1000 && running.url !== null) {
          aborted = true
          const at = running.url
          running.abort().then(() => { resolve(at) }, reject)
        }
      }
    })
    running.start()
  })
  const stopped = Number((await head(url)).headers.get('upload-offset'))
  t.ok(stopped > 0 && stopped < data.length, `stopped at ${stopped} of ${data.length} bytes`)
  t.ok((await objectsOf(url)).some((name) => name.includes('.piece.')), 'the bytes so far are pieces in the bucket')
  t.notOk((await objectsOf(url)).includes(`${prefix}${idOf(url)}`), 'no finished object yet')

  // second run: the same upload, from its URL
  const resumed = await upload(data, { endpoint: server.url, uploadUrl: url, chunkSize: 2 * MiB })
  t.equal(resumed, url, 'the client resumed the same upload')
  const stored = await object(url)
  t.equal(sha256(stored), sha256(data), 'the object holds every byte, once')
  t.same(await objectsOf(url), [`${prefix}${idOf(url)}`, `${prefix}${idOf(url)}.info`], 'only the finished object and the description are left')
  const [metadata] = await target.storage.bucket(target.bucket).file(`${prefix}${idOf(url)}`).getMetadata()
  t.equal(metadata.contentType, 'application/x-test', 'the object has the filetype as its Content-Type')

  const info = await head(url)
  t.equal(info.headers.get('upload-offset'), String(data.length))
  for (const [range, start, end] of [['bytes=5-9', 5, 10], ['bytes=-100', data.length - 100, data.length], [`bytes=${9 * MiB}-`, 9 * MiB, data.length]] as const) {
    const download = await fetch(url, { headers: { Range: range } })
    t.equal(download.status, 206, range)
    t.equal(download.headers.get('content-range'), `bytes ${start}-${end - 1}/${data.length}`, range)
    t.same(Buffer.from(await download.arrayBuffer()), data.subarray(start, end), range)
  }
  const whole = await fetch(url)
  t.equal(whole.status, 200)
  t.equal(sha256(Buffer.from(await whole.arrayBuffer())), sha256(data), 'GET serves the whole upload')
  const unsatisfiable = await fetch(url, { headers: { Range: `bytes=${data.length}-` } })
  t.equal(unsatisfiable.status, 416)
  await unsatisfiable.arrayBuffer()

  await remove(t, url, objectsOf)
})

t.test('a server killed mid-upload loses nothing the client is told it has', async (t) => {
  const { start, object, objectsOf } = await command(t)
  let server = await start()
  const data = randomBytes(12 * MiB + 5)
  let killedAt = 0
  let restarted: Promise<void> | undefined
  const url = await upload(data, {
    endpoint: server.url,
    chunkSize: 2 * MiB,
    onProgress: (sent) => {
      if (killedAt === 0 && sent >= 5 * MiB) {
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
  t.equal((await objectsOf(url)).length, 2, 'no piece or body is left over, only the object and its description')
})

t.test('parallel uploads are concatenated by composition', async (t) => {
  const { start, object, objectsOf, prefix } = await command(t)
  const server = await start()
  const data = randomBytes(7 * MiB + 3)
  const url = await upload(data, { endpoint: server.url, parallelUploads: 3, chunkSize: MiB })
  t.equal(sha256(await object(url)), sha256(data), '3 parallel uploads')
  const info = await head(url)
  t.match(info.headers.get('upload-concat'), /^final;/)
  const partials = (info.headers.get('upload-concat') ?? '').replace(/^final;\s*/, '').split(/\s+/)
  t.equal(partials.length, 3)
  const download = await fetch(url, { headers: { Range: `bytes=${3 * MiB}-${3 * MiB + 9}` } })
  t.equal(download.status, 206)
  t.same(Buffer.from(await download.arrayBuffer()), data.subarray(3 * MiB, 3 * MiB + 10), 'a range across the partial uploads')
  await remove(t, url, objectsOf)
  for (const partial of partials) {
    t.equal((await head(new URL(partial, url).href)).status, 200, 'the partial uploads are uploads of their own')
    await remove(t, new URL(partial, url).href, objectsOf)
  }
  t.same(await target.names(prefix), [], 'the bucket has nothing left under the prefix')
})

t.test('a stream of unknown length', async (t) => {
  const { start, object, objectsOf } = await command(t)
  const server = await start()
  const data = randomBytes(5 * MiB + 5)
  const pieces = Readable.from((function * () {
    for (let at = 0; at < data.length; at += 300 * 1024) yield data.subarray(at, at + 300 * 1024)
  })(), { objectMode: false })
  const url = await upload(pieces, { endpoint: server.url, uploadLengthDeferred: true, chunkSize: MiB })
  t.equal(sha256(await object(url)), sha256(data))
  const info = await head(url)
  t.equal(info.headers.get('upload-length'), String(data.length), 'the length was declared at the end')
  t.equal(info.headers.get('upload-defer-length'), null)
  await remove(t, url, objectsOf)
})

t.test('examples/gcs.ts stores an upload in the bucket', async (t) => {
  const prefix = target.prefix()
  const env: Record<string, string> = { PORT: '0', GCS_BUCKET: target.bucket, GCS_OBJECT_PREFIX: prefix }
  if (target.fake !== undefined) env.GCS_ENDPOINT = target.fake.url
  const { base } = await runExample(t, 'gcs.ts', env)
  const data = randomBytes(3 * MiB + 1)
  const url = await upload(data, { endpoint: `${base}/files/`, chunkSize: MiB, metadata: { filename: 'ok.bin' } })
  const [stored] = await target.storage.bucket(target.bucket).file(`${prefix}${idOf(url)}`).download()
  t.equal(sha256(stored), sha256(data))
  const options = await fetch(`${base}/files/`, { method: 'OPTIONS' })
  for (const extension of ['creation', 'creation-defer-length', 'termination', 'concatenation', 'expiration']) {
    t.match(options.headers.get('tus-extension'), new RegExp(`(^|,)${extension}(,|$)`), extension)
  }
})
