/**
 * The plugin on the Azure store (Azurite), driven by tus-js-client: an upload aborted by the client
 * and resumed, a server closed mid-upload and started again, parallel uploads (concatenation), a
 * stream of unknown length, ranged downloads, and DELETE leaving no blob behind; and
 * examples/azure.ts.
 */
import { createHash, randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import plugin from '../plugin/index.js'
import { AzureStore } from '../stores/azure.js'
import { runExample } from './helpers/example.js'
import { ACCOUNT, ACCOUNT_KEY, startAzurite, withAzurite, type AzuriteServer } from './helpers/azurite.js'
import type { ContainerClient } from '@azure/storage-blob'

const MiB = 1024 * 1024
const TUS = { 'Tus-Resumable': '1.0.0' }

function sha256 (data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

function idOf (url: string): string {
  return url.split('/').pop() ?? ''
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

withAzurite(t, () => {
  let azurite: AzuriteServer
  t.before(async () => { azurite = await startAzurite(t) })

  interface Served {
    container: ContainerClient
    url: string
    /** Closes the server (cutting open connections, as a crash would) and starts a new one on the same port. */
    restart: () => Promise<void>
    blob: (url: string) => Promise<Buffer>
    blobsOf: (url: string) => Promise<string[]>
  }

  async function serve (t: Test): Promise<Served> {
    const container = await azurite.container()
    let port = 0
    let app: FastifyInstance | undefined
    const start = async (): Promise<void> => {
      const store = new AzureStore({ containerClient: container, objectPrefix: 'tus/', blockSize: 256 * 1024 })
      const created = Fastify({ logger: false, requestTimeout: 0 })
      await created.register(plugin, { store })
      await created.listen({ port, host: '127.0.0.1' })
      const address = created.server.address()
      port = typeof address === 'object' && address !== null ? address.port : 0
      app = created
    }
    const stop = async (): Promise<void> => {
      const running = app
      app = undefined
      if (running === undefined) return
      running.server.closeAllConnections()
      await running.close()
    }
    t.teardown(stop)
    await start()
    return {
      container,
      url: `http://127.0.0.1:${port}/files/`,
      restart: async () => { await stop(); await start() },
      blob: async (url) => await container.getBlockBlobClient(`tus/${idOf(url)}`).downloadToBuffer(),
      blobsOf: async (url) => (await azurite.names(container, `tus/${idOf(url)}`)).filter((name) => name === `tus/${idOf(url)}` || name.startsWith(`tus/${idOf(url)}.`))
    }
  }

  async function remove (t: Test, url: string, blobsOf: (url: string) => Promise<string[]>): Promise<void> {
    const deleted = await fetch(url, { method: 'DELETE', headers: TUS })
    t.equal(deleted.status, 204, 'DELETE answers 204')
    t.same(await blobsOf(url), [], 'DELETE removed every blob of the upload')
    t.equal((await head(url)).status, 404, 'the upload is gone')
  }

  t.test('an upload aborted by the client resumes where it stopped; ranges; DELETE', async (t) => {
    const { url: endpoint, container, blob, blobsOf } = await serve(t)
    const data = randomBytes(9 * MiB + 77)
    let aborted = false
    const url = await new Promise<string>((resolve, reject) => {
      const running: tus.Upload = new tus.Upload(data as never, {
        endpoint,
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
    const resumed = await upload(data, { endpoint, uploadUrl: url, chunkSize: 2 * MiB })
    t.equal(resumed, url, 'the client resumed the same upload')
    t.equal(sha256(await blob(url)), sha256(data), 'the blob holds every byte, once')
    t.same(await blobsOf(url), [`tus/${idOf(url)}`, `tus/${idOf(url)}.info`], 'the blob and its description')
    const properties = await container.getBlockBlobClient(`tus/${idOf(url)}`).getProperties()
    t.equal(properties.contentType, 'application/x-test', 'the blob has the filetype as its Content-Type')
    for (const [range, start, end] of [['bytes=5-9', 5, 10], ['bytes=-100', data.length - 100, data.length], [`bytes=${9 * MiB}-`, 9 * MiB, data.length]] as const) {
      const download = await fetch(url, { headers: { Range: range } })
      t.equal(download.status, 206, range)
      t.equal(download.headers.get('content-range'), `bytes ${start}-${end - 1}/${data.length}`, range)
      t.same(Buffer.from(await download.arrayBuffer()), data.subarray(start, end), range)
    }
    const whole = await fetch(url)
    t.equal(sha256(Buffer.from(await whole.arrayBuffer())), sha256(data), 'GET serves the whole upload')
    await remove(t, url, blobsOf)
  })

  t.test('a server closed mid-upload and started again loses nothing the client is told it has', async (t) => {
    const { url: endpoint, restart, blob, blobsOf } = await serve(t)
    const data = randomBytes(12 * MiB + 5)
    let stoppedAt = 0
    let restarted: Promise<void> | undefined
    const url = await upload(data, {
      endpoint,
      chunkSize: 2 * MiB,
      onProgress: (sent) => {
        if (stoppedAt === 0 && sent >= 5 * MiB) {
          stoppedAt = sent
          restarted = restart()
        }
      }
    })
    await restarted
    t.ok(stoppedAt > 0, `the server was stopped after ${(stoppedAt / MiB).toFixed(1)} MiB had been sent`)
    t.equal(sha256(await blob(url)), sha256(data), 'the blob holds every byte')
    t.equal((await blobsOf(url)).length, 2, 'only the blob and its description')
  })

  t.test('parallel uploads are concatenated', async (t) => {
    const { url: endpoint, container, blob, blobsOf } = await serve(t)
    const data = randomBytes(7 * MiB + 3)
    const url = await upload(data, { endpoint, parallelUploads: 3, chunkSize: MiB })
    t.equal(sha256(await blob(url)), sha256(data), '3 parallel uploads')
    const info = await head(url)
    const partials = (info.headers.get('upload-concat') ?? '').replace(/^final;\s*/, '').split(/\s+/)
    t.equal(partials.length, 3)
    const download = await fetch(url, { headers: { Range: `bytes=${3 * MiB}-${3 * MiB + 9}` } })
    t.equal(download.status, 206)
    t.same(Buffer.from(await download.arrayBuffer()), data.subarray(3 * MiB, 3 * MiB + 10), 'a range across the partial uploads')
    await remove(t, url, blobsOf)
    for (const partial of partials) await remove(t, new URL(partial, url).href, blobsOf)
    t.same(await azurite.names(container), [], 'the container is empty')
  })

  t.test('a stream of unknown length', async (t) => {
    const { url: endpoint, blob, blobsOf } = await serve(t)
    const data = randomBytes(5 * MiB + 5)
    const pieces = Readable.from((function * () {
      for (let at = 0; at < data.length; at += 300 * 1024) yield data.subarray(at, at + 300 * 1024)
    })(), { objectMode: false })
    const url = await upload(pieces, { endpoint, uploadLengthDeferred: true, chunkSize: MiB })
    t.equal(sha256(await blob(url)), sha256(data))
    const info = await head(url)
    t.equal(info.headers.get('upload-length'), String(data.length), 'the length was declared at the end')
    await remove(t, url, blobsOf)
  })

  t.test('examples/azure.ts stores an upload in the container', async (t) => {
    const env = {
      PORT: '0',
      AZURE_STORAGE_ACCOUNT: ACCOUNT,
      AZURE_STORAGE_KEY: ACCOUNT_KEY,
      AZURE_ENDPOINT: azurite.endpoint,
      AZURE_CONTAINER: `example${process.pid}`,
      AZURE_OBJECT_PREFIX: 'x/'
    }
    const { base } = await runExample(t, 'azure.ts', env)
    const data = randomBytes(3 * MiB + 1)
    const url = await upload(data, { endpoint: `${base}/files/`, chunkSize: MiB, metadata: { filename: 'ok.bin' } })
    const stored = await azurite.service.getContainerClient(env.AZURE_CONTAINER).getBlockBlobClient(`x/${idOf(url)}`).downloadToBuffer()
    t.equal(sha256(stored), sha256(data))
    const options = await fetch(`${base}/files/`, { method: 'OPTIONS' })
    for (const extension of ['creation', 'creation-with-upload', 'creation-defer-length', 'termination', 'concatenation', 'expiration']) {
      t.match(options.headers.get('tus-extension'), new RegExp(`(^|,)${extension}(,|$)`), extension)
    }
  })
})
