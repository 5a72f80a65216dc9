/** OPTIONS: what this server speaks. `Tus-Resumable` on the request is ignored, as the spec says. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { CHECKSUM_ALGORITHMS } from '../checksum.js'
import { TUS_VERSION } from '../headers.js'
import type { Runtime } from '../runtime.js'

export async function handleOptions (tus: Runtime, _request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('Tus-Version', TUS_VERSION)
  reply.header('Tus-Extension', tus.extensions.join(','))
  reply.header('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','))
  if (tus.options.maxSize > 0) reply.header('Tus-Max-Size', String(tus.options.maxSize))
  reply.code(204).send()
}
