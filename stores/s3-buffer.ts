/**
 * Bounded buffering for the S3 store: a byte budget shared by every upload of a store, a
 * counting semaphore for concurrent part uploads, and part buffers held in memory or in
 * temporary files. A buffer's bytes are reserved from the budget before it is filled, for its
 * whole capacity, and given back when it is released, so the store never holds more than the
 * budget, whatever the number or size of the uploads.
 */
import { randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'

/** First come, first served waiting for a number of units. */
class Units {
  #free: number
  readonly #waiters: Array<{ amount: number, resolve: () => void }> = []

  constructor (readonly total: number) {
    this.#free = total
  }

  get used (): number {
    return this.total - this.#free
  }

  async take (amount: number): Promise<void> {
    if (amount > this.total) throw new RangeError(`cannot take ${amount} of ${this.total}`)
    if (this.#waiters.length === 0 && amount <= this.#free) {
      this.#free -= amount
      return
    }
    await new Promise<void>((resolve) => this.#waiters.push({ amount, resolve }))
  }

  give (amount: number): void {
    this.#free += amount
    for (let next = this.#waiters[0]; next !== undefined && next.amount <= this.#free; next = this.#waiters[0]) {
      this.#waiters.shift()
      this.#free -= next.amount
      next.resolve()
    }
  }
}

/** How many part uploads may run at once. */
export class Slots {
  readonly #units: Units

  constructor (count: number) {
    this.#units = new Units(count)
  }

  /** Waits for a free slot; call the returned function to give it back. */
  async acquire (): Promise<() => void> {
    await this.#units.take(1)
    let given = false
    return () => {
      if (given) return
      given = true
      this.#units.give(1)
    }
  }

  /** Runs `work` once a slot is free. */
  async run<T> (work: () => Promise<T>): Promise<T> {
    const release = await this.acquire()
    try {
      return await work()
    } finally {
      release()
    }
  }
}

/** What a part upload sends: the bytes, or a way to open them (a fresh stream per attempt). */
export type Payload = Buffer | (() => Readable)

export interface PartBuffer {
  /** Bytes held. */
  readonly length: number
  /** Bytes it may hold (reserved from the budget). */
  readonly capacity: number
  append (data: Buffer): Promise<void>
  payload (): Payload
  /** Frees the memory or the temporary file and gives the reservation back. Idempotent. */
  release (): Promise<void>
}

export interface BufferStats {
  /** Bytes reserved by buffers now. */
  inUse: number
  /** Most bytes ever reserved at once. */
  peak: number
  /** The budget. */
  limit: number
}

/** Hands out part buffers within a byte budget, in memory or in files under `directory`. */
export class BufferPool {
  readonly #budget: Units
  readonly #directory: string | undefined
  #peak = 0
  #ready: Promise<void> | undefined

  constructor (limit: number, directory?: string) {
    this.#budget = new Units(limit)
    this.#directory = directory
  }

  get stats (): BufferStats {
    return { inUse: this.#budget.used, peak: this.#peak, limit: this.#budget.total }
  }

  /** A buffer that can hold `capacity` bytes; waits until the budget allows it. */
  async buffer (capacity: number): Promise<PartBuffer> {
    await this.#budget.take(capacity)
    this.#peak = Math.max(this.#peak, this.#budget.used)
    const giveBack = (): void => this.#budget.give(capacity)
    if (this.#directory === undefined) return new MemoryBuffer(capacity, giveBack)
    try {
      this.#ready ??= mkdir(this.#directory, { recursive: true }).then(() => {}, (err: unknown) => {
        this.#ready = undefined
        throw err
      })
      await this.#ready
      const path = join(this.#directory, `tus-s3-${randomBytes(8).toString('hex')}.part`)
      return new FileBuffer(capacity, path, await open(path, 'w+', 0o600), giveBack)
    } catch (err) {
      giveBack()
      throw err
    }
  }
}

class MemoryBuffer implements PartBuffer {
  length = 0
  #bytes: Buffer | undefined
  #giveBack: (() => void) | undefined

  constructor (readonly capacity: number, giveBack: () => void) {
    // untouched pages of a large allocation cost no memory until they are written
    this.#bytes = Buffer.allocUnsafe(capacity)
    this.#giveBack = giveBack
  }

  async append (data: Buffer): Promise<void> {
    if (this.#bytes === undefined) throw new Error('buffer released')
    if (this.length + data.length > this.capacity) throw new RangeError('part buffer overflow')
    data.copy(this.#bytes, this.length)
    this.length += data.length
  }

  payload (): Payload {
    if (this.#bytes === undefined) throw new Error('buffer released')
    return this.#bytes.subarray(0, this.length)
  }

  async release (): Promise<void> {
    this.#bytes = undefined
    const giveBack = this.#giveBack
    this.#giveBack = undefined
    giveBack?.()
  }
}

class FileBuffer implements PartBuffer {
  length = 0
  #handle: FileHandle | undefined
  #giveBack: (() => void) | undefined

  constructor (readonly capacity: number, readonly path: string, handle: FileHandle, giveBack: () => void) {
    this.#handle = handle
    this.#giveBack = giveBack
  }

  async append (data: Buffer): Promise<void> {
    if (this.#handle === undefined) throw new Error('buffer released')
    if (this.length + data.length > this.capacity) throw new RangeError('part buffer overflow')
    let done = 0
    while (done < data.length) {
      const { bytesWritten } = await this.#handle.write(data, done, data.length - done, this.length + done)
      done += bytesWritten
    }
    this.length += data.length
  }

  payload (): Payload {
    if (this.length === 0) return Buffer.alloc(0)
    const { path, length } = this
    return () => createReadStream(path, { start: 0, end: length - 1 })
  }

  async release (): Promise<void> {
    const handle = this.#handle
    const giveBack = this.#giveBack
    this.#handle = undefined
    this.#giveBack = undefined
    if (handle === undefined) return
    try {
      await handle.close()
      await rm(this.path, { force: true })
    } finally {
      giveBack?.()
    }
  }
}
