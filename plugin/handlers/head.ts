/** HEAD: where an upload stands. Takes the lock, so a stalled PATCH for it gives way at once. */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { UploadInfo } from '../../stores/store.js'
import { checkVersionIfPresent, uploadId } from '../checks.js'
import { concatHeader } from '../concat.js'
import { sendHead } from '../head-reply.js'
import { serializeMetadata } from '../headers.js'
import { status } from '../lifecycle.js'
import type { Runtime } from '../runtime.js'

export async function handleHead (tus: Runtime, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  checkVersionIfPresent(request)
  const id = uploadId(request)
  const info = await status(tus, request, id)
  reply.header('Cache-Control', 'no-store')
  tus.checkNotExpired(info)
  setUploadHeaders(reply, info)
  if (info.concat !== undefined) reply.header('Upload-Concat', concatHeader(tus, request, info.concat))
  tus.setExpires(reply, info)
  sendHead(reply, 200)
}

/** The headers that describe an upload's state (HEAD, and the IETF dialect). */
export function setUploadHeaders (reply: FastifyReply, info: UploadInfo): void {
  reply.header('Upload-Offset', String(info.offset))
  if (info.size === undefined) {
    reply.header('Upload-Defer-Length', '1')
  } else {
    reply.header('Upload-Length', String(info.size))
  }
  const metadata = serializeMetadata(info.metadata, info.binaryMetadata)
  if (metadata !== '') reply.header('Upload-Metadata', metadata)
}
