/**
 * `app.tus`, the plugin's public face: the resolved options, the store, the extensions it offers,
 * its events and hooks, `stopUpload`, `completedUploads`, `removeExpired` and the metrics. The
 * routes work through the internal runtime (plugin/runtime.ts), which is not public.
 */
import { EventEmitter, on } from 'node:events'
import type { FastifyRequest } from 'fastify'
import { canConcat, canDeferLength, canExpire, canTerminate, isComplete } from '../stores/store.js'
import type { DataStore, UploadInfo } from '../stores/store.js'
import type { EndReason } from './body.js'
import type { HookRegistry, HookName, TusHooks } from './hooks.js'
import type { TusMetrics } from './metrics.js'
import type { ResolvedOptions } from './options.js'
import type { TusRequestState } from './request-state.js'
import { uploadUrl } from './urls.js'

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

export class Tus extends EventEmitter<TusEvents> {
  readonly options: Readonly<ResolvedOptions>
  readonly store: DataStore
  /** Prometheus metrics, when the `metrics` option is on. */
  readonly metrics: TusMetrics | undefined
  /** The tus extensions this endpoint offers, as sent in `Tus-Extension`. */
  readonly extensions: readonly string[]
  /** Full URL path of the collection, with a trailing slash (known once the routes are registered). */
  basePath: string
  readonly #hooks: HookRegistry
  readonly #closed: AbortSignal
  /** The expiration sweep under way, if any. */
  #sweep: Promise<number> | undefined

  /** Made by the plugin's runtime, which shares the hook registry and ends `completedUploads` at close. */
  constructor (options: Readonly<ResolvedOptions>, store: DataStore, hooks: HookRegistry, closed: AbortSignal, metrics?: TusMetrics) {
    super()
    this.options = options
    this.metrics = metrics
    this.store = store
    this.basePath = options.path
    this.extensions = Object.freeze(listExtensions(options))
    this.#hooks = hooks
    this.#closed = closed
  }

  /**
   * The store, typed as the class it was made from, so its own methods need no guard:
   * `app.tus.storeAs(FileStore).read(id)`. The check is real (`instanceof`), not a cast: a store
   * of another class is a `TypeError`. With `metrics` on, the store returned is the instrumented
   * one (the same methods, timed).
   */
  storeAs<S extends DataStore> (type: abstract new (...args: never[]) => S): S {
    const store = this.store
    if (store instanceof type) return store
    throw new TypeError(`fastify-tus: app.tus.store is not a ${type.name}`)
  }

  /** Adds a lifecycle hook; several per name run in the order they were added. */
  addHook<K extends HookName> (name: K, fn: TusHooks[K]): this {
    this.#hooks.add(name, fn)
    return this
  }

  /**
   * Completed uploads as an async iterator (the counterpart of tusd's CompleteUploads channel).
   * Uploads completed while the consumer is busy are buffered; the iteration ends when the app
   * closes or `signal` aborts.
   */
  async * completedUploads (signal?: AbortSignal): AsyncGenerator<UploadEvent> {
    const stop = signal === undefined ? this.#closed : AbortSignal.any([signal, this.#closed])
    try {
      for await (const [event] of on(this, 'upload-complete', { signal: stop })) {
        yield event as UploadEvent
      }
    } catch (err) {
      if ((err as { name?: string }).name !== 'AbortError') throw err
    }
  }

  /**
   * Stops the upload whose body `request` is sending (tusd's `StopUpload`), typically from an
   * `onUploadProgress` hook or an `upload-progress` listener: the body ends, the upload is
   * terminated (when the store can remove uploads) so it cannot be resumed, and the client gets
   * `error` (default 400 `ERR_UPLOAD_STOPPED`). Returns `false` when the request is not sending
   * a body any more (too late: the chunk was already stored).
   */
  stopUpload (request: FastifyRequest, error?: Error): boolean {
    // requests outside the plugin's routes have no state (the decoration is scoped to them)
    const session = (request.tusState as TusRequestState | null | undefined)?.session
    if (session === undefined || session.body?.reason !== undefined || session.stopped !== undefined) return false
    session.stopError = error
    session.stop('stopped')
    return true
  }

  /** When an unfinished upload expires (`undefined` if it never does). */
  expiresAt (upload: UploadInfo): Date | undefined {
    if (this.options.expiration === 0 || isComplete(upload)) return undefined
    return new Date(upload.updatedAt.getTime() + this.options.expiration)
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

  /** The URL of an upload, absolute unless `relativeLocation` is set (see `plugin/urls.ts`). */
  location (request: FastifyRequest, id: string): string {
    return uploadUrl(this.options, request, this.basePath, id)
  }
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
