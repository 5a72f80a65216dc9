/**
 * Starts a real `redis-server` for a test, as a child process on a unix socket in a fresh
 * temporary directory (no port to race for, and the same address after a restart), without
 * persistence. Stops it by pid at teardown. With `cluster: true` it is a one-node Redis Cluster
 * owning every slot, on two free loopback ports (clients and cluster bus). `startSentinel` adds a
 * Redis Sentinel watching a server.
 *
 * When the binary is missing the tests are skipped loudly, except under `CI=true`, where that
 * is a failure: CI must install `redis-server` (Debian package `redis-server`).
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { freePort } from './cli.js'

export interface RedisServer {
  /** Path of the unix socket. */
  socket: string
  /** A URL ioredis (and `fastify-tus --redis-url`) understands: `unix:///…/redis.sock`. */
  url: string
  /** The loopback port of a cluster node (`undefined` otherwise). */
  port: number | undefined
  /** Pid of the running server (changes on restart). */
  readonly pid: number | undefined
  /** Stops the server (SIGKILL: nothing survives, as after a crash). */
  stop: () => Promise<void>
  /** Starts it again on the same socket, empty. */
  start: () => Promise<void>
  /** Sends one command on a fresh connection and resolves with the raw RESP reply. */
  command: (...args: string[]) => Promise<string>
}

let checked: boolean | undefined

/** Whether `redis-server` can be run here. */
export function hasRedisServer (): boolean {
  checked ??= spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
  return checked
}

/**
 * Runs `body` when `redis-server` exists. Otherwise: under CI=true a failure, locally a loud skip.
 */
export function withRedis (t: Test, body: () => void): void {
  if (hasRedisServer()) {
    body()
    return
  }
  const why = 'redis-server is not installed (apt-get install -y --no-install-recommends redis-server)'
  if (process.env.CI === 'true') {
    t.fail(`${why}: the Redis tests must run in CI`)
    return
  }
  process.stderr.write(`\n*** SKIPPING the Redis tests: ${why} ***\n\n`)
  t.test('Redis tests', { skip: why }, async () => {})
}

export interface RedisServerOptions {
  /** A one-node Redis Cluster owning every slot (on loopback ports). */
  cluster?: boolean
  /** Listen on a loopback port too (Sentinel needs one to watch a master). */
  tcp?: boolean
}

export async function startRedis (t: Test, options: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tus-redis-'))
  const socket = join(dir, 'redis.sock')
  const port = options.cluster === true || options.tcp === true ? await freePort() : undefined
  const args = [
    '--port', String(port ?? 0),
    '--bind', '127.0.0.1',
    '--unixsocket', socket,
    '--unixsocketperm', '700',
    '--save', '',
    '--appendonly', 'no',
    '--dir', dir,
    '--loglevel', 'warning'
  ]
  if (options.cluster === true) {
    // announce 127.0.0.1: a node that never met another one announces an empty address
    args.push('--cluster-enabled', 'yes', '--cluster-port', String(await freePort()), '--cluster-announce-ip', '127.0.0.1',
      '--cluster-config-file', join(dir, 'nodes.conf'))
  }
  const isReady = async (): Promise<boolean> => {
    if (!(await send(socket, ['PING'])).startsWith('+PONG')) return false
    if (options.cluster !== true) return true
    await send(socket, ['CLUSTER', 'ADDSLOTSRANGE', '0', '16383'])
    return (await send(socket, ['CLUSTER', 'INFO'])).includes('cluster_state:ok')
  }
  let running: Launched | undefined
  const stop = async (): Promise<void> => {
    const stopping = running
    running = undefined
    await stopping?.stop()
  }
  const start = async (): Promise<void> => {
    if (running !== undefined) throw new Error('redis-server is already running')
    running = await launch(args, isReady)
  }
  t.teardown(async () => {
    await stop()
    await rm(dir, { recursive: true, force: true })
  })
  await start()
  return {
    socket,
    url: `unix://${socket}`,
    port,
    get pid () { return running?.pid },
    stop,
    start,
    command: async (...args) => await send(socket, args)
  }
}

/**
 * Starts a Redis Sentinel watching `master` (started with `tcp: true`) as `mymaster`, and
 * resolves with its loopback port once it knows the master.
 */
export async function startSentinel (t: Test, master: RedisServer): Promise<{ port: number, name: string }> {
  if (master.port === undefined) throw new Error('the master needs a TCP port: startRedis(t, { tcp: true })')
  const dir = await mkdtemp(join(tmpdir(), 'tus-sentinel-'))
  const socket = join(dir, 'sentinel.sock')
  const port = await freePort()
  const name = 'mymaster'
  const config = join(dir, 'sentinel.conf')
  await writeFile(config, [
    `port ${port}`,
    'bind 127.0.0.1',
    `unixsocket ${socket}`,
    `dir ${dir}`,
    `sentinel monitor ${name} 127.0.0.1 ${master.port} 1`,
    ''
  ].join('\n'))
  const running = await launch([config, '--sentinel', '--loglevel', 'warning'], async () =>
    (await send(socket, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name])).includes(String(master.port)))
  t.teardown(async () => {
    await running.stop()
    await rm(dir, { recursive: true, force: true })
  })
  return { port, name }
}

interface Launched {
  pid: number | undefined
  stop: () => Promise<void>
}

/** Spawns `redis-server args`, waits until `isReady`, and gives a way to SIGKILL it. */
async function launch (args: string[], isReady: () => Promise<boolean>): Promise<Launched> {
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk) => { output += String(chunk) })
  child.stderr.on('data', (chunk) => { output += String(chunk) })
  let gone = false
  // should the test process die without its teardown, the server must not outlive it
  const killOnExit = (): void => { if (!gone && child.pid !== undefined) process.kill(child.pid, 'SIGKILL') }
  process.once('exit', killOnExit)
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    gone = true
    process.off('exit', killOnExit)
    resolve()
  }))
  const stop = async (): Promise<void> => {
    if (!gone && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    await exited
  }
  const deadline = Date.now() + 10_000
  for (;;) {
    if (gone) throw new Error(`redis-server exited:\n${output}`)
    try {
      if (await isReady()) return { pid: child.pid, stop }
    } catch {}
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`redis-server did not get ready:\n${output}`)
    }
    await sleep(20)
  }
}

/** Sends one command in RESP and resolves with the first reply line(s) received. */
async function send (socket: string, args: string[]): Promise<string> {
  return await new Promise((resolve, reject) => {
    const connection = createConnection(socket)
    let data = ''
    const timer = setTimeout(() => { connection.destroy(); reject(new Error('no reply')) }, 2000)
    connection.on('error', (err) => { clearTimeout(timer); reject(err) })
    connection.on('data', (chunk) => {
      data += String(chunk)
      if (data.endsWith('\r\n') && isComplete(data)) {
        clearTimeout(timer)
        connection.end()
        resolve(data)
      }
    })
    connection.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`)
  })
}

/** Enough of RESP for the replies the tests read: simple strings, errors, integers, one bulk string. */
function isComplete (data: string): boolean {
  if (data[0] !== '$') return true
  const length = Number(data.slice(1, data.indexOf('\r\n')))
  if (length < 0) return true
  return Buffer.byteLength(data) >= data.indexOf('\r\n') + 2 + length + 2
}
