/**
 * tusd's gRPC hooks against a real gRPC server written here with @grpc/grpc-js: the request as
 * tusd marshals it, forwarded headers as metadata, retries of UNAVAILABLE, TLS and mutual TLS,
 * and the command end to end (`--hooks-grpc`): a rejection with the hook's own response, a
 * rename through changeFileInfo.id, replaced metadata, and an upload stopped in flight.
 */
import { EventEmitter } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import type * as Grpc from '@grpc/grpc-js'
import t, { type Test } from 'tap'
import { FlagError, parseFlags } from '../bin/flags.js'
import { createGrpcHookTransport, fromWire, loadGrpc, wireRequest, type GrpcHookOptions } from '../bin/hooks/grpc.js'
import type { HookRequest } from '../bin/hooks/protocol.js'
import { main, type CommandIo } from '../bin/main.js'
import { tempDir } from './helpers/app.js'
import { http2Request, http2Session, makeCertificate, type TestCertificate } from './helpers/tls.js'

const TUS = { 'tus-resumable': '1.0.0' }

interface Call { request: any, metadata: Record<string, unknown>, at: number }
type Answer = (request: any, attempt: number) => object | { code: number, details: string }

interface HookServer { address: string, calls: Call[] }

const { grpc, service } = await loadGrpc()

/** A gRPC server implementing proto.HookHandler/InvokeHook with `answer`. */
async function startHookServer (t: Test, answer: Answer, credentials: Grpc.ServerCredentials = grpc.ServerCredentials.createInsecure()): Promise<HookServer> {
  const calls: Call[] = []
  const server = new grpc.Server()
  server.addService(service.service, {
    InvokeHook: (call: Grpc.ServerUnaryCall<any, any>, callback: Grpc.sendUnaryData<any>) => {
      calls.push({ request: call.request, metadata: call.metadata.getMap(), at: Date.now() })
      const result = answer(call.request, calls.length)
      if ('code' in result) callback(result as Grpc.ServiceError)
      else callback(null, result)
    }
  })
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (err, bound) => err === null ? resolve(bound) : reject(err)))
  t.teardown(() => server.forceShutdown())
  return { address: `127.0.0.1:${port}`, calls }
}

async function transport (t: Test, options: GrpcHookOptions): Promise<Awaited<ReturnType<typeof createGrpcHookTransport>>> {
  const hook = await createGrpcHookTransport({ backoff: 20, ...options })
  t.teardown(() => hook.close())
  return hook
}

function sample (): HookRequest {
  return {
    Type: 'pre-create',
    Event: {
      Upload: { ID: '', Size: 5, SizeIsDeferred: false, Offset: 0, MetaData: { filename: 'a.txt' }, IsPartial: false, IsFinal: true, PartialUploads: ['p1', 'p2'], Storage: null },
      HTTPRequest: { Method: 'POST', URI: '/files/', RemoteAddr: '127.0.0.1:5000', Header: { Host: ['localhost'], Authorization: ['Bearer a', 'Bearer b'], Cookie: ['c=1'] } }
    }
  }
}

t.test('InvokeHook gets the request as tusd marshals it; the answer decodes as tusd unmarshals it', async (t) => {
  const server = await startHookServer(t, () => ({
    rejectUpload: true,
    httpResponse: { statusCode: 403, header: { 'X-Reason': 'quota' }, body: 'over quota' },
    changeFileInfo: { id: 'renamed', metaData: {}, storage: { Path: '/x' } }
  }))
  const hook = await transport(t, { endpoint: server.address, forwardHeaders: ['authorization', 'X-Absent'] })
  const answer = await hook.invoke(sample())
  t.same(answer, {
    HTTPResponse: { StatusCode: 403, Body: 'over quota', Header: { 'X-Reason': 'quota' } },
    RejectUpload: true,
    RejectTermination: false,
    ChangeFileInfo: { ID: 'renamed', MetaData: null, Storage: { Path: '/x' } },
    StopUpload: false
  }, 'an empty metadata map is no change (Go\'s nil map)')
  const call = server.calls[0] as Call
  t.match(call.request, {
    type: 'pre-create',
    event: {
      upload: { id: '', size: 5, sizeIsDeferred: false, offset: 0, metaData: { filename: 'a.txt' }, isPartial: false, isFinal: true, partialUploads: ['p1', 'p2'], storage: {} },
      httpRequest: { method: 'POST', uri: '/files/', remoteAddr: '127.0.0.1:5000', header: { Host: 'localhost', Authorization: 'Bearer a', Cookie: 'c=1' } }
    }
  }, 'one value per header: the first')
  t.equal(call.metadata.authorization, 'Bearer a', 'a forwarded header is metadata, first value, lowercased name')
  t.equal(call.metadata['x-absent'], undefined)
  t.equal(call.metadata.cookie, undefined, 'only the listed headers')

  t.same(fromWire({ httpResponse: null, rejectUpload: false, stopUpload: true, changeFileInfo: null }).StopUpload, true)
  t.throws(() => fromWire({ httpResponse: { statusCode: 42, header: {}, body: '' }, rejectUpload: false, stopUpload: false, changeFileInfo: null }), /not an HTTP status/,
    'the answer gets the same checks as the other transports')
  t.match(wireRequest({ ...sample(), Event: { ...sample().Event, Upload: { ...sample().Event.Upload, PartialUploads: null } } }), { event: { upload: { partialUploads: [] } } })
})

