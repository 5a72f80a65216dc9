/** OPTIONS: what this server speaks. `Tus-Resumable` on the request is ignored, as the spec says. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { setDiscoveryHeaders } from '../discovery.js'
import type { Runtime } from '../runtime.js'

export async function handleOptions (tus: Runtime, _request: FastifyRequest, reply: FastifyReply): Promise<void> {
  setDiscoveryHeaders(tus, reply)
  reply.code(204).send()
}
