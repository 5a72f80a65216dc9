/**
 * The locker the command runs with (`--locker`). The Redis and etcd lockers are loaded only when
 * chosen, so `ioredis` and `etcd3` (optional peer dependencies) are needed only then.
 */
import type { FastifyBaseLogger } from 'fastify'
import { FileLocker } from '../locks/file.js'
import { makeDirectory } from './directory.js'
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
      try {
        await makeDirectory(directory, config.dirPerms)
      } catch (err) {
        throw new FlagError(`--upload-dir ${directory} cannot hold lock files: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
      }
      const locker = new FileLocker({ directory, directoryMode: config.dirPerms, leaseTime: config.fileLockLease })
      return { locker, close: async () => await locker.close() }
    }
    case 'redis': {
      const module = await load(async () => await import('../locks/redis.js'), '--locker redis needs the ioredis package: npm install ioredis')
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
    case 'etcd': {
      const module = await load(async () => await import('../locks/etcd.js'), '--locker etcd needs the etcd3 package: npm install etcd3')
      const locker = new module.EtcdLocker({ etcd: config.etcdUrls })
      return { locker, close: async () => await locker.close() }
    }
    case 'dynamodb': {
      const module = await load(async () => await import('../locks/dynamodb.js'), '--locker dynamodb needs the @aws-sdk/client-dynamodb package: npm install @aws-sdk/client-dynamodb')
      const endpoint = config.dynamodbEndpoint
      const locker = new module.DynamoLocker({
        table: config.dynamodbTable,
        // a local endpoint (dynalite, DynamoDB Local) cares little about the region, but the SDK needs one
        client: endpoint === undefined ? {} : { endpoint, region: process.env.AWS_REGION ?? 'us-east-1' }
      })
      // not fatal: the table may come up after the server; until then requests answer 503
      try {
        await locker.ready()
      } catch (err) {
        log.warn({ err, table: config.dynamodbTable ?? 'tus-locks' }, 'tus dynamodb locker cannot reach its table yet; requests get 503 until it can')
      }
      return { locker, close: async () => await locker.close() }
    }
  }
}

/** Imports an optional locker, turning a missing peer dependency into a flag error. */
async function load<T> (importer: () => Promise<T>, missing: string): Promise<T> {
  try {
    return await importer()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err
    throw new FlagError(missing)
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
