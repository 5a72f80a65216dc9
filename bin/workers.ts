/**
 * `--workers N`: the command on every core. The primary process forks N workers (node:cluster)
 * that share the listening port and serve requests; it serves nothing itself. Workers are
 * separate processes on one upload directory, so the file locker (or Redis, etcd) keeps one
 * writer per upload and hands an upload over between them (lock exchange), exactly as between
 * separate servers. The primary:
 *
 * - prints the listening line once every worker listens;
 * - replaces a worker that dies unasked, with a short pause if they keep dying;
 * - on SIGTERM/SIGINT asks every worker to stop gracefully and exits when they have (a second
 *   signal, or `--shutdown-timeout` plus a margin, ends them at once);
 * - answers `/metrics` for any worker with the sum over all of them (prom-client's cluster
 *   aggregation), so one scrape sees the whole server.
 */
import cluster, { type Worker } from 'node:cluster'
import type { CommandIo } from './main.js'

/** What a worker tells the primary, and what the primary answers. */
type Message =
  | { type: 'fastify-tus:listening', address: string }
  | { type: 'fastify-tus:metrics?', id: number }
  | { type: 'fastify-tus:metrics', id: number, text: string, contentType: string }

function isMessage (value: unknown): value is Message {
  const type = (value as { type?: unknown } | null)?.type
  return typeof type === 'string' && type.startsWith('fastify-tus:')
}

export const isWorker = (): boolean => cluster.isWorker

export interface PrimaryOptions {
  workers: number
  shutdownTimeout: number
  /** The line to print once every worker listens, given the first worker's address. */
  listening: (address: string) => string
}

/** Runs the primary until it is stopped; resolves once the workers have been forked. */
export async function runPrimary (options: PrimaryOptions, io: CommandIo): Promise<void> {
  const { AggregatorRegistry } = await import('prom-client')
  const aggregator = new AggregatorRegistry()
  const listening = new Set<number>()
  let announced = false
  let stopping = false
  let recentDeaths: number[] = []

  const fork = (): void => {
    const worker = cluster.fork()
    worker.on('message', (message: unknown) => {
      if (!isMessage(message)) return
      if (message.type === 'fastify-tus:listening') {
        listening.add(worker.id)
        if (!announced && listening.size >= options.workers) {
          announced = true
          io.stdout(options.listening(message.address))
        }
      } else if (message.type === 'fastify-tus:metrics?') {
        aggregator.clusterMetrics().then(
          (text) => { send(worker, { type: 'fastify-tus:metrics', id: message.id, text, contentType: aggregator.contentType }) },
          (err: unknown) => { send(worker, { type: 'fastify-tus:metrics', id: message.id, text: `# metrics unavailable: ${String((err as Error).message)}\n`, contentType: 'text/plain' }) }
        )
      }
    })
  }

  cluster.on('exit', (worker, code, signal) => {
    listening.delete(worker.id)
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) io.exit(0)
      return
    }
    // a worker that fails to start (a bad directory, a port in use) fails every time: stop then
    if (!announced) {
      io.stderr(`fastify-tus: worker ${worker.process.pid ?? '?'} failed to start (exit ${code ?? signal ?? '?'})\n`)
      stopping = true
      for (const other of Object.values(cluster.workers ?? {})) other?.kill('SIGKILL')
      io.exit(code === 2 ? 2 : 1)
      return
    }
    const now = Date.now()
    recentDeaths = [...recentDeaths.filter((at) => now - at < 10_000), now]
    io.stderr(`fastify-tus: worker ${worker.process.pid ?? '?'} died (${signal ?? `exit ${code ?? '?'}`}); starting another\n`)
    // a worker that keeps dying is not restarted in a tight loop
    const wait = recentDeaths.length > options.workers ? 1000 : 0
    setTimeout(() => { if (!stopping) fork() }, wait).unref()
  })

  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL')
      io.exit(1)
      return
    }
    stopping = true
    const workers = Object.values(cluster.workers ?? {})
    if (workers.length === 0) {
      io.exit(0)
      return
    }
    for (const worker of workers) worker?.process.kill(signal)
    // the workers end themselves after --shutdown-timeout; this only covers a worker that hangs
    setTimeout(() => {
      for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGKILL')
      io.exit(1)
    }, options.shutdownTimeout + 2000).unref()
  }
  io.signals.on('SIGTERM', stop)
  io.signals.on('SIGINT', stop)

  for (let i = 0; i < options.workers; i++) fork()
}

function send (worker: Worker, message: Message): void {
  if (worker.isConnected()) worker.send(message)
}

/** In a worker: tells the primary this worker listens. */
export function announceListening (address: string): void {
  process.send?.({ type: 'fastify-tus:listening', address } satisfies Message)
}

let requestId = 0

/** In a worker: the metrics of every worker, summed by the primary. */
export async function clusterMetrics (): Promise<{ text: string, contentType: string }> {
  const id = ++requestId
  return await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      process.off('message', onMessage)
      reject(new Error('the primary did not answer with the metrics'))
    }, 10_000)
    const onMessage = (message: unknown): void => {
      if (!isMessage(message) || message.type !== 'fastify-tus:metrics' || message.id !== id) return
      clearTimeout(timer)
      process.off('message', onMessage)
      resolve({ text: message.text, contentType: message.contentType })
    }
    process.on('message', onMessage)
    process.send?.({ type: 'fastify-tus:metrics?', id } satisfies Message)
  })
}
