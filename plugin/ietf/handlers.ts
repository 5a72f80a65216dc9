/**
 * The draft dialect's handlers. They map the draft's headers onto the same runtime the tus v1
 * handlers use (hooks, locks, the body pipeline, `finish`), and the outcome back onto the
 * version's headers and statuses; no upload logic of their own.
 *
 * Completion: an upload is complete when its length is known and reached. A request that says it
 * completes the upload (`Upload-Complete: ?1`, or interop 3 without `Upload-Incomplete: ?1`) fixes
 * the length: from `Content-Length` before the body, or, for a chunked body, from the offset
 * once the body has arrived whole.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { canDeferLength, canTerminate, isComplete, type Metadata, type UploadInfo } from '../../stores/store.js'
import { contentLength, hasBody, uploadId } from '../checks.js'
import * as errors from '../errors.js'
import { setDiscoveryHeaders } from '../discovery.js'
import { header, mediaType, parseMetadata } from '../headers.js'
import { sendHead } from '../head-reply.js'
import { finishStatus } from '../hooks.js'
import { append, createUpload, declareLength, receiveChunk, status, terminate, type Received } from '../lifecycle.js'
import { stateOf } from '../request-state.js'
import type { Runtime } from '../runtime.js'
import type { UploadSession } from '../sessions.js'
import {
  completionHeader, integerField, PARTIAL_UPLOAD, present, requestCompletes, RESUMPTION_STATUS, uploadLimit
} from './headers.js'
import { sendInformational } from './informational.js'
import type { VersionRules } from './versions.js'
import { checkOrigin } from '../urls.js'

export type DraftHandler = (tus: Runtime, request: FastifyRequest, reply: FastifyReply, rules: VersionRules) => Promise<void>

const RESUMPTION_REASON = 'Upload Resumption Supported'

/** `Upload-Limit` for an upload (or the collection): size limit and, while unfinished, its remaining lifetime. */
async function limitFor (tus: Runtime, request: FastifyRequest, rules: VersionRules, info?: UploadInfo): Promise<string> {
  const maxSize = await tus.sizeLimit(request, info ?? {})
  const at = info === undefined ? undefined : tus.expiresAt(info)
  return uploadLimit(rules, {
    maxSize: Number.isFinite(maxSize) ? maxSize : undefined,
    lifetime: at === undefined ? undefined : (at.getTime() - Date.now()) / 1000
  })
}

/** The upload's state as the version spells it: offset, completion and (6+) the limits. */
async function stateHeaders (tus: Runtime, request: FastifyRequest, reply: FastifyReply, rules: VersionRules, info: UploadInfo): Promise<void> {
  reply.header('Upload-Offset', String(info.offset))
  reply.header(...completionHeader(rules, isComplete(info)))
  if (rules.uploadLimit) reply.header('Upload-Limit', await limitFor(tus, request, rules, info))
}

/** Progress 104s (5+) with the offset the store has taken in; never with a `Location`. */
function progressReporter (tus: Runtime, request: FastifyRequest, reply: FastifyReply, rules: VersionRules): ((offset: number) => void) | undefined {
  if (!tus.options.ietfInformational) return undefined
  // a chunk verified by Upload-Checksum may still be discarded: no early acknowledgement then
  if (!rules.progressInformational || header(request.headers, 'upload-checksum') !== undefined) return undefined
  let last = -1
  return (offset) => {
    if (offset <= last) return
    last = offset
    sendInformational(request, reply, RESUMPTION_STATUS, RESUMPTION_REASON, {
      'Upload-Draft-Interop-Version': String(rules.version),
      'Upload-Offset': String(offset)
    })
  }
}

function requireCompletion (request: FastifyRequest, rules: VersionRules, required: boolean): boolean {
  const completes = requestCompletes(request, rules)
  if (completes !== undefined) return completes
  const name = rules.completionField === 'upload-incomplete' ? 'Upload-Incomplete' : 'Upload-Complete'
  if (required || present(request, rules.completionField)) throw new errors.InvalidUploadComplete(name)
  return true
}

