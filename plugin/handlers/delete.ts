/** DELETE (`termination`): remove an upload, finished or not. Later requests get 404. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { requireVersion, uploadId } from '../checks.js'
import { terminate } from '../lifecycle.js'
import type { Runtime } from '../runtime.js'

export async function handleDelete (tus: Runtime, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  requireVersion(request)
  await terminate(tus, request, uploadId(request))
  reply.code(204).send()
}
