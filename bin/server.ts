/**
 * The standalone server behind the `fastify-tus` command: Fastify with the plugin on the file
 * store (or the S3 store with `--s3-bucket`, the GCS store with `--gcs-bucket`), the locker chosen by `--locker` (file by default,
 * so several processes can share one upload directory; redis or etcd for several hosts), and
 * tusd's hook transports when asked for.
 */
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import { createRequire } from 'node:module'
import { destination } from 'pino'
import { statSync } from 'node:fs'
import { resolve } from 'node:path'
import tus from '../plugin/index.js'
import { registerDemo } from './demo.js'
import { FlagError, type CliConfig, type HookFlags } from './flags.js'
import { FileHookTransport } from './hooks/file.js'
import { createGrpcHookTransport } from './hooks/grpc.js'
import { HttpHookTransport } from './hooks/http.js'
import type { HookTransport } from './hooks/protocol.js'
import { TusdHooks } from './hooks/tusd.js'
import { prepareServer, serverOptions } from './listen.js'
import { createLocker } from './locker.js'
import { createStore } from './store.js'
import { clusterMetrics, isWorker } from './workers.js'

export async function buildServer (config: CliConfig): Promise<FastifyInstance> {
  const transport = await hookTransport(config.hooks)
  const options: FastifyServerOptions = {
    logger: logger(config),
    trustProxy: config.behindProxy,
    requestTimeout: 0,
    return503OnClosing: true,
    ...serverOptions(config)
  }
  // HTTPS serves HTTP/2 and HTTP/1.1; the plugin takes both
  const app = Fastify(options) as unknown as FastifyInstance
  prepareServer(app)
  const directory = resolve(config.uploadDir)
  const storage = await createStore(config.s3, directory, config.gcs, { directoryMode: config.dirPerms, fileMode: config.filePerms }, config.azure)
  app.addHook('onClose', storage.close)
  const { locker, close } = await createLocker(config, directory, app.log)
  app.addHook('onClose', close)
  let hooks: TusdHooks | undefined
  if (transport !== undefined) {
    hooks = new TusdHooks({
      transport,
      enabled: config.hooks.enabledEvents,
      storage: storage.storage
    })
    // before the plugin, so its routes inherit it
    app.addHook('onSend', hooks.onSend)
    app.addHook('onClose', async () => { await hooks?.close() })
  }
  // prom-client is loaded only with --expose-metrics
  const registry = config.exposeMetrics ? await processMetrics() : undefined
  if (registry !== undefined) {
    app.get(config.metricsPath, async (_request, reply) => {
      // a worker of --workers: the sum over every worker, from the primary
      const { text, contentType } = isWorker() ? await clusterMetrics() : { text: await registry.metrics(), contentType: registry.contentType }
      reply.header('Content-Type', contentType)
      return text
    })
  }
  try {
    await app.register(tus, {
      path: config.basePath,
      metrics: registry === undefined ? false : { registry },
      store: storage.store,
      locker,
      // the store's own limit, when it has one, is the most a client may announce
      maxSize: storage.maxSize === undefined || (config.maxSize > 0 && config.maxSize < storage.maxSize) ? config.maxSize : storage.maxSize,
      respectForwardedHeaders: config.behindProxy,
      publicUrl: config.publicUrl,
      relativeLocation: config.relativeLocation,
      networkTimeout: config.networkTimeout,
      acquireLockTimeout: config.acquireLockTimeout,
      disableTermination: config.disableTermination,
      disableTerminationForFinishedUploads: config.disableTerminationForFinishedUploads,
      disableDownload: config.disableDownload,
      disableConcatenation: config.disableConcatenation,
      maxConcatParts: config.maxConcatParts,
      ietfDraft: !config.disableIetfDraft,
      ietfInformational: !config.disableIetf104,
      expiration: config.expiration,
      expirationInterval: config.expiration > 0 ? config.expirationInterval : 0,
      cors: config.disableCors
        ? false
        : {
            origin: config.corsAllowOrigin,
            credentials: config.corsAllowCredentials,
            allowedMethods: config.corsAllowMethods,
            allowedHeaders: config.corsAllowHeaders,
            exposedHeaders: config.corsExposeHeaders,
            maxAge: config.corsMaxAge
          },
      progressInterval: config.hooks.progressInterval,
      hooks: hooks?.hooks
    })
  } catch (err) {
    asUsageError(err)
  }
  if (!config.disableDemo) await registerDemo(app, { basePath: config.basePath, download: !config.disableDownload })
  return app
}

