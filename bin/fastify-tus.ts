#!/usr/bin/env node
/** `fastify-tus`: run a tus server from the command line. See `fastify-tus --help`. */
import { main } from './main.js'

await main(process.argv.slice(2))
