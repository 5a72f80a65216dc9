/**
 * A real S3 server for the tests: Ceph's radosgw on a throw-away single-node cluster (monitor,
 * in-memory OSD, gateway) started by `ceph-s3.sh` on free loopback ports.
 *
 * Starting it costs 10–20 s, so one server serves a whole test run: the first test file that
 * needs it starts it (claiming a directory named after the tap runner's pid in the OS temp
 * directory), the others wait for its `endpoint.json` there. It is stopped (SIGKILL by pid, then
 * the directory is removed) by `s3-after.ts`, which tap runs after the test files (the `after`
 * entry of the tap configuration); a watchdog started with it does the same within a second if
 * the runner dies first. Outside tap's runner, a test process starts its own server and stops it
 * when it exits. Each test gets its own bucket.
 *
 * Without radosgw the tests are skipped loudly, except under `CI=true`, where that is a failure:
 * CI must install the Debian packages `radosgw ceph-mon ceph-osd`.
 */
import { CreateBucketCommand, S3Client, type S3ClientConfig } from '@aws-sdk/client-s3'
import { spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, readdirSync, rmSync } from 'node:fs'
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { freePort } from './cli.js'

const SCRIPT = fileURLToPath(new URL('./ceph-s3.sh', import.meta.url))
const CREDENTIALS = { accessKeyId: 'tus-test', secretAccessKey: 'tus-test' }
const START_TIMEOUT = 120_000

export interface S3Server {
  endpoint: string
  /** Client configuration for the server (loopback, path-style, the test user, checksums only when required). */
  config: S3ClientConfig
  /** A new client for the server. */
  client: () => S3Client
  /** Creates a fresh bucket (owned by the quota user with `{ quota: true }`). */
  bucket: (options?: { quota?: boolean }) => Promise<string>
  /** Client configuration for a user that may store at most 4 MiB. */
  quotaConfig: S3ClientConfig
}

interface Endpoint {
  endpoint: string
}

let checked: boolean | undefined

/** Whether radosgw (and the rest of the cluster) can be run here. */
export function hasRadosgw (): boolean {
  checked ??= ['radosgw', 'ceph-mon', 'ceph-osd', 'monmaptool', 'radosgw-admin', 'ceph', 'curl']
    .every((bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0)
  return checked
}

const MISSING = 'radosgw is not installed (apt-get install -y --no-install-recommends radosgw ceph-mon ceph-osd)'

/** Runs `body` when radosgw exists. Otherwise: under CI=true a failure, locally a loud skip. */
export function withS3 (t: Test, body: () => void): void {
  if (hasRadosgw()) {
    body()
    return
  }
  if (process.env.CI === 'true') {
    t.fail(`${MISSING}: the S3 tests must run in CI`)
    return
  }
  process.stderr.write(`\n*** SKIPPING the S3 tests: ${MISSING} ***\n\n`)
  t.test('S3 tests', { skip: MISSING }, async () => {})
}

/** The process whose lifetime the shared server follows: tap's runner, or this process outside it. */
function ownerPid (): number {
  return process.env.TAP_CHILD_ID !== undefined ? process.ppid : process.pid
}

/** Where the server of the test run owned by `owner` lives. */
export function serverDirectory (owner = ownerPid()): string {
  return join(tmpdir(), `fastify-tus-s3-${owner}`)
}

let shared: Promise<S3Server> | undefined

/** The test run's S3 server, started on first use. */
export async function s3Server (): Promise<S3Server> {
  shared ??= connect().catch((err: unknown) => {
    shared = undefined
    throw err
  })
  return await shared
}

async function connect (): Promise<S3Server> {
  const directory = serverDirectory()
  let starter = true
  try {
    await mkdir(directory)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    starter = false
  }
  const { endpoint } = starter ? await start(directory) : await waitFor(directory)
  const config: S3ClientConfig = {
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: CREDENTIALS,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED'
  }
  const quotaConfig: S3ClientConfig = { ...config, credentials: { accessKeyId: 'tus-quota', secretAccessKey: 'tus-quota' } }
  const admin = new S3Client(config)
  const quotaAdmin = new S3Client(quotaConfig)
  return {
    endpoint,
    config,
    quotaConfig,
    client: () => new S3Client(config),
    bucket: async (options = {}) => {
      const name = `t-${randomBytes(8).toString('hex')}`
      await (options.quota === true ? quotaAdmin : admin).send(new CreateBucketCommand({ Bucket: name }))
      return name
    }
  }
}

async function start (directory: string): Promise<Endpoint> {
  const owner = ownerPid()
  if (owner === process.pid) {
    // our own server: gone when we are
    process.once('exit', () => stopServer(directory))
  }
  try {
    const [monPort, rgwPort] = [await freePort(), await freePort()]
    const endpoint = await launch(directory, monPort, rgwPort, owner)
    await warmUp(endpoint)
    const info: Endpoint = { endpoint }
    await writeFile(join(directory, 'endpoint.json.tmp'), JSON.stringify(info))
    await rename(join(directory, 'endpoint.json.tmp'), join(directory, 'endpoint.json'))
    return info
  } catch (err) {
    await writeFile(join(directory, 'error.txt'), String((err as Error).stack ?? err)).catch(() => {})
    throw err
  }
}

async function launch (directory: string, monPort: number, rgwPort: number, owner: number): Promise<string> {
  // its own process group: signals meant for a test process do not reach the cluster
  const child = spawn('bash', [SCRIPT, directory, String(monPort), String(rgwPort), String(owner)], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout.on('data', (chunk) => { output += String(chunk) })
  child.stderr.on('data', (chunk) => { output += String(chunk) })
  const code = await new Promise<number | null>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`radosgw did not start in ${START_TIMEOUT} ms:\n${output}`)), START_TIMEOUT)
    child.once('exit', (exitCode) => {
      clearTimeout(timer)
      resolve(exitCode)
    })
  })
  const ready = /READY (http:\/\/\S+)/.exec(output)
  if (code !== 0 || ready?.[1] === undefined) throw new Error(`ceph-s3.sh failed (exit ${code}):\n${output}`)
  return ready[1]
}

