#!/usr/bin/env node
/**
 * `fastify-tus`: run a tus server from the command line. See `fastify-tus --help`.
 *
 * This entry is CommonJS so that it runs before the ES module loader first uses libuv's thread
 * pool, which reads its size (`UV_THREADPOOL_SIZE`) once, at that first use. The file store's
 * system calls run there. Unless the variable is set, the pool gets one thread per core that the
 * JavaScript thread leaves over, 1 to 4: on a small machine extra threads only take turns with
 * the JavaScript thread (measured in docs/performance.md, "The thread pool").
 */
import { availableParallelism } from 'node:os'

process.env.UV_THREADPOOL_SIZE ??= String(defaultThreadPoolSize(availableParallelism()))

// a failure ends the process as an unhandled rejection does: its error on stderr, status 1
import('./main.js').then(async ({ main }) => { await main(process.argv.slice(2)) }).catch((err: unknown) => {
  process.exitCode = 1
  throw err
})

function defaultThreadPoolSize (cores: number): number {
  return Math.min(4, Math.max(1, cores - 1))
}
