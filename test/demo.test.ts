/**
 * The command's demo page in-process: the fixed list of files with their headers, that no upload is
 * ever listed by the server, and when the page is off. Needs the built assets (`npm run build`); the browser
 * test (demo-browser.test.ts) drives the page itself.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import t, { type Test } from 'tap'
import { CONTENT_SECURITY_POLICY, defaultAssets, registerDemo } from '../bin/demo.js'
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

t.test('the server never publishes upload ids: no listing, in any mode', async (t) => {
  for (const argv of [[], ['--disable-download'], ['--expose-metrics']]) {
    const app = await command(t, ...argv)
    const created = await app.inject({
      method: 'POST',
      url: '/files/',
      headers: { ...TUS, 'upload-length': '5', 'upload-metadata': `filename ${b64('secret.txt')}`, 'content-type': OCTET },
      payload: 'hello'
    })
    t.equal(created.statusCode, 201)
    const id = new URL(created.headers.location as string).pathname.split('/').pop() as string
    // every route the command serves outside the collection, and the paths a listing would take
    const paths = [...app.printRoutes({ commonPrefix: false }).matchAll(/([/][^\s(]*)/g)].map((match) => match[1] as string)
      .filter((path) => !path.startsWith('/files/'))
    for (const path of new Set([...paths, '/demo/uploads.json', '/demo/uploads', '/uploads.json', '/files/'])) {
      for (const method of ['GET', 'HEAD', 'OPTIONS'] as const) {
        const response = await app.inject({ method, url: path })
        t.notMatch(`${JSON.stringify(response.headers)}${response.body}`, id, `${argv.join(' ')} ${method} ${path} does not reveal the id`)
        t.notMatch(response.body, 'secret.txt', `${argv.join(' ')} ${method} ${path} does not reveal the file name`)
      }
    }
    t.equal((await app.inject('/demo/uploads.json')).statusCode, 404, 'the old listing is gone')
  }
})

t.test('the page keeps its list in the browser', async (t) => {
  const app = await command(t)
  const script = (await app.inject('/demo/app.js')).body
  t.match(script, 'localStorage', 'the list is saved in the browser')
  t.notMatch(script, 'uploads.json', 'and never asked of the server')
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
