/**
 * The locker the command runs with (`--locker`). The Redis locker is loaded only when chosen, so
 * `ioredis` (an optional peer dependency) is needed only then.
 */
import type { FastifyBaseLogger } from 'fastify'
import { FileLocker } from '../locks/file.js'
import type { Locker } from '../locks/locker.js'
import { MemoryLocker } from '../locks/memory.js'
import { FlagError, type CliConfig } from './flags.js'

export interface CommandLocker {
  locker: Locker
  close: () => Promise<void>
}

export async function createLocker (config: CliConfig, directory: string, log: FastifyBaseLogger): Promise<CommandLocker> {
  switch (config.locker) {
    case 'memory':
      return { locker: new MemoryLocker(), close: async () => {} }
    case 'file': {
      const locker = new FileLocker({ directory })
      return { locker, close: async () => await locker.close() }
    }
    case 'redis': {
      let module: typeof import('../locks/redis.js')
      try {
        module = await import('../locks/redis.js')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err
        throw new FlagError('--locker redis needs the ioredis package: npm install ioredis')
      }
      const locker = new module.RedisLocker({ redis: config.redisUrl })
      // not fatal: Redis may come up after the server; until then requests answer 503
      try {
        await locker.ready()
        log.info({ redis: redactUrl(config.redisUrl) }, 'tus redis locker connected')
      } catch (err) {
        log.warn({ err, redis: redactUrl(config.redisUrl) }, 'tus redis locker cannot reach Redis yet; requests get 503 until it can')
      }
      return { locker, close: async () => await locker.close() }
    }
  }
}

/** The URL without its password, for logs. */
export function redactUrl (url: string): string {
  try {
    const parsed = new URL(url)
    if (parsed.password !== '') parsed.password = '***'
    return parsed.toString()
  } catch {
    return '<unparsable url>'
  }
}
