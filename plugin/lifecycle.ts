/**
 * The upload lifecycle both dialects share (tus v1 in plugin/handlers/, the IETF draft in
 * plugin/ietf/): create, append, status and terminate, each with the hooks, locks, events and
 * store calls in their fixed order, returning an outcome the dialect renders as its headers or
 * as problem+json. This is the one place a chunk is received (`receiveChunk`) and a deferred
 * length is declared (`declareLength`). The handlers only parse headers and render.
 */
import { randomUUID } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { UPLOAD_ID } from '../stores/ids.js'
import {
  canConcat, canDeferLength, canPlace, canTerminate, isComplete, UploadExists, UploadNotFound,
  type Concat, type Metadata, type NewUpload, type UploadInfo
} from '../stores/store.js'
import { contentLength } from './checks.js'
import * as errors from './errors.js'
import { logUpload } from './request-state.js'
import { runPreCreate, type FinishResponse, type UploadDraft } from './hooks.js'
import { receive, type Received } from './receive.js'
import type { Runtime } from './runtime.js'
import type { UploadSession } from './sessions.js'

export type { Received } from './receive.js'

/* Create */

export interface NewUploadRequest {
  concat: Concat | undefined
  size: number | undefined
  withBody: boolean
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
export async function createUpload<T> (tus: Runtime, request: FastifyRequest, reply: FastifyReply, creation: NewUploadRequest, work: (info: UploadInfo, session: UploadSession) => Promise<T>): Promise<T> {
  const { concat, size, withBody, metadata, binaryMetadata } = creation
  if (withBody && tus.closing) throw new errors.ServerShutdown()

  const generated = await newId(tus, request)
  // the plugin's limit for this request, before any hook runs (a function of the request gets the new id)
  const configured = await tus.maxSize(request, generated)
  if (size !== undefined && size > configured) throw new errors.MaxSizeExceeded(configured)
  let draft: UploadDraft = { id: generated, metadata }
  if (binaryMetadata !== undefined && Object.keys(binaryMetadata).length > 0) draft.binaryMetadata = binaryMetadata
  if (size !== undefined) draft.size = size
  if (concat !== undefined) draft.concat = concat
  let hookLimit: number | undefined
  if (tus.hooks.has('preCreate')) {
    ({ draft, maxSize: hookLimit } = await runPreCreate(tus.hooks, request, draft))
    if (!UPLOAD_ID.test(draft.id)) throw new errors.InvalidHook(`preCreate returned an invalid upload id ${JSON.stringify(draft.id)}`)
    if (draft.storage !== undefined) checkStorage(tus, draft.storage)
  }
  logUpload(request, reply, draft.id)
  const limit = Math.min(configured, hookLimit ?? Number.POSITIVE_INFINITY)
  if (size !== undefined && size > limit) throw new errors.MaxSizeExceeded(limit)
  const declared = contentLength(request)
  if (withBody && declared !== undefined && size !== undefined && declared > size) throw new errors.UploadSizeExceeded()

  const upload: NewUpload = { ...draft }
  if (hookLimit !== undefined) upload.maxSize = hookLimit
  const make = async (session: UploadSession): Promise<T> => {
    let info = await tus.store.create(upload, { lease: session.lease })
    request.log.info({ event: 'tus.upload.created', size, metadataKeys: Object.keys(info.metadata), concat: concat?.kind }, 'tus upload created')
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
  // with leases, the lock taken now is the next request's for free (and so is its read)
  return known || tus.options.locker.leases === true ? await tus.withLock(request, upload.id, make) : await tus.withSession(request, make)
}

/** A storage the store can honour: it places uploads and knows every field asked for. */
function checkStorage (tus: Runtime, storage: Record<string, string>): void {
  const store = tus.store
  if (!canPlace(store)) throw new errors.StorageUnsupported('this store keeps every upload in its own place')
  const unknown = Object.keys(storage).filter((field) => !store.storageFields.includes(field))
  if (unknown.length > 0) throw new errors.StorageUnsupported(`this store takes ${store.storageFields.join(', ')}, not ${unknown.join(', ')}`)
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

async function newId (tus: Runtime, request: FastifyRequest): Promise<string> {
  // 122 random bits as 32 hex digits; randomUUID draws from a pool, randomBytes asks the system each time
  if (tus.options.generateId === undefined) return randomUUID().replaceAll('-', '')
  const id = await tus.options.generateId(request)
  if (typeof id !== 'string' || !UPLOAD_ID.test(id)) {
    throw new errors.InvalidHook(`generateId returned an invalid upload id ${JSON.stringify(id)}: use 1-100 characters of [A-Za-z0-9_-]`)
  }
  return id
}

/* Receive and declare a length */

/** Options of `receiveChunk`: the draft's 104s and its holding back of the length's last byte. */
export interface ReceiveOptions {
  /** Sees the offset the store has taken in, on the schedule of the progress hooks. */
  onProgress?: (offset: number) => void
  /** A body that goes past the upload's length stores one byte short of it. */
  holdLimitByte?: boolean
}

/** Receives one chunk of the upload into the store, under the request's session. */
export async function receiveChunk (tus: Runtime, request: FastifyRequest, session: UploadSession, info: UploadInfo, options: ReceiveOptions = {}): Promise<Received> {
  return await receive(tus, request, session, info, options.onProgress, options.holdLimitByte === true)
}

/**
 * Fixes the length of an upload created without one: `tooSmall` is the dialect's error for a
 * length below the offset; above the size limit is 413, a store that cannot defer lengths 501.
 */
export async function declareLength (tus: Runtime, request: FastifyRequest, info: UploadInfo, length: number, tooSmall: () => Error): Promise<UploadInfo> {
  if (length < info.offset) throw tooSmall()
  const limit = await tus.sizeLimit(request, info)
  if (length > limit) throw new errors.MaxSizeExceeded(limit)
  const store = tus.store
  if (!canDeferLength(store)) throw new errors.DeferLengthUnsupported()
  await store.declareLength(info.id, length)
  return { ...info, size: length }
}

/* Append */

/** How an append ended: the upload as it stands, whether this request completed it, what went wrong. */
export interface Outcome {
  info: UploadInfo
  completed: boolean
  error: Error | undefined
  /** The status and body `preFinish` hooks asked for, when the request completed the upload. */
  finished?: FinishResponse
}

export interface AppendSteps {
  /**
   * The dialect's checks on the upload under its lock, before anything is read: the offset, the
   * lengths; it may declare the length (`declareLength`) and returns the upload as it then is.
   */
  prepare: (info: UploadInfo) => Promise<UploadInfo>
  /** Receives the body (through `receiveChunk`) and says how it ended. */
  receive: (info: UploadInfo, session: UploadSession) => Promise<Outcome>
}

/**
 * Append: authorize, the upload's lock, read it, the dialect's checks, the body, unlock, then
 * `preFinish` when this request completed the upload. An upload the checks complete (a deferred
 * length declared at its offset) reads no body.
 */
export async function append (tus: Runtime, request: FastifyRequest, reply: FastifyReply, id: string, steps: AppendSteps): Promise<Outcome> {
  await tus.authorize(request, id, 'patch')
  const outcome = await tus.withLock(request, id, async (session): Promise<Outcome> => {
    const stored = await tus.store.get(id, { lease: session.lease })
    const wasComplete = isComplete(stored)
    const info = await steps.prepare(stored)
    if (isComplete(info)) return { info, completed: !wasComplete, error: undefined }
    return await steps.receive(info, session)
  })
  if (outcome.completed) outcome.finished = await tus.finish(request, reply, outcome.info)
  return outcome
}

/* Status */

/** Status: authorize, then the upload read under its lock (shared by HEADs that wait together). */
export async function status (tus: Runtime, request: FastifyRequest, id: string): Promise<UploadInfo> {
  await tus.authorize(request, id, 'head')
  return await tus.readLocked(request, id)
}

/* Terminate */

/**
 * Terminate: authorize, the lock, the upload (a completed one is refused with
 * `disableTerminationForFinishedUploads`), `preTerminate`, remove; then the event and `postTerminate`.
 */
export async function terminate (tus: Runtime, request: FastifyRequest, id: string): Promise<UploadInfo> {
  const store = tus.store
  if (!canTerminate(store)) throw new Error('the store cannot terminate uploads')
  await tus.authorize(request, id, 'delete')
  const upload = await tus.withLock(request, id, async () => {
    const info = await store.get(id)
    if (tus.options.disableTerminationForFinishedUploads && isComplete(info)) throw new errors.FinishedTermination()
    await tus.hooks.run('preTerminate', request, info)
    await store.remove(id)
    return info
  })
  request.log.info({ event: 'tus.upload.terminated', offset: upload.offset, reason: 'deleted' }, 'tus upload terminated')
  tus.emit('upload-terminated', { request, upload })
  await tus.notify(request, 'postTerminate', upload)
  return upload
}
