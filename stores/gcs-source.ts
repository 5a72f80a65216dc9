/**
 * A chunk's body as the GCS store reads it: buffer by buffer, with a tail that can be given
 * back, ending (never failing) when the body ends, fails or the chunk's signal aborts: what
 * arrived is kept.
 */
import type { Readable } from 'node:stream'
import type { Source } from './gcs-objects.js'

export class BodySource implements Source {
  readonly #iterator: AsyncIterator<unknown>
  readonly #signal: AbortSignal | undefined
  #held: Buffer | undefined
  #ended = false

  constructor (body: Readable, signal: AbortSignal | undefined) {
    this.#iterator = body[Symbol.asyncIterator]()
    this.#signal = signal
  }

  async next (): Promise<Buffer | undefined> {
    if (this.#held !== undefined) {
      const held = this.#held
      this.#held = undefined
      return held
    }
    while (!this.#ended) {
      let result: IteratorResult<unknown>
      try {
        result = await this.#iterator.next()
      } catch {
        this.#ended = true
        break
      }
      if (result.done === true || this.#signal?.aborted === true) {
        this.#ended = true
        break
      }
      const value = result.value
      const buffer = Buffer.isBuffer(value) ? value : Buffer.from(value as string)
      if (buffer.length > 0) return buffer
    }
    return undefined
  }

  unshift (buffer: Buffer): void {
    if (buffer.length > 0) this.#held = buffer
  }

  /** Stops reading the body. */
  async close (): Promise<void> {
    this.#ended = true
    await Promise.resolve(this.#iterator.return?.()).catch(() => {})
  }
}
