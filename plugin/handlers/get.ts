/**
 * GET: download a completed upload. It does not take the upload lock: a completed upload no
 * longer changes, so reading it never has to interrupt anyone.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { canServe, isComplete } from '../../stores/store.js'
import { checkVersionIfPresent, uploadId } from '../checks.js'
import * as errors from '../errors.js'
import type { Tus } from '../tus.js'

export async function handleGet (tus: Tus, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  checkVersionIfPresent(request)
  const id = uploadId(request)
  const store = tus.store
  if (!canServe(store)) throw new Error('the store cannot serve downloads')
  const info = await store.get(id)
  await tus.hooks.run('authorize', request, info, 'get')
  if (!isComplete(info)) throw new errors.IncompleteUpload()
  const stream = await store.read(id)
  reply.header('Content-Type', 'application/octet-stream')
  reply.header('Content-Length', String(info.size))
  reply.header('Cache-Control', 'no-store')
  reply.code(200).send(stream)
}
