/**
 * The plugin's runtime, decorated as `app.tus`: the resolved options, the store and locker, the
 * extensions the store supports, the upload lock dance and the bodies in flight (so a shutdown
 * can end them cleanly).
 */
import { EventEmitter, on } from 'node:events'
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify'
import { LockTimeout as LockerTimeout, LockUnavailable } from '../locks/locker.js'
import type { Lock, ReleaseReason } from '../locks/locker.js'
import {
  OffsetMismatch, StoreFull as StoreFullError, UnsafeFile, UploadExists, UploadNotFound as StoreNotFound,
  canConcat, canDeferLength, canExpire, canServe, canTerminate, isComplete
} from '../stores/store.js'
import type { DataStore, UploadInfo } from '../stores/store.js'
import type { EndReason, StopReason, UploadBody } from './body.js'
import * as errors from './errors.js'
import { HookRegistry, HOOK_NAMES, type Action, type HookName, type TusHooks } from './hooks.js'
import type { TusMetrics } from './metrics.js'
import type { ResolvedOptions } from './options.js'

/** One request's hold on an upload: a release request or a shutdown stops its body. */
export class UploadSession {
  body: UploadBody | undefined
  stopped: StopReason | undefined
  /** What the client gets when a hook stopped the upload (`Tus.stopUpload`). */
  stopError: Error | undefined

  stop (reason: StopReason): void {
    this.stopped ??= reason
    this.body?.stop(this.stopped)
  }

  attach (body: UploadBody): void {
    this.body = body
    if (this.stopped !== undefined) body.stop(this.stopped)
  }
}

export interface UploadEvent {
  request: FastifyRequest
  upload: UploadInfo
}

export interface ProgressEvent extends UploadEvent {
  /** Bytes this request has delivered so far. */
  bytes: number
  /** The upload's offset now. */
  offset: number
}

export interface ChunkEvent extends UploadEvent {
  /** Bytes stored by this request. */
  bytes: number
  /** Milliseconds the body took. */
  ms: number
  /** How the body ended. */
  reason: EndReason
}

export interface LockWaitEvent {
  request: FastifyRequest
  id: string
  /** Milliseconds spent waiting for the lock. */
  ms: number
  /** Whether the wait hit `acquireLockTimeout` (the request is answered 423). */
  timedOut: boolean
  /** Whether the lock was acquired. */
  acquired: boolean
}

/** Events of `app.tus`, with their payloads. */
export interface TusEvents {
  'upload-created': [UploadEvent]
  'upload-progress': [ProgressEvent]
  'upload-complete': [UploadEvent]
  'upload-terminated': [UploadEvent]
  'chunk-written': [ChunkEvent]
  'lock-wait': [LockWaitEvent]
}

const kCompleted = Symbol('fastify-tus.completed')

export class Tus extends EventEmitter<TusEvents> {
  readonly options: Readonly<ResolvedOptions>
  readonly store: DataStore
  readonly hooks = new HookRegistry()
  /** Prometheus metrics, when the `metrics` option is on. */
  readonly metrics: TusMetrics | undefined
  /** The tus extensions this endpoint offers, as sent in `Tus-Extension`. */
  readonly extensions: readonly string[]
  /** Full URL path of the collection, with a trailing slash (known once the routes are registered). */
  basePath: string
  #closing = false
  readonly #sessions = new Set<UploadSession>()
  readonly #requestSessions = new WeakMap<FastifyRequest, UploadSession>()

  readonly #closed = new AbortController()
  /** Reads of an upload (HEAD) still waiting for its lock, shared by the requests that join them. */
  readonly #waitingReads = new Map<string, Promise<UploadInfo>>()
  /** The expiration sweep under way, if any. */
  #sweep: Promise<number> | undefined

  constructor (options: Readonly<ResolvedOptions>, metrics?: TusMetrics) {
    super()
    this.options = options
    this.metrics = metrics
    this.store = this.metrics === undefined ? options.store : this.metrics.instrument(options.store)
    this.basePath = options.path
    this.extensions = Object.freeze(listExtensions(options))
    for (const name of HOOK_NAMES) {
      const given = options.hooks[name]
      for (const fn of Array.isArray(given) ? given : given === undefined ? [] : [given]) this.hooks.add(name, fn)
    }
    if (this.metrics !== undefined) this.#observe(this.metrics)
  }

