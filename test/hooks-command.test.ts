/**
 * The command with tusd-compatible HTTP hooks, end to end: tus-js-client uploads through
 * `fastify-tus --hooks-http` (run in-process), and a receiver rejects some uploads with its own
 * status, body and header, renames and re-labels others, stops one in flight, refuses a
 * termination, and records every hook with its payload.
 */
import { EventEmitter } from 'node:events'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import * as tus from 'tus-js-client'
import { FlagError, HELP, parseFlags, type CliConfig, type HookFlags } from '../bin/flags.js'
import { main, type CommandIo } from '../bin/main.js'
import { tempDir } from './helpers/app.js'
import { startHookReceiver, type HookHandler, type ReceivedHook } from './helpers/hook-receiver.js'
import { rawRequest } from './helpers/http.js'

function fakeIo (): CommandIo & { out: string, err: string, codes: number[] } {
  const io = {
    out: '',
    err: '',
    codes: [] as number[],
    stdout: (text: string) => { io.out += text },
    stderr: (text: string) => { io.err += text },
    exit: (code: number) => { io.codes.push(code) },
    signals: new EventEmitter()
  }
  return io
}

async function startCommand (t: Test, args: string[]): Promise<{ url: string, dir: string, port: number }> {
  const dir = await tempDir(t)
  const io = fakeIo()
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent', ...args], io)
  if (app === undefined) throw new Error(`the command did not start: ${io.err}`)
  t.teardown(async () => await app.close())
  const url = /listening on (\S+)/.exec(io.out)?.[1] as string
  return { url, dir, port: Number(new URL(url).port) }
}

function user (hook: ReceivedHook): string {
  return (hook.payload.Event.HTTPRequest.Header.Authorization?.[0] ?? '').replace(/^Bearer /, '')
}

const receiverLogic: HookHandler = (hook) => {
  const upload = hook.payload.Event.Upload
  const name = upload.MetaData.filename ?? ''
  switch (hook.type) {
    case 'pre-create':
      if (name.endsWith('.exe')) {
        return {
          json: {
            RejectUpload: true,
            HTTPResponse: { StatusCode: 403, Body: '{"message":"executables are not accepted"}', Header: { 'Content-Type': 'application/json', 'X-Hook': 'rejected' } }
          }
        }
      }
      if (name === 'crash.txt') return { raw: 'database password is hunter2', status: 500 }
      if (name === 'report draft.txt') {
        return {
          json: {
            ChangeFileInfo: { ID: 'report-2026', MetaData: { filename: 'report.txt', owner: user(hook) } },
            HTTPResponse: { Header: { 'X-Owner': user(hook) } }
          }
        }
      }
      return { json: {} }
    case 'post-receive':
      if (name === 'stop.bin' && upload.Offset >= 10) {
        return { json: { StopUpload: true, HTTPResponse: { StatusCode: 402, Body: 'quota exceeded', Header: { 'X-Quota': '10' } } } }
      }
      return { json: {} }
    case 'pre-finish':
      if (name === 'queued.txt') return { json: { HTTPResponse: { StatusCode: 202, Body: 'queued for scanning' } } }
      if (name === 'moved.txt') return { json: { HTTPResponse: { StatusCode: 303, Header: { 'X-Moved': '1' } } } }
      return { json: { HTTPResponse: { Header: { 'X-File-Url': `https://cdn.example/${upload.ID}` } } } }
    case 'pre-terminate':
      if (hook.payload.Event.HTTPRequest.Header['X-Admin'] === undefined) {
        return { json: { RejectTermination: true, HTTPResponse: { StatusCode: 403, Body: 'ask an admin' } } }
      }
      return { json: {} }
    default:
      return { json: {} }
  }
}

