/**
 * The HTTP hook transport on its own, against a real receiver: the request tusd sends, retries
 * and backoff, the timeout, the response size limit, the content-type rule, forwarded headers
 * and TLS verification.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { HttpHookTransport } from '../bin/hooks/http.js'
import type { HookRequest } from '../bin/hooks/protocol.js'
import { tempDir } from './helpers/app.js'
import { startHookReceiver, type HookAnswer } from './helpers/hook-receiver.js'

function sample (header: Record<string, string[]> = {}): HookRequest {
  return {
    Type: 'pre-create',
    Event: {
      Upload: { ID: '', Size: 5, SizeIsDeferred: false, Offset: 0, MetaData: { filename: 'a.txt' }, IsPartial: false, IsFinal: false, PartialUploads: null, Storage: null },
      HTTPRequest: { Method: 'POST', URI: '/files/', RemoteAddr: '127.0.0.1:5000', Header: { Host: ['localhost'], ...header } }
    }
  }
}

function transport (t: Test, endpoint: string, options: Partial<ConstructorParameters<typeof HttpHookTransport>[0]> = {}): HttpHookTransport {
  const hook = new HttpHookTransport({ endpoint, backoff: 20, ...options })
  t.teardown(() => hook.close())
  return hook
}

t.test('POSTs the HookRequest as JSON and reads the HookResponse', async (t) => {
  const receiver = await startHookReceiver(t, () => ({ json: { RejectUpload: true, HTTPResponse: { StatusCode: 403, Body: 'no', Header: { 'X-A': 'b' } } } }))
  const hook = transport(t, receiver.url)
  const answer = await hook.invoke(sample())
  t.same(answer, {
    HTTPResponse: { StatusCode: 403, Body: 'no', Header: { 'X-A': 'b' } },
    RejectUpload: true,
    RejectTermination: false,
    ChangeFileInfo: { ID: '', MetaData: null, Storage: null },
    StopUpload: false
  })
  t.equal(receiver.hooks.length, 1)
  t.same(receiver.hooks[0]?.payload, sample(), 'the body is the HookRequest')
  t.equal(receiver.hooks[0]?.headers['content-type'], 'application/json')
  t.equal(receiver.hooks[0]?.headers.authorization, undefined, 'nothing forwarded unless asked')
})

t.test('forwards the listed client headers, looked up canonically, named as listed', async (t) => {
  const receiver = await startHookReceiver(t)
  const hook = transport(t, receiver.url, { forwardHeaders: ['authorization', ' X-Tenant ', 'Cookie', 'X-Absent', ''] })
  await hook.invoke(sample({ Authorization: ['Bearer abc'], 'X-Tenant': ['t1'], Cookie: ['a=1', 'b=2'], 'X-Other': ['no'] }))
  const headers = receiver.hooks[0]?.headers ?? {}
  t.equal(headers.authorization, 'Bearer abc')
  t.equal(headers['x-tenant'], 't1')
  t.equal(headers.cookie, 'a=1; b=2', 'several values all arrive')
  t.equal(headers['x-other'], undefined)
  t.equal(headers['x-absent'], undefined)
})

t.test('retries a 5xx after the backoff, up to the attempt count; a 4xx is not retried', async (t) => {
  const receiver = await startHookReceiver(t, (_hook, attempt) => attempt < 3 ? { raw: 'busy', status: 503 } : { json: { StopUpload: true } })
  const hook = transport(t, receiver.url, { retries: 3, backoff: 100 })
  const answer = await hook.invoke(sample())
  t.equal(answer.StopUpload, true)
  t.equal(receiver.hooks.length, 3)
  const [first, second, third] = receiver.hooks.map((h) => h.at) as [number, number, number]
  t.ok(second - first >= 90 && third - second >= 90, `attempts ${Math.round(second - first)} ms and ${Math.round(third - second)} ms apart`)

  const failing = await startHookReceiver(t, () => ({ raw: 'still broken', status: 500 }))
  const err = await transport(t, failing.url, { retries: 2 }).invoke(sample()).then(() => undefined, (e: unknown) => e as Error)
  t.match(err?.message, 'unexpected response code from hook endpoint (500): still broken')
  t.equal(failing.hooks.length, 2, '--hooks-http-retry 2 means two attempts, as tusd counts them')

  const refusing = await startHookReceiver(t, () => ({ raw: 'who are you', status: 401 }))
  await t.rejects(transport(t, refusing.url, { retries: 3 }).invoke(sample()), /unexpected response code from hook endpoint \(401\)/)
  t.equal(refusing.hooks.length, 1, 'a 4xx is final')

  const once = await startHookReceiver(t, () => ({ raw: '', status: 502 }))
  await t.rejects(transport(t, once.url, { retries: 0 }).invoke(sample()), /\(502\)/)
  t.equal(once.hooks.length, 1, '0 attempts still makes one')
})

t.test('a network error is retried, then reported', async (t) => {
  const port = await new Promise<number>((resolve) => {
    const server = createServer()
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
  const started = performance.now()
  await t.rejects(transport(t, `http://127.0.0.1:${port}/`, { retries: 3, backoff: 50 }).invoke(sample()), /unreachable after 3 attempt\(s\): .*ECONNREFUSED/)
  t.ok(performance.now() - started >= 90, 'with the backoff between attempts')

  const dropping = await startHookReceiver(t, (_hook, attempt) => attempt === 1 ? { destroy: true } : { json: {} })
  await transport(t, dropping.url).invoke(sample())
  t.equal(dropping.hooks.length, 2, 'a dropped connection is tried again')
})

t.test('the timeout bounds the whole call, attempts and waits included', async (t) => {
  const hanging = await startHookReceiver(t, () => ({ hang: true }))
  let started = performance.now()
  await t.rejects(transport(t, hanging.url, { timeout: 200 }).invoke(sample()), /did not answer within 200 ms/)
  const took = performance.now() - started
  t.ok(took >= 190 && took < 2000, `gave up after ${Math.round(took)} ms`)

  const failing = await startHookReceiver(t, () => ({ raw: '', status: 500 }))
  started = performance.now()
  await t.rejects(transport(t, failing.url, { timeout: 150, retries: 10, backoff: 1000 }).invoke(sample()), /did not answer within 150 ms/)
  t.ok(performance.now() - started < 900, 'the backoff wait ends with the timeout')
  t.equal(failing.hooks.length, 1)
})

t.test('the response size limit', async (t) => {
  const padded = (size: number): string => {
    const json = '{"StopUpload":true}'
    return json + ' '.repeat(size - json.length)
  }
  const receiver = await startHookReceiver(t, (hook) => ({ raw: padded(hook.payload.Event.Upload.Size), headers: { 'content-type': 'application/json' } }))
  const hook = transport(t, receiver.url, { sizeLimit: 5120 })
  const exact = sample()
  exact.Event.Upload.Size = 5120
  t.equal((await hook.invoke(exact)).StopUpload, true, 'exactly the limit is fine')
  const over = sample()
  over.Event.Upload.Size = 5121
  await t.rejects(hook.invoke(over), /exceeded maximum size of 5120 bytes/)
  const huge = sample()
  huge.Event.Upload.Size = 3 * 1024 * 1024
  await t.rejects(hook.invoke(huge), /exceeded maximum size/, 'a huge answer is not read to the end')
})

t.test('the answer must be 2xx JSON with Content-Type: application/json', async (t) => {
  const answers: Array<{ answer: HookAnswer, error: RegExp }> = [
    { answer: { raw: '{}', headers: {} }, error: /does not contain the 'Content-Type: application\/json' header/ },
    { answer: { raw: '{}', headers: { 'content-type': 'text/plain' } }, error: /expected hook response Content-Type to be application\/json, but got 'text\/plain'/ },
    { answer: { raw: 'not json', headers: { 'content-type': 'application/json' } }, error: /failed to parse hook response/ },
    { answer: { raw: '[1]', headers: { 'content-type': 'application/json' } }, error: /must be a JSON object/ },
    { answer: { json: { RejectUpload: 'yes' } }, error: /RejectUpload must be a boolean/ },
    { answer: { json: {}, status: 302 }, error: /\(302\)/ }
  ]
  for (const { answer, error } of answers) {
    const receiver = await startHookReceiver(t, () => answer)
    await t.rejects(transport(t, receiver.url).invoke(sample()), error, JSON.stringify(answer))
  }
  const charset = await startHookReceiver(t, () => ({ raw: '{"stopupload":true}', headers: { 'content-type': 'Application/JSON; charset=utf-8' } }))
  t.equal((await transport(t, charset.url).invoke(sample())).StopUpload, true, 'parameters and case do not matter; keys match case-insensitively')
  const empty = await startHookReceiver(t, () => ({ raw: 'null', status: 201, headers: { 'content-type': 'application/json' } }))
  t.equal((await transport(t, empty.url).invoke(sample())).RejectUpload, false, 'any 2xx; null is an empty response')
})

t.test('https endpoints: the certificate is verified unless skipVerify', async (t) => {
  const dir = await tempDir(t)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
    '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' })
  const tls = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') }
  const receiver = await startHookReceiver(t, () => ({ json: { RejectTermination: true } }), tls)
  t.match(receiver.url, /^https:/)
  await t.rejects(transport(t, receiver.url, { retries: 1 }).invoke(sample()), /self.signed certificate/)
  t.equal((await transport(t, receiver.url, { skipVerify: true }).invoke(sample())).RejectTermination, true)
})

t.test('only http: and https: endpoints', async (t) => {
  t.throws(() => new HttpHookTransport({ endpoint: 'ftp://example.com/' }), /http: or https:/)
  t.throws(() => new HttpHookTransport({ endpoint: 'nope' }), TypeError)
})

t.test('a kept-alive connection closed by the endpoint is replaced without using up an attempt', async (t) => {
  let connections = 0
  let requests = 0
  const server = createServer((socket) => {
    connections++
    let data = ''
    socket.on('data', (chunk) => {
      data += String(chunk)
      if (!data.includes('\r\n\r\n') || !data.endsWith('}')) return
      data = ''
      requests++
      if (requests === 2) {
        // the second request arrives on the kept-alive connection: drop it unanswered
        socket.resetAndDestroy()
        return
      }
      socket.write('HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\n{}')
    })
    socket.on('error', () => {})
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => { server.close() })
  const hook = transport(t, `http://127.0.0.1:${(server.address() as { port: number }).port}/`, { retries: 1 })
  await hook.invoke(sample())
  await hook.invoke(sample())
  t.equal(requests, 3, 'the dropped request was sent again')
  t.equal(connections, 2, 'on a new connection')
})