  /** Feeds the metrics from the runtime's events. */
  #observe (metrics: TusMetrics): void {
    this.on('upload-complete', () => { metrics.uploadsFinished.inc() })
    this.on('upload-terminated', () => { metrics.uploadsTerminated.inc() })
    this.on('chunk-written', ({ bytes }) => { if (bytes > 0) metrics.bytesReceived.inc(bytes) })
    this.on('lock-wait', ({ ms, timedOut, acquired }) => {
      metrics.observeLockWait(ms, acquired ? 'acquired' : timedOut ? 'timeout' : 'failed')
    })
  }

  /** Adds a lifecycle hook; several per name run in the order they were added. */
  addHook<K extends HookName> (name: K, fn: TusHooks[K]): this {
    this.hooks.add(name, fn)
    return this
  }

  /**
   * Completed uploads as an async iterator (the counterpart of tusd's CompleteUploads channel).
   * Uploads completed while the consumer is busy are buffered; the iteration ends when the app
   * closes or `signal` aborts.
   */
  async * completedUploads (signal?: AbortSignal): AsyncGenerator<UploadEvent> {
    const stop = signal === undefined ? this.#closed.signal : AbortSignal.any([signal, this.#closed.signal])
    try {
      for await (const [event] of on(this, 'upload-complete', { signal: stop })) {
        yield event as UploadEvent
      }
    } catch (err) {
      if ((err as { name?: string }).name !== 'AbortError') throw err
    }
  }

  /**
   * `authorize` for a request on an existing upload. Runs before the upload's lock is taken, so
   * a request that is not allowed can never interrupt one that is. Without authorize hooks this
   * costs nothing.
   */
  async authorize (request: FastifyRequest, id: string, action: Action): Promise<void> {
    if (!this.hooks.has('authorize')) return
    const upload = await this.store.get(id)
    await this.hooks.run('authorize', request, upload, action)
  }

  /**
   * The upload just completed in this request: run `preFinish` (which may shape the response),
   * and arrange for `onUploadComplete` and the `upload-complete` event once the response is sent.
   * Returns the body `preFinish` asked for, if any.
   */
  async finish (request: FastifyRequest, reply: FastifyReply, upload: UploadInfo): Promise<unknown> {
    let body: unknown
    for (const fn of this.hooks.list('preFinish')) {
      const result = await fn(request, upload)
      if (result === undefined || result === null) continue
      if (result.headers !== undefined) reply.headers(result.headers)
      if (result.body !== undefined) body = result.body
    }
    (request as unknown as Record<symbol, UploadInfo>)[kCompleted] = upload
    request.log.info({ event: 'tus.upload.finished', uploadId: upload.id, size: upload.size }, 'tus upload finished')
    return body
  }

  /** Called after every response of the scope: delivers what `finish` arranged. */
  async afterResponse (request: FastifyRequest): Promise<void> {
    const upload = (request as unknown as Record<symbol, UploadInfo | undefined>)[kCompleted]
    if (upload === undefined) return
    await this.notify(request, 'onUploadComplete', upload)
    this.emit('upload-complete', { request, upload })
  }

  /** Reports progress to `onUploadProgress` hooks and `upload-progress` listeners; never blocks the body. */
  progress (request: FastifyRequest, upload: UploadInfo, progress: { bytes: number, offset: number }): void {
    const current = { ...upload, offset: progress.offset }
    this.emit('upload-progress', { request, upload: current, ...progress })
    for (const fn of this.hooks.list('onUploadProgress')) {
      Promise.resolve()
        .then(async () => { await fn(request, current, progress) })
        .catch((err: unknown) => request.log.error({ err, uploadId: upload.id, hook: 'onUploadProgress' }, 'tus hook failed'))
    }
  }

  get wantsProgress (): boolean {
    return this.hooks.has('onUploadProgress') || this.listenerCount('upload-progress') > 0
  }

  /**
   * Stops the upload whose body `request` is sending (tusd's `StopUpload`), typically from an
   * `onUploadProgress` hook or an `upload-progress` listener: the body ends, the upload is
   * terminated (when the store can remove uploads) so it cannot be resumed, and the client gets
   * `error` (default 400 `ERR_UPLOAD_STOPPED`). Returns `false` when the request is not sending
   * a body any more (too late: the chunk was already stored).
   */
  stopUpload (request: FastifyRequest, error?: Error): boolean {
    const session = this.#requestSessions.get(request)
    if (session === undefined || session.body?.reason !== undefined || session.stopped !== undefined) return false
    session.stopError = error
    session.stop('stopped')
    return true
  }

  /** The most bytes an upload may have: the plugin's `maxSize` and the upload's own limit. */
  sizeLimit (upload: Pick<UploadInfo, 'maxSize'>): number {
    const global = this.options.maxSize > 0 ? this.options.maxSize : Number.POSITIVE_INFINITY
    return Math.min(global, upload.maxSize ?? Number.POSITIVE_INFINITY)
  }

  /** Runs hooks whose errors must not reach the client: they are logged. */
  async notify (request: FastifyRequest, name: 'onUploadComplete' | 'postTerminate' | 'postCreate', upload: UploadInfo): Promise<void> {
    for (const fn of this.hooks.list(name)) {
      try {
        await fn(request, upload)
      } catch (err) {
        request.log.error({ err, uploadId: upload.id, hook: name }, 'tus hook failed')
      }
    }
  }

  get closing (): boolean {
    return this.#closing
  }

  get canTerminate (): boolean {
    return !this.options.disableTermination && canTerminate(this.store)
  }

  get canServe (): boolean {
    return !this.options.disableDownload && canServe(this.store)
  }

  /** When an unfinished upload expires (`undefined` if it never does). */
  expiresAt (upload: UploadInfo): Date | undefined {
    if (this.options.expiration === 0 || isComplete(upload)) return undefined
    return new Date(upload.updatedAt.getTime() + this.options.expiration)
  }

  /** 410 for an unfinished upload past its expiry (it may still be on disk until the next sweep). */
  checkNotExpired (upload: UploadInfo): void {
    const at = this.expiresAt(upload)
    if (at !== undefined && at.getTime() <= Date.now()) throw new errors.UploadExpired()
  }

  /** Sets `Upload-Expires` for an unfinished upload whose last activity was `activity`. */
  setExpires (reply: FastifyReply, upload: UploadInfo, activity = upload.updatedAt): void {
    const at = this.expiresAt({ ...upload, updatedAt: activity })
    if (at !== undefined) reply.header('Upload-Expires', at.toUTCString())
  }

  /**
   * Deletes unfinished uploads whose last activity is older than `expiration`; completed uploads
   * are never touched. Resolves with how many were removed (0 when expiration is off). Never two
   * sweeps at once: a call made while one runs joins it (and gets its count).
   */
  async removeExpired (): Promise<number> {
    if (this.options.expiration === 0 || !canExpire(this.store)) return 0
    const store = this.store
    this.#sweep ??= store.removeExpired(new Date(Date.now() - this.options.expiration)).finally(() => { this.#sweep = undefined })
    return await this.#sweep
  }

  /** Ends every body in flight (their bytes are kept); new bodies are refused with 503. */
  shutdown (): void {
    this.#closing = true
    this.#closed.abort()
    for (const session of this.#sessions) session.stop('shutdown')
  }

  /**
   * Takes the upload's lock for the duration of `work`. A newer request for the same upload
   * stops this one's body; waiting longer than `acquireLockTimeout` is a 423.
   */
  async withLock<T> (request: FastifyRequest, id: string, work: (session: UploadSession) => Promise<T>, shared = false): Promise<T> {
    const session = new UploadSession()
    const lock = await this.#acquire(request, id, shared, (reason) => {
      request.log.info({ event: 'tus.lock.release-requested', uploadId: id, reason }, 'tus upload lock release requested')
      session.stop(reason === 'lost' ? 'lost' : 'interrupted')
    })
    this.metrics?.locksHeld.inc()
    try {
      return await this.withSession(request, work, session)
    } finally {
      await lock.unlock().catch((err: unknown) => request.log.warn({ err, uploadId: id }, 'tus unlock failed'))
      this.metrics?.locksHeld.dec()
    }
  }

  /**
   * Runs `work` with a session (shutdown and `stopUpload` can stop its body) but no lock: for the
   * body of an upload nobody else can know yet (created by this very request under a random id).
   */
  async withSession<T> (request: FastifyRequest, work: (session: UploadSession) => Promise<T>, session = new UploadSession()): Promise<T> {
    this.#sessions.add(session)
    this.#requestSessions.set(request, session)
    if (this.#closing) session.stop('shutdown')
    try {
      return await work(session)
    } finally {
      this.#sessions.delete(session)
      this.#requestSessions.delete(request)
    }
  }

  /**
   * An upload's state read under its lock (HEAD). Requests that arrive while such a read still
   * waits for the lock share it: the read happens after all of them arrived, so each sees the
   * upload as it is after its own arrival, and a storm of HEADs costs one lock hand-over.
   */
  async readLocked (request: FastifyRequest, id: string): Promise<UploadInfo> {
    const waiting = this.#waitingReads.get(id)
    if (waiting !== undefined) return await waiting
    const read: Promise<UploadInfo> = this.withLock(request, id, async () => {
      if (this.#waitingReads.get(id) === read) this.#waitingReads.delete(id)
      return await this.store.get(id)
    }, true)
    this.#waitingReads.set(id, read)
    try {
      return await read
    } finally {
      if (this.#waitingReads.get(id) === read) this.#waitingReads.delete(id)
    }
  }

  async #acquire (request: FastifyRequest, id: string, shared: boolean, onReleaseRequested: (reason: ReleaseReason) => void): Promise<Lock> {
    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort(new Error('lock wait timed out'))
    }, this.options.acquireLockTimeout)
    // a wait shared by several requests does not end when the first one's client goes away
    const socket = shared ? undefined : request.raw.socket
    const onClose = (): void => controller.abort(new Error('client went away'))
    socket?.once('close', onClose)
    const started = this.listenerCount('lock-wait') > 0 ? performance.now() : 0
    let acquired = false
    try {
      const lock = await this.options.locker.lock(id, { signal: controller.signal, onReleaseRequested })
      acquired = true
      return lock
    } finally {
      clearTimeout(timer)
      socket?.off('close', onClose)
      if (!acquired && timedOut) request.log.info({ event: 'tus.lock.timeout', uploadId: id, timeoutMs: this.options.acquireLockTimeout }, 'tus upload lock wait timed out')
      if (started > 0) this.emit('lock-wait', { request, id, ms: performance.now() - started, timedOut: timedOut && !acquired, acquired })
    }
  }

  /** The URL of an upload, absolute unless `relativeLocation` is set. */
  location (request: FastifyRequest, id: string): string {
    const path = `${this.basePath}${id}`
    if (this.options.relativeLocation) return path
    const { proto, host } = this.options.respectForwardedHeaders ? forwarded(request) : { proto: request.protocol, host: request.host }
    return `${proto}://${host}${path}`
  }

  /**
   * Turns anything thrown while serving a request into an error that is safe to send: coded
   * HTTP errors pass, store and locker errors get their status, the rest becomes a generic 500
   * whose detail is logged only.
   */
  toHttpError (err: unknown, log: FastifyBaseLogger): Error {
    if (err instanceof StoreNotFound) return new errors.UploadNotFound()
    if (err instanceof LockerTimeout) return new errors.LockTimeout()
    if (err instanceof LockUnavailable) {
      log.error({ err }, 'tus locker unavailable')
      return new errors.LockerUnavailable({ cause: err })
    }
    if (err instanceof OffsetMismatch) return new errors.MismatchedOffset(err.actual, err.expected)
    if (err instanceof StoreFullError) {
      log.error({ err }, 'tus store is full')
      return new errors.StoreFull()
    }
    if (err instanceof UnsafeFile) {
      log.error({ err }, 'tus upload file is a link or not a regular file: not followed')
      return new errors.UnsafeUploadFile()
    }
    if (err instanceof UploadExists) {
      log.error({ err }, 'tus upload id collision')
      return new errors.InternalError({ cause: err })
    }
    if (isHttpError(err)) return err
    log.error({ err }, 'tus request failed')
    return new errors.InternalError({ cause: err })
  }
}

