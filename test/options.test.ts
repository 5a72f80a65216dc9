import Fastify from 'fastify'
import t from 'tap'
import tus from '../plugin/index.js'
import { MemoryLocker } from '../locks/memory.js'
import { FileStore } from '../stores/file.js'
import { MemoryStore } from '../stores/memory.js'

async function registerWith (options: unknown): Promise<unknown> {
  const app = Fastify()
  try {
    await app.register(tus, options as never)
    await app.ready()
    return undefined
  } catch (err) {
    return err
  } finally {
    await app.close()
  }
}

t.test('bad options are coded errors that name the option', async (t) => {
  const store = new MemoryStore()
  const cases: Array<[string, unknown, RegExp]> = [
    ['missing store', {}, /"store"/],
    ['store without methods', { store: { create () {} } }, /"store"/],
    ['path without a slash', { store, path: 'files' }, /"path"/],
    ['negative maxSize', { store, maxSize: -1 }, /"maxSize"/],
    ['fractional maxSize', { store, maxSize: 1.5 }, /"maxSize"/],
    ['string maxSize', { store, maxSize: '10MB' }, /"maxSize"/],
    ['string timeout', { store, networkTimeout: '60s' }, /"networkTimeout"/],
    ['zero network timeout', { store, networkTimeout: 0 }, /"networkTimeout"/],
    ['non-boolean flag', { store, disableDownload: 'yes' }, /"disableDownload"/],
    ['unknown option', { store, maxsize: 10 }, /"maxsize" is not an option/],
    ['prefix', { store, prefix: '/up' }, /"prefix" .*"path"/],
    ['bad locker', { store, locker: {} }, /"locker"/],
    ['bad generateId', { store, generateId: 'x' }, /"generateId"/],
    ['zero maxConcatParts', { store, maxConcatParts: 0 }, /"maxConcatParts"/]
  ]
  for (const [name, options, message] of cases) {
    const err = await registerWith(options) as { code?: string, message?: string }
    t.equal(err?.code, 'ERR_TUS_INVALID_OPTION', `${name}: coded`)
    t.match(err?.message, message, `${name}: names the option`)
  }
})

t.test('defaults, frozen options, the caller object untouched', async (t) => {
  const input = { store: new MemoryStore(), path: '/up' }
  const snapshot = { ...input }
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(tus, input)
  await app.ready()
  t.same(input, snapshot)
  t.equal(app.tus.options.path, '/up/')
  t.equal(app.tus.options.maxSize, 0)
  t.equal(app.tus.options.networkTimeout, 60_000)
  t.equal(app.tus.options.acquireLockTimeout, 20_000)
  t.ok(app.tus.options.locker instanceof MemoryLocker)
  t.ok(Object.isFrozen(app.tus.options))
  t.same(app.tus.extensions, ['creation', 'creation-with-upload', 'termination', 'concatenation', 'creation-defer-length', 'checksum', 'checksum-trailer'])
  const response = await app.inject({ method: 'OPTIONS', url: '/up/' })
  t.equal(response.statusCode, 204)
})

t.test('undefined values fall back to defaults; logLevel passes through', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(tus, { store: new MemoryStore(), maxSize: undefined, logLevel: 'warn' } as never)
  await app.ready()
  t.equal(app.tus.options.maxSize, 0)
})

t.test('maxSize may be a function of the request', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  const maxSize = (): number => 5
  await app.register(tus, { store: new MemoryStore(), maxSize })
  await app.ready()
  t.equal(app.tus.options.maxSize, maxSize)
  t.equal((await app.inject({ method: 'OPTIONS', url: '/files/' })).headers['tus-max-size'], '5')
})

t.test('options must be an object', async (t) => {
  const err = await registerWith(null) as { code?: string }
  t.equal(err?.code, 'ERR_TUS_INVALID_OPTION')
})

t.test('warns when the server requestTimeout would cut long uploads', async (t) => {
  const lines: string[] = []
  const app = Fastify({
    requestTimeout: 1000,
    logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } }
  })
  t.teardown(async () => await app.close())
  await app.register(tus, { store: new MemoryStore() })
  await app.ready()
  t.ok(lines.some((line) => line.includes('requestTimeout')))
})

t.test('functional options given as undefined are their defaults', async (t) => {
  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(tus, { store: new MemoryStore(), locker: undefined, generateId: undefined, hooks: undefined, cors: undefined, metrics: undefined })
  await app.ready()
  t.type(app.tus.options.locker, MemoryLocker)
  t.equal(app.tus.metrics, undefined)
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { 'tus-resumable': '1.0.0', 'upload-length': '1', origin: 'https://a.example' } })
  t.equal(created.statusCode, 201)
  t.equal(created.headers['access-control-allow-origin'], 'https://a.example', 'CORS on by default')
})

t.test('app.tus.storeAs(Class): the store typed as its class, checked with instanceof (also with metrics)', async (t) => {
  for (const metrics of [false, true]) {
    const app = Fastify()
    t.teardown(async () => await app.close())
    const store = new MemoryStore()
    await app.register(tus, { store, metrics })
    await app.ready()
    const typed: MemoryStore = app.tus.storeAs(MemoryStore)
    const info = await typed.create({ id: 'x', size: 1, metadata: {} })
    t.equal(info.id, 'x')
    t.equal((await store.get('x')).id, 'x', 'the very store passed in')
    t.throws(() => app.tus.storeAs(FileStore), { name: 'TypeError', message: 'fastify-tus: app.tus.store is not a FileStore' })
  }
})