/** The first bucket, object and multipart upload each cost radosgw seconds (it creates its pools): pay them once. */
async function warmUp (endpoint: string): Promise<void> {
  const { CreateMultipartUploadCommand, AbortMultipartUploadCommand, PutObjectCommand } = await import('@aws-sdk/client-s3')
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: CREDENTIALS })
  try {
    const Bucket = 'warm-up'
    await client.send(new CreateBucketCommand({ Bucket }))
    await client.send(new PutObjectCommand({ Bucket, Key: 'a', Body: Buffer.from('a') }))
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket, Key: 'b' }))
    await client.send(new AbortMultipartUploadCommand({ Bucket, Key: 'b', UploadId }))
  } finally {
    client.destroy()
  }
}

async function waitFor (directory: string): Promise<Endpoint> {
  const deadline = Date.now() + START_TIMEOUT + 30_000
  while (Date.now() < deadline) {
    try {
      return JSON.parse(await readFile(join(directory, 'endpoint.json'), 'utf8')) as Endpoint
    } catch {}
    const error = await readFile(join(directory, 'error.txt'), 'utf8').catch(() => undefined)
    if (error !== undefined) throw new Error(`the shared radosgw failed to start:\n${error}`)
    await sleep(200)
  }
  throw new Error(`no shared radosgw appeared in ${directory}`)
}

/** SIGKILLs the cluster of `directory` by its pids (it hangs on SIGTERM) and removes the directory. */
export function stopServer (directory = serverDirectory()): void {
  let names: string[] = []
  try {
    names = readdirSync(join(directory, 'run')).filter((name) => name.endsWith('.pid'))
  } catch {}
  // the watchdog first, so it does not race us to the directory
  names.sort((a, b) => Number(b === 'watchdog.pid') - Number(a === 'watchdog.pid'))
  for (const name of names) {
    const pid = Number(readFileSync(join(directory, 'run', name), 'utf8').trim())
    if (Number.isSafeInteger(pid) && pid > 0) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
  }
  rmSync(directory, { recursive: true, force: true })
}
