/**
 * Side-by-side benchmark of what users run: the `fastify-tus` command with its default flags (file
 * store, file locker, info logs on stdout) as the primary row, other configurations of it as
 * extra rows (`--locker memory` by default), @tus/server with @tus/file-store, and a raw
 * node:http baseline that only pipes bodies into files and answers HEAD with a file's size. Each
 * server runs in its own process, fresh for every measurement; the load client runs in another
 * and sends every server the same requests. Prints medians over the rounds, the primary row's
 * ratios against the others, and which of the targets (docs/performance.md) the ratios meet;
 * writes .bench/results.{json,md}.
 *
 *   npm run bench                      # every workload, 3 rounds
 *   npm run bench -- --quick           # a quarter of the work, 1 round
 *   npm run bench -- --only heads-16,small-uploads --rounds 5
 *   npm run bench -- --servers fastify-tus,raw      # an A/B of one change against the Node limit
 *   npm run bench -- --servers 'fastify-tus,fastify-tus --log-level warn'   # any flags: a row each
 *   npm run bench -- --servers 'fastify-tus,UV_THREADPOOL_SIZE=1 fastify-tus'   # leading NAME=value: its environment
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
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
/** Many-upload workloads first: they are what many clients send; the single-upload ones follow. */
const WORKLOADS = (values.only ?? 'heads-16,heads-1000,small-uploads,small-creation-with-upload,chunk-chains,parallel-16mib,single-large,chunks-1mib,heads').split(',')

const node = process.execPath
/** The primary row: the command as `npm start` starts it, but on a free port and its own directory. */
const PRIMARY = 'fastify-tus'
const MEMORY_LOCKER = 'fastify-tus --locker memory'
const TUS_NODE = '@tus/server'
const RAW = 'raw'
const DEFAULT_SERVERS = [PRIMARY, MEMORY_LOCKER, TUS_NODE, RAW]

/**
 * How each server starts. `fastify-tus` followed by flags is the command with those flags added to
 * its defaults; nothing else is set (the defaults log every request at info on stdout, which the
 * runner reads and drops, as a log collector would).
 */
function commandLine (spec: string, dir: string): string[] {
  const server = withoutEnvironment(spec)
  if (server === TUS_NODE) return [node, '--import', 'tsx', 'bench/servers/tus-node.ts', dir, '0']
  if (server === RAW || server.startsWith(`${RAW} `)) return [node, '--import', 'tsx', 'bench/servers/raw.ts', dir, '0', ...server.split(' ').slice(1).filter((part) => part !== '')]
  const [name, ...flags] = server.split(' ').filter((part) => part !== '')
  if (name !== PRIMARY) throw new Error(`unknown server ${server}; known: ${PRIMARY} [flags…], ${TUS_NODE}, ${RAW}`)
  return [node, 'dist/bin/fastify-tus.cjs', '--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, ...flags]
}

/** Leading `NAME=value` words of a server spec set its environment: `UV_THREADPOOL_SIZE=1 fastify-tus`. */
const ENV_WORD = /^[A-Z_][A-Z0-9_]*=\S*$/

function withoutEnvironment (spec: string): string {
  const words = spec.split(' ').filter((part) => part !== '')
  while (words.length > 0 && ENV_WORD.test(words[0] as string)) words.shift()
  return words.join(' ')
}

function environmentOf (spec: string): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const word of spec.split(' ').filter((part) => part !== '')) {
    if (!ENV_WORD.test(word)) break
    const at = word.indexOf('=')
    env[word.slice(0, at)] = word.slice(at + 1)
  }
  return env
}

interface Sample { rate: number, unit: string, what: string, seconds: number, rssGrowth: number, peakRss: number, cpuSeconds: number, clientCpuSeconds: number }

/** Server CPU milliseconds per unit of work (per MiB, per upload, per HEAD). */
function cpuPerUnit (sample: Sample): number {
  return (sample.cpuSeconds * 1000) / (sample.rate * sample.seconds)
}

/** The load client's CPU milliseconds per unit of work. */
function clientCpuPerUnit (sample: Sample): number {
  return (sample.clientCpuSeconds * 1000) / (sample.rate * sample.seconds)
}

/** The server and every process it started (the workers of `--workers`), from /proc. */
async function processTree (pid: number): Promise<number[]> {
  const found = [pid]
  for (let i = 0; i < found.length; i++) {
    const current = found[i] as number
    const tasks = await readdir(`/proc/${current}/task`).catch(() => [] as string[])
    for (const task of tasks) {
      const children = await readFile(`/proc/${current}/task/${task}/children`, 'utf8').catch(() => '')
      for (const child of children.trim().split(/\s+/)) if (child !== '') found.push(Number(child))
    }
  }
  return found
}

