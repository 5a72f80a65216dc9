/**
 * Prometheus metrics (the `metrics` option): every counter, gauge and histogram moves by exactly
 * what the requests did; bad options are coded errors; registries are shared safely.
 */
import Fastify from 'fastify'
import { Registry, register as globalRegistry, Counter } from 'prom-client'
import t from 'tap'
import tus from '../plugin/index.js'
import { MemoryStore } from '../stores/memory.js'
import { buildApp, createUpload, OCTET, TUS } from './helpers/app.js'
import { metricValue, histogramCount } from './helpers/metrics.js'

t.test('metrics are off by default: no registry, the store is not wrapped', async (t) => {
  const store = new MemoryStore()
  const { app } = await buildApp(t, { store })
  t.equal(app.tus.metrics, undefined)
  t.equal(app.tus.store, store)
})

t.test('an upload moves every metric by exactly what happened', async (t) => {
  const { app } = await buildApp(t, { metrics: true, acquireLockTimeout: 100 })
  const metrics = app.tus.metrics
  if (metrics === undefined) throw new Error('metrics missing')
  const registry = metrics.registry
  t.not(registry, globalRegistry, 'a registry of its own')

  const create = await app.inject({
    method: 'POST',
    url: '/files/',
    headers: { ...TUS, 'upload-length': '11', 'upload-metadata': 'filename aGkudHh0', 'content-type': OCTET },
    payload: 'hello'
  })
  t.equal(create.statusCode, 201)
  const path = new URL(create.headers.location as string).pathname
  t.equal(await metricValue(registry, 'tus_uploads_created_total'), 1)
  t.equal(await metricValue(registry, 'tus_bytes_received_total'), 5)
  t.equal(await metricValue(registry, 'tus_uploads_finished_total'), 0)

  // a wrong offset, a missing version, an unknown upload: counted by status and code
  const conflict = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'x' })
  t.equal(conflict.statusCode, 409)
  t.equal((await app.inject({ method: 'HEAD', url: path })).statusCode, 200, 'HEAD without a version is allowed')
  t.equal((await app.inject({ method: 'PATCH', url: path, headers: { 'content-type': OCTET, 'upload-offset': '5' }, payload: 'x' })).statusCode, 412)
  t.equal((await app.inject({ method: 'HEAD', url: '/files/nope', headers: TUS })).statusCode, 404)

  const done = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '5' }, payload: ' world' })
  t.equal(done.statusCode, 204)
  t.equal(await metricValue(registry, 'tus_bytes_received_total'), 11, 'bytes received equal bytes sent')
  t.equal(await metricValue(registry, 'tus_uploads_finished_total'), 1)

  // a lock held elsewhere: the HEAD waits acquireLockTimeout, then 423
  const id = path.split('/').pop() as string
  const stubborn = await app.tus.options.locker.lock(id, { signal: new AbortController().signal, onReleaseRequested: () => {} })
  t.equal((await app.inject({ method: 'HEAD', url: path, headers: TUS })).statusCode, 423)
  await stubborn.unlock()
  t.equal(await metricValue(registry, 'tus_lock_timeouts_total'), 1)
  t.equal(await histogramCount(registry, 'tus_lock_wait_seconds', { outcome: 'timeout' }), 1)

  t.equal((await app.inject({ method: 'DELETE', url: path, headers: TUS })).statusCode, 204)
  t.equal(await metricValue(registry, 'tus_uploads_terminated_total'), 1)
  t.equal((await app.inject({ method: 'OPTIONS', url: '/files/' })).statusCode, 204)
  // an override to a method nobody serves
  t.equal((await app.inject({ method: 'POST', url: path, headers: { ...TUS, 'x-http-method-override': 'BREW' } })).statusCode, 405)

  t.equal(await metricValue(registry, 'tus_requests_total', { method: 'POST', route: 'collection' }), 1)
  t.equal(await metricValue(registry, 'tus_requests_total', { method: 'PATCH', route: 'upload' }), 3)
  t.equal(await metricValue(registry, 'tus_requests_total', { method: 'HEAD', route: 'upload' }), 3)
  t.equal(await metricValue(registry, 'tus_requests_total', { method: 'DELETE', route: 'upload' }), 1)
  t.equal(await metricValue(registry, 'tus_requests_total', { method: 'OPTIONS', route: 'collection' }), 1)
  t.equal(await metricValue(registry, 'tus_requests_total', { method: 'other', route: 'upload' }), 1)
  t.equal(await metricValue(registry, 'tus_errors_total', { status: '409', code: 'ERR_MISMATCHED_OFFSET' }), 1)
  t.equal(await metricValue(registry, 'tus_errors_total', { status: '412', code: 'ERR_UNSUPPORTED_VERSION' }), 1)
  t.equal(await metricValue(registry, 'tus_errors_total', { status: '404', code: 'ERR_UPLOAD_NOT_FOUND' }), 1)
  t.equal(await metricValue(registry, 'tus_errors_total', { status: '423', code: 'ERR_LOCK_TIMEOUT' }), 1)
  t.equal(await metricValue(registry, 'tus_errors_total', { status: '405', code: 'ERR_INVALID_METHOD_OVERRIDE' }), 1)
  t.equal(await metricValue(registry, 'tus_errors_total'), 5, 'no other errors')

  // lock waits acquired: the POST with a body, 2 PATCHes (409, 204), 2 HEADs (200, 404), 1 DELETE;
  // the 412 and 405 were refused before any lock
  t.equal(await histogramCount(registry, 'tus_lock_wait_seconds', { outcome: 'acquired' }), 6)
  t.equal(await metricValue(registry, 'tus_uploads_active'), 0)
  t.equal(await metricValue(registry, 'tus_locks_held'), 0)

  // store operations: one create, two bodies written, one removal; the unknown upload was an error
  t.equal(await histogramCount(registry, 'tus_store_operation_seconds', { operation: 'create', outcome: 'ok' }), 1)
  t.equal(await histogramCount(registry, 'tus_store_operation_seconds', { operation: 'write', outcome: 'ok' }), 2)
  t.equal(await histogramCount(registry, 'tus_store_operation_seconds', { operation: 'remove', outcome: 'ok' }), 1)
  t.equal(await histogramCount(registry, 'tus_store_operation_seconds', { operation: 'get', outcome: 'error' }), 1)
  t.equal(await histogramCount(registry, 'tus_store_operation_seconds', { operation: 'get', outcome: 'ok' }), 4, 'PATCH, HEAD, PATCH, DELETE')

  const text = await registry.metrics()
  t.match(text, /# TYPE tus_bytes_received_total counter/)
  t.match(text, /# TYPE tus_store_operation_seconds histogram/)
  t.notOk((await globalRegistry.getMetricsAsJSON()).some((metric) => metric.name.startsWith('tus_')), 'the global registry is untouched')
})

