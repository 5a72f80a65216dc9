/**
 * Side-by-side benchmark: fastify-tus (the command, file store; with in-process locks like its peer, and with its
 * default file locker), @tus/server with
 * @tus/file-store, and a raw node:http baseline that only pipes bodies into files. Each server
 * runs in its own process, fresh for every measurement; the load client runs in another.
 * Prints medians over the rounds and the ratios; writes .bench/results.{json,md}.
 *
 *   npm run bench                      # every workload, 3 rounds
 *   npm run bench -- --quick           # a quarter of the work, 1 round
 *   npm run bench -- --only heads,small-uploads --rounds 5
 *   npm run bench -- --servers fastify-tus,raw     # an A/B of one change against the Node limit
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    scale: { type: 'string' },
    only: { type: 'string' },
    servers: { type: 'string' }
  }
})
const ROUNDS = Number(values.rounds ?? (values.quick ? 1 : 3))
const SCALE = Number(values.scale ?? (values.quick ? 0.25 : 1))
const WORKLOADS = (values.only ?? 'single-large,chunks-1mib,small-uploads,small-creation-with-upload,heads,parallel-16mib').split(',')

const node = process.execPath
const command = (dir: string, ...flags: string[]): string[] =>
  [node, 'dist/bin/fastify-tus.js', '--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'warn', '--disable-demo', ...flags]
/**
 * `fastify-tus` runs with in-process locks, as @tus/server does by default (its MemoryLocker), so
 * the two do the same work; `fastify-tus/file-locker` is the command's default (lock files, safe
 * with several processes on one directory), shown for what that safety costs.
 */
const SERVERS: Record<string, (dir: string) => string[]> = {
  'fastify-tus': (dir) => command(dir, '--locker', 'memory'),
  'fastify-tus/file-locker': (dir) => command(dir),
  '@tus/server': (dir) => [node, '--import', 'tsx', 'bench/servers/tus-node.ts', dir, '0'],
  raw: (dir) => [node, '--import', 'tsx', 'bench/servers/raw.ts', dir, '0']
}

interface Sample { rate: number, unit: string, seconds: number, rssGrowth: number, peakRss: number, cpuSeconds: number }

/** Server CPU milliseconds per unit of work (per MiB, per upload, per HEAD). */
function cpuPerUnit (sample: Sample): number {
  return (sample.cpuSeconds * 1000) / (sample.rate * sample.seconds)
}

async function memory (pid: number): Promise<{ rss: number, peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024
  return { rss: kib('VmRSS'), peak: kib('VmHWM') }
}

/** CPU seconds (user + system, all threads) the process has used so far. */
async function cpuSeconds (pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).replace(/^.*\) /s, '').split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

async function measure (server: string, workload: string): Promise<Sample> {
  const dir = await mkdtemp(join(tmpdir(), 'tus-bench-'))
  const [bin, ...args] = SERVERS[server]?.(dir) as [string, ...string[]]
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NODE_ENV: 'production' } })
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = ''
      child.stdout.on('data', (chunk) => {
        out += String(chunk)
        const match = /listening on (\S+)/.exec(out)
        if (match?.[1] !== undefined) resolve(match[1])
      })
      child.once('exit', () => reject(new Error(`${server} exited: ${out}`)))
    })
    await new Promise((resolve) => setTimeout(resolve, 200))
    const before = await memory(child.pid as number)
    const cpuBefore = await cpuSeconds(child.pid as number)
    const result = await new Promise<{ rate: number, unit: string, seconds: number }>((resolve, reject) => {
      const client = spawn(node, ['--import', 'tsx', 'bench/client.ts', url, workload, String(SCALE)], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      client.stdout.on('data', (chunk) => { out += String(chunk) })
      client.once('exit', (code) => code === 0 ? resolve(JSON.parse(out) as { rate: number, unit: string, seconds: number }) : reject(new Error(`client failed on ${server} ${workload}`)))
    })
    const after = await memory(child.pid as number)
    const cpu = await cpuSeconds(child.pid as number) - cpuBefore
    return { ...result, rssGrowth: after.peak - before.rss, peakRss: after.peak, cpuSeconds: cpu }
  } finally {
    child.kill('SIGKILL')
    await rm(dir, { recursive: true, force: true })
    // write back what this run left dirty (up to a GiB) now, so the next measurement does not
    // pay for it: on ext4 a file created during writeback costs ten times more
    spawnSync('sync')
  }
}

