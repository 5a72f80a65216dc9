/**
 * PATCH: append a chunk at the upload's offset. The body streams into the store; whatever
 * arrives is kept, also when the client goes away, the body stalls or a newer request takes over.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { canDeferLength, isComplete, type UploadInfo } from '../../stores/store.js'
import { requireVersion, uploadId } from '../checks.js'
import * as errors from '../errors.js'
import { header, mediaType, OFFSET_OCTET_STREAM, parseInteger } from '../headers.js'
import { endError, receive } from '../receive.js'
import type { Tus } from '../tus.js'

export async function handlePatch (tus: Tus, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  requireVersion(request)
  if (mediaType(request.headers['content-type']) !== OFFSET_OCTET_STREAM) throw new errors.InvalidContentType()
  const offset = parseInteger(header(request.headers, 'upload-offset'))
  if (offset === undefined) throw new errors.InvalidOffset()
  const lengthHeader = header(request.headers, 'upload-length')
  const length = parseInteger(lengthHeader)
  if (lengthHeader !== undefined && length === undefined) throw new errors.InvalidUploadLength('must be a non-negative integer')
  const id = uploadId(request)

  const result = await tus.withLock(request, id, async (session) => {
    let info = await tus.store.get(id)
    if (offset !== info.offset) throw new errors.MismatchedOffset(offset, info.offset)
    if (length !== undefined) info = await applyLength(tus, info, length)
    if (isComplete(info)) return { offset: info.offset, error: undefined }
    const received = await receive(tus, request, session, info)
    return { offset: received.offset, error: endError(received.reason) }
  })
  if (result.error !== undefined) throw result.error
  reply.header('Upload-Offset', String(result.offset))
  reply.code(204).send()
}

/** `Upload-Length` on a PATCH: sets a deferred length once; it may never change afterwards. */
async function applyLength (tus: Tus, info: UploadInfo, length: number): Promise<UploadInfo> {
  if (info.size !== undefined) {
    if (info.size !== length) throw new errors.InvalidUploadLength('cannot change once set')
    return info
  }
  if (length < info.offset) throw new errors.InvalidUploadLength('is smaller than the upload offset')
  if (tus.options.maxSize > 0 && length > tus.options.maxSize) throw new errors.MaxSizeExceeded(tus.options.maxSize)
  if (!canDeferLength(tus.store)) throw new errors.DeferLengthUnsupported()
  await tus.store.declareLength(info.id, length)
  return { ...info, size: length }
}