t.test('a body in flight is an active upload and holds a lock', async (t) => {
  const { app } = await buildApp(t, { metrics: { prefix: 'up_' } })
  const registry = app.tus.metrics?.registry as Registry
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as { port: number }).port
  const path = await createUpload(app, { 'upload-length': '10' })
  let push: ((chunk: Uint8Array | null) => void) | undefined
  const body = new ReadableStream<Uint8Array>({
    start (controller) {
      push = (chunk) => { if (chunk === null) controller.close(); else controller.enqueue(chunk) }
    }
  })
  const response = fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'PATCH',
    headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' },
    body,
    duplex: 'half'
  } as RequestInit)
  push?.(new Uint8Array(4))
  const deadline = Date.now() + 5000
  while (await metricValue(registry, 'up_uploads_active') !== 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  t.equal(await metricValue(registry, 'up_uploads_active'), 1)
  t.equal(await metricValue(registry, 'up_locks_held'), 1)
  push?.(new Uint8Array(6))
  push?.(null)
  t.equal((await response).status, 204)
  t.equal(await metricValue(registry, 'up_uploads_active'), 0)
  t.equal(await metricValue(registry, 'up_locks_held'), 0)
  t.equal(await metricValue(registry, 'up_bytes_received_total'), 10)
})

t.test('two plugin instances on one registry share the metrics', async (t) => {
  const registry = new Registry()
  const one = Fastify()
  const two = Fastify()
  t.teardown(async () => { await one.close(); await two.close() })
  await one.register(tus, { store: new MemoryStore(), metrics: { registry, buckets: [0.01, 0.1, 1] } })
  await two.register(tus, { store: new MemoryStore(), metrics: { registry } })
  await one.register(async (scope) => {
    await scope.register(tus, { store: new MemoryStore(), path: '/other/', metrics: { registry } })
  })
  await Promise.all([one.ready(), two.ready()])
  await createUpload(one, { 'upload-length': '1' })
  await createUpload(two, { 'upload-length': '1' })
  await createUpload(one, { 'upload-length': '1' }, '/other/')
  t.equal(await metricValue(registry, 'tus_uploads_created_total'), 3)
  t.equal(one.tus.metrics?.uploadsCreated, two.tus.metrics?.uploadsCreated, 'the same counter')

  // a metric of that name but of another type is a coded error
  const clash = new Registry()
  new Counter({ name: 'tus_locks_held', help: 'not ours', registers: [clash] }) // eslint-disable-line no-new
  const app = Fastify()
  const err = await app.register(tus, { store: new MemoryStore(), metrics: { registry: clash } }).ready().then(() => undefined, (e: unknown) => e) as { code?: string, message?: string }
  t.equal(err?.code, 'ERR_TUS_INVALID_OPTION')
  t.match(err?.message, /"metrics.registry" already has a metric "tus_locks_held"/)
  await app.close()
})

