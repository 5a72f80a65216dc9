/**
 * The URLs the server hands out and accepts back (plugin/urls.ts): `Host` and forwarded headers
 * are validated, `publicUrl` replaces them, `Upload-Concat` URLs are checked the same way.
 */
import Fastify from 'fastify'
import t from 'tap'
import { FlagError, parseFlags, type CliConfig } from '../bin/flags.js'
import tus from '../plugin/index.js'
import { isValidHost, normalizePublicUrl, uploadPath } from '../plugin/urls.js'
import { MemoryStore } from '../stores/memory.js'
import { buildApp, OCTET, TUS } from './helpers/app.js'

const V8 = { 'upload-draft-interop-version': '8' }

t.test('hosts: a DNS name, IPv4 or [IPv6] with an optional port, nothing else', async (t) => {
  for (const good of ['example.com', 'EXAMPLE.com.', 'a-b.c_d.example:8080', '127.0.0.1', '127.0.0.1:1', '[::1]', '[2001:db8::1]:443', 'localhost:65535']) {
    t.ok(isValidHost(good), good)
  }
  for (const bad of ['', 'evil.com/x?', 'user@evil.com', 'evil.com?x', 'evil.com#x', 'a b', 'evil.com:99999', 'evil.com:', 'evil.com:80:80', '[::1', '[zz::1]', '[::1]x', '::1',
    '-a.example', 'a..example', 'é.example', 'evil.com\\x', `${'a'.repeat(64)}.example`, 'javascript:alert(1)']) {
    t.notOk(isValidHost(bad), JSON.stringify(bad))
  }
})

