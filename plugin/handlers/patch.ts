/**
 * PATCH: append a chunk at the upload's offset. The body streams into the store; whatever
 * arrives is kept, also when the client goes away, the body stalls or a newer request takes over.
 * The steps are the lifecycle's (plugin/lifecycle.ts); here are tus's headers and checks.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { isComplete } from '../../stores/store.js'
import { requireVersion, uploadId } from '../checks.js'
import * as errors from '../errors.js'
import { header, mediaType, OFFSET_OCTET_STREAM, parseInteger } from '../headers.js'
import { finishStatus } from '../hooks.js'
import { append, declareLength, receiveChunk } from '../lifecycle.js'
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

  const result = await append(tus, request, reply, id, {
    prepare: async (info) => {
      if (info.concat?.kind === 'final') throw new errors.ModifyFinal()
      tus.checkNotExpired(info)
      if (offset !== info.offset) throw new errors.MismatchedOffset(offset, info.offset)
      if (length === undefined) return info
      // `Upload-Length` on a PATCH sets a deferred length once; it may never change afterwards
      if (info.size !== undefined) {
        if (info.size !== length) throw new errors.InvalidUploadLength('cannot change once set')
        return info
      }
      return await declareLength(tus, request, info, length, () => new errors.InvalidUploadLength('is smaller than the upload offset'))
    },
    receive: async (info, session) => {
      const received = await receiveChunk(tus, request, session, info)
      const after = { ...info, offset: received.offset }
      // a stopped upload is gone, even when its last byte arrived
      return { info: after, completed: received.reason !== 'stopped' && isComplete(after), error: received.error }
    }
  })
  if (result.error !== undefined) throw result.error
  reply.header('Upload-Offset', String(result.info.offset))
  tus.setExpires(reply, result.info, new Date())
  reply.code(finishStatus(204, result.finished)).send(result.finished?.body)
}
