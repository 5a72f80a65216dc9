/**
 * POST on the collection: `creation`, `creation-defer-length` and `creation-with-upload`.
 * and `concatenation` (partial and final uploads). Order: authorize (before anything is named
 * or sized; for a final upload also each part, as 'concat'), header checks, preCreate, the new
 * id's lock, create (a final one is filled from its parts while they are locked), postCreate,
 * the body, unlock, and preFinish if that completed the upload.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { canConcat, canDeferLength, isComplete, UploadExists, UploadNotFound, type Concat, type Metadata, type NewUpload, type UploadInfo } from '../../stores/store.js'
import { contentLength, hasTusBody, requireVersion } from '../checks.js'
import * as errors from '../errors.js'
import { parseConcat, withParts } from '../concat.js'
import { header, parseInteger, parseMetadata } from '../headers.js'
import { runPreCreate, type UploadDraft } from '../hooks.js'
import { receive } from '../receive.js'
import { UPLOAD_ID } from '../../stores/ids.js'
import type { Runtime } from '../runtime.js'
import type { UploadSession } from '../sessions.js'

export async function handlePost (tus: Runtime, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  requireVersion(request)
  await tus.hooks.run('authorize', request, undefined, 'create')
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

interface Creation {
  concat: Concat | undefined
  size: number | undefined
  withBody: boolean
}

async function create (tus: Runtime, request: FastifyRequest, reply: FastifyReply, { concat, size, withBody }: Creation): Promise<void> {
  const binaryMetadata: Metadata = Object.create(null) as Metadata
  const metadata = parseMetadata(header(request.headers, 'upload-metadata'), binaryMetadata)
  const { info, received } = await createUpload(tus, request, { concat, size, withBody, metadata, binaryMetadata }, async (info, session) => {
    return { info, received: withBody ? await receive(tus, request, session, info) : undefined }
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
  const body = isComplete(after) ? await tus.finish(request, reply, after) : undefined
  reply.code(201).send(body)
}

export interface NewUploadRequest extends Creation {
  metadata: Metadata
  /** Base64 of the metadata values that are not UTF-8 (empty or absent when there are none). */
  binaryMetadata?: Metadata
  /** The dialect tells the client the upload's URL before the response (the draft's 104). */
  announced?: boolean
}

/**
 * The creation steps both dialects share: preCreate, the size checks, the store, the
 * `upload-created` event and postCreate, then `work` (the body, if any). From the moment the
 * upload exists until `work` is done, the request holds its lock, so a client that learns the id
 * early (a hook, an event, a 104, a chosen id) and resumes interrupts this request as a newer
 * PATCH would, instead of writing beside it. Only a creation nobody can learn of before the
 * response goes without: a random id, no body, no 104 and no postCreate hook or event listener.
 */
export async function createUpload<T> (tus: Runtime, request: FastifyRequest, creation: NewUploadRequest, work: (info: UploadInfo, session: UploadSession) => Promise<T>): Promise<T> {
  const { concat, size, withBody, metadata, binaryMetadata } = creation
  if (withBody && tus.closing) throw new errors.ServerShutdown()

  const generated = await newId(tus, request)
  let draft: UploadDraft = { id: generated, metadata }
  if (binaryMetadata !== undefined && Object.keys(binaryMetadata).length > 0) draft.binaryMetadata = binaryMetadata
  if (size !== undefined) draft.size = size
  if (concat !== undefined) draft.concat = concat
  let hookLimit: number | undefined
  if (tus.hooks.has('preCreate')) {
    ({ draft, maxSize: hookLimit } = await runPreCreate(tus.hooks, request, draft))
    if (!UPLOAD_ID.test(draft.id)) throw new Error(`preCreate returned an invalid upload id ${JSON.stringify(draft.id)}`)
  }
  const limit = tus.sizeLimit({ maxSize: hookLimit })
  if (size !== undefined && size > limit) throw new errors.MaxSizeExceeded(limit)
  const declared = contentLength(request)
  if (withBody && declared !== undefined && size !== undefined && declared > size) throw new errors.UploadSizeExceeded()

  const upload: NewUpload = { ...draft }
  if (hookLimit !== undefined) upload.maxSize = hookLimit
  const make = async (session: UploadSession): Promise<T> => {
    let info = await tus.store.create(upload)
    request.log.info({ event: 'tus.upload.created', uploadId: info.id, size, metadataKeys: Object.keys(info.metadata), concat: concat?.kind }, 'tus upload created')
    if (concat?.kind === 'final' && canConcat(tus.store)) {
      await tus.store.concat(info.id, concat.parts)
      info = { ...info, offset: info.size ?? 0 }
    }
    tus.metrics?.uploadsCreated.inc()
    tus.emit('upload-created', { request, upload: info })
    await tus.notify(request, 'postCreate', info)
    return await work(info, session)
  }
  const chosen = tus.options.generateId !== undefined || upload.id !== generated
  // an id that may already be taken: refuse before asking its holder to let go of the lock
  if (chosen) await refuseExisting(tus, upload.id)
  const known = chosen || withBody || creation.announced === true || tus.hooks.has('postCreate') || tus.listenerCount('upload-created') > 0
  return known ? await tus.withLock(request, upload.id, make) : await tus.withSession(request, make)
}

async function refuseExisting (tus: Runtime, id: string): Promise<void> {
  try {
    await tus.store.get(id)
  } catch (err) {
    if (err instanceof UploadNotFound) return
    throw err
  }
  throw new UploadExists(id)
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
  if (size > tus.sizeLimit({})) throw new errors.MaxSizeExceeded(tus.options.maxSize)
  return size
}

async function newId (tus: Runtime, request: FastifyRequest): Promise<string> {
  // 122 random bits as 32 hex digits; randomUUID draws from a pool, randomBytes asks the system each time
  if (tus.options.generateId === undefined) return randomUUID().replaceAll('-', '')
  const id = await tus.options.generateId(request)
  if (typeof id !== 'string' || !UPLOAD_ID.test(id)) {
    throw new Error(`generateId returned an invalid upload id ${JSON.stringify(id)}: use 1-100 characters of [A-Za-z0-9_-]`)
  }
  return id
}