t.test('UNAVAILABLE is retried after the backoff, up to the attempt count; other errors are not', async (t) => {
  const busy = await startHookServer(t, (_request, attempt) => attempt < 3 ? { code: grpc.status.UNAVAILABLE, details: 'busy' } : { stopUpload: true })
  const answer = await (await transport(t, { endpoint: busy.address, retries: 3, backoff: 100 })).invoke(sample())
  t.equal(answer.StopUpload, true)
  t.equal(busy.calls.length, 3)
  const [first, second, third] = busy.calls.map((call) => call.at) as [number, number, number]
  t.ok(second - first >= 90 && third - second >= 90, `attempts ${second - first} ms and ${third - second} ms apart`)

  const down = await startHookServer(t, () => ({ code: grpc.status.RESOURCE_EXHAUSTED, details: 'full' }))
  await t.rejects((await transport(t, { endpoint: down.address, retries: 2 })).invoke(sample()), /gRPC hook call failed after 2 attempts: 8 RESOURCE_EXHAUSTED: full/)
  t.equal(down.calls.length, 2, '--hooks-grpc-retry 2 means two attempts, as tusd counts them')

  const broken = await startHookServer(t, () => ({ code: grpc.status.INTERNAL, details: 'bug' }))
  await t.rejects((await transport(t, { endpoint: broken.address, retries: 3 })).invoke(sample()), /gRPC hook call failed: 13 INTERNAL: bug/)
  t.equal(broken.calls.length, 1, 'not retried')

  const once = await startHookServer(t, () => ({ code: grpc.status.UNAVAILABLE, details: 'no' }))
  await t.rejects((await transport(t, { endpoint: once.address, retries: 0 })).invoke(sample()))
  t.equal(once.calls.length, 1, '0 counts as one attempt')

  await t.rejects((await transport(t, { endpoint: '127.0.0.1:1', retries: 2 })).invoke(sample()), /after 2 attempts: 14 UNAVAILABLE/, 'nobody listening')
})

t.test('TLS: the server certificate is checked; mutual TLS with a client certificate', async (t) => {
  const dir = await tempDir(t)
  const server: TestCertificate = makeCertificate(dir, 'grpc-server')
  const client: TestCertificate = makeCertificate(dir, 'grpc-client', 'hook-client')
  const other: TestCertificate = makeCertificate(dir, 'other')
  const mutual = await startHookServer(t, () => ({ rejectUpload: true }),
    grpc.ServerCredentials.createSsl(client.cert, [{ cert_chain: server.cert, private_key: server.key }], true))
  const endpoint = mutual.address.replace('127.0.0.1', 'localhost')
  const good = await transport(t, { endpoint, retries: 1, tls: { serverCertificate: server.certPath, clientCertificate: client.certPath, clientKey: client.keyPath } })
  t.equal((await good.invoke(sample())).RejectUpload, true, 'mTLS')
  await t.rejects((await transport(t, { endpoint, retries: 1, tls: { serverCertificate: server.certPath } })).invoke(sample()), 'no client certificate: refused')
  await t.rejects((await transport(t, { endpoint, retries: 1, tls: { serverCertificate: other.certPath, clientCertificate: client.certPath, clientKey: client.keyPath } })).invoke(sample()),
    'a server certificate that is not the one given: refused')
  t.equal(mutual.calls.length, 1)
  await t.rejects(createGrpcHookTransport({ endpoint, tls: { serverCertificate: `${dir}/missing.pem` } }), { name: 'FlagError', message: /--hooks-grpc-server-tls-certificate .*missing.pem cannot be read/ })
})