async function upload (endpoint: string, data: Buffer, metadata: Record<string, string>, headers: Record<string, string> = {}): Promise<{ url: string, lastResponse: tus.HttpResponse }> {
  return await new Promise((resolve, reject) => {
    const client = new tus.Upload(data, {
      endpoint,
      metadata,
      headers,
      retryDelays: [],
      onError: reject,
      onSuccess: ({ lastResponse }) => resolve({ url: client.url as string, lastResponse })
    })
    client.start()
  })
}

t.test('--hooks-http: every hook, as tusd sends it, and the answers applied', async (t) => {
  const receiver = await startHookReceiver(t, receiverLogic)
  const { url, dir, port } = await startCommand(t, [
    '--hooks-http', receiver.url, '--hooks-http-forward-headers', 'Authorization', '--hooks-enabled-events', '',
    '--hooks-http-retry', '1', '--progress-hooks-interval', '50ms'
  ])

  t.test('pre-create rejects with the receiver\'s status, body and header', async (t) => {
    const err = await upload(url, Buffer.from('MZ'), { filename: 'setup.exe' }).then(() => undefined, (e: unknown) => e as tus.DetailedError)
    const response = err?.originalResponse
    t.equal(response?.getStatus(), 403)
    t.equal(response?.getBody(), '{"message":"executables are not accepted"}')
    t.equal(response?.getHeader('X-Hook'), 'rejected')
    t.equal(response?.getHeader('Content-Type'), 'application/json')
    t.equal(response?.getHeader('Tus-Resumable'), '1.0.0')
    t.equal(response?.getHeader('Location'), undefined)
    const rejected = receiver.hooks.filter((hook) => hook.payload.Event.Upload.MetaData.filename === 'setup.exe')
    t.same(rejected.map((hook) => hook.type), ['pre-create'], 'nothing else ran for it')
    t.same((await readdir(dir)).filter((name) => name.endsWith('.info')), [], 'nothing was created')
  })

  t.test('pre-create renames the upload and replaces its metadata; the whole lifecycle is reported', async (t) => {
    const data = Buffer.from('quarterly numbers')
    const { url: location, lastResponse } = await upload(url, data, { filename: 'report draft.txt', secret: 's3cr3t' }, { Authorization: 'Bearer ann' })
    t.equal(location, `${url}report-2026`)
    t.equal(lastResponse.getHeader('X-File-Url'), 'https://cdn.example/report-2026', 'pre-finish headers reach the client')
    const info = JSON.parse(await readFile(join(dir, 'report-2026.info'), 'utf8')) as { metadata: Record<string, string> }
    t.same(info.metadata, { filename: 'report.txt', owner: 'ann' }, 'tusd replaces the metadata: keys the hook left out are gone')
    t.same(await readFile(join(dir, 'report-2026')), data)

    await receiver.waitFor((hook) => hook.type === 'post-finish' && hook.payload.Event.Upload.ID === 'report-2026')
    const mine = receiver.hooks.filter((hook) => user(hook) === 'ann')
    t.same(mine.map((hook) => hook.type).filter((type) => type !== 'post-receive' && type !== 'post-create'), ['pre-create', 'pre-finish', 'post-finish'])
    t.ok(mine.some((hook) => hook.type === 'post-create'), 'post-create arrived (not ordered: tusd sends it asynchronously)')
    const [preCreate, preFinish] = [mine.find((hook) => hook.type === 'pre-create'), mine.find((hook) => hook.type === 'pre-finish')]
    t.match(preCreate?.payload, {
      Type: 'pre-create',
      Event: {
        Upload: { ID: '', Size: data.length, SizeIsDeferred: false, Offset: 0, MetaData: { filename: 'report draft.txt', secret: 's3cr3t' }, IsPartial: false, IsFinal: false, PartialUploads: null, Storage: null },
        HTTPRequest: { Method: 'POST', URI: '/files/', RemoteAddr: /^127\.0\.0\.1:\d+$/, Header: { Host: [`127.0.0.1:${port}`], 'Tus-Resumable': ['1.0.0'], 'Upload-Length': [String(data.length)], Authorization: ['Bearer ann'] } }
      }
    })
    t.same(Object.keys(preCreate?.payload.Event.Upload ?? {}), ['ID', 'Size', 'SizeIsDeferred', 'Offset', 'MetaData', 'IsPartial', 'IsFinal', 'PartialUploads', 'Storage'], 'tusd\'s field order')
    t.match(preFinish?.payload.Event, {
      Upload: { ID: 'report-2026', Offset: data.length, MetaData: { filename: 'report.txt', owner: 'ann' }, Storage: { Type: 'filestore', Path: join(dir, 'report-2026'), InfoPath: join(dir, 'report-2026.info') } },
      HTTPRequest: { Method: 'PATCH', URI: '/files/report-2026' }
    })
    t.equal(preCreate?.headers.authorization, 'Bearer ann', 'the listed header is forwarded to the receiver')
  })

  t.test('pre-terminate refuses, then allows; post-terminate follows', async (t) => {
    const refused = await fetch(`${url}report-2026`, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } })
    t.equal(refused.status, 403)
    t.equal(await refused.text(), 'ask an admin')
    t.match(refused.headers.get('content-type'), /^text\/plain/)
    t.equal((await fetch(`${url}report-2026`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).status, 200, 'still there')
    const allowed = await fetch(`${url}report-2026`, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0', 'X-Admin': '1' } })
    t.equal(allowed.status, 204)
    const post = await receiver.waitFor((hook) => hook.type === 'post-terminate')
    t.equal(post.payload.Event.Upload.ID, 'report-2026')
    t.equal(post.payload.Event.HTTPRequest.Method, 'DELETE')
  })

  t.test('post-receive stops an upload in flight: terminated, 400 merged with the receiver\'s answer', async (t) => {
    const created = await fetch(url, {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '100', 'Upload-Metadata': `filename ${Buffer.from('stop.bin').toString('base64')}` }
    })
    t.equal(created.status, 201)
    const path = new URL(created.headers.get('location') as string).pathname
    const patch = rawRequest(port, 'PATCH', path, { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Content-Length': '100' })
    patch.write(Buffer.alloc(20, 7))
    const response = await patch.response
    t.equal(response?.status, 402)
    t.equal(response?.body, 'quota exceeded')
    t.equal(response?.headers['x-quota'], '10')
    t.equal((await fetch(`${url}${path.split('/').pop() as string}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).status, 404, 'the upload was terminated')
    await receiver.waitFor((hook) => hook.type === 'post-terminate' && hook.payload.Event.Upload.MetaData.filename === 'stop.bin')
  })

  t.test('pre-finish sets the status of the completing PATCH; a redirect is refused', async (t) => {
    const { lastResponse } = await upload(url, Buffer.from('scan me'), { filename: 'queued.txt' })
    t.equal(lastResponse.getStatus(), 202)
    t.equal(lastResponse.getBody(), 'queued for scanning')
    const meta = `filename ${Buffer.from('moved.txt').toString('base64')}`
    const created = await fetch(url, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1', 'Upload-Metadata': meta } })
    const moved = await fetch(created.headers.get('location') as string, {
      method: 'PATCH', headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body: 'x', redirect: 'manual'
    })
    t.equal(moved.status, 500, 'a 3xx would send the client away from its upload')
    t.equal(moved.headers.get('x-moved'), null)
  })

  t.test('a failing blocking hook is a generic 500', async (t) => {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '1', 'Upload-Metadata': `filename ${Buffer.from('crash.txt').toString('base64')}` }
    })
    t.equal(response.status, 500)
    const body = await response.text()
    t.equal(JSON.parse(body).code, 'ERR_INTERNAL_SERVER_ERROR')
    t.notMatch(body, /hunter2|database|hook/, 'the detail stays in the log')
  })
})

t.test('tusd\'s default events: no pre-finish, no pre-terminate', async (t) => {
  const receiver = await startHookReceiver(t)
  const { url } = await startCommand(t, ['--hooks-http', receiver.url])
  const { url: location } = await upload(url, Buffer.from('abc'), { filename: 'a.txt' })
  await receiver.waitFor((hook) => hook.type === 'post-finish')
  t.equal((await fetch(location, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } })).status, 204)
  await receiver.waitFor((hook) => hook.type === 'post-terminate')
  t.same([...new Set(receiver.types())].sort(), ['post-create', 'post-finish', 'post-receive', 'post-terminate', 'pre-create'])
})

t.test('a hook directory that does not exist stops the command', async (t) => {
  const io = fakeIo()
  t.equal(await main(['--port', '0', '--hooks-dir', '/nonexistent/hooks'], io), undefined)
  t.same(io.codes, [2])
  t.match(io.err, /--hooks-dir \/nonexistent\/hooks is not a directory/)
})

function hookFlags (argv: string[]): HookFlags {
  return (parseFlags(argv) as CliConfig).hooks
}

t.test('hook flags', async (t) => {
  t.same(hookFlags([]), {
    http: undefined,
    httpForwardHeaders: [],
    httpRetry: 3,
    httpBackoff: 1000,
    httpTimeout: 15_000,
    httpSizeLimit: 5120,
    httpSkipVerify: false,
    dir: undefined,
    grpc: undefined,
    grpcRetry: 3,
    grpcBackoff: 1000,
    grpcSecure: false,
    grpcServerTlsCertificate: undefined,
    grpcClientTlsCertificate: undefined,
    grpcClientTlsKey: undefined,
    grpcForwardHeaders: [],
    enabledEvents: ['pre-create', 'post-create', 'post-receive', 'post-terminate', 'post-finish'],
    progressInterval: 1000
  }, 'tusd\'s defaults')
  t.same(hookFlags(['--hooks-http', 'https://hooks.example/tus', '--hooks-http-forward-headers', 'Authorization, Cookie,,', '--hooks-http-retry', '0',
    '--hooks-http-backoff', '250ms', '--hooks-http-timeout', '2s', '--hooks-http-size-limit', '1MiB', '--hooks-http-skip-verify',
    '--hooks-enabled-events', 'pre-finish,post-finish,pre-finish', '--progress-hooks-interval', '100ms']), {
    http: 'https://hooks.example/tus',
    httpForwardHeaders: ['Authorization', 'Cookie'],
    httpRetry: 0,
    httpBackoff: 250,
    httpTimeout: 2000,
    httpSizeLimit: 1024 * 1024,
    httpSkipVerify: true,
    dir: undefined,
    grpc: undefined,
    grpcRetry: 3,
    grpcBackoff: 1000,
    grpcSecure: false,
    grpcServerTlsCertificate: undefined,
    grpcClientTlsCertificate: undefined,
    grpcClientTlsKey: undefined,
    grpcForwardHeaders: [],
    enabledEvents: ['pre-finish', 'post-finish'],
    progressInterval: 100
  })
  t.same(hookFlags(['--hooks-enabled-events', ' ']).enabledEvents,
    ['pre-create', 'post-create', 'post-receive', 'pre-terminate', 'post-terminate', 'post-finish', 'pre-finish'], 'empty enables every hook, as in tusd')
  t.equal(hookFlags(['--hooks-dir', './hooks']).dir, './hooks')
  for (const bad of [['--hooks-http', 'ftp://x'], ['--hooks-http', 'not a url'], ['--hooks-http', 'http://x', '--hooks-dir', 'd'], ['--hooks-dir', ''],
    ['--hooks-http-retry', '-1'], ['--hooks-http-retry', 'two'], ['--hooks-http-timeout', '0'], ['--hooks-http-size-limit', 'big'],
    ['--hooks-enabled-events', 'pre-create,on-upload'], ['--progress-hooks-interval', '0']]) {
    t.throws(() => parseFlags(bad), FlagError, bad.join(' '))
  }
  t.match(HELP, /--hooks-http URL[\s\S]*--hooks-dir DIR[\s\S]*--hooks-enabled-events LIST/)
})
