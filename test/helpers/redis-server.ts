/**
 * Starts a real `redis-server` for a test, as a child process on a unix socket in a fresh
 * temporary directory (no port to race for, and the same address after a restart), without
 * persistence. Stops it by pid at teardown.
 *
 * When the binary is missing the tests are skipped loudly, except under `CI=true`, where that
 * is a failure: CI must install `redis-server` (Debian package `redis-server`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'

export interface RedisServer {
  /** Path of the unix socket. */
  socket: string
  /** A URL ioredis (and `fastify-tus --redis-url`) understands: `unix:///…/redis.sock`. */
  url: string
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

export async function startRedis (t: Test): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tus-redis-'))
  const socket = join(dir, 'redis.sock')
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()
  let output = ''

  const stop = async (): Promise<void> => {
    const running = child
    if (running === undefined) return
    child = undefined
    if (running.exitCode === null && running.signalCode === null && running.pid !== undefined) {
      process.kill(running.pid, 'SIGKILL')
    }
    await exited
  }

  const start = async (): Promise<void> => {
    if (child !== undefined) throw new Error('redis-server is already running')
    output = ''
    const started = spawn('redis-server', [
      '--port', '0',
      '--unixsocket', socket,
      '--unixsocketperm', '700',
      '--save', '',
      '--appendonly', 'no',
      '--dir', dir,
      '--loglevel', 'warning'
    ], { stdio: ['ignore', 'pipe', 'pipe'] })
    child = started
    started.stdout?.on('data', (chunk) => { output += String(chunk) })
    started.stderr?.on('data', (chunk) => { output += String(chunk) })
    let gone = false
    // should the test process die without its teardown, the server must not outlive it
    const killOnExit = (): void => { if (!gone && started.pid !== undefined) process.kill(started.pid, 'SIGKILL') }
    process.once('exit', killOnExit)
    exited = new Promise((resolve) => started.once('exit', () => {
      gone = true
      process.off('exit', killOnExit)
      resolve()
    }))
    const deadline = Date.now() + 10_000
    for (;;) {
      if (gone) {
        child = undefined
        throw new Error(`redis-server exited:\n${output}`)
      }
      try {
        if ((await send(socket, ['PING'])).startsWith('+PONG')) return
      } catch {}
      if (Date.now() > deadline) {
        await stop()
        throw new Error(`redis-server did not answer PING:\n${output}`)
      }
      await sleep(20)
    }
  }

  t.teardown(async () => {
    await stop()
    await rm(dir, { recursive: true, force: true })
  })
  await start()
  return {
    socket,
    url: `unix://${socket}`,
    get pid () { return child?.pid },
    stop,
    start,
    command: async (...args) => await send(socket, args)
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
