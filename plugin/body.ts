/**
 * The body pipeline between the request and the store. It passes bytes through with
 * backpressure and turns every way a body can stop into a clean end of stream, so the store
 * simply persists what it read; the reason is kept for the response:
 *
 * - `complete`: the client sent the whole body;
 * - `too-large`: more bytes than allowed arrived (the allowed ones are passed on, short of the
 *   limit with `holdLimitByte`);
 * - `timeout`: nothing arrived for `idleTimeout` ms (the timer restarts on every chunk);
 * - `aborted`: the client went away;
 * - `interrupted` / `lost` / `shutdown`: the server stopped reading (`stop()`);
 * - `stopped`: a hook stopped the upload (`app.tus.stopUpload`); the upload is then terminated.
 */
import type { IncomingMessage } from 'node:http'
import { Readable } from 'node:stream'

export type EndReason = 'complete' | 'too-large' | 'timeout' | 'aborted' | 'interrupted' | 'lost' | 'shutdown' | 'stopped'

/** Why the server may stop reading a body. */
export type StopReason = 'interrupted' | 'lost' | 'shutdown' | 'stopped'

export interface UploadBodyOptions {
  /** Most bytes to pass on. */
  limit: number
  /** Milliseconds of silence before the body is ended. */
  idleTimeout: number
  /** Sees every chunk that is passed on (checksums, progress). */
  onData?: (chunk: Buffer) => void
  /**
   * Keep the byte that would reach `limit` until the source ends: a body that goes past the limit
   * (or stops early) then never fills it, so a store's upload is not complete by an overrun.
   */
  holdLimitByte?: boolean
}

export class UploadBody extends Readable {
  /** Bytes passed on so far. */
  bytes = 0
  /** Why the body ended; `undefined` while it runs. */
  reason: EndReason | undefined
  readonly #source: Readable
  readonly #limit: number
  readonly #idleTimeout: number
  readonly #onData: ((chunk: Buffer) => void) | undefined
  readonly #holdLimitByte: boolean
  #held: Buffer | undefined
  #timer: NodeJS.Timeout | undefined
  readonly #ended: Promise<EndReason>
  #resolveEnded!: (reason: EndReason) => void

  constructor (source: Readable | IncomingMessage, options: UploadBodyOptions) {
    // room for a few network chunks while the store writes the previous ones
    super({ highWaterMark: 16 * 1024 })
    this.#source = source
    this.#limit = options.limit
    this.#idleTimeout = options.idleTimeout
    this.#onData = options.onData
    this.#holdLimitByte = options.holdLimitByte === true
    this.#ended = new Promise((resolve) => { this.#resolveEnded = resolve })
    if (source.readableEnded) {
      this.#finish('complete')
      return
    }
    if (source.destroyed) {
      this.#finish('aborted')
      return
    }
    source.on('data', this.#handleData)
    source.on('end', this.#handleEnd)
    source.on('error', this.#handleAbort)
    source.on('close', this.#handleClose)
    source.on('aborted', this.#handleAbort)
    this.#arm()
  }

  /** Resolves with the reason once the body has ended. */
  get ended (): Promise<EndReason> {
    return this.#ended
  }

  /** Stops reading: what was passed on so far stays, the stream ends cleanly. */
  stop (reason: StopReason): void {
    this.#finish(reason)
  }

  override _read (): void {
    if (this.reason === undefined) this.#source.resume()
  }

  readonly #handleData = (chunk: Buffer): void => {
    if (this.reason !== undefined) return
    const room = this.#limit - this.bytes - (this.#held?.length ?? 0)
    if (chunk.length > room) {
      const allowed = this.#holdLimitByte ? room - 1 : room
      if (allowed > 0) this.#pass(chunk.subarray(0, allowed))
      this.#finish('too-large')
      return
    }
    this.#arm()
    if (this.#holdLimitByte && chunk.length === room && room > 0) {
      this.#held = chunk.subarray(room - 1)
      chunk = chunk.subarray(0, room - 1)
      if (chunk.length === 0) return
    }
    if (!this.#pass(chunk)) this.#source.pause()
  }

  readonly #handleEnd = (): void => { this.#finish('complete') }
  readonly #handleAbort = (): void => { this.#finish('aborted') }
  readonly #handleClose = (): void => {
    // 'close' after a complete body is normal; before it, the client went away
    this.#finish((this.#source as IncomingMessage).complete === true || this.#source.readableEnded ? 'complete' : 'aborted')
  }

  #pass (chunk: Buffer): boolean {
    this.bytes += chunk.length
    this.#onData?.(chunk)
    return this.push(chunk)
  }

  #arm (): void {
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.#finish('timeout'), this.#idleTimeout)
    } else {
      this.#timer.refresh()
    }
  }

  #finish (reason: EndReason): void {
    if (this.reason !== undefined) return
    this.reason = reason
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    const source = this.#source
    source.off('data', this.#handleData)
    source.off('end', this.#handleEnd)
    source.off('error', this.#handleAbort)
    source.off('close', this.#handleClose)
    source.off('aborted', this.#handleAbort)
    if (reason !== 'complete') source.pause()
    // errors after we stopped listening must not crash the process
    source.on('error', noop)
    // the held byte fills the limit: only a body that ended normally gets there
    if (this.#held !== undefined && reason === 'complete') this.#pass(this.#held)
    this.#held = undefined
    this.push(null)
    this.#resolveEnded(reason)
  }
}

function noop (): void {}
