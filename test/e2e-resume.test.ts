/**
 * The promise of the product, as a user sees it: tus-js-client uploads 50 MiB in 5 MiB chunks,
 * the server is killed with SIGKILL in the middle, restarted on the same directory and port,
 * and the client resumes; the stored bytes are identical.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import * as tus from 'tus-js-client'
import { tempDir } from './helpers/app.js'
import { freePort, startServer, type RunningServer } from './helpers/cli.js'

const MiB = 1024 * 1024

t.test('resume after SIGKILL keeps every byte', async (t) => {
  const dir = await tempDir(t)
  const port = await freePort()
  const args = ['--port', String(port), '--upload-dir', dir, '--log-level', 'warn']
  let server: RunningServer = await startServer(t, args)
  const data = randomBytes(50 * MiB)
  let killedAt = 0
  let restarted: Promise<void> | undefined
  const offsets: number[] = []

  const url = await new Promise<string>((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: server.url,
      chunkSize: 5 * MiB,
      retryDelays: [200, 500, 1000, 1000, 2000, 2000, 4000],
      metadata: { filename: 'big.bin', filetype: 'application/octet-stream' },
      onProgress: (sent) => {
        if (killedAt === 0 && sent >= 22 * MiB) {
          killedAt = sent
          restarted = (async () => {
            await server.kill('SIGKILL')
            server = await startServer(t, args)
          })()
        }
      },
      onChunkComplete: (_size, accepted) => { offsets.push(accepted) },
      onError: reject,
      onSuccess: () => resolve(upload.url as string)
    })
    upload.start()
  })
  await restarted
  t.ok(killedAt > 0, `the server was killed after ${(killedAt / MiB).toFixed(1)} MiB had been sent`)
  t.ok(offsets.length >= 10, 'every chunk was acknowledged')
  const infos = (await readdir(dir)).filter((name) => name.endsWith('.info'))
  t.equal(infos.length, 1, 'the client resumed its upload instead of starting a new one')
  const stored = await readFile(join(dir, url.split('/').pop() as string))
  t.equal(stored.length, data.length)
  t.equal(createHash('sha256').update(stored).digest('hex'), createHash('sha256').update(data).digest('hex'), 'bytes identical')
  const head = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
  t.equal(head.headers.get('upload-offset'), String(data.length))
})

t.test('tus-js-client: creation-with-upload and deferred length through the plugin', async (t) => {
  const dir = await tempDir(t)
  const server = await startServer(t, ['--port', '0', '--upload-dir', dir, '--log-level', 'warn'])
  const data = randomBytes(3 * MiB + 17)
  for (const options of [{ uploadDataDuringCreation: true }, { uploadLengthDeferred: true, uploadSize: undefined }]) {
    const { Readable } = await import('node:stream')
    const input = options.uploadLengthDeferred === true ? Readable.from([data.subarray(0, MiB), data.subarray(MiB)]) : data
    const url = await new Promise<string>((resolve, reject) => {
      const upload = new tus.Upload(input as never, {
        endpoint: server.url,
        chunkSize: MiB,
        ...options,
        onError: reject,
        onSuccess: () => resolve(upload.url as string)
      })
      upload.start()
    })
    const stored = await readFile(join(dir, url.split('/').pop() as string))
    t.same(stored, data, JSON.stringify(options))
  }
})
