/**
 * Starts dynalite (a DynamoDB look-alike from npm, a devDependency) for a test, as a child process
 * on a free loopback port, storing its tables in a fresh temporary directory (LevelDB), so a
 * restart keeps them as DynamoDB would. Stops it by pid (SIGKILL) at teardown.
 *
 * When dynalite cannot be run the tests are skipped loudly, except under `CI=true`, where that is
 * a failure: `npm ci` installs it.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { DynamoDBClient, ListTablesCommand } from '@aws-sdk/client-dynamodb'
import type { Test } from 'tap'
import { freePort } from './cli.js'
import { packageScript, withEmulator } from './npm-emulator.js'

export interface DynaliteServer {
  endpoint: string
  port: number
  readonly pid: number | undefined
  /** A new client for this server (destroyed at teardown). */
  client: (t: Test) => DynamoDBClient
  /** SIGKILL: nothing is flushed, as after a crash. */
  stop: () => Promise<void>
  /** Starts it again on the same port and data directory. */
  start: () => Promise<void>
}

/** The dynalite command script, or undefined when it (or its native store) is not installed. */
export const dynaliteCli = packageScript('dynalite', ['cli.js'], ['classic-level'])

export function withDynalite (t: Test, body: () => void): void {
  withEmulator(t, 'dynalite', 'DynamoDB', dynaliteCli() !== undefined, body)
}

export const CREDENTIALS = { accessKeyId: 'test', secretAccessKey: 'test' }

export async function startDynalite (t: Test): Promise<DynaliteServer> {
  const cli = dynaliteCli()
  if (cli === undefined) throw new Error('dynalite is not installed')
  const dir = await mkdtemp(join(tmpdir(), 'tus-dynalite-'))
  const port = await freePort()
  const endpoint = `http://127.0.0.1:${port}`
  const args = [cli, '--host', '127.0.0.1', '--port', String(port), '--path', dir, '--createTableMs', '20', '--deleteTableMs', '20']
  const makeClient = (): DynamoDBClient => new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: CREDENTIALS, maxAttempts: 1 })
  let running: { pid: number | undefined, stop: () => Promise<void> } | undefined
  const stop = async (): Promise<void> => {
    const stopping = running
    running = undefined
    await stopping?.stop()
  }
  const start = async (): Promise<void> => {
    if (running !== undefined) throw new Error('dynalite is already running')
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk) => { output += String(chunk) })
    child.stderr.on('data', (chunk) => { output += String(chunk) })
    let gone = false
    const killOnExit = (): void => { if (!gone && child.pid !== undefined) process.kill(child.pid, 'SIGKILL') }
    process.once('exit', killOnExit)
    const exited = new Promise<void>((resolve) => child.once('exit', () => {
      gone = true
      process.off('exit', killOnExit)
      resolve()
    }))
    const kill = async (): Promise<void> => {
      if (!gone && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
      await exited
    }
    const probe = makeClient()
    try {
      const deadline = Date.now() + 15_000
      for (;;) {
        if (gone) throw new Error(`dynalite exited:\n${output}`)
        try {
          await probe.send(new ListTablesCommand({}))
          break
        } catch {}
        if (Date.now() > deadline) {
          await kill()
          throw new Error(`dynalite did not get ready:\n${output}`)
        }
        await sleep(50)
      }
    } finally {
      probe.destroy()
    }
    running = { pid: child.pid, stop: kill }
  }
  t.teardown(async () => {
    await stop()
    await rm(dir, { recursive: true, force: true })
  })
  await start()
  return {
    endpoint,
    port,
    get pid () { return running?.pid },
    client: (t) => {
      const client = makeClient()
      t.teardown(() => client.destroy())
      return client
    },
    stop,
    start
  }
}