function lengthField (request: FastifyRequest): number | undefined {
  const length = integerField(request, 'upload-length')
  if (length === undefined && present(request, 'upload-length')) throw new errors.InvalidUploadLength('must be a non-negative integer')
  return length
}

const FILENAME = /(?:^|;)\s*filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i

/**
 * Metadata of a draft creation: `Upload-Metadata` (tus-js-client sends it), the media type and
 * file name; values that are not UTF-8 also go to `binary`.
 */
function draftMetadata (request: FastifyRequest, binary: Metadata): Metadata {
  const metadata = parseMetadata(header(request.headers, 'upload-metadata'), binary)
  const type = mediaType(request.headers['content-type'])
  if (type !== undefined && type !== PARTIAL_UPLOAD && metadata.filetype === undefined) {
    metadata.filetype = (request.headers['content-type'] as string).trim()
  }
  const match = FILENAME.exec(header(request.headers, 'content-disposition') ?? '')
  const filename = match?.[1]?.replace(/\\(.)/g, '$1') ?? match?.[2]
  if (filename !== undefined && metadata.filename === undefined) metadata.filename = filename
  return metadata
}

/** Creation: POST (or PUT/PATCH) on the collection with the completion field. */
export const draftCreate: DraftHandler = async (tus, request, reply, rules) => {
  await tus.hooks.run('authorize', request, undefined, 'create')
  checkOrigin(tus.options, request)
  const completes = requireCompletion(request, rules, true)
  const declaredLength = lengthField(request)
  const declared = contentLength(request)
  let size = declaredLength
  if (completes && declared !== undefined) {
    if (size !== undefined && size !== declared) throw new errors.InconsistentLength(`Upload-Length ${size} but the request completes the upload with ${declared} bytes`)
    size = declared
  }
  if (size !== undefined && declared !== undefined && declared > size) throw new errors.InconsistentLength(`Upload-Length ${size} but the request carries ${declared} bytes`)
  if (size === undefined && !canDeferLength(tus.store)) throw new errors.DeferLengthUnsupported()
  const withBody = hasBody(request)
  const announced = tus.options.ietfInformational
  const binaryMetadata: Metadata = Object.create(null) as Metadata
  const creation = { concat: undefined, size, withBody, metadata: draftMetadata(request, binaryMetadata), binaryMetadata, announced }
  // the 104 tells the client the URL while this request still holds the upload's lock: a resume
  // (HEAD, then PATCH at the offset) interrupts the body here, as it would a PATCH
  const { info, failure } = await createUpload(tus, request, reply, creation, async (created, session) => {
    const location = tus.location(request, created.id)
    reply.header('Location', location)
    const interim: Record<string, string> = { 'Upload-Draft-Interop-Version': String(rules.version), Location: location }
    if (rules.uploadLimit) interim['Upload-Limit'] = await limitFor(tus, request, rules, created)
    if (announced) sendInformational(request, reply, RESUMPTION_STATUS, RESUMPTION_REASON, interim)
    if (withBody) {
      const progress = progressReporter(tus, request, reply, rules)
      let received: Settled
      try {
        received = await settleLength(tus, request, created, await receiveDraft(tus, request, session, created, progress), completes)
      } catch (err) {
        if (rules.invalidateOnOverrun && isOverrun(request, err as Error)) throw await invalidate(tus, request, created)
        throw err
      }
      // 8: a creation whose (chunked) body goes past its Upload-Length leaves an invalid upload, as an append does
      if (rules.invalidateOnOverrun && isOverrun(request, received.error)) {
        reply.removeHeader('Location')
        throw await invalidate(tus, request, created)
      }
      if (received.reason === 'stopped') {
        reply.removeHeader('Location')
        throw received.error
      }
      return { info: { ...created, offset: received.offset, size: received.size }, failure: received.error }
    }
    if (completes && created.size === undefined) {
      // an empty creation that completes: a zero-length upload
      return { info: await declareLength(tus, request, created, 0, lengthBelowOffset), failure: undefined }
    }
    return { info: created, failure: undefined }
  }).catch(async (err: unknown) => {
    // above the size limit: the client learns the limit
    if (err instanceof errors.MaxSizeExceeded && rules.uploadLimit) reply.header('Upload-Limit', await limitFor(tus, request, rules))
    throw err
  })
  await stateHeaders(tus, request, reply, rules, info)
  if (failure !== undefined) throw failure
  const finished = isComplete(info) ? await tus.finish(request, reply, info, true) : undefined
  reply.code(finishStatus(201, finished)).send(finished?.body)
}