/** Resident memory of the server's processes, summed (peak: the sum of each one's peak). */
async function memory (pid: number): Promise<{ rss: number, peak: number }> {
  let rss = 0
  let peak = 0
  for (const one of await processTree(pid)) {
    const status = await readFile(`/proc/${one}/status`, 'utf8').catch(() => '')
    const kib = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024
    rss += kib('VmRSS')
    peak += kib('VmHWM')
  }
  return { rss, peak }
}

/** CPU seconds (user + system, all threads) the server's processes have used so far. */
async function cpuSeconds (pid: number): Promise<number> {
  let total = 0
  for (const one of await processTree(pid)) {
    const stat = await readFile(`/proc/${one}/stat`, 'utf8').catch(() => '')
    const fields = stat.replace(/^.*\) /s, '').split(' ')
    if (fields.length > 12) total += (Number(fields[11]) + Number(fields[12])) / 100
  }
  return total
}

interface Result { rate: number, unit: string, seconds: number, what: string, clientCpuSeconds: number }

async function measure (server: string, workload: string): Promise<Sample> {
  const dir = await mkdtemp(join(tmpdir(), 'tus-bench-'))
  const [bin, ...args] = commandLine(server, dir) as [string, ...string[]]
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'], env: environmentOf(server) })
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = ''
      let found = false
      child.stdout.on('data', (chunk) => {
        // once listening, the output (request logs with the defaults) is read and dropped
        if (found) return
        out += String(chunk)
        const match = /listening on (\S+)/.exec(out)
        if (match?.[1] !== undefined) {
          found = true
          resolve(match[1])
        }
      })
      child.once('exit', () => reject(new Error(`${server} exited: ${out}`)))
    })
    await new Promise((resolve) => setTimeout(resolve, 200))
    const pid = child.pid as number
    // the client prepares (creates the uploads a workload HEADs, say), says `ready`, and starts
    // its clock on our `go`: CPU and memory are counted from there
    let before = await memory(pid)
    let cpuBefore = await cpuSeconds(pid)
    const result = await new Promise<Result>((resolve, reject) => {
      const client = spawn(node, ['--import', 'tsx', 'bench/client.ts', url, workload, String(SCALE)], {
        stdio: ['pipe', 'pipe', 'inherit'],
        env: { ...process.env, BENCH_CLIENT_WAIT: '1' }
      })
      let out = ''
      let ready = false
      client.stdout.on('data', (chunk) => {
        out += String(chunk)
        if (!ready && out.startsWith('ready\n')) {
          ready = true
          Promise.all([memory(pid), cpuSeconds(pid)]).then(([rss, cpu]) => {
            before = rss
            cpuBefore = cpu
            client.stdin.end('go\n')
          }, reject)
        }
      })
      client.once('exit', (code) => {
        const last = out.trim().split('\n').pop() ?? ''
        code === 0 ? resolve(JSON.parse(last) as Result) : reject(new Error(`client failed on ${server} ${workload}`))
      })
    })
    const after = await memory(pid)
    const cpu = await cpuSeconds(pid) - cpuBefore
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
const RUN = values.servers?.split(',').map((name) => name.trim()) ?? DEFAULT_SERVERS
for (const server of RUN) commandLine(server, '.')
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

/**
 * The targets, as ratios of the primary row in the same run (docs/performance.md). Reported as
 * figures with whether each is met; nothing fails on them.
 */
const MANY_HEADS = ['heads-16', 'heads-1000']
const SMALL = ['small-uploads', 'small-creation-with-upload']
const TARGETS: Array<{ target: string, workloads: string[], against: string, atLeast: number }> = [
  { target: 'HEAD over many uploads ≥ 2.5× @tus/server', workloads: MANY_HEADS, against: TUS_NODE, atLeast: 2.5 },
  { target: 'HEAD over many uploads ≥ 0.7× raw', workloads: MANY_HEADS, against: RAW, atLeast: 0.7 },
  { target: '4 KiB uploads ≥ 2× @tus/server', workloads: SMALL, against: TUS_NODE, atLeast: 2 },
  { target: '4 KiB uploads ≥ 0.65× raw', workloads: SMALL, against: RAW, atLeast: 0.65 },
  { target: '1 MiB PATCH chains ≥ 1.2× raw', workloads: ['chunk-chains', 'chunks-1mib'], against: RAW, atLeast: 1.2 },
  { target: 'one large PATCH ≥ 1.2× raw', workloads: ['single-large'], against: RAW, atLeast: 1.2 },
  { target: '32–64 parallel uploads ≥ 0.8× raw', workloads: ['parallel-16mib'], against: RAW, atLeast: 0.8 },
  { target: 'defaults within 10 % of --locker memory', workloads: WORKLOADS, against: MEMORY_LOCKER, atLeast: 0.9 }
]

