/** What this server speaks, as the discovery headers of OPTIONS (both dialects send them). */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { CHECKSUM_ALGORITHMS } from './checksum.js'
import { TUS_VERSION } from './headers.js'
import type { Runtime } from './runtime.js'

/** `Tus-Max-Size` is the request's `maxSize` (a function's answer for it), absent when there is no limit. */
export async function setDiscoveryHeaders (tus: Runtime, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('Tus-Version', TUS_VERSION)
  reply.header('Tus-Extension', tus.extensions.join(','))
  reply.header('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','))
  const maxSize = await tus.maxSize(request, null)
  if (Number.isFinite(maxSize)) reply.header('Tus-Max-Size', String(maxSize))
}