t.test('an injected registry may be the global one; custom buckets are used', async (t) => {
  const { app } = await buildApp(t, { metrics: { registry: globalRegistry, prefix: 'globaltus_', buckets: [0.5, 2] } })
  t.teardown(() => { globalRegistry.clear() })
  t.equal(app.tus.metrics?.registry, globalRegistry)
  await createUpload(app, { 'upload-length': '1' })
  t.match(await globalRegistry.metrics(), /globaltus_store_operation_seconds_bucket\{le="0.5",operation="create",outcome="ok"\} 1/)
})

t.test('bad metrics options are coded errors', async (t) => {
  const cases: Array<[unknown, string]> = [
    ['yes', 'metrics'],
    [[], 'metrics'],
    [{ nope: 1 }, 'metrics.nope'],
    [{ registry: {} }, 'metrics.registry'],
    [{ prefix: 'bad-prefix' }, 'metrics.prefix'],
    [{ prefix: 3 }, 'metrics.prefix'],
    [{ buckets: [] }, 'metrics.buckets'],
    [{ buckets: [1, 0.5] }, 'metrics.buckets'],
    [{ buckets: [0, 1] }, 'metrics.buckets'],
    [{ buckets: 'x' }, 'metrics.buckets']
  ]
  for (const [metrics, name] of cases) {
    const app = Fastify()
    const err = await app.register(tus, { store: new MemoryStore(), metrics: metrics as never }).ready().then(() => undefined, (e: unknown) => e) as { code?: string, message?: string }
    t.equal(err?.code, 'ERR_TUS_INVALID_OPTION', JSON.stringify(metrics))
    t.match(err?.message, `"${name}"`)
    await app.close()
  }
  const { app } = await buildApp(t, { metrics: { prefix: '' } })
  t.ok(app.tus.metrics?.registry.getSingleMetric('uploads_created_total'), 'an empty prefix is allowed')
  const { app: off } = await buildApp(t, { metrics: false })
  t.equal(off.tus.metrics, undefined)
})

t.test('the timed store behaves as the store: other members, `this`, capabilities', async (t) => {
  class Store extends MemoryStore {
    readonly label = 'mine'
    readonly #secret = 42
    secret (): number { return this.#secret }
  }
  const store = new Store()
  const { app } = await buildApp(t, { store, metrics: true })
  const timed = app.tus.store as Store
  t.not(timed, store, 'wrapped')
  t.equal(timed.label, 'mine')
  t.equal(timed.secret(), 42, 'methods run on the store itself')
  t.equal(timed.create, timed.create, 'one wrapper per operation')
  t.ok(app.tus.extensions.includes('termination'))
})

t.test('a registry from another copy of prom-client is accepted', async (t) => {
  const real = new Registry()
  const foreign = {
    getSingleMetric: (name: string) => real.getSingleMetric(name),
    registerMetric: (metric: never) => { real.registerMetric(metric) },
    metrics: async () => await real.metrics()
  }
  const { app } = await buildApp(t, { metrics: { registry: foreign as never } })
  await createUpload(app, { 'upload-length': '1' })
  t.equal(await metricValue(real, 'tus_uploads_created_total'), 1)
})