const lengthBelowOffset = (): Error => new errors.InconsistentLength('Upload-Length is smaller than the upload offset')

/**
 * `receive`, where a body that goes past a known length is an inconsistent length (400), as the
 * draft has it, rather than tus's 413. The bytes before the length are kept but never the one
 * that reaches it: only a request whose body ends there completes the upload, never an overrun.
 */
async function receiveDraft (tus: Runtime, request: FastifyRequest, session: UploadSession, info: UploadInfo, progress?: (offset: number) => void): Promise<Received> {
  const overrun = (): Error => (stateOf(request).overrun = new errors.InconsistentLength(`the body goes past the upload length of ${String(info.size)}`))
  try {
    const got = await receiveChunk(tus, request, session, info, { onProgress: progress, holdLimitByte: info.size !== undefined })
    return got.reason === 'too-large' && info.size !== undefined ? { ...got, error: overrun() } : got
  } catch (err) {
    if (err instanceof errors.UploadSizeExceeded && info.size !== undefined) throw overrun()
    throw err
  }
}

/** Whether `err` is the overrun `receiveDraft` reported for this request. */
function isOverrun (request: FastifyRequest, err: Error | undefined): boolean {
  return err !== undefined && request.tusState?.overrun === err
}

/**
 * 8: an append that went past the length leaves an invalid upload (draft -08 on); it is removed,
 * so the mark lasts across restarts and instances and every later request on it is a 404.
 */
async function invalidate (tus: Runtime, request: FastifyRequest, info: UploadInfo): Promise<Error> {
  const store = tus.store
  if (!canTerminate(store)) return new errors.InconsistentLength(`the body goes past the upload length of ${String(info.size)}`)
  await store.remove(info.id)
  request.log.info({ event: 'tus.upload.invalidated' }, 'tus draft upload invalidated by an append past its length')
  tus.emit('upload-terminated', { request, upload: info })
  await tus.notify(request, 'postTerminate', info)
  return new errors.UploadInvalidated(String(info.size))
}

interface Settled extends Received {
  size: number | undefined
}

/**
 * After a body: a completing request whose body arrived whole fixes a deferred length at the
 * offset; one that fell short of a known length is an inconsistent length (its bytes are kept).
 */
async function settleLength (tus: Runtime, request: FastifyRequest, info: UploadInfo, received: Received, completes: boolean): Promise<Settled> {
  let size = info.size
  let error = received.error
  if (completes && received.reason === 'complete') {
    if (size === undefined) {
      size = (await declareLength(tus, request, { ...info, offset: received.offset }, received.offset, lengthBelowOffset)).size
    } else if (received.offset !== size) {
      error = new errors.InconsistentLength(`the upload was completed at ${received.offset} bytes but its length is ${size}`)
    }
  }
  return { ...received, size, error }
}

