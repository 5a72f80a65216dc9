/**
 * Profiles the fastify-tus command under one workload: runs it with `--cpu-prof` and its default
 * flags (file locker, info logs; extra flags after `--` are added), drives it with the load client, and prints where its main thread spent its time (self time per function and
 * per file). The `.cpuprofile` written to `.bench/profiles/` opens as a flame graph in Chrome
 * DevTools (Performance → Load profile) or https://www.speedscope.app.
 *
 *   npm run build && npx tsx bench/profile.ts heads-16 [scale] [-- extra command flags, e.g. --locker memory]
 */
import { spawn } from 'node:child_process'
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

interface ProfileNode { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
interface Profile { nodes: ProfileNode[], samples: number[], timeDeltas: number[] }

const [workload = 'small-uploads', scale = '0.5', ...extra] = process.argv.slice(2).filter((arg) => arg !== '--')
const profiles = resolve('.bench/profiles')
await mkdir(profiles, { recursive: true })
const before = new Set(await readdir(profiles))
const dir = await mkdtemp(join(tmpdir(), 'tus-profile-'))

const server = spawn(process.execPath, [
  '--cpu-prof', '--cpu-prof-dir', profiles,
  'dist/bin/fastify-tus.cjs', '--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, ...extra
], { stdio: ['ignore', 'pipe', 'inherit'] })
try {
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    let found = false
    server.stdout.on('data', (chunk) => {
      // once listening, the output (request logs with the defaults) is read and dropped
      if (found) return
      out += String(chunk)
      const match = /listening on (\S+)/.exec(out)
      if (match?.[1] !== undefined) {
        found = true
        resolve(match[1])
      }
    })
    server.once('exit', () => reject(new Error(`the server exited: ${out}`)))
  })
  const client = spawn(process.execPath, ['--import', 'tsx', 'bench/client.ts', url, workload, scale], { stdio: ['ignore', 'inherit', 'inherit'] })
  await new Promise((resolve) => client.once('exit', resolve))
} finally {
  // SIGINT: the command shuts down gracefully, and node writes the profile on exit
  server.kill('SIGINT')
  await new Promise((resolve) => server.once('exit', resolve))
  await rm(dir, { recursive: true, force: true })
}

const written = (await readdir(profiles)).filter((name) => !before.has(name) && name.endsWith('.cpuprofile'))
const file = join(profiles, written[0] ?? '')
const profile = JSON.parse(await readFile(file, 'utf8')) as Profile
const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
const byFunction = new Map<string, number>()
const byFile = new Map<string, number>()
let total = 0
profile.samples.forEach((id, index) => {
  const frame = nodes.get(id)?.callFrame
  const micros = profile.timeDeltas[index] ?? 0
  if (frame === undefined) return
  total += micros
  const where = frame.url.replace(/^.*node_modules\//, '').replace(/^file:\/\/.*?\/(dist|node_modules)\//, '$1/')
  const name = `${frame.functionName === '' ? '(anonymous)' : frame.functionName} ${where}${where === '' ? '' : `:${frame.lineNumber + 1}`}`
  byFunction.set(name, (byFunction.get(name) ?? 0) + micros)
  const module = where === '' ? frame.functionName : where.split('/').slice(0, where.startsWith('@') ? 2 : 1).join('/')
  byFile.set(module, (byFile.get(module) ?? 0) + micros)
})

function top (table: Map<string, number>, count: number): string {
  return [...table].sort((a, b) => b[1] - a[1]).slice(0, count)
    .map(([name, micros]) => `${(micros / 1000).toFixed(1).padStart(9)} ms ${((100 * micros) / total).toFixed(1).padStart(5)} %  ${name}`).join('\n')
}
process.stdout.write(`\n${workload} (scale ${scale}): ${(total / 1000).toFixed(0)} ms sampled on the main thread; profile: ${file}\n\nself time by function:\n${top(byFunction, 25)}\n\nself time by module:\n${top(byFile, 12)}\n`)
