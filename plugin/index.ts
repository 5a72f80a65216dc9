/**
 * fastify-tus: tus resumable uploads as a Fastify plugin.
 *
 *   await app.register(tus, { path: '/files/', store: new FileStore({ directory: './uploads' }) })
 *
 * The plugin decorates `app.tus` and registers its routes in an encapsulated scope under `path`.
 */
import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { resolveOptions, type TusPluginOptions } from './options.js'
import { routes } from './routes.js'
import { Runtime } from './runtime.js'
import type { Tus } from './tus.js'

async function fastifyTus (app: FastifyInstance, input: TusPluginOptions): Promise<void> {
  const options = resolveOptions(input)
  // prom-client is loaded only when metrics are on
  const metrics = options.metrics === undefined ? undefined : new (await import('./metrics.js')).TusMetrics(options.metrics)
  const runtime = new Runtime(options, metrics)
  const tus = runtime.tus
  app.decorate('tus', tus)
  // end bodies in flight before the server waits for their requests to finish
  app.addHook('preClose', async () => {
    if (sweep !== undefined) clearInterval(sweep)
    runtime.shutdown()
  })
  let sweep: NodeJS.Timeout | undefined
  app.addHook('onReady', async () => {
    if (options.expirationInterval > 0 && tus.extensions.includes('expiration')) {
      sweep = setInterval(() => {
        tus.removeExpired().then(
          (removed) => { if (removed > 0) app.log.info({ removed }, 'tus expired uploads removed') },
          (err: unknown) => app.log.error({ err }, 'tus expiration sweep failed')
        )
      }, options.expirationInterval)
      sweep.unref()
    }
    const timeout = app.server.requestTimeout
    if (typeof timeout === 'number' && timeout > 0) {
      app.log.warn({ requestTimeout: timeout }, 'fastify-tus: the server requestTimeout ends long uploads; set requestTimeout: 0 and rely on networkTimeout')
    }
  })
  await app.register(routes, { prefix: options.path.replace(/\/$/, ''), runtime })
}

const tus = fp(fastifyTus, { fastify: '5.x', name: 'fastify-tus' })
export default tus
export { tus }

declare module 'fastify' {
  interface FastifyInstance {
    /** The fastify-tus runtime: options, store, extensions. */
    tus: Tus
  }
}

export { Tus } from './tus.js'
export { UploadSession } from './sessions.js'
export type { TusEvents, UploadEvent, ProgressEvent, ChunkEvent, LockWaitEvent } from './tus.js'
export type { Action, TusHooks, HookName, HooksOption, PreCreateResult, PreFinishResult, Progress, UploadDraft } from './hooks.js'
export type { TusPluginOptions, DataOptions, FunctionalOptions, ResolvedOptions, MaxSize, MaxSizeFunction } from './options.js'
export * as errors from './errors.js'
export { metadataBytes, parseMetadata, serializeMetadata } from './headers.js'
export { CHECKSUM_ALGORITHMS } from './checksum.js'
export type { CorsOptions } from './cors.js'
export type { TusMetrics } from './metrics.js'
export { STORE_OPERATIONS } from './metrics-options.js'
export type { MetricsOptions } from './metrics-options.js'
export type { DataStore, UploadInfo, NewUpload, Chunk, Metadata } from '../stores/store.js'
export type { Locker, Lock, LockOptions } from '../locks/locker.js'
