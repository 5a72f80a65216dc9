/**
 * An in-process A/B of two builds of the plugin on the request path: HEADs and 4 KiB uploads
 * (POST then PATCH) through `app.inject` on a MemoryStore, with no network and no disk, so what is
 * measured is routing, hooks, checks and handlers. Rounds alternate between the builds; it prints
 * the median server CPU per operation (process.cpuUsage, steadier than wall time on a shared machine)
 * and the median wall-clock rate of each.
 *
 *   npm run build && cp -a dist /tmp/before/ …change…  npm run build
 *   npx tsx bench/inject-ab.ts /tmp/before/dist dist [rounds=7] [operations=4000]
 *
 * A build directory must sit where it can resolve the project's node_modules (a symlink will do).
 */
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import Fastify, { type FastifyPluginAsync } from 'fastify'

const [a = '', b = '', roundsText = '7', opsText = '4000'] = process.argv.slice(2)
if (a === '' || b === '') throw new Error('usage: bench/inject-ab.ts <dist A> <dist B> [rounds] [operations]')
const ROUNDS = Number(roundsText)
const OPS = Number(opsText)
const TUS = { 'tus-resumable': '1.0.0' }
const body = Buffer.alloc(4096, 0x61)

interface Build { name: string, plugin: FastifyPluginAsync<Record<string, unknown>>, MemoryStore: new () => unknown }

async function load (dir: string): Promise<Build> {
  const root = pathToFileURL(resolve(dir) + '/').href
  const plugin = (await import(`${root}plugin/index.js`) as { default: Build['plugin'] }).default
  const { MemoryStore } = await import(`${root}stores/memory.js`) as { MemoryStore: Build['MemoryStore'] }
  return { name: dir, plugin, MemoryStore }
}

interface Sample { cpuMicros: number, perSecond: number }

async function measure (build: Build, workload: 'head' | 'upload'): Promise<Sample> {
  const app = Fastify({ logger: false })
  await app.register(build.plugin, { path: '/files/', store: new build.MemoryStore() })
  await app.ready()
  const create = async (): Promise<string> => {
    const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': String(body.length) } })
    return new URL(created.headers.location as string, 'http://localhost').pathname
  }
  const paths = workload === 'head' ? await Promise.all(Array.from({ length: 16 }, create)) : []
  const once = async (i: number): Promise<void> => {
    if (workload === 'head') {
      const response = await app.inject({ method: 'HEAD', url: paths[i % paths.length] as string, headers: TUS })
      if (response.statusCode !== 200) throw new Error(`HEAD ${response.statusCode}`)
      return
    }
    const path = await create()
    const response = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': 'application/offset+octet-stream', 'upload-offset': '0' }, payload: body })
    if (response.statusCode !== 204) throw new Error(`PATCH ${response.statusCode}`)
  }
  for (let i = 0; i < 200; i++) await once(i) // warm up
  const cpu = process.cpuUsage()
  const start = performance.now()
  // 16 at a time, as a few clients would
  for (let i = 0; i < OPS; i += 16) await Promise.all(Array.from({ length: 16 }, (_, k) => once(i + k)))
  const seconds = (performance.now() - start) / 1000
  const used = process.cpuUsage(cpu)
  await app.close()
  return { cpuMicros: (used.user + used.system) / OPS, perSecond: OPS / seconds }
}

function median (numbers: number[]): number {
  const sorted = [...numbers].sort((x, y) => x - y)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] as number : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2
}

const builds = [await load(a), await load(b)]
for (const workload of ['head', 'upload'] as const) {
  const samples = new Map<string, Sample[]>(builds.map((build) => [build.name, []]))
  for (let round = 0; round < ROUNDS; round++) {
    // alternate which build goes first
    for (const build of round % 2 === 0 ? builds : [...builds].reverse()) samples.get(build.name)?.push(await measure(build, workload))
  }
  for (const build of builds) {
    const list = samples.get(build.name) ?? []
    const unit = workload === 'head' ? 'HEAD' : 'upload (POST+PATCH 4 KiB)'
    process.stdout.write(`${workload.padEnd(6)} ${build.name.padEnd(28)} median ${median(list.map((s) => s.cpuMicros)).toFixed(1)} µs CPU per ${unit}, ${median(list.map((s) => s.perSecond)).toFixed(0)}/s  (CPU µs: ${list.map((s) => s.cpuMicros.toFixed(0)).join(' ')})\n`)
  }
}
