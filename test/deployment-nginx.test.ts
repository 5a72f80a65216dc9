/**
 * docs/deployment.md's nginx config, for real: nginx in front of the `fastify-tus` command with
 * exactly the config the docs show (test/fixtures/nginx-tus.conf, only the two addresses changed
 * to loopback ports), tus-js-client uploading and resuming through it, and a stalled body whose
 * bytes reach the server before it ends (proxy_request_buffering off).
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import * as tus from 'tus-js-client'
import { tempDir } from './helpers/app.js'
import { startServer } from './helpers/cli.js'
import { rawRequest } from './helpers/http.js'
import { startNginx, withNginx } from './helpers/nginx.js'

const root = fileURLToPath(new URL('../', import.meta.url))
const TUS = { 'Tus-Resumable': '1.0.0' }
const OCTET = 'application/offset+octet-stream'

async function documentedConfig (): Promise<string> {
  return await readFile(join(root, 'test/fixtures/nginx-tus.conf'), 'utf8')
}

/** The documented config with nginx on `port` and the instance on `upstream`: nothing else changes. */
function onPorts (config: string, port: number, upstream: number): string {
  const listen = '    listen 80;\n'
  const server = '    server 127.0.0.1:8080;\n'
  if (!config.includes(listen) || !config.includes(server)) throw new Error('the fixture changed: update onPorts')
  return config.replace(listen, `    listen 127.0.0.1:${port};\n`).replace(server, `    server 127.0.0.1:${upstream};\n`)
}

t.test('docs/deployment.md shows the tested nginx config, verbatim', async (t) => {
  const docs = await readFile(join(root, 'docs/deployment.md'), 'utf8')
  t.ok(docs.includes(`\`\`\`nginx\n${await documentedConfig()}\`\`\``), 'the fixture is a code block of docs/deployment.md')
})

withNginx(t, () => {
  t.test('nginx in front of fastify-tus: upload, resume, and a stalled body that still counts', async (t) => {
    const dir = await tempDir(t)
    const server = await startServer(t, ['--port', '0', '--upload-dir', dir, '--behind-proxy', '--log-level', 'warn'])
    const config = await documentedConfig()
    const nginx = await startNginx(t, (port) => onPorts(config, port, server.port))
    const endpoint = `http://127.0.0.1:${nginx.port}/files/`

    const options = await fetch(endpoint, { method: 'OPTIONS' })
    t.ok([200, 204].includes(options.status), 'OPTIONS answered')
    t.equal(options.headers.get('tus-version'), '1.0.0')

    // tus-js-client: the first chunk, then stop, as if the tab was closed
    const data = randomBytes(3 * 1024 * 1024 + 123)
    const chunkSize = 1024 * 1024
    const url = await new Promise<string>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        endpoint,
        chunkSize,
        retryDelays: [],
        metadata: { filename: 'through-nginx.bin' },
        onError: reject,
        onChunkComplete: () => {
          upload.abort().then(() => resolve(upload.url as string), reject)
        }
      })
      upload.start()
    })
    t.match(url, new RegExp(`^http://127\\.0\\.0\\.1:${nginx.port}/files/[0-9a-f]{32}$`), 'Location names nginx, not the instance (X-Forwarded-Host)')
    const head = await fetch(url, { method: 'HEAD', headers: TUS })
    t.equal(head.headers.get('upload-offset'), String(chunkSize), 'the first chunk is stored')

    // a new client resumes from the URL
    const resumedFrom: number[] = []
    await new Promise<void>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        uploadUrl: url,
        chunkSize,
        retryDelays: [],
        onError: reject,
        onChunkComplete: (_chunk, accepted) => { resumedFrom.push(accepted) },
        onSuccess: () => resolve()
      })
      upload.start()
    })
    t.equal(resumedFrom[0], 2 * chunkSize, 'the resumed upload started at the second chunk')
    const id = url.split('/').pop() as string
    t.same(await readFile(join(dir, id)), data, 'the stored bytes are the file')

    // a body that stalls: its bytes reach the server while it is still open, so a HEAD sees them
    const created = await fetch(endpoint, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1000' } })
    t.equal(created.status, 201)
    const path = new URL(created.headers.get('location') as string).pathname
    const first = randomBytes(400)
    const stalled = rawRequest(nginx.port, 'PATCH', path, { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '1000' })
    stalled.write(first)
    let offset = '0'
    for (let i = 0; i < 50 && offset !== '400'; i++) {
      await sleep(100)
      // the HEAD asks the stalled PATCH to let go of the upload; the PATCH keeps its 400 bytes
      const resumed = await fetch(`${endpoint}${path.split('/').pop() as string}`, { method: 'HEAD', headers: TUS })
      offset = resumed.headers.get('upload-offset') ?? ''
    }
    if (offset !== '400') {
      // what went wrong, for a failure in CI
      const answer = await Promise.race([stalled.response, sleep(500)])
      t.comment(JSON.stringify(answer), server.output(), await nginx.errors())
    }
    t.equal(offset, '400', 'nginx streamed the body: the 400 bytes were stored before it ended')
    stalled.socket.destroy()
    const rest = randomBytes(600)
    const patch = await fetch(`http://127.0.0.1:${nginx.port}${path}`, {
      method: 'PATCH',
      headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '400' },
      body: rest
    })
    t.equal(patch.status, 204)
    t.equal(patch.headers.get('upload-offset'), '1000')
    t.same(await readFile(join(dir, path.split('/').pop() as string)), Buffer.concat([first, rest]))
    t.notMatch(await nginx.errors(), /\[(emerg|crit)\]/, 'nginx logged no critical error')
  })
})
