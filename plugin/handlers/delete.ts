/** DELETE (`termination`): remove an upload, finished or not. Later requests get 404. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { canTerminate } from '../../stores/store.js'
import { requireVersion, uploadId } from '../checks.js'
import type { Runtime } from '../runtime.js'

export async function handleDelete (tus: Runtime, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  requireVersion(request)
  const id = uploadId(request)
  const store = tus.store
  if (!canTerminate(store)) throw new Error('the store cannot terminate uploads')
  await tus.authorize(request, id, 'delete')
  const upload = await tus.withLock(request, id, async () => {
    const info = await store.get(id)
    await tus.hooks.run('preTerminate', request, info)
    await store.remove(id)
    return info
  })
  request.log.info({ event: 'tus.upload.terminated', uploadId: id, offset: upload.offset, reason: 'deleted' }, 'tus upload terminated')
  tus.emit('upload-terminated', { request, upload })
  await tus.notify(request, 'postTerminate', upload)
  reply.code(204).send()
}