/** An error meant for the client: it carries a 4xx/5xx `statusCode` (Fastify's convention). */
export function isHttpError (err: unknown): err is Error & { statusCode: number } {
  if (!(err instanceof Error)) return false
  const status = (err as { statusCode?: unknown }).statusCode
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599
}

function listExtensions (options: ResolvedOptions): string[] {
  const list = ['creation', 'creation-with-upload']
  if (!options.disableTermination && canTerminate(options.store)) list.push('termination')
  if (!options.disableConcatenation && canConcat(options.store)) list.push('concatenation')
  if (canDeferLength(options.store)) list.push('creation-defer-length')
  list.push('checksum', 'checksum-trailer')
  if (options.expiration > 0 && canExpire(options.store)) list.push('expiration')
  return list
}

const FORWARDED_HOST = /(?:^|[;,\s])host="?([^;,"]+)"?/i
const FORWARDED_PROTO = /(?:^|[;,\s])proto="?(https?)"?/i
const SAFE_HOST = /^[A-Za-z0-9.:[\]-]+$/

/** Host and protocol as the client saw them, from proxy headers (the first hop wins). */
function forwarded (request: FastifyRequest): { proto: string, host: string } {
  let proto = request.protocol as string
  let host = request.host
  const headers = request.headers
  const xHost = first(headers['x-forwarded-host'])
  const xProto = first(headers['x-forwarded-proto'])
  if (xHost !== undefined) host = xHost
  if (xProto === 'http' || xProto === 'https') proto = xProto
  const standard = first(headers.forwarded)
  if (standard !== undefined) {
    const firstHop = standard.split(',')[0] ?? ''
    const hostMatch = FORWARDED_HOST.exec(firstHop)
    const protoMatch = FORWARDED_PROTO.exec(firstHop)
    if (hostMatch?.[1] !== undefined) host = hostMatch[1]
    if (protoMatch?.[1] !== undefined) proto = protoMatch[1].toLowerCase()
  }
  if (!SAFE_HOST.test(host)) host = request.host
  if ((proto === 'http' && host.endsWith(':80')) || (proto === 'https' && host.endsWith(':443'))) {
    host = host.slice(0, host.lastIndexOf(':'))
  }
  return { proto, host }
}

function first (value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value
  const trimmed = text?.split(',')[0]?.trim()
  return trimmed === '' ? undefined : trimmed
}
