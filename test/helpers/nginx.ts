/**
 * Starts a real nginx for a test: a child process in the foreground (`daemon off`) with its own
 * prefix directory, config, pid file and logs in a fresh temporary directory, listening on a free
 * loopback port. Stops it by pid at teardown.
 *
 * When the binary is missing the tests are skipped loudly, except under `CI=true`, where that is a
 * failure: CI must install nginx (Debian package `nginx`).
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'
import { freePort } from './cli.js'

let found: string | null | undefined

/** The nginx binary: on PATH, or where Debian puts it (/usr/sbin is not on a normal user's PATH). */
export function nginxBinary (): string | undefined {
  if (found === undefined) {
    found = null
    for (const candidate of ['nginx', '/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/local/nginx/sbin/nginx']) {
      if (candidate !== 'nginx' && !existsSync(candidate)) continue
      if (spawnSync(candidate, ['-v'], { stdio: 'ignore' }).status === 0) {
        found = candidate
        break
      }
    }
  }
  return found ?? undefined
}

/** Runs `body` when nginx exists. Otherwise: under CI=true a failure, locally a loud skip. */
export function withNginx (t: Test, body: () => void): void {
  if (nginxBinary() !== undefined) {
    body()
    return
  }
  const why = 'nginx is not installed (apt-get install -y --no-install-recommends nginx)'
  if (process.env.CI === 'true') {
    t.fail(`${why}: the nginx tests must run in CI`)
    return
  }
  process.stderr.write(`\n*** SKIPPING the nginx tests: ${why} ***\n\n`)
  t.test('nginx tests', { skip: why }, async () => {})
}

export interface Nginx {
  port: number
  /** Its error log so far. */
  errors: () => Promise<string>
}

/**
 * Starts nginx with `http` (directives for the `http { }` block, e.g. an upstream and a server)
 * after `configure(port)` put the free port it should listen on into them.
 */
export async function startNginx (t: Test, configure: (port: number) => string): Promise<Nginx> {
  const binary = nginxBinary()
  if (binary === undefined) throw new Error('nginx is not installed')
  const dir = await mkdtemp(join(tmpdir(), 'tus-nginx-'))
  const port = await freePort()
  const errorLog = join(dir, 'error.log')
  const config = join(dir, 'nginx.conf')
  await writeFile(config, [
    'worker_processes 1;',
    `pid ${join(dir, 'nginx.pid')};`,
    `error_log ${errorLog} info;`,
    'events { worker_connections 64; }',
    'http {',
    '    access_log off;',
    ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((kind) => `    ${kind}_temp_path ${join(dir, kind)};`),
    configure(port),
    '}',
    ''
  ].join('\n'))
  const errors = async (): Promise<string> => await readFile(errorLog, 'utf8').catch(() => '')
  // -e: the error log before the config is read (the default one may not be writable)
  const child = spawn(binary, ['-p', dir, '-e', errorLog, '-c', config, '-g', 'daemon off;'], { stdio: ['ignore', 'pipe', 'pipe'] })
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
  t.teardown(async () => {
    // SIGTERM: nginx's fast shutdown, workers included
    if (!gone && child.pid !== undefined) process.kill(child.pid, 'SIGTERM')
    await exited
    await rm(dir, { recursive: true, force: true })
  })
  const deadline = Date.now() + 10_000
  for (;;) {
    if (gone) throw new Error(`nginx exited:\n${output}\n${await errors()}`)
    const ready = await fetch(`http://127.0.0.1:${port}/`, { method: 'HEAD' }).then(() => true, () => false)
    if (ready) return { port, errors }
    if (Date.now() > deadline) throw new Error(`nginx did not start:\n${output}\n${await errors()}`)
    await sleep(50)
  }
}
