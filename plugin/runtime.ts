/**
 * The runtime the routes get (not public): `app.tus` for options, store, events and metrics, the
 * hook registry, sessions and locks (plugin/sessions.ts), and the steps the handlers share:
 * authorize, finish and what follows the response, progress, limits and expiry.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { canServe, canTerminate, type DataStore, type UploadInfo } from '../stores/store.js'
import * as errors from './errors.js'
import { checkPreFinishResult, HOOK_NAMES, HookRegistry, type Action, type FinishResponse } from './hooks.js'
import type { TusMetrics } from './metrics.js'
import type { ResolvedOptions } from './options.js'
import { stateOf } from './request-state.js'
import { Sessions, type UploadSession } from './sessions.js'
import { Tus, type TusEvents } from './tus.js'

export class Runtime {
  /** The public face, decorated as `app.tus`. */
  readonly tus: Tus
  readonly options: Readonly<ResolvedOptions>
  readonly store: DataStore
  readonly hooks = new HookRegistry()
  readonly metrics: TusMetrics | undefined
  readonly extensions: readonly string[]
  readonly sessions: Sessions
  readonly #closed = new AbortController()

  constructor (options: Readonly<ResolvedOptions>, metrics?: TusMetrics) {
    this.options = options
    this.metrics = metrics
    this.store = metrics === undefined ? options.store : metrics.instrument(options.store)
    this.tus = new Tus(options, this.store, this.hooks, this.#closed.signal, metrics)
    this.extensions = this.tus.extensions
    this.sessions = new Sessions({ locker: options.locker, acquireLockTimeout: options.acquireLockTimeout, metrics, events: this.tus })
    for (const name of HOOK_NAMES) {
      const given = options.hooks[name]
      for (const fn of Array.isArray(given) ? given : given === undefined ? [] : [given]) this.hooks.add(name, fn)
    }
    if (metrics !== undefined) this.#observe(metrics)
  }

  /** Feeds the metrics from the runtime's events. */
  #observe (metrics: TusMetrics): void {
    const tus = this.tus
    tus.on('upload-complete', () => { metrics.uploadsFinished.inc() })
    tus.on('upload-terminated', () => { metrics.uploadsTerminated.inc() })
    tus.on('chunk-written', ({ bytes }) => { if (bytes > 0) metrics.bytesReceived.inc(bytes) })
    tus.on('lock-wait', ({ ms, timedOut, acquired }) => {
      metrics.observeLockWait(ms, acquired ? 'acquired' : timedOut ? 'timeout' : 'failed')
    })
  }

  /** Full URL path of the collection, with a trailing slash. */
  get basePath (): string {
    return this.tus.basePath
  }

  set basePath (path: string) {
    this.tus.basePath = path
  }

  emit<K extends keyof TusEvents> (name: K, ...args: TusEvents[K]): boolean {
    return (this.tus.emit as (name: K, ...args: TusEvents[K]) => boolean)(name, ...args)
  }

  listenerCount (name: keyof TusEvents): number {
    return this.tus.listenerCount(name)
  }

  /** The URL of an upload (see `Tus.location`). */
  location (request: FastifyRequest, id: string): string {
    return this.tus.location(request, id)
  }

  get closing (): boolean {
    return this.sessions.closing
  }

  /** Ends every body in flight and the `completedUploads` iterations. */
  shutdown (): void {
    this.#closed.abort()
    this.sessions.shutdown()
  }

  async withLock<T> (request: FastifyRequest, id: string, work: (session: UploadSession) => Promise<T>, shared = false): Promise<T> {
    return await this.sessions.withLock(request, id, work, shared)
  }

  async withSession<T> (request: FastifyRequest, work: (session: UploadSession) => Promise<T>): Promise<T> {
    return await this.sessions.withSession(request, work)
  }

  /** An upload's state read under its lock, shared by the HEADs that wait together. */
  async readLocked (request: FastifyRequest, id: string): Promise<UploadInfo> {
    return await this.sessions.readLocked(request, id, async (id, session) => await this.store.get(id, { lease: session.lease }))
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
   * The upload just completed in this request: run `preFinish` (which may set the response's
   * status, headers and body), and arrange for `onUploadComplete` and the `upload-complete` event
   * once the response is sent. Returns the status and body `preFinish` asked for, if any; `creation`
   * says the request created the upload (its `Location` is the upload's URL).
   */
  async finish (request: FastifyRequest, reply: FastifyReply, upload: UploadInfo, creation = false): Promise<FinishResponse> {
    const response: FinishResponse = {}
    const headers: Record<string, string> = {}
    for (const fn of this.hooks.list('preFinish')) {
      const result = await fn(request, upload)
      if (result === undefined || result === null) continue
      checkPreFinishResult(result, creation)
      if (result.headers !== undefined) Object.assign(headers, result.headers)
      if (result.status !== undefined) response.status = result.status
      if (result.body !== undefined) response.body = result.body
    }
    if (response.status === 204 && response.body !== undefined) throw new TypeError('preFinish asked for a 204 with a body')
    // applied once every result passed its checks: a refused one sends nothing of what the hooks asked for
    reply.headers(headers)
    stateOf(request).completed = upload
    request.log.info({ event: 'tus.upload.finished', size: upload.size }, 'tus upload finished')
    return response
  }

  /** Called after every response of the scope: delivers what `finish` arranged. */
  async afterResponse (request: FastifyRequest): Promise<void> {
    const upload = request.tusState?.completed
    if (upload === undefined) return
    await this.notify(request, 'onUploadComplete', upload)
    this.tus.emit('upload-complete', { request, upload })
  }

  /** Reports progress to `onUploadProgress` hooks and `upload-progress` listeners; never blocks the body. */
  progress (request: FastifyRequest, upload: UploadInfo, progress: { bytes: number, offset: number }): void {
    const current = { ...upload, offset: progress.offset }
    this.tus.emit('upload-progress', { request, upload: current, ...progress })
    for (const fn of this.hooks.list('onUploadProgress')) {
      Promise.resolve()
        .then(async () => { await fn(request, current, progress) })
        .catch((err: unknown) => request.log.error({ err, hook: 'onUploadProgress' }, 'tus hook failed'))
    }
  }

  get wantsProgress (): boolean {
    return this.hooks.has('onUploadProgress') || this.tus.listenerCount('upload-progress') > 0
  }

  /**
   * The plugin's `maxSize` for this request, Infinity for no limit. A function is asked once per
   * request, with the upload's id (`null` when there is none, OPTIONS); its answer must be a
   * non-negative safe integer (else a TypeError, a logged 500); what it throws fails the request.
   */
  async maxSize (request: FastifyRequest, id: string | null): Promise<number> {
    const configured = this.options.maxSize
    if (typeof configured === 'number') return configured > 0 ? configured : Number.POSITIVE_INFINITY
    const state = stateOf(request)
    if (state.maxSize !== undefined) return state.maxSize
    const value: unknown = await configured(request, id)
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
      throw new TypeError(`the maxSize function returned ${String(value)}: use a non-negative integer (0 = no limit)`)
    }
    state.maxSize = value > 0 ? value : Number.POSITIVE_INFINITY
    return state.maxSize
  }

  /** The most bytes an upload may have in this request: the plugin's `maxSize` and the upload's own limit. */
  async sizeLimit (request: FastifyRequest, upload: Pick<UploadInfo, 'maxSize'> & { id?: string }): Promise<number> {
    const global = await this.maxSize(request, upload.id ?? null)
    return Math.min(global, upload.maxSize ?? Number.POSITIVE_INFINITY)
  }

  /** Runs hooks whose errors must not reach the client: they are logged. */
  async notify (request: FastifyRequest, name: 'onUploadComplete' | 'postTerminate' | 'postCreate', upload: UploadInfo): Promise<void> {
    for (const fn of this.hooks.list(name)) {
      try {
        await fn(request, upload)
      } catch (err) {
        request.log.error({ err, hook: name }, 'tus hook failed')
      }
    }
  }

  get canTerminate (): boolean {
    return !this.options.disableTermination && canTerminate(this.store)
  }

  get canServe (): boolean {
    return !this.options.disableDownload && canServe(this.store)
  }

  /** When an unfinished upload expires (`undefined` if it never does). */
  expiresAt (upload: UploadInfo): Date | undefined {
    return this.tus.expiresAt(upload)
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
}