t.test('an invalid Host is 400 ERR_INVALID_HOST, before anything is created', async (t) => {
  const store = new MemoryStore()
  let created = 0
  const create = store.create.bind(store)
  store.create = async (...args) => { created++; return await create(...args) }
  const { app } = await buildApp(t, { store })
  for (const host of ['evil.com/x?', 'user@evil.com', 'a b', 'evil.com:99999']) {
    const tusCreation = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', host } })
    t.equal(tusCreation.statusCode, 400, host)
    t.equal(tusCreation.json().code, 'ERR_INVALID_HOST')
    t.equal(tusCreation.headers.location, undefined)
    const draft = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1', host }, payload: 'hi' })
    t.equal(draft.statusCode, 400, `IETF draft: ${host}`)
    t.equal(draft.json().code, 'ERR_INVALID_HOST')
  }
  t.equal(created, 0, 'no upload was created')
  const ok = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', host: '[::1]:8080' } })
  t.match(ok.headers.location, /^http:\/\/\[::1\]:8080\/files\/[0-9a-f]{32}$/)
  const { app: relative } = await buildApp(t, { relativeLocation: true })
  t.equal((await relative.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', host: 'a b' } })).statusCode, 201, 'a relative Location needs no host')
})

t.test('forwarded headers with a bad value are ignored: the connection\'s values are used', async (t) => {
  // as the command runs: Fastify's trustProxy and the plugin's respectForwardedHeaders
  const app = Fastify({ logger: false, trustProxy: true })
  await app.register(tus, { store: new MemoryStore(), respectForwardedHeaders: true })
  t.teardown(async () => await app.close())
  const cases: Array<[Record<string, string>, string]> = [
    [{ 'x-forwarded-proto': 'javascript' }, 'http://ok.example/files/'],
    [{ 'x-forwarded-proto': 'https', 'x-forwarded-host': 'user@evil.com' }, 'https://ok.example/files/'],
    [{ 'x-forwarded-host': 'evil.com/x?' }, 'http://ok.example/files/'],
    [{ forwarded: 'proto=javascript;host=evil.com%2F' }, 'http://ok.example/files/'],
    [{ forwarded: 'host="a b"', 'x-forwarded-host': 'cdn.example' }, 'http://ok.example/files/'],
    [{ forwarded: 'proto=HTTPS;host=cdn.example:8443' }, 'https://cdn.example:8443/files/']
  ]
  for (const [headers, prefix] of cases) {
    const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', host: 'ok.example', ...headers } })
    t.equal(response.statusCode, 201, JSON.stringify(headers))
    t.ok((response.headers.location as string).startsWith(prefix), `${JSON.stringify(headers)} → ${response.headers.location as string}`)
  }
  const bad = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', host: 'a b', 'x-forwarded-host': 'cdn.example' } })
  t.match(bad.headers.location, /^http:\/\/cdn\.example\/files\//, 'a valid forwarded host does not need the connection\'s')
})

t.test('publicUrl: Location is built from it, never from request headers; Upload-Concat URLs must be on it', async (t) => {
  const { app } = await buildApp(t, { publicUrl: 'https://uploads.example.com/tus/', respectForwardedHeaders: true })
  const headers = { ...TUS, host: 'evil.example', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' }
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...headers, 'upload-length': '1', 'upload-concat': 'partial' } })
  const location = created.headers.location as string
  t.match(location, /^https:\/\/uploads\.example\.com\/tus\/files\/[0-9a-f]{32}$/)
  const id = location.split('/').pop() as string
  t.equal((await app.inject({ method: 'PATCH', url: `/files/${id}`, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'x' })).statusCode, 204)
  const draft = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1', host: 'a b' }, payload: 'hi' })
  t.equal(draft.statusCode, 201, 'no request header is consulted, not even an invalid Host')
  t.match(draft.headers.location, /^https:\/\/uploads\.example\.com\/tus\/files\/[0-9a-f]{32}$/)
  for (const url of [`http://uploads.example.com/tus/files/${id}`, `https://evil.example/tus/files/${id}`, `https://uploads.example.com/files/${id}`, `/files/${id}`]) {
    const final = await app.inject({ method: 'POST', url: '/files/', headers: { ...headers, 'upload-concat': `final;${url}` } })
    t.equal(final.statusCode, 400, url)
    t.equal(final.json().code, 'ERR_INVALID_CONCAT')
  }
  for (const url of [location, `/tus/files/${id}`]) {
    const final = await app.inject({ method: 'POST', url: '/files/', headers: { ...headers, 'upload-concat': `final;${url}` } })
    t.equal(final.statusCode, 201, url)
  }
  const { app: relative } = await buildApp(t, { publicUrl: 'https://uploads.example.com/tus', relativeLocation: true })
  t.match((await relative.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1' } })).headers.location, /^\/tus\/files\/[0-9a-f]{32}$/)
})

t.test('Upload-Concat: part URLs need an http(s) scheme and a valid host, no userinfo', async (t) => {
  const { app } = await buildApp(t)
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'upload-concat': 'partial', host: 'a.example' } })
  const id = (created.headers.location as string).split('/').pop() as string
  await app.inject({ method: 'PATCH', url: `/files/${id}`, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'x' })
  for (const url of [`ftp://a.example/files/${id}`, `javascript://a.example/files/${id}`, `http://user@a.example/files/${id}`, `http://a.example:99999/files/${id}`, `//user:pw@a.example/files/${id}`]) {
    const final = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${url}` } })
    t.equal(final.statusCode, 400, url)
    t.equal(final.json().code, 'ERR_INVALID_CONCAT')
  }
  for (const url of [`https://other.example:8443/files/${id}`, `/files/${id}`]) {
    t.equal((await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${url}` } })).statusCode, 201, url)
  }
  t.equal(uploadPath({ relativeLocation: false, respectForwardedHeaders: false }, 'http://[::1]:8080/files/x'), '/files/x')
})

t.test('publicUrl and --public-url are checked: absolute http(s), no query, fragment or userinfo', async (t) => {
  t.equal(normalizePublicUrl('https://Uploads.Example.com/tus/'), 'https://uploads.example.com/tus')
  t.equal(normalizePublicUrl('http://127.0.0.1:8080'), 'http://127.0.0.1:8080')
  for (const bad of ['uploads.example.com', '/tus', 'ftp://a.example', 'javascript:alert(1)', 'https://user@a.example', 'https://a.example/?x=1', 'https://a.example/#x',
    'https://a b.example', 'https://a.example:99999', 'https://a.example/a b']) {
    t.type(normalizePublicUrl(bad), 'object', bad)
    const err = await Fastify().register(tus, { store: new MemoryStore(), publicUrl: bad }).ready().then(() => undefined, (e: unknown) => e) as { code?: string, message?: string } | undefined
    t.equal(err?.code, 'ERR_TUS_INVALID_OPTION', `option ${bad}`)
    t.match(err?.message, /publicUrl/)
    t.throws(() => parseFlags(['--public-url', bad]), FlagError, `flag ${bad}`)
  }
  t.equal((parseFlags(['--public-url', 'https://uploads.example.com/']) as CliConfig).publicUrl, 'https://uploads.example.com')
  t.equal((parseFlags([]) as CliConfig).publicUrl, undefined)
})
