/**
 * POST on the collection: `creation`, `creation-defer-length` and `creation-with-upload`.
 * and `concatenation` (partial and final uploads). Order: authorize (before anything is named
 * or sized; for a final upload also each part, as 'concat'), header checks, preCreate, the new
 * id's lock, create (a final one is filled from its parts while they are locked), postCreate,
 * the body, unlock, and preFinish if that completed the upload.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { canDeferLength, isComplete, type Concat, type Metadata } from '../../stores/store.js'
import { hasTusBody, requireVersion } from '../checks.js'
import * as errors from '../errors.js'
import { parseConcat, withParts } from '../concat.js'
import { header, parseInteger, parseMetadata } from '../headers.js'
import { finishStatus } from '../hooks.js'
import { createUpload, receiveChunk } from '../lifecycle.js'
import type { Runtime } from '../runtime.js'
import { checkOrigin } from '../urls.js'

export async function handlePost (tus: Runtime, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  requireVersion(request)
  await tus.hooks.run('authorize', request, undefined, 'create')
  checkOrigin(tus.options, request)
  const concat = parseConcat(tus, request)
  const withBody = hasTusBody(request)
  if (concat?.kind === 'final') {
    if (withBody) throw new errors.ModifyFinal()
    // the client must be allowed to read every part it names, asked before any lock is taken
    for (const id of concat.parts) await tus.authorize(request, id, 'concat')
    await withParts(tus, request, concat.parts, async (parts) => {
      const size = parts.reduce((sum, part) => sum + (part.size ?? 0), 0)
      await create(tus, request, reply, { concat, size, withBody: false })
    })
    return
  }
  await create(tus, request, reply, { concat, size: uploadLength(tus, request), withBody })
}

export interface Creation {
  concat: Concat | undefined
  size: number | undefined
  withBody: boolean
}

async function create (tus: Runtime, request: FastifyRequest, reply: FastifyReply, { concat, size, withBody }: Creation): Promise<void> {
  const binaryMetadata: Metadata = Object.create(null) as Metadata
  const metadata = parseMetadata(header(request.headers, 'upload-metadata'), binaryMetadata)
  const { info, received } = await createUpload(tus, request, reply, { concat, size, withBody, metadata, binaryMetadata }, async (info, session) => {
    return { info, received: withBody ? await receiveChunk(tus, request, session, info) : undefined }
  })
  reply.header('Location', tus.location(request, info.id))
  tus.setExpires(reply, info, new Date())
  let after = info
  if (received !== undefined) {
    after = { ...info, offset: received.offset }
    reply.header('Upload-Offset', String(received.offset))
    tus.setExpires(reply, after, new Date())
    // the upload exists whatever happened to the body: the client learns its URL and offset,
    // except when it sent more than it declared or a hook stopped (and removed) it
    if (received.reason === 'stopped') {
      reply.removeHeader('Location')
      reply.removeHeader('Upload-Offset')
      throw received.error
    }
    if (received.reason === 'too-large') throw received.error
  }
  const finished = isComplete(after) ? await tus.finish(request, reply, after, true) : undefined
  reply.code(finishStatus(201, finished)).send(finished?.body)
}

/** The declared length, or `undefined` for a deferred one; every malformed combination is a 400. */
function uploadLength (tus: Runtime, request: FastifyRequest): number | undefined {
  const length = header(request.headers, 'upload-length')
  const defer = header(request.headers, 'upload-defer-length')
  if (length !== undefined && defer !== undefined) throw new errors.AmbiguousUploadLength()
  if (defer !== undefined) {
    if (defer !== '1') throw new errors.InvalidDeferLength()
    if (!canDeferLength(tus.store)) throw new errors.DeferLengthUnsupported()
    return undefined
  }
  const size = parseInteger(length)
  if (size === undefined) {
    throw new errors.InvalidUploadLength(length === undefined ? 'is required (or Upload-Defer-Length: 1)' : 'must be a non-negative integer')
  }
  // above `maxSize`: 413 from createUpload, which asks a maxSize function with the new id
  return size
}
