/**
 * Cuts one chunk of an upload into S3 parts while it streams in. Bytes go into part buffers
 * (see s3-buffer.ts); a full buffer is uploaded in the background (several at once, within the
 * store's slots) while the next one fills, so memory stays within the budget and the body is
 * read only as fast as parts can be stored. What is left at the end, smaller than the minimum
 * part, is handed back to the caller (it becomes the leftover object, or the last part).
 */
import type { Readable } from 'node:stream'
import type { BufferPool, PartBuffer, Payload, Slots } from './s3-buffer.js'
import type { StoredPart } from './s3-layout.js'
import { StoreLimitExceeded, UploadChanged } from './store.js'

export interface PartWriterOptions {
  pool: BufferPool
  slots: Slots
  /** Uploads one part; resolves with its ETag. */
  upload: (number: number, payload: Payload, length: number) => Promise<string>
  /** Runs once, before the first part is uploaded (the store marks the parts as not yet trusted). */
  beforeFirstUpload?: () => Promise<void>
  partSize: number
  minPartSize: number
  maxParts: number
  /** Number of the first part to upload. */
  firstNumber: number
  /** Upload offset where the first part starts (where the counted parts end). */
  start: number
  /** The upload's length, if known: the body is not read past it, and the part that reaches it is the last. */
  size: number | undefined
  /** Bytes that go before the body (the leftover object). */
  prefix?: { stream: Readable, length: number }
  signal?: AbortSignal
}

export interface WrittenParts {
  /** Bytes read from the body. */
  bodyBytes: number
  /** Parts uploaded, in order. */
  parts: StoredPart[]
  /** Bytes after the last uploaded part (`undefined` if none); the caller releases it. */
  remainder: PartBuffer | undefined
  /** Whether the upload's last byte is stored. */
  reachedEnd: boolean
}

export async function writeParts (body: Readable, options: PartWriterOptions): Promise<WrittenParts> {
  const { pool, slots, partSize, minPartSize, size } = options
  const uploaded: StoredPart[] = []
  const inflight: Array<Promise<void>> = []
  let failure: { error: unknown } | undefined
  let marked: Promise<void> | undefined
  let buffer: PartBuffer | undefined
  let next = options.firstNumber
  let start = options.start
  let bodyBytes = 0
  const prefixLength = options.prefix?.length ?? 0
  const maxBody = size === undefined ? Number.POSITIVE_INFINITY : size - options.start - prefixLength

  const fill = async (data: Buffer): Promise<void> => {
    while (data.length > 0) {
      buffer ??= await pool.buffer(size === undefined ? partSize : Math.min(partSize, size - start))
      const take = Math.min(data.length, buffer.capacity - buffer.length)
      await buffer.append(data.subarray(0, take))
      data = data.subarray(take)
      if (buffer.length === buffer.capacity) await dispatch()
    }
  }

  const dispatch = async (): Promise<void> => {
    const part = buffer as PartBuffer
    buffer = undefined
    const number = next++
    start += part.length
    if (number > options.maxParts) {
      await part.release()
      throw new StoreLimitExceeded(`the upload needs more than ${options.maxParts} parts`)
    }
    const release = await slots.acquire()
    inflight.push((async () => {
      try {
        marked ??= options.beforeFirstUpload?.() ?? Promise.resolve()
        await marked
        const etag = await options.upload(number, part.payload(), part.length)
        uploaded.push({ number, size: part.length, etag })
      } catch (error) {
        failure ??= { error }
      } finally {
        release()
        await part.release()
      }
    })())
  }

  try {
    if (options.prefix !== undefined) {
      for await (const piece of options.prefix.stream) await fill(piece as Buffer)
      if (start + (buffer?.length ?? 0) !== options.start + prefixLength) throw new UploadChanged('the leftover object changed while it was read')
    }
    // read to the end even past the upload's length (the plugin never sends more): a body
    // left unfinished would look interrupted to the plugin
    await readBody(body, options.signal, async (piece) => {
      if (failure !== undefined) return false
      const data = piece.length > maxBody - bodyBytes ? piece.subarray(0, maxBody - bodyBytes) : piece
      bodyBytes += data.length
      await fill(data)
      return failure === undefined
    })
    const end = start + (buffer?.length ?? 0)
    const reachedEnd = size !== undefined && end === size
    if (buffer !== undefined && buffer.length > 0 && (reachedEnd || buffer.length >= minPartSize)) await dispatch()
    await Promise.all(inflight)
    if (failure !== undefined) throw failure.error
    const remainder = buffer
    buffer = undefined
    uploaded.sort((a, b) => a.number - b.number)
    return { bodyBytes, parts: uploaded, remainder, reachedEnd }
  } catch (err) {
    await Promise.all(inflight)
    await (buffer as PartBuffer | undefined)?.release()
    throw err
  }
}

/**
 * Feeds the body to `onPiece` until it ends, fails (what arrived is kept: a broken connection
 * is an early end), the signal aborts, or `onPiece` returns false.
 */
async function readBody (body: Readable, signal: AbortSignal | undefined, onPiece: (piece: Buffer) => Promise<boolean>): Promise<void> {
  const iterator: AsyncIterator<Buffer | string> = body[Symbol.asyncIterator]()
  try {
    for (;;) {
      if (signal?.aborted === true) return
      let result: IteratorResult<Buffer | string>
      try {
        result = await iterator.next()
      } catch {
        return
      }
      if (result.done === true) return
      const piece = typeof result.value === 'string' ? Buffer.from(result.value) : result.value
      if (!(await onPiece(piece))) return
    }
  } finally {
    await Promise.resolve(iterator.return?.()).catch(() => {})
  }
}
