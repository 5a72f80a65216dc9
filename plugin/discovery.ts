/** What this server speaks, as the discovery headers of OPTIONS (both dialects send them). */
import type { FastifyReply } from 'fastify'
import { CHECKSUM_ALGORITHMS } from './checksum.js'
import { TUS_VERSION } from './headers.js'
import type { Runtime } from './runtime.js'

export function setDiscoveryHeaders (tus: Runtime, reply: FastifyReply): void {
  reply.header('Tus-Version', TUS_VERSION)
  reply.header('Tus-Extension', tus.extensions.join(','))
  reply.header('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','))
  if (tus.options.maxSize > 0) reply.header('Tus-Max-Size', String(tus.options.maxSize))
}
