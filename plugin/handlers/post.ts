/**
 * POST on the collection: `creation`, `creation-defer-length` and `creation-with-upload`.
 * and `concatenation` (partial and final uploads). Order: authorize (before anything is named
 * or sized), header checks, preCreate, create (a final one is filled from its parts while they
 * are locked), postCreate, the body, and preFinish if that completed the upload.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { canConcat, canDeferLength, isComplete, type Concat, type Metadata, type NewUpload, type UploadInfo } from '../../stores/store.js'
import { contentLength, hasTusBody, requireVersion } from '../checks.js'
import * as errors from '../errors.js'
import { parseConcat, withParts } from '../concat.js'
import { header, parseInteger, parseMetadata } from '../headers.js'
import { runPreCreate, type UploadDraft } from '../hooks.js'
import { receive } from '../receive.js'
import { UPLOAD_ID, type Tus, type UploadSession } from '../tus.js'

export async function handlePost (tus: Tus, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  requireVersion(request)
  await tus.hooks.run('authorize', request, undefined, 'create')
  const concat = parseConcat(tus, request)
  const withBody = hasTusBody(request)
  if (concat?.kind === 'final') {
    if (withBody) throw new errors.ModifyFinal()
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

async function create (tus: Tus, request: FastifyRequest, reply: FastifyReply, { concat, size, withBody }: Creation): Promise<void> {
  const metadata = parseMetadata(header(request.headers, 'upload-metadata'))
  const created = await createUpload(tus, request, { concat, size, withBody, metadata })
  let info = created.info
  reply.header('Location', tus.location(request, info.id))
  tus.setExpires(reply, info, new Date())

  if (withBody) {
    const received = await underCreationLock(tus, request, created, async (session) => await receive(tus, request, session, info))
    info = { ...info, offset: received.offset }
    reply.header('Upload-Offset', String(received.offset))
    tus.setExpires(reply, info, new Date())
    // the upload exists whatever happened to the body: the client learns its URL and offset,
    // except when it sent more than it declared or a hook stopped (and removed) it
    if (received.reason === 'stopped') {
      reply.removeHeader('Location')
      reply.removeHeader('Upload-Offset')
      throw received.error
    }
    if (received.reason === 'too-large') throw received.error
  }
  const body = isComplete(info) ? await tus.finish(request, reply, info) : undefined
  reply.code(201).send(body)
}

export interface NewUploadRequest extends Creation {
  metadata: Metadata
}

export interface CreatedUpload {
  info: UploadInfo
  /** The id this plugin generated (a hook or `generateId` may have replaced it). */
  generated: string
}

/**
 * The creation steps both dialects share: preCreate, the size checks, the store, the
 * `upload-created` event and postCreate. The body is not read here.
 */
export async function createUpload (tus: Tus, request: FastifyRequest, { concat, size, withBody, metadata }: NewUploadRequest): Promise<CreatedUpload> {
  if (withBody && tus.closing) throw new errors.ServerShutdown()

  const generated = await newId(tus, request)
  let draft: UploadDraft = { id: generated, metadata }
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
  let info = await tus.store.create(upload)
  request.log.info({ event: 'tus.upload.created', uploadId: info.id, size, metadataKeys: Object.keys(info.metadata), concat: concat?.kind }, 'tus upload created')
  if (concat?.kind === 'final' && canConcat(tus.store)) {
    await tus.store.concat(info.id, concat.parts)
    info = { ...info, offset: info.size ?? 0 }
  }
  tus.emit('upload-created', { request, upload: info })
  await tus.notify(request, 'postCreate', info)
  return { info, generated }
}

/** Runs the first body of a new upload: under its lock unless nobody else can know its id yet. */
export async function underCreationLock<T> (tus: Tus, request: FastifyRequest, { info, generated }: CreatedUpload, work: (session: UploadSession) => Promise<T>): Promise<T> {
  // a random id nobody has seen yet needs no lock; an id from generateId or preCreate might be known
  const guessable = tus.options.generateId !== undefined || info.id !== generated
  return guessable ? await tus.withLock(request, info.id, work) : await tus.withSession(request, work)
}

/** The declared length, or `undefined` for a deferred one; every malformed combination is a 400. */
function uploadLength (tus: Tus, request: FastifyRequest): number | undefined {
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

async function newId (tus: Tus, request: FastifyRequest): Promise<string> {
  // 122 random bits as 32 hex digits; randomUUID draws from a pool, randomBytes asks the system each time
  if (tus.options.generateId === undefined) return randomUUID().replaceAll('-', '')
  const id = await tus.options.generateId(request)
  if (typeof id !== 'string' || !UPLOAD_ID.test(id)) {
    throw new Error(`generateId returned an invalid upload id ${JSON.stringify(id)}: use 1-100 characters of [A-Za-z0-9_-]`)
  }
  return id
}