/** An option the plugin refuses came from a flag: a usage error, not a crash. */
function asUsageError (err: unknown): never {
  if ((err as { code?: unknown }).code === 'ERR_TUS_INVALID_OPTION') throw new FlagError((err as Error).message)
  throw err
}

let workerAggregator: import('prom-client').AggregatorRegistry<'text/plain; version=0.0.4; charset=utf-8'> | undefined

/** A registry with the process's own metrics (CPU, memory, event loop …), for the tus metrics to join. */
async function processMetrics (): Promise<import('prom-client').Registry> {
  const { AggregatorRegistry, collectDefaultMetrics, Registry } = await import('prom-client')
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  // the registry the primary collects from this worker; constructing an aggregator is what makes
  // prom-client answer the primary's requests in a worker
  if (isWorker()) {
    AggregatorRegistry.setRegistries([registry])
    workerAggregator ??= new AggregatorRegistry()
  }
  return registry
}

/**
 * How long JSON log lines may wait in memory before they are written. Lines are written in
 * batches of at least 4 KiB or after this long, whichever comes first, and at exit (also after an
 * uncaught error); a SIGKILL loses at most this much. One write per line cost about a fifth of
 * the CPU of a HEAD (docs/performance.md).
 */
export const LOG_FLUSH_MS = 1000
const LOG_BATCH_BYTES = 4096

/** JSON lines (written in batches), or pino-pretty (in a worker thread) for `--log-format pretty`. */
function logger (config: CliConfig): FastifyServerOptions['logger'] {
  if (config.logFormat === 'json') {
    const stream = destination({ dest: 1, sync: false, minLength: LOG_BATCH_BYTES })
    setInterval(() => {
      // (a flush callback would also fsync the pipe)
      if ((stream as { destroyed?: boolean }).destroyed !== true) stream.flush()
    }, LOG_FLUSH_MS).unref()
    return { level: config.logLevel, stream }
  }
  // an optional peer dependency: say so before pino's worker fails to find it
  try {
    createRequire(import.meta.url).resolve('pino-pretty')
  } catch {
    throw new FlagError('--log-format pretty needs the pino-pretty package: npm install pino-pretty')
  }
  return {
    level: config.logLevel,
    transport: { target: 'pino-pretty', options: { translateTime: 'SYS:standard', ignore: 'pid,hostname' } }
  }
}

async function hookTransport (flags: HookFlags): Promise<HookTransport | undefined> {
  if (flags.dir !== undefined) {
    const directory = resolve(flags.dir)
    let isDirectory = false
    try {
      isDirectory = statSync(directory).isDirectory()
    } catch {}
    if (!isDirectory) throw new FlagError(`--hooks-dir ${flags.dir} is not a directory`)
    return new FileHookTransport({ directory })
  }
  if (flags.http !== undefined) {
    return new HttpHookTransport({
      endpoint: flags.http,
      retries: flags.httpRetry,
      backoff: flags.httpBackoff,
      timeout: flags.httpTimeout,
      sizeLimit: flags.httpSizeLimit,
      forwardHeaders: flags.httpForwardHeaders,
      skipVerify: flags.httpSkipVerify
    })
  }
  if (flags.grpc !== undefined) {
    return await createGrpcHookTransport({
      endpoint: flags.grpc,
      retries: flags.grpcRetry,
      backoff: flags.grpcBackoff,
      forwardHeaders: flags.grpcForwardHeaders,
      tls: flags.grpcSecure
        ? { serverCertificate: flags.grpcServerTlsCertificate as string, clientCertificate: flags.grpcClientTlsCertificate, clientKey: flags.grpcClientTlsKey }
        : undefined
    })
  }
  return undefined
}
