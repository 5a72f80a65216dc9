/** OPTIONS: what this server speaks. `Tus-Resumable` on the request is ignored, as the spec says. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { setDiscoveryHeaders } from '../discovery.js'
import type { Runtime } from '../runtime.js'

export async function handleOptions (tus: Runtime, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  await setDiscoveryHeaders(tus, request, reply)
  reply.code(204).send()
}
