/**
 * The `fastify-tus` command: flags, a first upload, graceful shutdown, and two processes
 * sharing one upload directory through the file locker.
 */
import { readdir, readFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { FlagError, parseFlags, type CliConfig } from '../bin/flags.js'
import { formatDuration, formatSize, parseDuration, parseSize } from '../bin/units.js'
import { tempDir } from './helpers/app.js'
import { BUILT_COMMAND, runCommand, startServer } from './helpers/cli.js'
import { rawRequest } from './helpers/http.js'

const TUS = { 'Tus-Resumable': '1.0.0' }

t.test('flags', async (t) => {
  const config = parseFlags([])
  t.match(config, {
    host: '0.0.0.0',
    port: 8080,
    basePath: '/files/',
    uploadDir: './uploads',
    maxSize: 0,
    networkTimeout: 60_000,
    acquireLockTimeout: 20_000,
    shutdownTimeout: 10_000,
    behindProxy: false,
    disableTermination: false,
    disableTerminationForFinishedUploads: false,
    logLevel: 'info'
  })
  t.match(parseFlags(['--port', '0', '--base-path', '/up', '--max-size', '10MiB', '--network-timeout', '500ms',
    '--acquire-lock-timeout', '2', '--behind-proxy', '--disable-termination', '--disable-download', '--relative-location',
    '--disable-termination-for-finished-uploads']), {
    port: 0,
    basePath: '/up/',
    maxSize: 10 * 1024 * 1024,
    networkTimeout: 500,
    acquireLockTimeout: 2000,
    behindProxy: true,
    disableTermination: true,
    disableTerminationForFinishedUploads: true,
    disableDownload: true,
    relativeLocation: true
  })
  t.match(parseFlags(['--expiration', '1h', '--expiration-interval', '30s', '--disable-cors', '--cors-allow-origin', 'https://a\\.example',
    '--cors-allow-credentials', '--disable-concatenation', '--disable-ietf-draft', '--disable-ietf-104']), {
    disableIetfDraft: true,
    disableIetf104: true,
    expiration: 3_600_000,
    expirationInterval: 30_000,
    disableCors: true,
    corsAllowOrigin: /https:\/\/a\.example/,
    corsAllowCredentials: true,
    disableConcatenation: true
  })
  t.equal((parseFlags([]) as CliConfig).maxConcatParts, 100, 'at most 100 parts by default')
  t.equal((parseFlags(['--max-concat-parts', '8']) as CliConfig).maxConcatParts, 8)
  t.equal((parseFlags([]) as CliConfig).expiration, 0)
  t.equal((parseFlags([]) as CliConfig).disableIetfDraft, false, 'the IETF draft is on by default')
  t.equal((parseFlags([]) as CliConfig).disableIetf104, false, 'and so are its 104s')
  t.throws(() => parseFlags(['--cors-allow-origin', '(']), FlagError)
  t.equal(parseFlags(['--help']), 'help')
  t.equal(parseFlags(['-v']), 'version')
  t.equal(parseDuration('1.5m'), 90_000)
  t.equal(parseDuration('2h'), 7_200_000)
  t.equal(parseDuration('1d'), undefined)
  t.equal(parseSize('2GB'), 2e9)
  t.equal(parseSize('1 kib'), 1024)
  t.equal(parseSize('99999999999TB'), undefined)
  t.same([formatDuration(0), formatDuration(60_000), formatDuration(1500), formatDuration(7_200_000)], ['0', '1m', '1500ms', '2h'])
  t.same([formatSize(0), formatSize(8 * 1024 * 1024), formatSize(5120), formatSize(1000)], ['0', '8MiB', '5KiB', '1000'])
  for (const bad of [['--port', '70000'], ['--port', 'x'], ['--base-path', 'files'], ['--max-size', '-1'],
    ['--max-size', '99999999999TB'], ['--network-timeout', '0'], ['--network-timeout', '1d'], ['--log-level', 'loud'],
    ['--upload-dir', ''], ['--nope'], ['extra'], ['--max-concat-parts', '0'], ['--max-concat-parts', 'many']]) {
    t.throws(() => parseFlags(bad), FlagError, bad.join(' '))
  }
})

t.test('--help, --version and bad flags', async (t) => {
  const help = await runCommand(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /--upload-dir DIR/)
  const version = await runCommand(['--version'], BUILT_COMMAND)
  t.equal(version.code, 0)
  t.match(version.stdout, /^fastify-tus \d+\.\d+\.\d+/)
  const bad = await runCommand(['--port', 'x'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /--port must be/)
})

t.test('--public-url: Location comes from it, not from the request\'s Host', async (t) => {
  const dir = await tempDir(t)
  const server = await startServer(t, ['--port', '0', '--upload-dir', dir, '--log-level', 'warn', '--public-url', 'https://uploads.example.com/tus/'], BUILT_COMMAND)
  const created = await fetch(server.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5', 'X-Forwarded-Host': 'evil.example' } })
  t.equal(created.status, 201)
  t.match(created.headers.get('location'), /^https:\/\/uploads\.example\.com\/tus\/files\/[0-9a-f]{32}$/)
})

t.test('--disable-termination-for-finished-uploads: DELETE of a completed upload is a 400, of an unfinished one a 204', async (t) => {
  const dir = await tempDir(t)
  const server = await startServer(t, ['--port', '0', '--upload-dir', dir, '--log-level', 'warn', '--disable-termination-for-finished-uploads'], BUILT_COMMAND)
  const create = async (body: string): Promise<string> => {
    const created = await fetch(server.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '3', 'Content-Type': 'application/offset+octet-stream' }, body })
    t.equal(created.status, 201)
    return created.headers.get('location') as string
  }
  const done = await create('abc')
  const refused = await fetch(done, { method: 'DELETE', headers: TUS })
  t.equal(refused.status, 400)
  t.equal(((await refused.json()) as { code: string }).code, 'ERR_INVALID_TERMINATION')
  t.equal(await (await fetch(done)).text(), 'abc', 'still there')
  const open = await create('a')
  t.equal((await fetch(open, { method: 'DELETE', headers: TUS })).status, 204)
})

t.test('the built command serves a first upload from a fresh directory', async (t) => {
  const dir = await tempDir(t)
  const uploads = join(dir, 'nested', 'uploads')
  const server = await startServer(t, ['--port', '0', '--upload-dir', uploads, '--log-level', 'warn'], BUILT_COMMAND)
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+\/files\/$/)
  const created = await fetch(server.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' } })
  t.equal(created.status, 201)
  const location = created.headers.get('location') as string
  const patched = await fetch(location, {
    method: 'PATCH',
    headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: 'hello'
  })
  t.equal(patched.status, 204)
  t.equal(await (await fetch(location)).text(), 'hello')
  t.equal(await readFile(join(uploads, location.split('/').pop() as string), 'utf8'), 'hello')
})

t.test('the built command sizes libuv\'s thread pool before its first use: UV_THREADPOOL_SIZE, else the cores the JavaScript thread leaves (1 to 4)', async (t) => {
  if (process.platform !== 'linux') {
    t.comment('needs /proc to count threads: checked on Linux only')
    return
  }
  // as a user runs it: tap adds an --import to NODE_OPTIONS of every child it spawns, and that
  // module would load (and start the pool) before the entry
  const asUsersRunIt = ['/bin/sh', '-c', 'unset NODE_OPTIONS; exec "$0" "$@"', ...BUILT_COMMAND]
  /** The server's threads once it has served an upload (the pool has started all its threads). */
  const threads = async (value: string | undefined): Promise<number> => {
    const server = await startServer(t, ['--port', '0', '--upload-dir', await tempDir(t), '--log-level', 'warn'], asUsersRunIt, { UV_THREADPOOL_SIZE: value })
    const created = await fetch(server.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '5' } })
    t.equal(created.status, 201)
    const count = (await readdir(`/proc/${server.child.pid as number}/task`)).length
    await server.kill()
    return count
  }
  const one = await threads('1')
  t.equal(await threads('3') - one, 2, 'the variable reaches libuv (the entry runs before the module loader uses the pool)')
  const expected = Math.min(4, Math.max(1, availableParallelism() - 1))
  t.equal(await threads(undefined) - one, expected - 1, `unset: ${expected} thread(s) on ${availableParallelism()} core(s)`)
})

