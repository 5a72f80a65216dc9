/**
 * PATCH: append a chunk at the upload's offset. The body streams into the store; whatever
 * arrives is kept, also when the client goes away, the body stalls or a newer request takes over.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { canDeferLength, isComplete, type UploadInfo } from '../../stores/store.js'
import { requireVersion, uploadId } from '../checks.js'
import * as errors from '../errors.js'
import { header, mediaType, OFFSET_OCTET_STREAM, parseInteger } from '../headers.js'
import { receive } from '../receive.js'
import type { Runtime } from '../runtime.js'

export async function handlePatch (tus: Runtime, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  requireVersion(request)
  if (mediaType(request.headers['content-type']) !== OFFSET_OCTET_STREAM) throw new errors.InvalidContentType(OFFSET_OCTET_STREAM)
  const offset = parseInteger(header(request.headers, 'upload-offset'))
  if (offset === undefined) throw new errors.InvalidOffset()
  const lengthHeader = header(request.headers, 'upload-length')
  const length = parseInteger(lengthHeader)
  if (lengthHeader !== undefined && length === undefined) throw new errors.InvalidUploadLength('must be a non-negative integer')
  const id = uploadId(request)
  await tus.authorize(request, id, 'patch')

  const result = await tus.withLock(request, id, async (session) => {
    let info = await tus.store.get(id)
    if (info.concat?.kind === 'final') throw new errors.ModifyFinal()
    tus.checkNotExpired(info)
    if (offset !== info.offset) throw new errors.MismatchedOffset(offset, info.offset)
    const wasComplete = isComplete(info)
    if (length !== undefined) info = await applyLength(tus, info, length)
    // a deferred upload can complete by declaring its length with an empty body
    if (isComplete(info)) return { info, completed: !wasComplete, error: undefined }
    const received = await receive(tus, request, session, info)
    const after = { ...info, offset: received.offset }
    // a stopped upload is gone, even when its last byte arrived
    return { info: after, completed: received.reason !== 'stopped' && isComplete(after), error: received.error }
  })
  const body = result.completed ? await tus.finish(request, reply, result.info) : undefined
  if (result.error !== undefined) throw result.error
  reply.header('Upload-Offset', String(result.info.offset))
  tus.setExpires(reply, result.info, new Date())
  if (body === undefined) {
    reply.code(204).send()
  } else {
    reply.code(200).send(body)
  }
}

/** `Upload-Length` on a PATCH: sets a deferred length once; it may never change afterwards. */
async function applyLength (tus: Runtime, info: UploadInfo, length: number): Promise<UploadInfo> {
  if (info.size !== undefined) {
    if (info.size !== length) throw new errors.InvalidUploadLength('cannot change once set')
    return info
  }
  if (length < info.offset) throw new errors.InvalidUploadLength('is smaller than the upload offset')
  const limit = tus.sizeLimit(info)
  if (length > limit) throw new errors.MaxSizeExceeded(limit)
  if (!canDeferLength(tus.store)) throw new errors.DeferLengthUnsupported()
  await tus.store.declareLength(info.id, length)
  return { ...info, size: length }
}
