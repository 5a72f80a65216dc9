/**
 * Locking and sessions: the upload lock dance (a newer request stops the holder's body, a wait
 * longer than `acquireLockTimeout` is a 423), the bodies in flight (so a shutdown can end them
 * cleanly) and the shared locked reads of HEAD.
 */
import type { EventEmitter } from 'node:events'
import type { FastifyRequest } from 'fastify'
import { LockTimeout, type Lock, type Locker, type ReleaseReason } from '../locks/locker.js'
import type { UploadInfo } from '../stores/store.js'
import type { StopReason, UploadBody } from './body.js'
import type { TusMetrics } from './metrics.js'
import { stateOf } from './request-state.js'
import type { TusEvents } from './tus.js'

/** One request's hold on an upload: a release request or a shutdown stops its body. */
export class UploadSession {
  body: UploadBody | undefined
  stopped: StopReason | undefined
  /** What the client gets when a hook stopped the upload (`Tus.stopUpload`). */
  stopError: Error | undefined
  /** The lease of the lock this session holds (`Lock.lease`), for the store's `get`. */
  lease: string | undefined

  stop (reason: StopReason): void {
    this.stopped ??= reason
    this.body?.stop(this.stopped)
  }

  attach (body: UploadBody): void {
    this.body = body
    if (this.stopped !== undefined) body.stop(this.stopped)
  }
}

export interface SessionsOptions {
  locker: Locker
  acquireLockTimeout: number
  metrics: TusMetrics | undefined
  /** Where `lock-wait` events go (`app.tus`). */
  events: EventEmitter<TusEvents>
}

export class Sessions {
  readonly #options: SessionsOptions
  #closing = false
  readonly #sessions = new Set<UploadSession>()
  /** Reads of an upload (HEAD) still waiting for its lock, shared by the requests that join them. */
  readonly #waitingReads = new Map<string, Promise<UploadInfo>>()

  constructor (options: SessionsOptions) {
    this.#options = options
  }

  get closing (): boolean {
    return this.#closing
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
  async withLock<T> (request: FastifyRequest, id: string, work: (session: UploadSession) => Promise<T>, shared = false): Promise<T> {
    const session = new UploadSession()
    const lock = await this.#acquire(request, id, shared, (reason) => {
      request.log.info({ event: 'tus.lock.release-requested', reason }, 'tus upload lock release requested')
      session.stop(reason === 'lost' ? 'lost' : 'interrupted')
    })
    session.lease = lock.lease
    const metrics = this.#options.metrics
    metrics?.locksHeld.inc()
    try {
      return await this.withSession(request, work, session)
    } finally {
      await lock.unlock().catch((err: unknown) => request.log.warn({ err }, 'tus unlock failed'))
      metrics?.locksHeld.dec()
    }
  }

  /**
   * Runs `work` with a session (shutdown and `stopUpload` can stop its body) but no lock: for the
   * body of an upload nobody else can know yet (created by this very request under a random id).
   */
  async withSession<T> (request: FastifyRequest, work: (session: UploadSession) => Promise<T>, session = new UploadSession()): Promise<T> {
    this.#sessions.add(session)
    const state = stateOf(request)
    state.session = session
    if (this.#closing) session.stop('shutdown')
    try {
      return await work(session)
    } finally {
      this.#sessions.delete(session)
      state.session = undefined
    }
  }

  /**
   * An upload's state read under its lock (HEAD). Requests that arrive while such a read still
   * waits for the lock share it: the read happens after all of them arrived, so each sees the
   * upload as it is after its own arrival, and a storm of HEADs costs one lock hand-over.
   */
  async readLocked (request: FastifyRequest, id: string, read: (id: string, session: UploadSession) => Promise<UploadInfo>): Promise<UploadInfo> {
    const waiting = this.#waitingReads.get(id)
    if (waiting !== undefined) return await waiting
    const reading: Promise<UploadInfo> = this.withLock(request, id, async (session) => {
      if (this.#waitingReads.get(id) === reading) this.#waitingReads.delete(id)
      return await read(id, session)
    }, true)
    this.#waitingReads.set(id, reading)
    try {
      return await reading
    } finally {
      if (this.#waitingReads.get(id) === reading) this.#waitingReads.delete(id)
    }
  }

  async #acquire (request: FastifyRequest, id: string, shared: boolean, onReleaseRequested: (reason: ReleaseReason) => void): Promise<Lock> {
    // a request whose client is gone (processed late, after its connection or stream closed)
    // never asks the holder to let go: nobody would hear its answer, and the holder may be the
    // client's own resume
    if (clientGone(request)) throw goneError(request, id, 'before the lock wait')
    const lock = await this.#wait(request, id, shared, onReleaseRequested)
    // a request that waited alone and whose client left as the lock came: hand it on at once
    if (!shared && clientGone(request)) {
      await lock.unlock().catch((err: unknown) => request.log.warn({ err, uploadId: id }, 'tus unlock failed'))
      throw goneError(request, id, 'as the lock came')
    }
    return lock
  }

  async #wait (request: FastifyRequest, id: string, shared: boolean, onReleaseRequested: (reason: ReleaseReason) => void): Promise<Lock> {
    const { locker, acquireLockTimeout, events } = this.#options
    const controller = new AbortController()
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      controller.abort(new Error('lock wait timed out'))
    }, acquireLockTimeout)
    // a wait shared by several requests does not end when the first one's client goes away
    const stopWatching = shared ? undefined : whenClientGone(request, () => controller.abort(new Error('client went away')))
    const started = events.listenerCount('lock-wait') > 0 ? performance.now() : 0
    let acquired = false
    try {
      const lock = await locker.lock(id, { signal: controller.signal, onReleaseRequested })
      acquired = true
      return lock
    } finally {
      clearTimeout(timer)
      stopWatching?.()
      if (!acquired && timedOut) request.log.info({ event: 'tus.lock.timeout', timeoutMs: acquireLockTimeout }, 'tus upload lock wait timed out')
      if (started > 0) events.emit('lock-wait', { request, id, ms: performance.now() - started, timedOut: timedOut && !acquired, acquired })
    }
  }
}

/** What carries a request: its connection (HTTP/1) or its stream (HTTP/2, where the socket is the session's). */
interface Carrier {
  destroyed?: boolean
  closed?: boolean
  once: (event: 'close', listener: () => void) => unknown
  off: (event: 'close', listener: () => void) => unknown
}

function carrierOf (request: FastifyRequest): Carrier | null {
  const raw = request.raw as { stream?: Carrier, socket?: Carrier | null }
  return raw.stream ?? raw.socket ?? null
}

/** Whether the client of `request` has gone: its connection or stream is closed. */
export function clientGone (request: FastifyRequest): boolean {
  const carrier = carrierOf(request)
  return carrier === null || carrier.destroyed === true || carrier.closed === true
}

/** Calls `fn` once the client of `request` goes away; returns what stops watching. */
function whenClientGone (request: FastifyRequest, fn: () => void): () => void {
  const carrier = carrierOf(request)
  carrier?.once('close', fn)
  return () => { carrier?.off('close', fn) }
}

function goneError (request: FastifyRequest, id: string, when: string): LockTimeout {
  request.log.info({ event: 'tus.lock.client-gone', uploadId: id }, `tus request dropped: its client went away ${when}`)
  return new LockTimeout(id, { cause: new Error('client went away') })
}