t.test('flags: as tusd, with its rules', async (t) => {
  const hooks = (argv: string[]): Record<string, unknown> => {
    const config = parseFlags(argv)
    if (typeof config === 'string') throw new Error(config)
    return config.hooks
  }
  t.match(hooks(['--hooks-grpc', 'localhost:8081']), { grpc: 'localhost:8081', grpcRetry: 3, grpcBackoff: 1000, grpcSecure: false, grpcForwardHeaders: [] })
  t.match(hooks(['--hooks-grpc', 'h:1', '--hooks-grpc-retry', '5', '--hooks-grpc-backoff', '2s', '--hooks-grpc-secure', '--hooks-grpc-server-tls-certificate', 's.pem',
    '--hooks-grpc-client-tls-certificate', 'c.pem', '--hooks-grpc-client-tls-key', 'k.pem', '--hooks-grpc-forward-headers', 'Authorization,Cookie']), {
    grpcRetry: 5, grpcBackoff: 2000, grpcSecure: true, grpcServerTlsCertificate: 's.pem', grpcClientTlsCertificate: 'c.pem', grpcClientTlsKey: 'k.pem', grpcForwardHeaders: ['Authorization', 'Cookie']
  })
  for (const [bad, message] of [
    [['--hooks-grpc', 'h:1', '--hooks-http', 'http://x/'], /--hooks-http and --hooks-grpc cannot be combined/],
    [['--hooks-grpc', 'h:1', '--hooks-dir', 'd'], /--hooks-dir and --hooks-grpc cannot be combined/],
    [['--hooks-grpc', 'h:1', '--hooks-grpc-secure'], /--hooks-grpc-secure needs --hooks-grpc-server-tls-certificate/],
    [['--hooks-grpc', 'h:1', '--hooks-grpc-secure', '--hooks-grpc-server-tls-certificate', 's', '--hooks-grpc-client-tls-key', 'k'], /go together/],
    [['--hooks-grpc', 'h:1', '--hooks-grpc-server-tls-certificate', 's', '--hooks-grpc-client-tls-certificate', 'c', '--hooks-grpc-client-tls-key', 'k'], /needs --hooks-grpc-secure/],
    [['--hooks-grpc', ''], /must not be empty/]
  ] as const) {
    t.throws(() => parseFlags([...bad]), { name: 'FlagError', message }, bad.join(' '))
  }
  t.ok(new FlagError('x') instanceof Error)
})

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

t.test('the command with --hooks-grpc: reject, rename, new metadata, stop an upload', async (t) => {
  const server = await startHookServer(t, (request) => {
    const upload = request.event.upload
    if (request.type === 'pre-create') {
      if (upload.metaData.filename === 'evil.exe') {
        return { rejectUpload: true, httpResponse: { statusCode: 403, header: { 'X-Hook': 'no' }, body: 'not this file' } }
      }
      return { changeFileInfo: { id: `grpc-${(upload.metaData.filename as string).replace(/\W/g, '-')}`, metaData: { filename: upload.metaData.filename, checked: 'yes' } } }
    }
    if (request.type === 'post-receive' && upload.metaData.filename === 'stop.bin' && upload.offset > 0) return { stopUpload: true }
    return {}
  })
  const dir = await tempDir(t)
  const io = fakeIo()
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent', '--disable-demo',
    '--hooks-grpc', server.address, '--hooks-grpc-forward-headers', 'Authorization', '--progress-hooks-interval', '50ms'], io)
  if (app === undefined) throw new Error(io.err)
  t.teardown(async () => await app.close())
  const url = /listening on (\S+)/.exec(io.out)?.[1] as string
  const meta = (name: string): string => `filename ${Buffer.from(name).toString('base64')},drop ${Buffer.from('x').toString('base64')}`

  const rejected = await fetch(url, { method: 'POST', headers: { ...TUS, 'upload-length': '3', 'upload-metadata': meta('evil.exe') } })
  t.equal(rejected.status, 403, 'the hook\'s status')
  t.equal(rejected.headers.get('x-hook'), 'no')
  t.equal(await rejected.text(), 'not this file')

  const created = await fetch(url, { method: 'POST', headers: { ...TUS, 'upload-length': '3', 'upload-metadata': meta('ok.txt'), authorization: 'Bearer t' } })
  t.equal(created.status, 201)
  const location = created.headers.get('location') as string
  t.match(location, /\/files\/grpc-ok-txt$/, 'renamed through changeFileInfo.id')
  const head = await fetch(location, { method: 'HEAD', headers: TUS })
  const metadata = Object.fromEntries((head.headers.get('upload-metadata') ?? '').split(',').map((pair) => {
    const [key, value] = pair.split(' ')
    return [key, Buffer.from(value ?? '', 'base64').toString()]
  }))
  t.same(metadata, { filename: 'ok.txt', checked: 'yes' }, 'the metadata replaced, as tusd does')
  t.equal(server.calls.find((call) => call.request.type === 'pre-create' && call.request.event.upload.metaData.filename === 'ok.txt')?.metadata.authorization, 'Bearer t')

  const stop = await fetch(url, { method: 'POST', headers: { ...TUS, 'upload-length': '100', 'upload-metadata': meta('stop.bin') } })
  const stopLocation = stop.headers.get('location') as string
  const body = new ReadableStream({
    async start (controller) {
      controller.enqueue(new Uint8Array(10))
      await sleep(1000)
      controller.close()
    }
  })
  const stopped = await fetch(stopLocation, {
    method: 'PATCH', headers: { ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, body, duplex: 'half'
  } as RequestInit)
  t.equal(stopped.status, 400)
  t.match(await stopped.text(), /ERR_UPLOAD_STOPPED|stopped/)
  t.equal((await fetch(stopLocation, { method: 'HEAD', headers: TUS })).status, 404, 'a stopped upload is terminated, as in tusd')
})

