/**
 * Receiving one chunk: the shared part of PATCH and creation-with-upload. Builds the body
 * pipeline with the right byte limit, hands it to the store under the request's lock session,
 * reports progress, and maps how the body ended to the answer the client gets.
 */
import type { FastifyRequest } from 'fastify'
import type { Readable } from 'node:stream'
import { canTerminate, type UploadInfo } from '../stores/store.js'
import { UploadBody, type EndReason } from './body.js'
import { contentLength } from './checks.js'
import { checksumFor } from './checksum.js'
import * as errors from './errors.js'
import type { Runtime } from './runtime.js'
import type { UploadSession } from './sessions.js'

export interface Received {
  /** The upload's offset after the chunk. */
  offset: number
  /** Bytes stored by this request. */
  bytes: number
  /** How the body ended. */
  reason: EndReason
  /** What to answer when the body did not end normally. */
  error: Error | undefined
}

/**
 * `onProgress` (the IETF dialect's 104s) sees the offset the store has taken in, on the same
 * schedule as the progress hooks. `holdLimitByte` (the IETF dialect): a body that goes past the
 * upload's length stores one byte short of it, so an overrun never completes the upload.
 */
export async function receive (tus: Runtime, request: FastifyRequest, session: UploadSession, info: UploadInfo, onProgress?: (offset: number) => void, holdLimitByte = false): Promise<Received> {
  if (tus.closing) throw new errors.ServerShutdown()
  const limit = await byteLimit(tus, request, info)
  const declared = contentLength(request)
  // refuse before reading when the client announces too much
  if (declared !== undefined && declared > limit) throw new errors.UploadSizeExceeded()
  const verifier = checksumFor(request.raw)
  const started = performance.now()
  const body = new UploadBody(bodyStream(request), { limit, idleTimeout: tus.options.networkTimeout, onData: verifier?.onData, holdLimitByte })
  session.attach(body)
  const notify = tus.wantsProgress
  const stopProgress = notify || onProgress !== undefined ? reportProgress(tus, request, info, body, notify, onProgress) : undefined
  const metrics = tus.metrics
  metrics?.uploadsActive.inc()
  let bytes: number
  try {
    bytes = await tus.store.write(info.id, {
      offset: info.offset,
      body,
      lease: session.lease,
      beforeCommit: verifier === undefined ? undefined : () => { verifier.verify(body.reason === 'complete') }
    })
  } catch (err) {
    // a body that did not arrive whole cannot be verified: it was discarded, and the client
    // learns why it stopped rather than a mismatch
    if (!(err instanceof errors.ChecksumMismatch) || body.reason === 'complete' || body.reason === undefined) throw err
    bytes = 0
  } finally {
    // a store that returned (or failed) without reading to the end: stop reading for it
    if (body.reason === undefined) body.stop('interrupted')
    stopProgress?.()
    metrics?.uploadsActive.dec()
  }
  const reason = await body.ended
  const ms = performance.now() - started
  const offset = info.offset + bytes
  request.log.debug({ event: 'tus.chunk.written', bytes, offset, durationMs: Math.round(ms), reason }, 'tus chunk written')
  if (reason !== 'complete') {
    request.log.info({ event: 'tus.upload.interrupted', reason, bytes, offset }, 'tus upload interrupted')
  }
  if (tus.listenerCount('chunk-written') > 0) tus.emit('chunk-written', { request, upload: { ...info, offset }, bytes, ms, reason })
  if (reason === 'stopped') {
    await terminateStopped(tus, request, { ...info, offset })
    return { offset, bytes, reason, error: session.stopError ?? new errors.UploadStopped() }
  }
  return { offset, bytes, reason, error: endError(reason) }
}

/** A hook stopped the upload: it is removed (when the store can), so it cannot be resumed. */
async function terminateStopped (tus: Runtime, request: FastifyRequest, upload: UploadInfo): Promise<void> {
  const store = tus.store
  if (!canTerminate(store)) {
    request.log.info({ event: 'tus.upload.stopped', terminated: false }, 'tus upload stopped by a hook (the store cannot remove it)')
    return
  }
  try {
    await store.remove(upload.id)
  } catch (err) {
    // the client is told the upload stopped either way
    request.log.error({ err }, 'tus could not remove a stopped upload')
    return
  }
  request.log.info({ event: 'tus.upload.terminated', reason: 'stopped' }, 'tus upload stopped by a hook and terminated')
  tus.emit('upload-terminated', { request, upload })
  await tus.notify(request, 'postTerminate', upload)
}

/** The error that matches a body's end, or `undefined` when it ended normally. */
export function endError (reason: EndReason): Error | undefined {
  switch (reason) {
    case 'complete': return undefined
    case 'too-large': return new errors.UploadSizeExceeded()
    case 'timeout': return new errors.ReadTimeout()
    case 'aborted': return new errors.UnexpectedEof()
    case 'interrupted': return new errors.UploadInterrupted()
    case 'lost': return new errors.LockLost()
    case 'shutdown': return new errors.ServerShutdown()
    case 'stopped': return new errors.UploadStopped()
  }
}

/** The raw body: the stream our content-type parser passed through, or the request itself. */
export function bodyStream (request: FastifyRequest): Readable {
  const body = request.body as Readable | undefined
  return typeof body === 'object' && body !== null && typeof body.pipe === 'function' ? body : request.raw
}

/**
 * How many bytes this chunk may carry: up to the upload's length, or for a deferred length up to the
 * size limit of this request. An upload longer than this request's limit (a `maxSize` function that
 * answers less now) takes no more bytes: 413.
 */
async function byteLimit (tus: Runtime, request: FastifyRequest, info: UploadInfo): Promise<number> {
  const limit = await tus.sizeLimit(request, info)
  if (info.size !== undefined) {
    if (info.size > limit) throw new errors.MaxSizeExceeded(limit)
    return info.size - info.offset
  }
  return limit - info.offset
}

/**
 * Reports progress every `progressInterval` ms while bytes arrive, and once at the end; `onProgress`
 * only while the body still streams (the final response follows at once anyway).
 */
function reportProgress (tus: Runtime, request: FastifyRequest, info: UploadInfo, body: UploadBody, notify: boolean, onProgress?: (offset: number) => void): () => void {
  let reported = -1
  let taken = 0
  const report = (): void => {
    // bytes the store has read (not those still buffered in the pipeline): the store keeps them
    const read = body.bytes - body.readableLength
    if (onProgress !== undefined && body.reason === undefined && read > taken) {
      taken = read
      onProgress(info.offset + read)
    }
    if (!notify || body.bytes === reported) return
    reported = body.bytes
    tus.progress(request, info, { bytes: body.bytes, offset: info.offset + body.bytes })
  }
  const timer = setInterval(report, tus.options.progressInterval)
  return () => {
    clearInterval(timer)
    reported = -1
    report()
  }
}
