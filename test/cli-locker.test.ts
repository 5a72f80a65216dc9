/** The command's `--locker` and `--redis-url` flags and the locker they build. */
import Fastify, { type FastifyBaseLogger } from 'fastify'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { FlagError, parseFlags, type CliConfig } from '../bin/flags.js'
import { createLocker, redactUrl } from '../bin/locker.js'
import { FileLocker } from '../locks/file.js'
import { MemoryLocker } from '../locks/memory.js'
import { EtcdLocker } from '../locks/etcd.js'
import { RedisLocker } from '../locks/redis.js'
import { tempDir } from './helpers/app.js'
import { startEtcd, withEtcd } from './helpers/etcd-server.js'
import { startRedis, withRedis } from './helpers/redis-server.js'

function config (argv: string[]): CliConfig {
  const parsed = parseFlags(argv)
  if (typeof parsed === 'string') throw new Error(`unexpected ${parsed}`)
  return parsed
}

/** Fastify's logger, keeping its lines. */
function memoryLog (): { log: FastifyBaseLogger, lines: () => Array<Record<string, unknown>> } {
  const chunks: string[] = []
  const app = Fastify({ logger: { level: 'debug', stream: { write: (chunk: string) => { chunks.push(chunk) } } } })
  return { log: app.log, lines: () => chunks.map((line) => JSON.parse(line) as Record<string, unknown>) }
}

t.test('flags', async (t) => {
  t.match(config([]), { locker: 'file', redisUrl: 'redis://127.0.0.1:6379' })
  t.match(config(['--locker', 'memory']), { locker: 'memory' })
  t.match(config(['--locker', 'redis']), { locker: 'redis', redisUrl: 'redis://127.0.0.1:6379' })
  t.match(config(['--redis-url', 'redis://r:6380/2']), { locker: 'redis', redisUrl: 'redis://r:6380/2' }, '--redis-url implies redis')
  t.match(config(['--locker', 'redis', '--redis-url', 'unix:///run/redis.sock']), { redisUrl: 'unix:///run/redis.sock' })
  t.match(config(['--redis-url', 'rediss://u:p@r:6380']), { locker: 'redis' })
  t.throws(() => parseFlags(['--locker', 'consul']), FlagError)
  t.throws(() => parseFlags(['--locker', 'file', '--redis-url', 'redis://r']), { message: /only used with --locker redis/ })
  t.throws(() => parseFlags(['--redis-url', 'http://r:6379']), { message: /redis:\/\/, rediss:\/\/ or unix:\/\// })
  t.match(config(['--locker', 'etcd']), { locker: 'etcd', etcdUrls: ['http://127.0.0.1:2379'] })
  t.match(config(['--etcd-url', 'http://e1:2379, https://e2:2379']), { locker: 'etcd', etcdUrls: ['http://e1:2379', 'https://e2:2379'] })
  t.throws(() => parseFlags(['--locker', 'redis', '--etcd-url', 'http://e:2379']), { message: /only used with --locker etcd/ })
  t.throws(() => parseFlags(['--redis-url', 'redis://r', '--etcd-url', 'http://e:2379']), { message: /cannot both/ })
  t.throws(() => parseFlags(['--etcd-url', 'e:2379']), { message: /http:\/\/ or https:\/\// })
})

t.test('redactUrl hides the password only', async (t) => {
  t.equal(redactUrl('redis://user:secret@r:6379/1'), 'redis://user:***@r:6379/1')
  t.equal(redactUrl('redis://r:6379'), 'redis://r:6379')
  t.equal(redactUrl('not a url'), '<unparsable url>')
})

t.test('memory and file lockers', async (t) => {
  const dir = await tempDir(t)
  const { log } = memoryLog()
  const memory = await createLocker(config(['--locker', 'memory']), dir, log)
  t.type(memory.locker, MemoryLocker)
  await memory.close()
  const file = await createLocker(config([]), dir, log)
  t.type(file.locker, FileLocker)
  await file.close()
})

t.test('a redis locker whose Redis is not there yet: a warning, not a failure', async (t) => {
  const dir = await tempDir(t)
  const { log, lines } = memoryLog()
  const made = await createLocker(config(['--redis-url', `unix://${dir}/nothing.sock`]), dir, log)
  t.teardown(made.close)
  t.type(made.locker, RedisLocker)
  t.match(lines(), [{ level: 40, msg: /cannot reach Redis yet/ }])
})

withEtcd(t, () => {
  t.test('an etcd locker', async (t) => {
    const etcd = await startEtcd(t)
    const dir = await tempDir(t)
    const { log } = memoryLog()
    const made = await createLocker(config(['--etcd-url', etcd.url]), dir, log)
    t.teardown(made.close)
    t.type(made.locker, EtcdLocker)
    const lock = await made.locker.lock('cli', { signal: new AbortController().signal, onReleaseRequested: () => {} })
    await lock.unlock()
  })
})

withRedis(t, () => {
  t.test('a redis locker on a running Redis', async (t) => {
    const redis = await startRedis(t)
    const dir = await tempDir(t)
    const { log, lines } = memoryLog()
    const made = await createLocker(config(['--redis-url', redis.url]), dir, log)
    t.teardown(made.close)
    t.match(lines(), [{ level: 30, msg: 'tus redis locker connected' }])
    const lock = await made.locker.lock('cli', { signal: new AbortController().signal, onReleaseRequested: () => {} })
    await sleep(10)
    await lock.unlock()
  })
})
