/**
 * What the command does, with its side effects (output, exit, signals) passed in, so tests can
 * run it in-process.
 */
import type { FastifyInstance } from 'fastify'
import { existsSync, readFileSync } from 'node:fs'
import { FlagError, HELP, parseFlags, type CliConfig } from './flags.js'
import { prepareUnixSocket } from './listen.js'
import { buildServer } from './server.js'
import { announceListening, isWorker, runPrimary } from './workers.js'

export interface CommandIo {
  stdout: (text: string) => void
  stderr: (text: string) => void
  exit: (code: number) => void
  /** Where signal handlers go (`process` in the real command). */
  signals: { on: (signal: NodeJS.Signals, handler: (signal: NodeJS.Signals) => void) => unknown }
}

export const processIo: CommandIo = {
  stdout: (text) => { process.stdout.write(text) },
  stderr: (text) => { process.stderr.write(text) },
  exit: (code) => process.exit(code),
  signals: process
}

/** Runs the command; resolves with the listening server (or `undefined` for --help, --version, bad flags). */
export async function main (argv: string[], io: CommandIo = processIo): Promise<FastifyInstance | undefined> {
  let config
  try {
    config = parseFlags(argv)
  } catch (err) {
    if (!(err instanceof FlagError)) throw err
    io.stderr(`fastify-tus: ${err.message}\nRun fastify-tus --help for the flags.\n`)
    io.exit(2)
    return undefined
  }
  if (config === 'help') {
    io.stdout(`${HELP}\n`)
    return undefined
  }
  if (config === 'version') {
    io.stdout(`fastify-tus ${version()}\n`)
    return undefined
  }

  const worker = isWorker()
  let app
  try {
    // a stale socket file is removed, a live one refused (once, by the primary, with --workers)
    if (config.unixSock !== undefined && !worker) await prepareUnixSocket(config.unixSock)
    if (config.workers > 1 && !worker) {
      await runPrimary({ workers: config.workers, shutdownTimeout: config.shutdownTimeout, listening: (address) => listeningLines(config, address) }, io)
      return undefined
    }
    app = await buildServer(config)
  } catch (err) {
    if (!(err instanceof FlagError)) throw err
    io.stderr(`fastify-tus: ${err.message}\n`)
    io.exit(2)
    return undefined
  }
  let address: string
  try {
    if (config.unixSock === undefined) {
      address = await app.listen({ host: config.host, port: config.port })
    } else {
      await app.listen({ path: config.unixSock })
      address = `unix:${config.unixSock}`
    }
  } catch (err) {
    // a host that does not resolve, a port in use or not allowed, a socket directory missing
    const { code, message } = err as NodeJS.ErrnoException
    const where = config.unixSock === undefined ? `${config.host}:${config.port}` : config.unixSock
    io.stderr(`fastify-tus: cannot listen on ${where}: ${LISTEN_ERRORS[code ?? ''] ?? code ?? message}\n`)
    await app.close().catch(() => {})
    io.exit(2)
    return undefined
  }
  // with --workers the primary speaks for all of them
  if (worker) {
    announceListening(address)
  } else {
    io.stdout(listeningLines(config, address))
  }

  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal: exiting now')
      io.exit(1)
      return
    }
    stopping = true
    app.log.info({ signal }, 'shutting down')
    const force = setTimeout(() => {
      app.log.warn('shutdown timeout reached: exiting with requests in flight')
      io.exit(1)
    }, config.shutdownTimeout)
    force.unref()
    app.close().then(() => {
      clearTimeout(force)
      io.exit(0)
    }, (err: unknown) => {
      app.log.error({ err }, 'error while shutting down')
      io.exit(1)
    })
  }
  io.signals.on('SIGTERM', stop)
  io.signals.on('SIGINT', stop)
  return app
}

const LISTEN_ERRORS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the address is in use (another server?)',
  EACCES: 'permission denied (a port below 1024 needs privileges, a socket a directory that exists and is writable)',
  EADDRNOTAVAIL: 'no such address on this machine (--host)',
  ENOTFOUND: 'the host name does not resolve (--host)',
  EAI_AGAIN: 'the host name does not resolve (--host)',
  ENOENT: 'no such directory for the socket (--unix-sock)'
}

/** What the command prints once it listens. */
function listeningLines (config: CliConfig, address: string): string {
  const where = config.azure !== undefined
    ? `azure container ${config.azure.container}/${config.azure.objectPrefix}`
    : config.gcs !== undefined
      ? `gs://${config.gcs.bucket}/${config.gcs.objectPrefix}`
      : config.s3 === undefined ? config.uploadDir : `s3://${config.s3.bucket}/${config.s3.objectPrefix}`
  // a unix socket has no URL: its path, then the collection's path
  const collection = config.unixSock === undefined ? `${address}${config.basePath}` : `${address} at ${config.basePath}`
  const workers = config.workers > 1 ? `, ${config.workers} workers` : ''
  let lines = `fastify-tus: tus server listening on ${collection} (uploads in ${where}${workers})\n`
  if (config.exposeMetrics) lines += `fastify-tus: Prometheus metrics at ${config.unixSock === undefined ? address : `${address} at `}${config.metricsPath}\n`
  return lines
}

/** The package version, from bin/ (sources) or dist/bin/ (the build). */
function version (): string {
  for (const relative of ['../package.json', '../../package.json']) {
    const url = new URL(relative, import.meta.url)
    if (existsSync(url)) {
      const pkg = JSON.parse(readFileSync(url, 'utf8')) as { name?: string, version?: string }
      if (pkg.name === 'fastify-tus' && pkg.version !== undefined) return pkg.version
    }
  }
  return 'unknown'
}
