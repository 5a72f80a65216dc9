/**
 * Memory under load: N concurrent uploads (default 200) of SIZE bytes each (default 8 MiB)
 * against the built `fastify-tus` command with its default flags; prints the server's RSS before, its peak, and the
 * growth. Bodies are streamed, so the growth must not depend on the upload size.
 *
 *   npm run build && npx tsx bench/memory.ts [--uploads 200] [--size 8MiB]
 */
import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseSize } from '../bin/units.js'

const { values } = parseArgs({ options: { uploads: { type: 'string', default: '200' }, size: { type: 'string', default: '8MiB' } } })
const uploads = Number(values.uploads)
const size = parseSize(values.size) ?? 0
if (size === 0) throw new Error(`--size must be a size such as 8MiB, got "${values.size}"`)

async function rssOf (pid: number): Promise<{ rss: number, peak: number }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = (name: string): number => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) * 1024
  return { rss: kib('VmRSS'), peak: kib('VmHWM') }
}

const dir = await mkdtemp(join(tmpdir(), 'tus-bench-memory-'))
const server = spawn(process.execPath, ['dist/bin/fastify-tus.cjs', '--host', '127.0.0.1', '--port', '0', '--upload-dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] })
const base = await new Promise<string>((resolve) => {
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
})
const agent = new Agent({ keepAlive: true, maxSockets: uploads })
const before = await rssOf(server.pid as number)
const piece = Buffer.alloc(64 * 1024, 7)

async function one (): Promise<void> {
  const created = await fetch(base, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': String(size) } })
  const location = created.headers.get('location') as string
  await new Promise<void>((resolve, reject) => {
    const req = request(location, {
      method: 'PATCH',
      agent,
      headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(size) }
    }, (res) => {
      res.resume()
      res.on('end', () => res.statusCode === 204 ? resolve() : reject(new Error(`status ${res.statusCode ?? 0}`)))
    })
    req.on('error', reject)
    let sent = 0
    const write = (): void => {
      while (sent < size) {
        const chunk = piece.subarray(0, Math.min(piece.length, size - sent))
        sent += chunk.length
        if (!req.write(chunk)) {
          req.once('drain', write)
          return
        }
      }
      req.end()
    }
    write()
  })
}

let peak = before.peak
const sampler = setInterval(() => { rssOf(server.pid as number).then((m) => { peak = Math.max(peak, m.rss) }, () => {}) }, 50)
const started = performance.now()
await Promise.all(Array.from({ length: uploads }, one))
const seconds = (performance.now() - started) / 1000
clearInterval(sampler)
const after = await rssOf(server.pid as number)
peak = Math.max(peak, after.peak)
const MiB = 1024 * 1024
console.log(`${uploads} concurrent uploads of ${(size / MiB).toFixed(1)} MiB in ${seconds.toFixed(1)} s (${((uploads * size) / MiB / seconds).toFixed(0)} MiB/s)`)
console.log(`server RSS before ${(before.rss / MiB).toFixed(1)} MiB, peak ${(peak / MiB).toFixed(1)} MiB, growth ${((peak - before.rss) / MiB).toFixed(1)} MiB`)
server.kill('SIGKILL')
agent.destroy()
await rm(dir, { recursive: true, force: true })
