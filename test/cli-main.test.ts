/** The command's logic in-process: output, exit codes, signals and shutdown. */
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { main, type CommandIo } from '../bin/main.js'
import { tempDir } from './helpers/app.js'

function fakeIo (): CommandIo & { out: string, err: string, codes: number[], emitter: EventEmitter } {
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

t.test('help, version, bad flags', async (t) => {
  const io = fakeIo()
  t.equal(await main(['--help'], io), undefined)
  t.match(io.out, /Usage: fastify-tus/)
  await main(['--version'], io)
  t.match(io.out, /fastify-tus \d+\.\d+\.\d+/)
  await main(['--bogus'], io)
  t.same(io.codes, [2])
  t.match(io.err, /Run fastify-tus --help/)
})

t.test('CORS flags as tusd has them: lists added to the tus ones, the preflight max age', async (t) => {
  const dir = await tempDir(t)
  const io = fakeIo()
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent', '--cors-allow-methods', 'PUT, propfind',
    '--cors-allow-headers', 'X-Tenant', '--cors-expose-headers', 'X-Trace,X-Upload-Region', '--cors-max-age', '60'], io)
  t.teardown(async () => await app?.close())
  const url = /listening on (\S+)/.exec(io.out)?.[1] as string
  const preflight = await fetch(url, { method: 'OPTIONS', headers: { Origin: 'https://a.example', 'Access-Control-Request-Method': 'PUT' } })
  t.equal(preflight.headers.get('access-control-allow-methods'), 'POST, HEAD, PATCH, OPTIONS, GET, DELETE, PUT, PROPFIND')
  t.match(preflight.headers.get('access-control-allow-headers'), /Tus-Resumable.*, X-Tenant$/)
  t.equal(preflight.headers.get('access-control-max-age'), '60')
  const created = await fetch(url, { method: 'POST', headers: { Origin: 'https://a.example', 'Tus-Resumable': '1.0.0', 'Upload-Length': '1' } })
  t.match(created.headers.get('access-control-expose-headers'), /Location.*, X-Trace, X-Upload-Region$/)

  const bad = fakeIo()
  t.equal(await main(['--port', '0', '--upload-dir', dir, '--cors-allow-headers', 'X Bad'], bad), undefined)
  t.same(bad.codes, [2], 'a bad header name is a usage error')
  t.match(bad.err, /cors\.allowedHeaders/)
})

