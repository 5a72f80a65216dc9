/**
 * Starts a real single-node `etcd` for a test, as a child process on two free loopback ports with
 * a data directory in a fresh temporary directory, and stops it by pid (SIGKILL) at teardown.
 * `stop()` and `start()` restart it on the same ports and data.
 *
 * When the binary is missing the tests are skipped loudly, except under `CI=true`, where that
 * is a failure: CI must install the Debian packages `etcd-server` and `etcd-client` (etcdctl).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { freePort } from './cli.js'

export interface EtcdServer {
  /** Client URL, e.g. http://127.0.0.1:23790 */
  url: string
  stop: () => Promise<void>
  start: () => Promise<void>
}

let checked: boolean | undefined

export function hasEtcd (): boolean {
  checked ??= spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0 &&
    spawnSync('etcdctl', ['version'], { stdio: 'ignore' }).status === 0
  return checked
}

/** Runs `body` when `etcd` exists. Otherwise: under CI=true a failure, locally a loud skip. */
export function withEtcd (t: Test, body: () => void): void {
  if (hasEtcd()) {
    body()
    return
  }
  const why = 'etcd or etcdctl is not installed (apt-get install -y --no-install-recommends etcd-server etcd-client)'
  if (process.env.CI === 'true') {
    t.fail(`${why}: the etcd tests must run in CI`)
    return
  }
  process.stderr.write(`\n*** SKIPPING the etcd tests: ${why} ***\n\n`)
  t.test('etcd tests', { skip: why }, async () => {})
}

export async function startEtcd (t: Test): Promise<EtcdServer> {
  const dir = await mkdtemp(join(tmpdir(), 'tus-etcd-'))
  const client = `http://127.0.0.1:${await freePort()}`
  const peer = `http://127.0.0.1:${await freePort()}`
  const args = [
    '--name', 'tus',
    '--data-dir', join(dir, 'data'),
    '--listen-client-urls', client,
    '--advertise-client-urls', client,
    '--listen-peer-urls', peer,
    '--initial-advertise-peer-urls', peer,
    '--initial-cluster', `tus=${peer}`,
    '--log-level', 'error',
    '--logger', 'zap'
  ]
  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()

  const stop = async (): Promise<void> => {
    const running = child
    child = undefined
    if (running === undefined) return
    if (running.exitCode === null && running.signalCode === null && running.pid !== undefined) process.kill(running.pid, 'SIGKILL')
    await exited
  }

  const start = async (): Promise<void> => {
    if (child !== undefined) throw new Error('etcd is already running')
    let output = ''
    const started = spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] })
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
    const deadline = Date.now() + 20_000
    for (;;) {
      if (gone) {
        child = undefined
        throw new Error(`etcd exited:\n${output}`)
      }
      try {
        const health = await fetch(`${client}/health`, { signal: AbortSignal.timeout(1000) })
        if (health.ok && (await health.text()).includes('"true"')) return
      } catch {}
      if (Date.now() > deadline) {
        await stop()
        throw new Error(`etcd did not get healthy:\n${output}`)
      }
      await sleep(50)
    }
  }

  t.teardown(async () => {
    await stop()
    await rm(dir, { recursive: true, force: true })
  })
  await start()
  return { url: client, stop, start }
}
