/**
 * The plugin's runtime, decorated as `app.tus`: the resolved options, the store and locker, the
 * extensions the store supports, the upload lock dance and the bodies in flight (so a shutdown
 * can end them cleanly).
 */
import type { FastifyBaseLogger, FastifyRequest } from 'fastify'
import { LockTimeout as LockerTimeout, LockUnavailable } from '../locks/locker.js'
import type { Lock, ReleaseReason } from '../locks/locker.js'
import {
  OffsetMismatch, StoreFull as StoreFullError, UploadExists, UploadNotFound as StoreNotFound,
  canDeferLength, canServe, canTerminate
} from '../stores/store.js'
import type { DataStore } from '../stores/store.js'
import type { UploadBody } from './body.js'
import * as errors from './errors.js'
import type { ResolvedOptions } from './options.js'

/** Upload ids the plugin accepts in URLs and from `generateId`. */
export const UPLOAD_ID = /^[A-Za-z0-9_-]{1,100}$/

/** One request's hold on an upload: a release request or a shutdown stops its body. */
export class UploadSession {
  body: UploadBody | undefined
  stopped: 'interrupted' | 'lost' | 'shutdown' | undefined

  stop (reason: 'interrupted' | 'lost' | 'shutdown'): void {
    this.stopped ??= reason
    this.body?.stop(this.stopped)
  }

  attach (body: UploadBody): void {
    this.body = body
    if (this.stopped !== undefined) body.stop(this.stopped)
  }
}

export class Tus {
  readonly options: Readonly<ResolvedOptions>
  readonly store: DataStore
  /** The tus extensions this endpoint offers, as sent in `Tus-Extension`. */
  readonly extensions: readonly string[]
  /** Full URL path of the collection, with a trailing slash (known once the routes are registered). */
  basePath: string
  #closing = false
  readonly #sessions = new Set<UploadSession>()

  constructor (options: Readonly<ResolvedOptions>) {
    this.options = options
    this.store = options.store
    this.basePath = options.path
    this.extensions = Object.freeze(listExtensions(options))
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

  /** Ends every body in flight (their bytes are kept); new bodies are refused with 503. */
  shutdown (): void {
    this.#closing = true
    for (const session of this.#sessions) session.stop('shutdown')
  }

  /**
   * Takes the upload's lock for the duration of `work`. A newer request for the same upload
   * stops this one's body; waiting longer than `acquireLockTimeout` is a 423.
   */
  async withLock<T> (request: FastifyRequest, id: string, work: (session: UploadSession) => Promise<T>): Promise<T> {
    const session = new UploadSession()
    const lock = await this.#acquire(request, id, (reason) => {
      request.log.info({ uploadId: id, reason }, 'tus upload lock release requested')
      session.stop(reason === 'lost' ? 'lost' : 'interrupted')
    })
    this.#sessions.add(session)
    if (this.#closing) session.stop('shutdown')
    try {
      return await work(session)
    } finally {
      this.#sessions.delete(session)
      await lock.unlock().catch((err: unknown) => request.log.warn({ err, uploadId: id }, 'tus unlock failed'))
    }
  }

  async #acquire (request: FastifyRequest, id: string, onReleaseRequested: (reason: ReleaseReason) => void): Promise<Lock> {
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(new Error('lock wait timed out')), this.options.acquireLockTimeout)
    const socket = request.raw.socket
    const onClose = (): void => controller.abort(new Error('client went away'))
    socket?.once('close', onClose)
    try {
      return await this.options.locker.lock(id, { signal: controller.signal, onReleaseRequested })
    } finally {
      clearTimeout(timer)
      socket?.off('close', onClose)
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
  if (canDeferLength(options.store)) list.push('creation-defer-length')
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