t.test('start-up problems are usage errors with a clear message, never a stack trace', async (t) => {
  const dir = await tempDir(t)
  const cases: Array<[string[], RegExp]> = [
    [['--cors-allow-credentials'], /--cors-allow-credentials needs --cors-allow-origin/],
    [['--expose-metrics', '--metrics-path', '/'], /--metrics-path \/ is the demo page's/],
    [['--expose-metrics', '--metrics-path', '/demo/app.js'], /the demo page's/],
    [['--base-path', '/', '--expose-metrics', '--metrics-path', '/'], /must not be inside --base-path/],
    [['--base-path', '/files', '--metrics-path', '/files'], /must not be inside --base-path/],
    [['--base-path', '//'], /--base-path must be a URL path/],
    [['--upload-dir', '/etc/passwd'], /--upload-dir \/etc\/passwd cannot hold uploads: not a directory/],
    // where the system answers ENOENT to mkdir under an existing directory: Node's recursive mkdir never settles there
    ...(process.platform === 'linux'
      ? [
          [['--upload-dir', '/proc/fastify-tus/uploads'], /--upload-dir \/proc\/fastify-tus\/uploads cannot hold uploads: ENOENT/],
          [['--upload-dir', '/proc/fastify-tus/uploads', '--s3-bucket', 'b'], /--upload-dir \/proc\/fastify-tus\/uploads cannot hold lock files: ENOENT/]
        ] as Array<[string[], RegExp]>
      : []),
    [['--host', 'no-such-host.invalid'], /cannot listen on no-such-host\.invalid:0: the host name does not resolve/],
    [['--unix-sock', `${dir}/missing/sock`], /cannot listen on .*missing\/sock/]
  ]
  for (const [argv, message] of cases) {
    const io = fakeIo()
    const app = await main(['--port', '0', '--upload-dir', dir, '--log-level', 'silent', ...argv], io)
    t.equal(app, undefined, argv.join(' '))
    t.same(io.codes, [2], `${argv.join(' ')}: exit code 2`)
    t.match(io.err, message, argv.join(' '))
    t.notMatch(io.err, /\n\s+at /, 'no stack trace')
  }
  // --disable-demo frees the demo's paths for the metrics
  const io = fakeIo()
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent', '--disable-demo', '--expose-metrics', '--metrics-path', '/'], io)
  t.teardown(async () => await app?.close())
  t.same(io.codes, [])
  t.match(io.out, /Prometheus metrics at http:\/\/127\.0\.0\.1:\d+\/\n/)
})

t.test('listens, prints the URL, shuts down on SIGTERM, exits at once on a second signal', async (t) => {
  const dir = await tempDir(t)
  const io = fakeIo()
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent'], io)
  t.ok(app)
  const url = /listening on (\S+)/.exec(io.out)?.[1] as string
  t.match(url, /^http:\/\/127\.0\.0\.1:\d+\/files\/$/)
  const options = await fetch(url, { method: 'OPTIONS' })
  t.equal(options.status, 204)
  io.emitter.emit('SIGTERM', 'SIGTERM')
  io.emitter.emit('SIGINT', 'SIGINT')
  t.same(io.codes, [1], 'the second signal exits with 1 at once')
  for (let i = 0; i < 100 && io.codes.length < 2; i++) await sleep(20)
  t.same(io.codes, [1, 0], 'the graceful close exits with 0')
})

t.test('the shutdown timeout forces the exit', async (t) => {
  const dir = await tempDir(t)
  const io = fakeIo()
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent',
    '--shutdown-timeout', '100ms', '--acquire-lock-timeout', '2s'], io)
  if (app === undefined) throw new Error('no server')
  const url = /listening on (\S+)/.exec(io.out)?.[1] as string
  const created = await fetch(url, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1' } })
  const location = created.headers.get('location') as string
  // someone holds the upload and ignores release requests: a HEAD waits, and so does close()
  const stubborn = await app.tus.options.locker.lock(location.split('/').pop() as string, {
    signal: new AbortController().signal, onReleaseRequested: () => {}
  })
  const waiting = fetch(location, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } }).catch(() => undefined)
  await sleep(100)
  io.emitter.emit('SIGTERM', 'SIGTERM')
  await sleep(400)
  t.same(io.codes, [1], 'exited with 1 when the grace period ended')
  await stubborn.unlock()
  await waiting
  for (let i = 0; i < 100 && io.codes.length < 2; i++) await sleep(20)
})

t.test('protocol flags reach the plugin', async (t) => {
  const dir = await tempDir(t)
  const io = fakeIo()
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent',
    '--expiration', '1h', '--disable-concatenation', '--cors-allow-origin', 'https://a\\.example', '--cors-allow-credentials', '--disable-ietf-draft'], io)
  t.teardown(async () => await app?.close())
  const url = /listening on (\S+)/.exec(io.out)?.[1] as string
  const options = await fetch(url, { method: 'OPTIONS', headers: { Origin: 'https://a.example', 'Access-Control-Request-Method': 'PATCH' } })
  t.equal(options.headers.get('tus-extension'), 'creation,creation-with-upload,termination,creation-defer-length,checksum,checksum-trailer,expiration')
  t.equal(options.headers.get('access-control-allow-credentials'), 'true')
  const draft = await fetch(url, { method: 'POST', headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1' }, body: 'x' })
  t.equal(draft.status, 412, '--disable-ietf-draft: a draft request is a tus request without Tus-Resumable')
  const other = await fetch(url, { method: 'OPTIONS', headers: { Origin: 'https://b.example' } })
  t.equal(other.headers.get('access-control-allow-origin'), null)
  const plain = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent', '--disable-cors'], io)
  t.teardown(async () => await plain?.close())
  const url2 = /listening on (\S+)/g.exec(io.out.split('\n').filter((line) => line.includes('listening')).pop() ?? '')?.[1] as string
  const noCors = await fetch(url2, { method: 'OPTIONS', headers: { Origin: 'https://a.example' } })
  t.equal(noCors.headers.get('access-control-allow-origin'), null)
  const onByDefault = await fetch(url2, { method: 'POST', headers: { 'Upload-Draft-Interop-Version': '8', 'Upload-Complete': '?1' }, body: 'x' })
  t.equal(onByDefault.status, 201, 'the IETF draft is on by default')
  t.equal(onByDefault.headers.get('upload-complete'), '?1')
})
