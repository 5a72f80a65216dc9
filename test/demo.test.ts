/**
 * The command's demo page in-process: the fixed list of files with their headers, the completed
 * uploads list, and when the page is off. Needs the built assets (`npm run build`); the browser
 * test (demo-browser.test.ts) drives the page itself.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { CONTENT_SECURITY_POLICY, defaultAssets, registerDemo, type CompletedUpload } from '../bin/demo.js'
import { parseFlags, type CliConfig } from '../bin/flags.js'
import { buildServer } from '../bin/server.js'
import tus from '../plugin/index.js'
import { MemoryStore } from '../stores/memory.js'
import { OCTET, TUS, tempDir } from './helpers/app.js'

t.ok(defaultAssets(), 'the demo is built (npm run build)')

async function command (t: Test, ...argv: string[]): Promise<FastifyInstance> {
  const dir = await tempDir(t)
  const app = await buildServer(parseFlags(['--upload-dir', dir, '--locker', 'memory', '--log-level', 'silent', ...argv]) as CliConfig)
  t.teardown(async () => await app.close())
  return app
}

async function completed (app: FastifyInstance): Promise<CompletedUpload[]> {
  const response = await app.inject('/demo/uploads.json')
  return (response.json() as { uploads: CompletedUpload[] }).uploads
}

/** Waits for the list to reach `length`: uploads complete once their response is sent. */
async function completedLength (app: FastifyInstance, length: number): Promise<CompletedUpload[]> {
  for (let i = 0; i < 100; i++) {
    const list = await completed(app)
    if (list.length === length) return list
    await sleep(10)
  }
  throw new Error(`the list never had ${length} entries`)
}

function b64 (text: string): string {
  return Buffer.from(text).toString('base64')
}

t.test('serves the page, the script and the styles with safe headers', async (t) => {
  const app = await command(t)
  const page = await app.inject('/')
  t.equal(page.statusCode, 200)
  t.equal(page.headers['content-type'], 'text/html; charset=utf-8')
  t.equal(page.headers['x-content-type-options'], 'nosniff')
  t.equal(page.headers['content-security-policy'], CONTENT_SECURITY_POLICY)
  t.match(page.headers['content-security-policy'], /default-src 'none'/)
  t.match(page.headers['content-security-policy'], /script-src 'self'(;|$)/)
  t.equal(page.headers['x-frame-options'], 'DENY')
  t.match(page.body, 'data-endpoint="/files/"')
  t.match(page.body, 'data-download="true"')
  t.match(page.body, '<script type="module" src="/demo/app.js"></script>')
  t.notMatch(page.body, '{{')

  const script = await app.inject('/demo/app.js')
  t.equal(script.statusCode, 200)
  t.equal(script.headers['content-type'], 'text/javascript; charset=utf-8')
  t.equal(script.headers['x-content-type-options'], 'nosniff')
  t.ok(script.body.length > 10_000, 'Uppy is bundled in')

  const styles = await app.inject('/demo/demo.css')
  t.equal(styles.statusCode, 200)
  t.equal(styles.headers['content-type'], 'text/css; charset=utf-8')
  t.match(styles.body, '.uppy-Dashboard')

  const head = await app.inject({ method: 'HEAD', url: '/' })
  t.equal(head.statusCode, 200)
  t.equal(head.body, '')

  for (const path of ['/index.html', '/demo/index.html', '/demo/', '/demo/../package.json', '/demo/%2e%2e/package.json',
    '/demo/app.js.map', '/demo/..%2f..%2fpackage.json', '/app.js']) {
    const response = await app.inject(path)
    t.equal(response.statusCode, 404, `${path} is not served`)
    t.notMatch(response.body, '"name": "fastify-tus"')
  }
  t.equal((await app.inject({ method: 'POST', url: '/' })).statusCode, 404, 'GET and HEAD only')
})

