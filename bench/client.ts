/**
 * The load client, run in its own process: one workload against one server, result as JSON on
 * stdout. Bodies come from one reusable buffer and connections are kept alive, so the client
 * costs little next to the server.
 *
 *   npx tsx bench/client.ts <collection-url> <workload> <scale>
 */
import { Agent, request, type IncomingHttpHeaders } from 'node:http'

const [base = '', workload = '', scaleText = '1'] = process.argv.slice(2)
const scale = Number(scaleText)
const MiB = 1024 * 1024
const piece = Buffer.alloc(MiB, 0x61)
const TUS = { 'Tus-Resumable': '1.0.0' }

interface Answer { status: number, headers: IncomingHttpHeaders }

function send (agent: Agent, method: string, url: string, headers: Record<string, string>, bytes = 0): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(url, base), { method, agent, headers: bytes > 0 ? { ...headers, 'Content-Length': String(bytes) } : headers }, (res) => {
      res.resume()
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }))
    })
    req.on('error', reject)
    let sent = 0
    const write = (): void => {
      while (sent < bytes) {
        const chunk = piece.subarray(0, Math.min(piece.length, bytes - sent))
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

function check (answer: Answer, status: number): Answer {
  if (answer.status !== status) throw new Error(`expected ${status}, got ${answer.status}`)
  return answer
}

async function create (agent: Agent, size: number): Promise<string> {
  const answer = check(await send(agent, 'POST', base, { ...TUS, 'Upload-Length': String(size) }), 201)
  return answer.headers.location as string
}

async function patch (agent: Agent, url: string, offset: number, bytes: number): Promise<void> {
  check(await send(agent, 'PATCH', url, { ...TUS, 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream' }, bytes), 204)
}

async function pool (count: number, concurrency: number, task: (agent: Agent, index: number) => Promise<void>): Promise<void> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < count) await task(agent, next++)
  }))
  agent.destroy()
}

/** Each workload returns its amount of work and its unit; the runner divides by the time. */
const workloads: Record<string, () => Promise<{ amount: number, unit: string }>> = {
  'single-large': async () => {
    const size = Math.round(1024 * MiB * scale)
    await pool(1, 1, async (agent) => { await patch(agent, await create(agent, size), 0, size) })
    return { amount: size / MiB, unit: 'MiB/s' }
  },
  'chunks-1mib': async () => {
    const size = Math.round(256 * scale) * MiB
    await pool(1, 1, async (agent) => {
      const url = await create(agent, size)
      for (let offset = 0; offset < size; offset += MiB) await patch(agent, url, offset, MiB)
    })
    return { amount: size / MiB, unit: 'MiB/s' }
  },
  'small-uploads': async () => {
    const count = Math.round(2000 * scale)
    await pool(count, 32, async (agent) => { await patch(agent, await create(agent, 4096), 0, 4096) })
    return { amount: count, unit: 'uploads/s' }
  },
  'small-creation-with-upload': async () => {
    const count = Math.round(2000 * scale)
    await pool(count, 32, async (agent) => {
      check(await send(agent, 'POST', base, { ...TUS, 'Upload-Length': '4096', 'Content-Type': 'application/offset+octet-stream' }, 4096), 201)
    })
    return { amount: count, unit: 'uploads/s' }
  },
  heads: async () => {
    const count = Math.round(20000 * scale)
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const url = await create(agent, 10)
    agent.destroy()
    await pool(count, 64, async (agent) => { check(await send(agent, 'HEAD', url, TUS), 200) })
    return { amount: count, unit: 'HEAD/s' }
  },
  'parallel-16mib': async () => {
    const size = Math.round(16 * scale) * MiB
    await pool(64, 64, async (agent) => { await patch(agent, await create(agent, size), 0, size) })
    return { amount: (64 * size) / MiB, unit: 'MiB/s' }
  }
}

const run = workloads[workload]
if (run === undefined) throw new Error(`unknown workload ${workload}; one of ${Object.keys(workloads).join(', ')}`)
const started = performance.now()
const { amount, unit } = await run()
const seconds = (performance.now() - started) / 1000
process.stdout.write(`${JSON.stringify({ workload, seconds, rate: amount / seconds, unit })}\n`)
