/** DELETE (`termination`): remove an upload, finished or not. Later requests get 404. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { canTerminate } from '../../stores/store.js'
import { requireVersion, uploadId } from '../checks.js'
import type { Tus } from '../tus.js'

export async function handleDelete (tus: Tus, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  requireVersion(request)
  const id = uploadId(request)
  const store = tus.store
  if (!canTerminate(store)) throw new Error('the store cannot terminate uploads')
  await tus.withLock(request, id, async () => {
    await store.get(id)
    await store.remove(id)
  })
  request.log.info({ uploadId: id }, 'tus upload terminated')
  reply.code(204).send()
}
