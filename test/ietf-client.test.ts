/**
 * The IETF draft dialect driven by tus-js-client: `ietf-draft-03` (interop 5) and
 * `ietf-draft-05` (interop 6), chunked, with data during creation, with a deferred length,
 * resumed after an abort, and terminated. The same stores and hooks run as for tus v1.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import * as tusClient from 'tus-js-client'
import type { UploadInfo } from '../stores/store.js'
import { buildApp } from './helpers/app.js'

const KiB = 1024

// tus-js-client 4.3's types lack `protocol`
type DraftOptions = tusClient.UploadOptions & { protocol: 'ietf-draft-03' | 'ietf-draft-05' }

function upload (input: Buffer | Readable, options: DraftOptions): Promise<string> {
  return new Promise((resolve, reject) => {
    const client = new tusClient.Upload(input as never, {
      ...options,
      onError: reject,
      onSuccess: () => resolve(client.url as string)
    } as tusClient.UploadOptions)
    client.start()
  })
}

for (const protocol of ['ietf-draft-03', 'ietf-draft-05'] as const) {
  const version = protocol === 'ietf-draft-03' ? '5' : '6'

  t.test(`${protocol}: chunked, during creation and deferred, on the file store`, async (t) => {
    const completed: UploadInfo[] = []
    const seen: string[] = []
    const { app, dir } = await buildApp(t, {
      fileStore: true,
      hooks: {
        onUploadComplete: (_request, info) => { completed.push(info) },
        preCreate: (request) => { seen.push(String(request.headers['upload-draft-interop-version'])) }
      }
    })
    const endpoint = `${await app.listen({ port: 0, host: '127.0.0.1' })}/files/`
    const data = randomBytes(300 * KiB + 7)
    const variants: Array<[string, Partial<DraftOptions>, () => Buffer | Readable]> = [
      ['chunked', { chunkSize: 64 * KiB }, () => data],
      ['data during creation', { chunkSize: 100 * KiB, uploadDataDuringCreation: true }, () => data],
      ['one request', {}, () => data],
      ['deferred length', { chunkSize: 64 * KiB, uploadLengthDeferred: true }, () => Readable.from([data.subarray(0, 100 * KiB), data.subarray(100 * KiB)])]
    ]
    for (const [name, options, input] of variants) {
      const url = await upload(input(), { endpoint, protocol, metadata: { filename: 'a.bin' }, ...options })
      const stored = await readFile(join(dir as string, url.split('/').pop() as string))
      t.same(stored, data, `${name}: bytes identical`)
      const head = await fetch(url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': version } })
      t.equal(head.status, 200, `${name}: HEAD 200 (interop ${version})`)
      t.equal(head.headers.get('upload-complete'), '?1')
      t.equal(head.headers.get('upload-offset'), String(data.length))
      t.equal(head.headers.get('upload-draft-interop-version'), version)
      t.equal(head.headers.get('tus-resumable'), null, 'no tus header on draft responses')
    }
    t.equal(completed.length, variants.length, 'onUploadComplete ran once per upload')
    t.equal(completed[0]?.metadata.filename, 'a.bin', 'Upload-Metadata is honoured')
    t.same(seen, variants.map(() => version), 'preCreate ran for each creation')
  })

  t.test(`${protocol}: resume after abort, then terminate`, async (t) => {
    const { app } = await buildApp(t)
    const endpoint = `${await app.listen({ port: 0, host: '127.0.0.1' })}/files/`
    const data = randomBytes(256 * KiB)
    let url = ''
    await new Promise<void>((resolve, reject) => {
      const client = new tusClient.Upload(data as never, {
        endpoint,
        protocol,
        chunkSize: 64 * KiB,
        onChunkComplete: (_size: number, accepted: number) => {
          if (accepted >= 128 * KiB) {
            url = client.url as string
            client.abort().then(resolve, reject)
          }
        },
        onError: reject,
        onSuccess: () => reject(new Error('should have been aborted'))
      } as tusClient.UploadOptions)
      client.start()
    })
    const head = await fetch(url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': version } })
    t.equal(head.headers.get('upload-complete'), '?0', 'incomplete after the abort')
    t.equal(head.headers.get('upload-offset'), String(128 * KiB))
    const resumed = await upload(data, { endpoint, protocol, uploadUrl: url, chunkSize: 64 * KiB })
    t.equal(resumed, url, 'the same upload was resumed')
    const done = await fetch(url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': version } })
    t.equal(done.headers.get('upload-offset'), String(data.length))
    t.equal(done.headers.get('upload-complete'), '?1')
    const body = await fetch(url)
    t.same(Buffer.from(await body.arrayBuffer()), data, 'the download has every byte')
    await tusClient.Upload.terminate(url, { protocol } as tusClient.UploadOptions)
    const gone = await fetch(url, { method: 'HEAD', headers: { 'Upload-Draft-Interop-Version': version } })
    t.equal(gone.status, 404, 'terminated')
  })
}
