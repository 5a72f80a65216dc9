/**
 * The standalone server behind the `fastify-tus` command: Fastify with the plugin on the file
 * store and the locker chosen by `--locker` (file by default, so several processes can share one
 * upload directory; redis for several hosts).
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { resolve } from 'node:path'
import tus from '../plugin/index.js'
import { FileStore } from '../stores/file.js'
import type { CliConfig } from './flags.js'
import { createLocker } from './locker.js'

export async function buildServer (config: CliConfig): Promise<FastifyInstance> {
  const app = Fastify({
    logger: { level: config.logLevel },
    trustProxy: config.behindProxy,
    requestTimeout: 0,
    return503OnClosing: true
  })
  const directory = resolve(config.uploadDir)
  const { locker, close } = await createLocker(config, directory, app.log)
  app.addHook('onClose', close)
  await app.register(tus, {
    path: config.basePath,
    store: new FileStore({ directory }),
    locker,
    maxSize: config.maxSize,
    respectForwardedHeaders: config.behindProxy,
    relativeLocation: config.relativeLocation,
    networkTimeout: config.networkTimeout,
    acquireLockTimeout: config.acquireLockTimeout,
    disableTermination: config.disableTermination,
    disableDownload: config.disableDownload,
    disableConcatenation: config.disableConcatenation,
    expiration: config.expiration,
    expirationInterval: config.expiration > 0 ? config.expirationInterval : 0,
    cors: config.disableCors
      ? false
      : { origin: config.corsAllowOrigin, credentials: config.corsAllowCredentials }
  })
  return app
}