t.test('SIGTERM: in-flight bodies get 503, their bytes stay, the process exits', async (t) => {
  const dir = await tempDir(t)
  const server = await startServer(t, ['--port', '0', '--upload-dir', dir, '--log-level', 'warn'])
  const created = await fetch(server.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1000' } })
  const path = new URL(created.headers.get('location') as string).pathname
  const request = rawRequest(server.port, 'PATCH', path, {
    ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Content-Length': '1000'
  })
  request.write(Buffer.alloc(300, 7))
  await sleep(300)
  const started = Date.now()
  server.child.kill('SIGTERM')
  const response = await request.response
  t.equal(response?.status, 503)
  t.match(response?.body, /ERR_SERVER_SHUTDOWN/)
  t.equal(await server.exited, 0)
  t.ok(Date.now() - started < 5000, 'exits promptly')
  const info = await readFile(join(dir, path.split('/').pop() as string))
  t.equal(info.length, 300, 'bytes received before the shutdown are kept')
})

t.test('two processes on one directory hand an upload over through the file locker', async (t) => {
  const dir = await tempDir(t)
  const a = await startServer(t, ['--port', '0', '--upload-dir', dir, '--log-level', 'warn'])
  const b = await startServer(t, ['--port', '0', '--upload-dir', dir, '--log-level', 'warn'])
  const created = await fetch(a.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1000' } })
  const path = new URL(created.headers.get('location') as string).pathname
  const stalled = rawRequest(a.port, 'PATCH', path, {
    ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Content-Length': '1000'
  })
  stalled.write(Buffer.alloc(400, 8))
  await sleep(300)
  const started = Date.now()
  const head = await fetch(`http://127.0.0.1:${b.port}${path}`, { method: 'HEAD', headers: TUS })
  const waited = Date.now() - started
  t.equal(head.status, 200)
  t.equal(head.headers.get('upload-offset'), '400')
  t.ok(waited < 2000, `B got the lock from A in ${waited} ms`)
  const old = await stalled.response
  t.equal(old?.status, 400)
  t.match(old?.body, /ERR_UPLOAD_INTERRUPTED/)
  const rest = await fetch(`http://127.0.0.1:${b.port}${path}`, {
    method: 'PATCH',
    headers: { ...TUS, 'Upload-Offset': '400', 'Content-Type': 'application/offset+octet-stream' },
    body: Buffer.alloc(600, 9)
  })
  t.equal(rest.status, 204)
  const bytes = await readFile(join(dir, path.split('/').pop() as string))
  t.same(bytes, Buffer.concat([Buffer.alloc(400, 8), Buffer.alloc(600, 9)]))
})
