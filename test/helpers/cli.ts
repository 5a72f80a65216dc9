/**
 * Runs the `fastify-tus` command as a child process on a loopback port, the way a user would,
 * and stops it by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createServer } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { childEnv } from './env.js'

const root = fileURLToPath(new URL('../../', import.meta.url))
/** The command from source (through tsx), so it never runs stale. */
export const SOURCE_COMMAND = [process.execPath, '--import', 'tsx', 'bin/fastify-tus.cts']
/** The built command, as `npx fastify-tus` runs it. */
export const BUILT_COMMAND = [process.execPath, 'dist/bin/fastify-tus.cjs']

export interface RunningServer {
  child: ChildProcess
  /** Collection URL, e.g. http://127.0.0.1:1234/files/ */
  url: string
  port: number
  output: () => string
  exited: Promise<number | null>
  kill: (signal?: NodeJS.Signals) => Promise<number | null>
}

/** A free loopback port (closed again, so a server can take it). */
export async function freePort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : 0))
    })
  })
}

/** Starts the command; `env` adds variables to its environment (`undefined` removes one). */
export async function startServer (t: Test, args: string[], command = SOURCE_COMMAND, env: Record<string, string | undefined> = {}): Promise<RunningServer> {
  const [bin, ...pre] = command as [string, ...string[]]
  const environment = childEnv()
  for (const [name, value] of Object.entries(env)) {
    if (value === undefined) delete environment[name]
    else environment[name] = value
  }
  const child = spawn(bin, [...pre, '--host', '127.0.0.1', ...args], {
    cwd: root,
    env: environment,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout?.on('data', (chunk) => { output += String(chunk) })
  child.stderr?.on('data', (chunk) => { output += String(chunk) })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    return await exited
  }
  t.teardown(async () => { await kill() })
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output}`)), 20_000)
    const check = (): void => {
      const match = /listening on (http:\/\/\S+)/.exec(output)
      if (match?.[1] !== undefined) {
        clearTimeout(timer)
        resolve(match[1])
      }
    }
    child.stdout?.on('data', check)
    exited.then(() => { clearTimeout(timer); reject(new Error(`server exited:\n${output}`)) }, () => {})
  })
  return { child, url, port: Number(new URL(url).port), output: () => output, exited, kill }
}

/** Runs the command to completion (for --help, bad flags …). */
export async function runCommand (args: string[], command = SOURCE_COMMAND): Promise<{ code: number | null, stdout: string, stderr: string }> {
  const [bin, ...pre] = command as [string, ...string[]]
  const child = spawn(bin, [...pre, ...args], { cwd: root, env: childEnv() })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk) => { stdout += String(chunk) })
  child.stderr.on('data', (chunk) => { stderr += String(chunk) })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  return { code, stdout, stderr }
}