t.test('lists completed uploads, newest first, without partial uploads or terminated ones', async (t) => {
  const app = await command(t)
  t.same(await completed(app), [])
  const response = await app.inject('/demo/uploads.json')
  t.equal(response.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(response.headers['cache-control'], 'no-store')
  t.equal(response.headers['x-content-type-options'], 'nosniff')

  const first = await app.inject({
    method: 'POST',
    url: '/files/',
    headers: { ...TUS, 'upload-length': '5', 'upload-metadata': `filename ${b64('a <b>.txt')},filetype ${b64('text/plain')}`, 'content-type': OCTET },
    payload: 'hello'
  })
  t.equal(first.statusCode, 201)
  let list = await completedLength(app, 1)
  const id = new URL(first.headers.location as string).pathname.split('/').pop() as string
  t.match(list[0], { id, name: 'a <b>.txt', size: 5, url: `/files/${id}` })
  t.ok(Date.parse(list[0]?.completedAt ?? '') > 0)

  // a partial upload for concatenation is not a file of its own
  const partial = await app.inject({
    method: 'POST',
    url: '/files/',
    headers: { ...TUS, 'upload-length': '2', 'upload-concat': 'partial', 'content-type': OCTET },
    payload: 'hi'
  })
  t.equal(partial.statusCode, 201)
  // without a name: the id; `name` when there is no `filename`
  for (const metadata of ['', `name ${b64('b.bin')}`]) {
    const created = await app.inject({
      method: 'POST',
      url: '/files/',
      headers: { ...TUS, 'upload-length': '1', 'content-type': OCTET, ...(metadata === '' ? {} : { 'upload-metadata': metadata }) },
      payload: 'x'
    })
    t.equal(created.statusCode, 201)
  }
  list = await completedLength(app, 3)
  t.equal(list[0]?.name, 'b.bin')
  t.equal(list[1]?.name, list[1]?.id)
  t.equal(list[2]?.id, id)

  const deleted = await app.inject({ method: 'DELETE', url: `/files/${id}`, headers: TUS })
  t.equal(deleted.statusCode, 204)
  list = await completedLength(app, 2)
  t.notOk(list.some((entry) => entry.id === id))

  const page = await app.inject('/demo/uploads.json')
  t.notMatch(page.body, '<b>', 'served as JSON, escaped by the page when shown')
})

t.test('--disable-download: the page does not link downloads', async (t) => {
  const app = await command(t, '--disable-download')
  t.match((await app.inject('/')).body, 'data-download="false"')
})

t.test('--disable-demo: no page', async (t) => {
  const app = await command(t, '--disable-demo')
  t.equal((await app.inject('/')).statusCode, 404)
  t.equal((await app.inject('/demo/app.js')).statusCode, 404)
  t.equal((await app.inject('/demo/uploads.json')).statusCode, 404)
})

t.test('--base-path /: the root is the upload collection, so no page', async (t) => {
  const app = await command(t, '--base-path', '/')
  t.not((await app.inject('/')).headers['content-type'], 'text/html; charset=utf-8')
  t.equal((await app.inject('/demo/app.js')).statusCode, 404)
  const options = await app.inject({ method: 'OPTIONS', url: '/', headers: TUS })
  t.equal(options.headers['tus-resumable'], '1.0.0', 'tus owns /')
})

t.test('another base path is written into the page, escaped', async (t) => {
  const app = await command(t, '--base-path', '/up&load/')
  const page = await app.inject('/')
  t.match(page.body, 'data-endpoint="/up&#38;load/"')
  t.equal((await app.inject({ method: 'OPTIONS', url: '/up&load/', headers: TUS })).statusCode, 204)
})

async function bare (t: Test): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  await app.register(tus, { path: '/files/', store: new MemoryStore() })
  t.teardown(async () => await app.close())
  return app
}

t.test('assets missing: no page, a warning', async (t) => {
  const app = await bare(t)
  const dir = await tempDir(t)
  t.equal(await registerDemo(app, { basePath: '/files/', download: true, assets: dir }), false)
  t.equal((await app.inject('/')).statusCode, 404)
})

t.test('keeps the newest uploads only', async (t) => {
  const app = await bare(t)
  t.equal(await registerDemo(app, { basePath: '/files/', download: true, assets: defaultAssets() as string, keep: 2 }), true)
  for (const name of ['one', 'two', 'three']) {
    const response = await app.inject({
      method: 'POST',
      url: '/files/',
      headers: { ...TUS, 'upload-length': '1', 'upload-metadata': `filename ${b64(name)}`, 'content-type': OCTET },
      payload: 'x'
    })
    t.equal(response.statusCode, 201)
    await sleep(20)
  }
  await sleep(50)
  t.same((await completed(app)).map((entry) => entry.name), ['three', 'two'])
})
