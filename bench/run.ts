/**
 * Side-by-side benchmark: fastify-tus (the command, file store, file locker), @tus/server with
 * @tus/file-store, and a raw node:http baseline that only pipes bodies into files. Each server
 * runs in its own process, fresh for every measurement; the load client runs in another.
 * Prints medians over the rounds and the ratios; writes .bench/results.{json,md}.
 *
 *   npm run bench                      # every workload, 3 rounds
 *   npm run bench -- --quick           # a quarter of the work, 1 round
 *   npm run bench -- --only heads,small-uploads --rounds 5
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    rounds: { type: 'string' },
    scale: { type: 'string' },
    only: { type: 'string' }
  }
})
const ROUNDS = Number(values.rounds ?? (values.quick ? 1 : 3))
const SCALE = Number(values.scale ?? (values.quick ? 0.25 : 1))
const WORKLOADS = (values.only ?? 'single-large,chunks-1mib,small-uploads,small-creation-with-upload,heads,parallel-16mib').split(',')

const node = process.execPath
const SERVERS: Record<string, (dir: string) => string[]> = {
  'fastify-tus': (dir) => [node, 'dist/bin/fastify-tus.js', '--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'warn'],
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
  }
}

function median (numbers: number[]): number {
  const sorted = [...numbers].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

const samples: Record<string, Record<string, Sample[]>> = {}
for (let round = 1; round <= ROUNDS; round++) {
  for (const workload of WORKLOADS) {
    for (const server of Object.keys(SERVERS)) {
      const sample = await measure(server, workload)
      ;((samples[workload] ??= {})[server] ??= []).push(sample)
      process.stderr.write(`round ${round} ${workload} ${server}: ${sample.rate.toFixed(1)} ${sample.unit}, peak RSS ${(sample.peakRss / 2 ** 20).toFixed(0)} MiB, server CPU ${cpuPerUnit(sample).toFixed(2)} ms/unit\n`)
    }
  }
}

const MiB = 2 ** 20
const rows: string[] = [
  '| workload | fastify-tus | @tus/server | raw node | vs @tus/server | vs raw |',
  '| --- | ---: | ---: | ---: | ---: | ---: |'
]
const memoryRows: string[] = [
  '| workload | fastify-tus peak RSS (growth) | @tus/server peak RSS (growth) | raw peak RSS (growth) |',
  '| --- | ---: | ---: | ---: |'
]
const cpuRows: string[] = [
  '| workload | fastify-tus | @tus/server | raw node | vs @tus/server | vs raw |',
  '| --- | ---: | ---: | ---: | ---: | ---: |'
]
const summary: Record<string, unknown> = {}
for (const workload of WORKLOADS) {
  const bySever = samples[workload] ?? {}
  const rate = (server: string): number => median((bySever[server] ?? []).map((s) => s.rate))
  const growth = (server: string): string => `${(median((bySever[server] ?? []).map((s) => s.peakRss)) / MiB).toFixed(0)} MiB (+${(median((bySever[server] ?? []).map((s) => s.rssGrowth)) / MiB).toFixed(0)})`
  const unit = bySever['fastify-tus']?.[0]?.unit ?? ''
  const ours = rate('fastify-tus')
  rows.push(`| ${workload} (${unit}) | ${ours.toFixed(1)} | ${rate('@tus/server').toFixed(1)} | ${rate('raw').toFixed(1)} | ${(ours / rate('@tus/server')).toFixed(2)}× | ${(ours / rate('raw')).toFixed(2)}× |`)
  const cpu = (server: string): number => median((bySever[server] ?? []).map(cpuPerUnit))
  const oursCpu = cpu('fastify-tus')
  // lower is better: the ratio says how many times less CPU we use
  cpuRows.push(`| ${workload} (ms per ${unit.replace(/\/s$/, '').replace(/s$/, '')}) | ${oursCpu.toFixed(3)} | ${cpu('@tus/server').toFixed(3)} | ${cpu('raw').toFixed(3)} | ${(cpu('@tus/server') / oursCpu).toFixed(2)}× | ${(cpu('raw') / oursCpu).toFixed(2)}× |`)
  memoryRows.push(`| ${workload} | ${growth('fastify-tus')} | ${growth('@tus/server')} | ${growth('raw')} |`)
  summary[workload] = { unit, fastifyTus: ours, tusServer: rate('@tus/server'), raw: rate('raw'), cpuMsPerUnit: { fastifyTus: oursCpu, tusServer: cpu('@tus/server'), raw: cpu('raw') } }
}
const header = `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; ${ROUNDS} round(s), scale ${SCALE}; medians.`
const report = `${header}\n\nThroughput (higher is better):\n\n${rows.join('\n')}\n\nServer CPU per unit of work, all threads (lower is better; the ratios say how many times less CPU fastify-tus uses):\n\n${cpuRows.join('\n')}\n\nServer memory:\n\n${memoryRows.join('\n')}\n`
process.stdout.write(`\n${report}`)
await mkdir('.bench', { recursive: true })
await writeFile('.bench/results.md', report)
await writeFile('.bench/results.json', JSON.stringify({ rounds: ROUNDS, scale: SCALE, node: process.version, summary, samples }, null, 2))
