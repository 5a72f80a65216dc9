/**
 * Runs one of examples/ as a user would (`tsx examples/<name>.ts`) in a fresh directory, and
 * waits until its output shows every address it announces.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { tempDir } from './app.js'
import { childEnv } from './env.js'

/** Fastify's own "listening" log line, which the single-server examples print. */
export const LISTENING = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/

export interface RunningExample {
  /** Where the example runs (its ./uploads and the like are in here). */
  cwd: string
  /** The first capture group of each pattern, in order. */
  found: string[]
  /** The first of them: the example's address. */
  base: string
}

export async function runExample (t: Test, name: string, env: Record<string, string>, patterns: RegExp[] = [LISTENING], timeoutMs = 30_000): Promise<RunningExample> {
  const cwd = await tempDir(t)
  const file = fileURLToPath(new URL(`../../examples/${name}`, import.meta.url))
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), file], { cwd, env: childEnv(env), stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  const found = await new Promise<string[]>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`examples/${name} did not start:\n${output}`)), timeoutMs)
    const onData = (chunk: Buffer): void => {
      output += String(chunk)
      const matches = patterns.map((pattern) => pattern.exec(output)?.[1])
      if (matches.every((match) => match !== undefined)) {
        clearTimeout(timer)
        resolve(matches as string[])
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`examples/${name} exited with ${String(code)}:\n${output}`))
    })
  })
  return { cwd, found, base: found[0] as string }
}
