/**
 * The load client, run in its own process: one workload against one server, result as JSON on
 * stdout. Bodies come from one reusable buffer and connections are kept alive, so the client
 * costs little next to the server.
 *
 * A workload may prepare (create the uploads it will HEAD, say) before it is timed: the client
 * then prints `ready` and waits for a line on stdin before it starts the clock, so the runner can
 * read the server's CPU and memory at that point (only with BENCH_CLIENT_WAIT=1, as the runner
 * sets it; run by hand, it goes on at once).
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

function size (bytes: number): string {
  return bytes >= 1024 * MiB ? `${+(bytes / 1024 / MiB).toFixed(2)} GiB` : `${+(bytes / MiB).toFixed(2)} MiB`
}

/**
 * A workload: what it is (for the report), its unit, and its work, which returns how much it did. It prepares what it needs
 * untimed (the uploads it will HEAD, say), then calls `start`, which starts the clock.
 */
interface Workload { what: string, unit: string, run: (start: () => Promise<void>) => Promise<number> }

async function head (agent: Agent, url: string): Promise<number> {
  return Number(check(await send(agent, 'HEAD', url, TUS), 200).headers['upload-offset'])
}

/** `count` uploads of `size` bytes, each with its first `written` bytes sent: uploads a client may resume. */
async function uploads (count: number, size: number, written: number): Promise<string[]> {
  const urls: string[] = []
  await pool(count, 16, async (agent) => {
    const url = await create(agent, size)
    if (written > 0) await patch(agent, url, 0, written)
    urls.push(url)
  })
  return urls
}

/**
 * HEADs spread over `uploads` partly written uploads, in turn (HEAD i asks upload i mod n), at
 * concurrency 32: what many clients resuming at once send.
 */
function headsOver (count: number): Workload {
  return {
    what: `HEAD over ${count.toLocaleString('en')} uploads, concurrency 32`,
    unit: 'HEAD/s',
    run: async (start) => {
      const urls = await uploads(count, 8192, 4096)
      await start()
      const total = Math.round(20000 * scale)
      await pool(total, 32, async (agent, index) => {
        const offset = await head(agent, urls[index % urls.length] as string)
        if (offset !== 4096) throw new Error(`HEAD answered Upload-Offset ${offset}, expected 4096`)
      })
      return total
    }
  }
}

/**
 * The workloads by name; the runner divides each one's amount of work by its time. The
 * single-upload ones keep the names they had before the many-upload ones came.
 */
const workloads: Record<string, Workload> = {
  'single-large': {
    what: `one upload: one ${size(1024 * MiB * scale)} PATCH`,
    unit: 'MiB/s',
    run: async (start) => {
      await start()
      const size = Math.round(1024 * MiB * scale)
      await pool(1, 1, async (agent) => { await patch(agent, await create(agent, size), 0, size) })
      return size / MiB
    }
  },
  'chunks-1mib': {
    what: `one upload: ${size(Math.round(256 * scale) * MiB)} in 1 MiB PATCHes`,
    unit: 'MiB/s',
    run: async (start) => {
      await start()
      const size = Math.round(256 * scale) * MiB
      await pool(1, 1, async (agent) => {
        const url = await create(agent, size)
        for (let offset = 0; offset < size; offset += MiB) await patch(agent, url, offset, MiB)
      })
      return size / MiB
    }
  },
  /**
   * 8 uploads at once, each a chain of 1 MiB PATCHes on its own connection, as tus-js-client
   * sends with `chunkSize`: POST, PATCHes (none preceded by anything), then, as after a lost
   * connection, one HEAD to learn the offset and PATCHes from there to the end.
   */
  'chunk-chains': {
    what: `8 uploads at once × ${size(2 * Math.max(1, Math.round(16 * scale)) * MiB)} in 1 MiB PATCHes, a HEAD to resume halfway`,
    unit: 'MiB/s',
    run: async (start) => {
      await start()
      const size = 2 * Math.max(1, Math.round(16 * scale)) * MiB
      await pool(8, 8, async (agent) => {
        const url = await create(agent, size)
        for (let offset = 0; offset < size / 2; offset += MiB) await patch(agent, url, offset, MiB)
        const resumed = await head(agent, url)
        if (resumed !== size / 2) throw new Error(`HEAD answered Upload-Offset ${resumed}, expected ${size / 2}`)
        for (let offset = resumed; offset < size; offset += MiB) await patch(agent, url, offset, MiB)
      })
      return (8 * size) / MiB
    }
  },
  'small-uploads': {
    what: `${Math.round(2000 * scale).toLocaleString('en')} uploads of 4 KiB (POST + PATCH), concurrency 32`,
    unit: 'uploads/s',
    run: async (start) => {
      await start()
      const count = Math.round(2000 * scale)
      await pool(count, 32, async (agent) => { await patch(agent, await create(agent, 4096), 0, 4096) })
      return count
    }
  },
  'small-creation-with-upload': {
    what: `${Math.round(2000 * scale).toLocaleString('en')} uploads of 4 KiB (creation with upload), concurrency 32`,
    unit: 'uploads/s',
    run: async (start) => {
      await start()
      const count = Math.round(2000 * scale)
      await pool(count, 32, async (agent) => {
        check(await send(agent, 'POST', base, { ...TUS, 'Upload-Length': '4096', 'Content-Type': 'application/offset+octet-stream' }, 4096), 201)
      })
      return count
    }
  },
  'heads-16': headsOver(16),
  'heads-1000': headsOver(1000),
  // concurrent HEADs of one upload may share a read: not what many clients send
  heads: {
    what: 'one upload: HEAD, concurrency 64',
    unit: 'HEAD/s',
    run: async (start) => {
      const [url = ''] = await uploads(1, 10, 0)
      await start()
      const count = Math.round(20000 * scale)
      await pool(count, 64, async (agent) => { check(await send(agent, 'HEAD', url, TUS), 200) })
      return count
    }
  },
  'parallel-16mib': {
    what: `64 uploads at once × ${size(Math.round(16 * scale) * MiB)}, one PATCH each`,
    unit: 'MiB/s',
    run: async (start) => {
      await start()
      const size = Math.round(16 * scale) * MiB
      await pool(64, 64, async (agent) => { await patch(agent, await create(agent, size), 0, size) })
      return (64 * size) / MiB
    }
  }
}

/** With BENCH_CLIENT_WAIT=1 (the runner sets it), says `ready` and waits for a line on stdin. */
async function go (): Promise<void> {
  if (process.env.BENCH_CLIENT_WAIT !== '1') return
  process.stdout.write('ready\n')
  await new Promise<void>((resolve) => {
    process.stdin.once('data', () => { process.stdin.pause(); resolve() })
  })
}

const chosen = workloads[workload]
if (chosen === undefined) throw new Error(`unknown workload ${workload}; one of ${Object.keys(workloads).join(', ')}`)
let started = performance.now()
let cpuAtStart = process.cpuUsage()
const amount = await chosen.run(async () => {
  await go()
  started = performance.now()
  cpuAtStart = process.cpuUsage()
})
const seconds = (performance.now() - started) / 1000
// the load client's own CPU: on a machine it shares with the server, what the server could not have
const used = process.cpuUsage(cpuAtStart)
const clientCpuSeconds = (used.user + used.system) / 1e6
process.stdout.write(`${JSON.stringify({ workload, what: chosen.what, seconds, rate: amount / seconds, unit: chosen.unit, clientCpuSeconds })}\n`)