function rotate<T> (items: T[], by: number): T[] {
  const start = by % items.length
  return [...items.slice(start), ...items.slice(0, start)]
}

function median (numbers: number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

const samples: Record<string, Record<string, Sample[]>> = {}
const RUN = values.servers?.split(',') ?? Object.keys(SERVERS)
const unknown = RUN.filter((name) => SERVERS[name] === undefined)
if (unknown.length > 0) throw new Error(`unknown server(s) ${unknown.join(', ')}; known: ${Object.keys(SERVERS).join(', ')}`)
for (let round = 1; round <= ROUNDS; round++) {
  for (const workload of WORKLOADS) {
    // each round starts with a different server, so none always runs first (or last)
    for (const server of rotate(RUN, round - 1)) {
      const sample = await measure(server, workload)
      ;((samples[workload] ??= {})[server] ??= []).push(sample)
      process.stderr.write(`round ${round} ${workload} ${server}: ${sample.rate.toFixed(1)} ${sample.unit}, peak RSS ${(sample.peakRss / 2 ** 20).toFixed(0)} MiB, server CPU ${cpuPerUnit(sample).toFixed(2)} ms/unit\n`)
    }
  }
}

const MiB = 2 ** 20
const NAMES = RUN
const columns = `| workload | ${NAMES.join(' | ')} | vs @tus/server | vs raw | file locker vs raw |`
const rule = `| --- |${' ---: |'.repeat(NAMES.length + 3)}`
const rows: string[] = [columns, rule]
const cpuRows: string[] = [columns, rule]
const memoryRows: string[] = [`| workload | ${NAMES.map((name) => `${name} peak RSS (growth)`).join(' | ')} |`, `| --- |${' ---: |'.repeat(NAMES.length)}`]
const summary: Record<string, unknown> = {}
for (const workload of WORKLOADS) {
  const byServer = samples[workload] ?? {}
  const rate = (server: string): number => median((byServer[server] ?? []).map((s) => s.rate))
  const cpu = (server: string): number => median((byServer[server] ?? []).map(cpuPerUnit))
  const growth = (server: string): string => `${(median((byServer[server] ?? []).map((s) => s.peakRss)) / MiB).toFixed(0)} MiB (+${(median((byServer[server] ?? []).map((s) => s.rssGrowth)) / MiB).toFixed(0)})`
  const unit = Object.values(byServer)[0]?.[0]?.unit ?? ''
  const ratio = (a: number, b: number): string => Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : '–'
  rows.push(`| ${workload} (${unit}) | ${NAMES.map((name) => rate(name).toFixed(1)).join(' | ')} | ${ratio(rate('fastify-tus'), rate('@tus/server'))} | ${ratio(rate('fastify-tus'), rate('raw'))} | ${ratio(rate('fastify-tus/file-locker'), rate('raw'))} |`)
  // lower is better: the ratios say how many times less CPU fastify-tus uses
  cpuRows.push(`| ${workload} (ms per ${unit.replace(/\/s$/, '').replace(/s$/, '')}) | ${NAMES.map((name) => cpu(name).toFixed(3)).join(' | ')} | ${ratio(cpu('@tus/server'), cpu('fastify-tus'))} | ${ratio(cpu('raw'), cpu('fastify-tus'))} | ${ratio(cpu('raw'), cpu('fastify-tus/file-locker'))} |`)
  memoryRows.push(`| ${workload} | ${NAMES.map(growth).join(' | ')} |`)
  summary[workload] = { unit, rate: Object.fromEntries(NAMES.map((name) => [name, rate(name)])), cpuMsPerUnit: Object.fromEntries(NAMES.map((name) => [name, cpu(name)])) }
}
const header = `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; ${ROUNDS} round(s), scale ${SCALE}; medians.`
const report = `${header}\n\nThroughput (higher is better):\n\n${rows.join('\n')}\n\nServer CPU per unit of work, all threads (lower is better; the ratios say how many times less CPU fastify-tus uses):\n\n${cpuRows.join('\n')}\n\nServer memory:\n\n${memoryRows.join('\n')}\n`
process.stdout.write(`\n${report}`)
await mkdir('.bench', { recursive: true })
await writeFile('.bench/results.md', report)
await writeFile('.bench/results.json', JSON.stringify({ rounds: ROUNDS, scale: SCALE, node: process.version, summary, samples }, null, 2))