t.test('the command with --hooks-grpc: pre-finish sets the completing status; a redirect is refused', async (t) => {
  const server = await startHookServer(t, (request) => {
    if (request.type !== 'pre-finish') return {}
    return request.event.upload.metaData.filename === 'moved.txt'
      ? { httpResponse: { statusCode: 307, header: {}, body: '' } }
      : { httpResponse: { statusCode: 202, header: { 'X-Scan': 'queued' }, body: 'scanning' } }
  })
  const dir = await tempDir(t)
  const io = fakeIo()
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent', '--disable-demo',
    '--hooks-grpc', server.address, '--hooks-enabled-events', 'pre-finish'], io)
  if (app === undefined) throw new Error(io.err)
  t.teardown(async () => await app.close())
  const url = /listening on (\S+)/.exec(io.out)?.[1] as string
  const finish = async (name: string): Promise<Response> => {
    const created = await fetch(url, { method: 'POST', headers: { ...TUS, 'upload-length': '2', 'upload-metadata': `filename ${Buffer.from(name).toString('base64')}` } })
    return await fetch(created.headers.get('location') as string, {
      method: 'PATCH', headers: { ...TUS, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' }, body: 'ab', redirect: 'manual'
    })
  }
  const queued = await finish('scan.txt')
  t.equal(queued.status, 202, 'the hook\'s status')
  t.equal(queued.headers.get('x-scan'), 'queued')
  t.equal(await queued.text(), 'scanning')
  const moved = await finish('moved.txt')
  t.equal(moved.status, 500, 'a redirect is refused')
  t.equal(((await moved.json()) as { code: string }).code, 'ERR_INTERNAL_SERVER_ERROR')
})

t.test('a missing hook server fails blocking hooks with a generic 500', async (t) => {
  const dir = await tempDir(t)
  const io = fakeIo()
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent', '--disable-demo',
    '--hooks-grpc', '127.0.0.1:1', '--hooks-grpc-retry', '1', '--hooks-enabled-events', 'pre-create'], io)
  if (app === undefined) throw new Error(io.err)
  t.teardown(async () => await app.close())
  const url = /listening on (\S+)/.exec(io.out)?.[1] as string
  const answer = await fetch(url, { method: 'POST', headers: { ...TUS, 'upload-length': '3' } })
  t.equal(answer.status, 500)
  t.notMatch(await answer.text(), /UNAVAILABLE|127\.0\.0\.1/, 'no hook detail for the client')
})

t.test('over HTTP/2 the hook sees the request as over HTTP/1.1: no pseudo-headers, Host from :authority', async (t) => {
  const server = await startHookServer(t, () => ({}))
  const dir = await tempDir(t)
  const io = fakeIo()
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent', '--disable-demo', '--enable-h2c',
    '--hooks-grpc', server.address, '--hooks-enabled-events', 'pre-create'], io)
  if (app === undefined) throw new Error(io.err)
  t.teardown(async () => await app.close())
  const url = new URL(/listening on (\S+)/.exec(io.out)?.[1] as string)
  const session = await http2Session(url.origin)
  t.teardown(() => session.destroy())
  const created = await http2Request(session, { ':method': 'POST', ':path': url.pathname, ...TUS, 'upload-length': '3', 'x-tenant': 't1' })
  t.equal(created.status, 201)
  const request = server.calls[0]?.request.event.httpRequest
  t.match(request, { method: 'POST', uri: '/files/', header: { Host: url.host, 'X-Tenant': 't1', 'Tus-Resumable': '1.0.0' } })
  t.notOk(Object.keys(request.header as object).some((name) => name.startsWith(':')), 'no pseudo-headers')
})