/** Append: PATCH on the upload with `Upload-Offset` and the completion field. */
export const draftAppend: DraftHandler = async (tus, request, reply, rules) => {
  if (rules.partialUploadType && mediaType(request.headers['content-type']) !== PARTIAL_UPLOAD) throw new errors.InvalidContentType(PARTIAL_UPLOAD)
  const offset = integerField(request, 'upload-offset')
  if (offset === undefined) throw new errors.InvalidOffset()
  const completes = requireCompletion(request, rules, rules.completionRequiredOnAppend)
  const length = lengthField(request)
  const declared = contentLength(request)
  const id = uploadId(request)
  const result = await append(tus, request, reply, id, {
    prepare: async (info) => {
      // errors from here on tell the client where the upload stands (a lower bound if bytes follow)
      reply.header('Upload-Offset', String(info.offset))
      if (info.concat?.kind === 'final') throw new errors.ModifyFinal()
      if (isComplete(info)) {
        if (rules.completedAppend === 'completed-upload') throw new errors.UploadCompleted()
        if (hasBody(request)) throw new errors.InconsistentLength('the upload is already complete')
        throw new errors.UploadCompletedGone()
      }
      tus.checkNotExpired(info)
      if (offset !== info.offset) {
        stateOf(request).offsets = { expected: info.offset, provided: offset }
        throw new errors.MismatchedOffset(offset, info.offset)
      }
      const end = completes && declared !== undefined ? offset + declared : undefined
      const known = info.size ?? length
      if (length !== undefined && info.size !== undefined && length !== info.size) throw new errors.InconsistentLength(`Upload-Length ${length} but the upload's length is ${info.size}`)
      if (known !== undefined && end !== undefined && known !== end) throw new errors.InconsistentLength(`the request ends the upload at ${end} bytes but its length is ${known}`)
      const target = known ?? end
      // an empty request that declares the length at the offset completes the upload here
      if (info.size === undefined && target !== undefined) return await declareLength(tus, request, info, target, lengthBelowOffset)
      return info
    },
    receive: async (info, session) => {
      let got: Settled
      try {
        got = await settleLength(tus, request, info, await receiveDraft(tus, request, session, info, progressReporter(tus, request, reply, rules)), completes)
      } catch (err) {
        if (rules.invalidateOnOverrun && isOverrun(request, err as Error)) throw await invalidate(tus, request, info)
        throw err
      }
      if (rules.invalidateOnOverrun && isOverrun(request, got.error)) {
        return { info: { ...info, offset: got.offset }, completed: false, error: await invalidate(tus, request, info) }
      }
      const after = { ...info, offset: got.offset, size: got.size }
      return { info: after, completed: got.reason !== 'stopped' && isComplete(after), error: got.error }
    }
  })
  await stateHeaders(tus, request, reply, rules, result.info)
  if (result.error !== undefined) throw result.error
  reply.code(finishStatus(result.completed ? 204 : rules.appendStatus, result.finished)).send(result.finished?.body)
}

/** 3-6: HEAD and DELETE must not carry the headers of a creation or append. */
function rejectUploadHeaders (request: FastifyRequest, rules: VersionRules, method: string): void {
  if (!rules.rejectUploadHeadersOnHeadDelete) return
  const names = ['upload-offset', rules.completionField]
  if (rules.lengthInHead) names.push('upload-length')
  for (const name of names) {
    if (present(request, name)) throw new errors.UnexpectedUploadHeader(name, method)
  }
}

/** Offset retrieval: HEAD on the upload. Takes the lock, so a stalled append gives way at once. */
export const draftHead: DraftHandler = async (tus, request, reply, rules) => {
  rejectUploadHeaders(request, rules, 'HEAD')
  const info = await status(tus, request, uploadId(request))
  reply.header('Cache-Control', 'no-store')
  tus.checkNotExpired(info)
  reply.header('Upload-Offset', String(info.offset))
  reply.header(...completionHeader(rules, isComplete(info)))
  if (rules.lengthInHead && info.size !== undefined) reply.header('Upload-Length', String(info.size))
  if (rules.limitInHead) reply.header('Upload-Limit', await limitFor(tus, request, rules, info))
  sendHead(reply, rules.headStatus)
}

/** Cancellation: DELETE on the upload, 204 (the tus termination, with the version's checks). */
export const draftDelete: DraftHandler = async (tus, request, reply, rules) => {
  rejectUploadHeaders(request, rules, 'DELETE')
  await terminate(tus, request, uploadId(request))
  reply.code(204).send()
}

/** OPTIONS: the tus discovery headers, plus `Upload-Limit` (6+) and `Accept-Patch` (8). */
export const draftOptions: DraftHandler = async (tus, request, reply, rules) => {
  if (rules.uploadLimit) reply.header('Upload-Limit', await limitFor(tus, request, rules))
  if (rules.acceptPatch) reply.header('Accept-Patch', PARTIAL_UPLOAD)
  await setDiscoveryHeaders(tus, request, reply)
  reply.code(204).send()
}
