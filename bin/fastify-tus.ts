#!/usr/bin/env node
/**
 * `fastify-tus`: run a tus server from the command line. See `fastify-tus --help`.
 */
import { readFileSync } from 'node:fs'
import { FlagError, HELP, parseFlags } from './flags.js'
import { buildServer } from './server.js'

async function main (): Promise<void> {
  let config
  try {
    config = parseFlags(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof FlagError)) throw err
    process.stderr.write(`fastify-tus: ${err.message}\nRun fastify-tus --help for the flags.\n`)
    process.exit(2)
  }
  if (config === 'help') {
    process.stdout.write(`${HELP}\n`)
    return
  }
  if (config === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
    process.stdout.write(`fastify-tus ${pkg.version}\n`)
    return
  }

  const app = await buildServer(config)
  const address = await app.listen({ host: config.host, port: config.port })
  process.stdout.write(`fastify-tus: tus server listening on ${address}${config.basePath} (uploads in ${config.uploadDir})\n`)

  let stopping = false
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      app.log.warn({ signal }, 'second signal: exiting now')
      process.exit(1)
    }
    stopping = true
    app.log.info({ signal }, 'shutting down')
    const force = setTimeout(() => {
      app.log.warn('shutdown timeout reached: exiting with requests in flight')
      process.exit(1)
    }, config.shutdownTimeout)
    force.unref()
    app.close().then(() => process.exit(0), (err: unknown) => {
      app.log.error({ err }, 'error while shutting down')
      process.exit(1)
    })
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

await main()
