/**
 * How the command listens, with real clients: HTTPS with HTTP/2 and HTTP/1.1 (curl, tus-js-client,
 * node:http2) and tusd's TLS modes, cleartext HTTP/2 next to HTTP/1.1 (`--enable-h2c`), a unix
 * socket (`--unix-sock`), and the upload rules over HTTP/2 streams: a reset stream keeps its
 * bytes and frees the lock, the idle timeout, and the graceful stop.
 */
import { execFile } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { existsSync, writeFileSync } from 'node:fs'
import { constants as h2 } from 'node:http2'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import Fastify, { type FastifyInstance } from 'fastify'
import { connect as connectTcp, type AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import { main, type CommandIo } from '../bin/main.js'
import tusPlugin from '../plugin/index.js'
import { MemoryStore } from '../stores/memory.js'
import { tempDir } from './helpers/app.js'
import { hasOpenssl, http2Request, http2Session, makeCertificate, type TestCertificate } from './helpers/tls.js'

const run = promisify(execFile)
const TUS = { 'tus-resumable': '1.0.0' }

if (!hasOpenssl()) throw new Error('these tests need the openssl command')

interface Started {
  app: FastifyInstance
  io: CommandIo & { out: string, err: string, codes: number[], emitter: EventEmitter }
  /** The collection URL (or, on a unix socket, its path). */
  url: string
  dir: string
}

function fakeIo (): Started['io'] {
  const emitter = new EventEmitter()
  const io = {
    out: '',
    err: '',
    codes: [] as number[],
    emitter,
    stdout: (text: string) => { io.out += text },
    stderr: (text: string) => { io.err += text },
    exit: (code: number) => { io.codes.push(code) },
    signals: emitter
  }
  return io
}

async function start (t: Test, args: string[]): Promise<Started> {
  const dir = await tempDir(t)
  const io = fakeIo()
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', join(dir, 'uploads'), '--log-level', 'silent', '--disable-demo', ...args], io)
  if (app === undefined) throw new Error(`no server: ${io.err}`)
  t.teardown(async () => { await app.close() })
  const url = /listening on (\S+)/.exec(io.out)?.[1] as string
  return { app, io, url, dir }
}

/** curl's `-w` summary: `<http version> <status>` plus the headers. */
async function curl (args: string[]): Promise<{ version: string, status: number, headers: string, size: number }> {
  const { stdout } = await run('curl', ['-sS', '-D', '-', '-o', '/dev/null', '-w', '\n%{http_version} %{http_code} %{size_download}', ...args])
  const lines = stdout.trimEnd().split('\n')
  const [version, status, size] = (lines.pop() ?? '').split(' ')
  return { version: version ?? '', status: Number(status), headers: lines.join('\n'), size: Number(size) }
}

function locationOf (headers: string): string {
  return /^location: (\S+)/im.exec(headers)?.[1] ?? ''
}

let certificate: TestCertificate
t.before(async () => {
  certificate = makeCertificate(await tempDir(t), 'server')
})

t.test('usage errors: h2c with TLS, half a TLS pair, unreadable files', async (t) => {
  const cert = makeCertificate(await tempDir(t), 'flags')
  for (const [args, message] of [
    [['--enable-h2c', '--tls-certificate', cert.certPath, '--tls-key', cert.keyPath], /--enable-h2c is cleartext HTTP\/2: it cannot be combined with --tls-certificate/],
    [['--tls-certificate', cert.certPath], /--tls-certificate and --tls-key go together/],
    [['--tls-key', cert.keyPath], /--tls-certificate and --tls-key go together/],
    [['--tls-mode', 'ssl3'], /--tls-mode must be one of tls13, tls12, tls12-strong/],
    [['--tls-certificate', '/nonexistent.pem', '--tls-key', cert.keyPath], /--tls-certificate \/nonexistent.pem cannot be read/]
  ] as const) {
    const io = fakeIo()
    t.equal(await main([...args, '--log-level', 'silent'], io), undefined)
    t.same(io.codes, [2], args.join(' '))
    t.match(io.err, message)
  }
})

t.test('HTTPS: HTTP/2 by ALPN and HTTP/1.1 on one port (curl)', async (t) => {
  const { url } = await start(t, ['--tls-certificate', certificate.certPath, '--tls-key', certificate.keyPath])
  t.match(url, /^https:\/\/127\.0\.0\.1:\d+\/files\/$/)
  const base = url.replace('127.0.0.1', 'localhost')
  const tls = ['--cacert', certificate.certPath]
  const created = await curl([...tls, '--http2', '-X', 'POST', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Length: 10', base])
  t.equal(created.version, '2')
  t.equal(created.status, 201)
  const location = locationOf(created.headers)
  t.match(location, /^https:\/\/localhost:\d+\/files\/\w+$/, 'the Location is https')
  const patched = await curl([...tls, '--http2', '-X', 'PATCH', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Offset: 0',
    '-H', 'Content-Type: application/offset+octet-stream', '--data-binary', 'hello', location])
  t.equal(patched.version, '2')
  t.equal(patched.status, 204)
  t.notMatch(patched.headers, /^connection:/im)
  const head = await curl([...tls, '--http1.1', '-I', '-H', 'Tus-Resumable: 1.0.0', location])
  t.equal(head.version, '1.1', 'HTTP/1.1 still served')
  t.match(head.headers, /upload-offset: 5/i)
  // a body the server does not read: HTTP/2 must not carry Connection (curl fails on it)
  const refused = await curl([...tls, '--http2', '-X', 'PATCH', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Offset: 3',
    '-H', 'Content-Type: application/offset+octet-stream', '--data-binary', 'world', location])
  t.equal(refused.version, '2')
  t.equal(refused.status, 409)
  t.notMatch(refused.headers, /^connection:/im)
  t.ok(refused.size > 0 && refused.headers.includes(`content-length: ${refused.size}`), 'the whole error body arrives before the stream is reset')
  const refused1 = await curl([...tls, '--http1.1', '-X', 'PATCH', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Offset: 3',
    '-H', 'Content-Type: application/offset+octet-stream', '--data-binary', 'world', location])
  t.equal(refused1.status, 409)
  t.match(refused1.headers, /^connection: close/im, 'HTTP/1.1 still closes after an unread body')
})

t.test('--tls-mode: tls13 refuses TLS 1.2, tls12-strong refuses TLS 1.3, tls12 takes both', async (t) => {
  const tls = ['--cacert', certificate.certPath, '-X', 'OPTIONS']
  const files = ['--tls-certificate', certificate.certPath, '--tls-key', certificate.keyPath]
  const tls13 = (await start(t, [...files, '--tls-mode', 'tls13'])).url.replace('127.0.0.1', 'localhost')
  t.equal((await curl([...tls, '--tlsv1.3', tls13])).status, 204)
  await t.rejects(curl([...tls, '--tls-max', '1.2', tls13]), 'no TLS 1.2 in tls13 mode')
  const strong = (await start(t, [...files, '--tls-mode', 'tls12-strong'])).url.replace('127.0.0.1', 'localhost')
  t.equal((await curl([...tls, '--tls-max', '1.2', strong])).status, 204)
  await t.rejects(curl([...tls, '--tlsv1.3', strong]), 'no TLS 1.3 in tls12-strong mode')
  await t.rejects(curl([...tls, '--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES128-GCM-SHA256', strong]), 'only AES-256-GCM in tls12-strong mode')
  const tls12 = (await start(t, files)).url.replace('127.0.0.1', 'localhost')
  t.equal((await curl([...tls, '--tlsv1.3', tls12])).status, 204)
  t.equal((await curl([...tls, '--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES128-GCM-SHA256', tls12])).status, 204)
  await t.rejects(curl([...tls, '--tls-max', '1.2', '--ciphers', 'ECDHE-ECDSA-AES256-SHA384', tls12]), 'no CBC suites in tls12 mode')
})

t.test('tus-js-client over HTTPS resumes after an abort', async (t) => {
  const { url } = await start(t, ['--tls-certificate', certificate.certPath, '--tls-key', certificate.keyPath])
  const endpoint = url.replace('127.0.0.1', 'localhost')
  const data = Buffer.alloc(256 * 1024, 7)
  const httpStack = new tus.DefaultHttpStack({ ca: certificate.cert })
  let aborted = false
  const first = new tus.Upload(data, { endpoint, httpStack, chunkSize: 64 * 1024, retryDelays: [] })
  await new Promise<void>((resolve, reject) => {
    first.options.onChunkComplete = (_size, accepted) => {
      if (accepted >= 128 * 1024 && !aborted) {
        aborted = true
        first.abort().then(resolve, reject)
      }
    }
    first.options.onError = reject
    first.start()
  })
  const uploadUrl = first.url as string
  t.match(uploadUrl, /^https:\/\/localhost:/)
  const offsets: number[] = []
  await new Promise<void>((resolve, reject) => {
    const second = new tus.Upload(data, {
      endpoint,
      httpStack,
      uploadUrl,
      chunkSize: 64 * 1024,
      retryDelays: [],
      onChunkComplete: (_size, accepted) => { offsets.push(accepted) },
      onError: reject,
      onSuccess: () => resolve()
    })
    second.start()
  })
  t.ok((offsets[0] ?? 0) > 128 * 1024 - 1, `the second upload resumed at ${(offsets[0] ?? 0) - 64 * 1024}`)
  const head = await curl(['--cacert', certificate.certPath, '-I', '-H', 'Tus-Resumable: 1.0.0', uploadUrl])
  t.match(head.headers, new RegExp(`upload-offset: ${data.length}`, 'i'))
})

t.test('--enable-h2c: HTTP/2 with prior knowledge and HTTP/1.1 on one port', async (t) => {
  const { url } = await start(t, ['--enable-h2c'])
  t.match(url, /^http:\/\//)
  const created = await curl(['--http2-prior-knowledge', '-X', 'POST', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Length: 5', url])
  t.equal(created.version, '2')
  t.equal(created.status, 201)
  const location = locationOf(created.headers)
  const patched = await curl(['--http2-prior-knowledge', '-X', 'PATCH', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Offset: 0',
    '-H', 'Content-Type: application/offset+octet-stream', '--data-binary', 'hello', location])
  t.equal(patched.status, 204)
  const head = await curl(['--http1.1', '-I', '-H', 'Tus-Resumable: 1.0.0', location])
  t.equal(head.version, '1.1')
  t.match(head.headers, /upload-offset: 5/i)
  const fetched = await fetch(location, { method: 'HEAD', headers: TUS })
  t.equal(fetched.headers.get('upload-offset'), '5', 'an HTTP/1.1 client with keep-alive')

  // connections that go away before their first bytes tell the protocol do not disturb the server
  const port = Number(new URL(url).port)
  for (const bytes of ['', 'PRI * HT', 'G']) {
    await new Promise<void>((resolve) => {
      const socket = connectTcp(port, '127.0.0.1', () => {
        if (bytes !== '') socket.write(bytes)
        setTimeout(() => { socket.resetAndDestroy(); resolve() }, 50)
      })
      socket.on('error', () => {})
    })
  }
  const after = await curl(['--http2-prior-knowledge', '-I', '-H', 'Tus-Resumable: 1.0.0', location])
  t.equal(after.status, 200, 'still serving after connections reset mid-preface')

  const plain = await start(t, [])
  await t.rejects(curl(['--http2-prior-knowledge', '-X', 'OPTIONS', plain.url]), 'no h2c without the flag')
})

for (const mode of ['h2c', 'tls'] as const) {
  t.test(`HTTP/2 (${mode}): a reset stream keeps its bytes and frees the lock; lock exchange; idle timeout; graceful stop`, async (t) => {
    const args = mode === 'h2c' ? ['--enable-h2c'] : ['--tls-certificate', certificate.certPath, '--tls-key', certificate.keyPath]
    const { app, url, io } = await start(t, [...args, '--network-timeout', '500ms', '--acquire-lock-timeout', '3s'])
    const origin = new URL(url).origin.replace('127.0.0.1', 'localhost')
    const session = await http2Session(origin, { ca: certificate.cert })
    t.teardown(() => session.destroy())
    const path = new URL(url).pathname
    const created = await http2Request(session, { ':method': 'POST', ':path': path, ...TUS, 'upload-length': '100' })
    t.equal(created.status, 201)
    const uploadPath = new URL(created.headers.location as string).pathname

    // HTTP/2 bodies need no Content-Length: creation-with-upload sees the body
    const withBody = await http2Request(session, { ':method': 'POST', ':path': path, ...TUS, 'upload-length': '3', 'content-type': 'application/offset+octet-stream' }, 'abc')
    t.equal(withBody.status, 201)
    t.equal(withBody.headers['upload-offset'], '3', 'the body without Content-Length was stored')
    const head = async (): Promise<string> => (await http2Request(session, { ':method': 'HEAD', ':path': uploadPath, ...TUS })).headers['upload-offset'] as string

    // a client that resets its stream mid-PATCH: the bytes that arrived stay, the lock is freed
    const stream = session.request({ ':method': 'PATCH', ':path': uploadPath, ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' })
    stream.on('error', () => {})
    stream.write(Buffer.alloc(30, 1))
    for (let i = 0; i < 100 && (await app.tus.store.get(uploadPath.split('/').pop() as string)).offset < 30; i++) await sleep(20)
    stream.close(h2.NGHTTP2_CANCEL)
    let offset = '0'
    for (let i = 0; i < 100 && offset !== '30'; i++) {
      offset = await head()
      if (offset !== '30') await sleep(20)
    }
    t.equal(offset, '30', 'HEAD reports the bytes received before the reset')
    const started = Date.now()
    const resumed = await http2Request(session, { ':method': 'PATCH', ':path': uploadPath, ...TUS, 'upload-offset': '30', 'content-type': 'application/offset+octet-stream' }, Buffer.alloc(10, 2))
    t.equal(resumed.status, 204)
    t.ok(Date.now() - started < 2000, 'the lock was free: no wait for the lock timeout')
    t.equal(resumed.headers.connection, undefined)

    // lock exchange between two streams of one connection: the newer request takes the upload over
    const holder = session.request({ ':method': 'PATCH', ':path': uploadPath, ...TUS, 'upload-offset': '40', 'content-type': 'application/offset+octet-stream' })
    holder.on('error', () => {})
    const holderStatus = new Promise<number>((resolve) => holder.once('response', (headers) => { holder.resume(); resolve(Number(headers[':status'])) }))
    holder.write(Buffer.alloc(2, 5))
    for (let i = 0; i < 100 && (await app.tus.store.get(uploadPath.split('/').pop() as string)).offset < 42; i++) await sleep(20)
    const takeover = await http2Request(session, { ':method': 'PATCH', ':path': uploadPath, ...TUS, 'upload-offset': '42', 'content-type': 'application/offset+octet-stream' }, Buffer.alloc(3, 6))
    t.equal(takeover.status, 204, 'the newer PATCH got the upload')
    t.equal(takeover.headers['upload-offset'], '45')
    t.ok(await holderStatus >= 400, 'the holder was told to stop')

    // silence on a stream: the network timeout ends the body, the bytes stay
    const slow = session.request({ ':method': 'PATCH', ':path': uploadPath, ...TUS, 'upload-offset': '45', 'content-type': 'application/offset+octet-stream' })
    slow.on('error', () => {})
    const slowStatus = new Promise<number>((resolve) => slow.once('response', (headers) => { slow.resume(); resolve(Number(headers[':status'])) }))
    const slowClosed = new Promise<void>((resolve) => slow.once('close', resolve))
    slow.write(Buffer.alloc(5, 3))
    t.equal(await slowStatus, 408, 'ERR_READ_TIMEOUT after 500 ms of silence')
    await slowClosed
    t.equal(slow.rstCode, h2.NGHTTP2_NO_ERROR, 'the server reset the stream it stopped reading, without error')
    t.equal(await head(), '50')

    // a stop while a body streams in: 503, the bytes stay, the process exits without waiting for idle sessions
    const inflight = session.request({ ':method': 'PATCH', ':path': uploadPath, ...TUS, 'upload-offset': '50', 'content-type': 'application/offset+octet-stream' })
    inflight.on('error', () => {})
    const inflightStatus = new Promise<number>((resolve) => inflight.once('response', (headers) => { inflight.resume(); resolve(Number(headers[':status'])) }))
    inflight.write(Buffer.alloc(5, 4))
    for (let i = 0; i < 100 && (await app.tus.store.get(uploadPath.split('/').pop() as string)).offset < 55; i++) await sleep(20)
    const stopping = Date.now()
    io.emitter.emit('SIGTERM', 'SIGTERM')
    t.equal(await inflightStatus, 503)
    for (let i = 0; i < 150 && io.codes.length === 0; i++) await sleep(20)
    t.same(io.codes, [0], 'a graceful exit')
    t.ok(Date.now() - stopping < 3000, 'the open HTTP/2 session did not hold the stop')
    t.equal((await app.tus.store.get(uploadPath.split('/').pop() as string)).offset, 55, 'the bytes received before the stop stay')
  })
}

t.test('--unix-sock: serves on the socket, replaces a stale one, refuses a live one or another file', async (t) => {
  const dir = await tempDir(t)
  const path = join(dir, 'tus.sock')
  // a socket file nobody listens on any more, as a killed server leaves it
  await run(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => process.exit(0))`])
  t.ok(existsSync(path), 'a stale socket file is there')

  const { io, app } = await start(t, ['--unix-sock', path])
  t.match(io.out, `listening on unix:${path} at /files/`)
  const created = await curl(['--unix-socket', path, '-X', 'POST', '-H', 'Tus-Resumable: 1.0.0', '-H', 'Upload-Length: 3', 'http://localhost/files/'])
  t.equal(created.status, 201)
  t.match(locationOf(created.headers), /^http:\/\/localhost\/files\/\w+$/)

  const second = fakeIo()
  t.equal(await main(['--unix-sock', path, '--upload-dir', dir, '--log-level', 'silent'], second), undefined)
  t.same(second.codes, [2])
  t.match(second.err, 'another server is listening there')

  const file = join(dir, 'not-a-socket')
  writeFileSync(file, 'x')
  const third = fakeIo()
  await main(['--unix-sock', file, '--upload-dir', dir, '--log-level', 'silent'], third)
  t.same(third.codes, [2])
  t.match(third.err, 'exists and is not a socket')

  await app.close()
  t.notOk(existsSync(path), 'the socket file is removed on close')
})

t.test('the plugin on Fastify({ http2: true }) without TLS: every route over HTTP/2 streams', async (t) => {
  const warnings: Error[] = []
  const onWarning = (warning: Error): void => { warnings.push(warning) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const app = Fastify({ http2: true })
  await app.register(tusPlugin, { store: new MemoryStore(), networkTimeout: 500 })
  await app.listen({ host: '127.0.0.1', port: 0 })
  t.teardown(async () => { await app.close() })
  const session = await http2Session(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`)
  t.teardown(() => session.destroy())

  const options = await http2Request(session, { ':method': 'OPTIONS', ':path': '/files/' })
  t.equal(options.status, 204)
  t.match(options.headers['tus-extension'], /creation-with-upload/)
  const created = await http2Request(session, { ':method': 'POST', ':path': '/files/', ...TUS, 'upload-length': '6', 'content-type': 'application/offset+octet-stream' }, 'abc')
  t.equal(created.status, 201)
  t.equal(created.headers['upload-offset'], '3')
  const path = new URL(created.headers.location as string).pathname
  const conflict = await http2Request(session, { ':method': 'PATCH', ':path': path, ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, 'zzz')
  t.equal(conflict.status, 409)
  t.equal(conflict.headers.connection, undefined)
  t.match(JSON.parse(conflict.body), { code: 'ERR_MISMATCHED_OFFSET' }, 'the whole body before the reset')
  const patched = await http2Request(session, { ':method': 'PATCH', ':path': path, ...TUS, 'upload-offset': '3', 'content-type': 'application/offset+octet-stream' }, 'def')
  t.equal(patched.status, 204)
  const got = await http2Request(session, { ':method': 'GET', ':path': path, ...TUS })
  t.equal(got.body, 'abcdef')
  // the IETF draft over HTTP/2: no 104 (no socket of its own), the final answer as usual
  const draft = await http2Request(session, { ':method': 'POST', ':path': '/files/', 'upload-draft-interop-version': '6', 'upload-complete': '?1' }, 'xyz')
  t.equal(draft.status, 201)
  t.equal((await http2Request(session, { ':method': 'DELETE', ':path': path, ...TUS })).status, 204)
  t.equal((await http2Request(session, { ':method': 'HEAD', ':path': path, ...TUS })).status, 404)
  t.same(warnings.map((warning) => warning.message), [], 'no process warnings (a Connection header would be one)')
})