const MiB = 2 ** 20
/** The row the ratios are of: the command's defaults, or the first configuration of it that ran. */
const primary = RUN.includes(PRIMARY) ? PRIMARY : RUN.find((name) => name.startsWith(PRIMARY)) ?? RUN[0] ?? PRIMARY
const label = (server: string): string => server === PRIMARY ? 'fastify-tus (defaults)' : server
const others = [TUS_NODE, RAW, MEMORY_LOCKER].filter((name) => name !== primary && RUN.includes(name))
const short = (server: string): string => server === MEMORY_LOCKER ? '--locker memory' : server
const columns = `| workload | ${RUN.map(label).join(' | ')} |${others.map((name) => ` ÷ ${short(name)} |`).join('')}`
const rule = `| --- |${' ---: |'.repeat(RUN.length + others.length)}`
const rows: string[] = [columns, rule]
const cpuRows: string[] = [columns, rule]
const clientRows: string[] = [`| workload | ${RUN.map(label).join(' | ')} |`, `| --- |${' ---: |'.repeat(RUN.length)}`]
const memoryRows: string[] = [`| workload | ${RUN.map((name) => `${label(name)} peak RSS (growth)`).join(' | ')} |`, `| --- |${' ---: |'.repeat(RUN.length)}`]
const targetRows: string[] = ['| target | workload | ratio | met |', '| --- | --- | ---: | --- |']
const summary: Record<string, unknown> = {}
const targets: Array<{ target: string, workload: string, ratio: number, met: boolean }> = []
const ratio = (a: number, b: number): string => Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : '–'
for (const workload of WORKLOADS) {
  const byServer = samples[workload] ?? {}
  const rate = (server: string): number => median((byServer[server] ?? []).map((s) => s.rate))
  const cpu = (server: string): number => median((byServer[server] ?? []).map(cpuPerUnit))
  const growth = (server: string): string => `${(median((byServer[server] ?? []).map((s) => s.peakRss)) / MiB).toFixed(0)} MiB (+${(median((byServer[server] ?? []).map((s) => s.rssGrowth)) / MiB).toFixed(0)})`
  const first = Object.values(byServer)[0]?.[0]
  const unit = first?.unit ?? ''
  const name = `${workload}: ${first?.what ?? ''} (${unit})`
  rows.push(`| ${name} | ${RUN.map((server) => rate(server).toFixed(1)).join(' | ')} |${others.map((other) => ` ${ratio(rate(primary), rate(other))} |`).join('')}`)
  // lower is better: the ratios say how many times less CPU the primary row uses
  cpuRows.push(`| ${workload} (ms per ${unit.replace(/\/s$/, '').replace(/s$/, '')}) | ${RUN.map((server) => cpu(server).toFixed(3)).join(' | ')} |${others.map((other) => ` ${ratio(cpu(other), cpu(primary))} |`).join('')}`)
  memoryRows.push(`| ${workload} | ${RUN.map(growth).join(' | ')} |`)
  const clientCpu = (server: string): number => median((byServer[server] ?? []).map(clientCpuPerUnit))
  clientRows.push(`| ${workload} (ms per ${unit.replace(/\/s$/, '').replace(/s$/, '')}) | ${RUN.map((server) => clientCpu(server).toFixed(3)).join(' | ')} |`)
  summary[workload] = { what: first?.what, unit, rate: Object.fromEntries(RUN.map((server) => [server, rate(server)])), cpuMsPerUnit: Object.fromEntries(RUN.map((server) => [server, cpu(server)])) }
}
for (const { target, workloads, against, atLeast } of TARGETS) {
  for (const workload of workloads.filter((name) => WORKLOADS.includes(name))) {
    const rate = (server: string): number => median((samples[workload]?.[server] ?? []).map((s) => s.rate))
    const value = rate(primary) / rate(against)
    if (against === primary || !Number.isFinite(value)) continue
    targets.push({ target, workload, ratio: value, met: value >= atLeast })
    targetRows.push(`| ${target} | ${workload} | ${value.toFixed(2)}× | ${value >= atLeast ? 'met' : '**not met**'} |`)
  }
}
const header = `Node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}; ${ROUNDS} round(s), scale ${SCALE}; medians. Ratios: ${label(primary)} ÷ the named row.`
const report = `${header}

Throughput (higher is better):

${rows.join('\n')}

Targets (ratios of ${label(primary)} above; ${targets.filter((t) => t.met).length} of ${targets.length} met):

${targetRows.join('\n')}

Server CPU per unit of work, all threads of every server process (lower is better; the ratios say how many times less CPU ${label(primary)} uses):

${cpuRows.join('\n')}

The load client's own CPU per unit of work, on the same machine (what the server could not use):

${clientRows.join('\n')}

Server memory:

${memoryRows.join('\n')}
`
process.stdout.write(`\n${report}`)
await mkdir('.bench', { recursive: true })
await writeFile('.bench/results.md', report)
await writeFile('.bench/results.json', JSON.stringify({ rounds: ROUNDS, scale: SCALE, node: process.version, servers: RUN, primary, summary, targets, samples }, null, 2))
