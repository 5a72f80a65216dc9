/**
 * Uploads in process memory. For tests, demos and short-lived uploads: everything is lost when
 * the process ends, and every byte lives in the heap.
 */
import { Readable } from 'node:stream'
import { OffsetMismatch, UploadExists, UploadNotFound, isComplete } from './store.js'
import type {
  ByteRange, Chunk, Concatenates, DataStore, DefersLength, Expires, NewUpload, Serves, Terminates,
  UploadInfo
} from './store.js'

interface Entry {
  info: UploadInfo
  chunks: Buffer[]
}

export class MemoryStore implements DataStore, Terminates, Concatenates, DefersLength, Serves, Expires {
  readonly #uploads = new Map<string, Entry>()

  async create (upload: NewUpload): Promise<UploadInfo> {
    if (this.#uploads.has(upload.id)) throw new UploadExists(upload.id)
    const now = new Date()
    const info: UploadInfo = { id: upload.id, offset: 0, metadata: { ...upload.metadata }, createdAt: now, updatedAt: now }
    if (upload.size !== undefined) info.size = upload.size
    if (upload.binaryMetadata !== undefined) info.binaryMetadata = { ...upload.binaryMetadata }
    if (upload.concat !== undefined) info.concat = upload.concat
    if (upload.maxSize !== undefined) info.maxSize = upload.maxSize
    this.#uploads.set(upload.id, { info, chunks: [] })
    return copy(info)
  }

  async get (id: string): Promise<UploadInfo> {
    return copy(this.#entry(id).info)
  }

  async write (id: string, chunk: Chunk): Promise<number> {
    const entry = this.#entry(id)
    if (entry.info.offset !== chunk.offset) throw new OffsetMismatch(entry.info.offset, chunk.offset)
    const received: Buffer[] = []
    let length = 0
    try {
      for await (const buffer of chunk.body) {
        if (chunk.signal?.aborted === true) break
        received.push(buffer as Buffer)
        length += (buffer as Buffer).length
      }
    } catch {
      // a failing body keeps what arrived
    }
    await chunk.beforeCommit?.()
    entry.chunks.push(...received)
    entry.info.offset += length
    entry.info.updatedAt = new Date()
    return length
  }

  async declareLength (id: string, size: number): Promise<void> {
    this.#entry(id).info.size = size
  }

  async read (id: string, range?: ByteRange): Promise<Readable> {
    const data = Buffer.concat(this.#entry(id).chunks)
    return Readable.from(range === undefined ? [data] : [data.subarray(range.start, range.end + 1)])
  }

  async remove (id: string): Promise<void> {
    this.#uploads.delete(id)
  }

  async concat (id: string, parts: string[]): Promise<void> {
    const entry = this.#entry(id)
    const chunks = parts.flatMap((part) => this.#entry(part).chunks)
    entry.chunks = [...chunks]
    entry.info.offset = chunks.reduce((sum, buffer) => sum + buffer.length, 0)
    entry.info.updatedAt = new Date()
  }

  async removeExpired (before: Date): Promise<number> {
    let removed = 0
    for (const [id, { info }] of this.#uploads) {
      if (isComplete(info) || info.updatedAt >= before) continue
      this.#uploads.delete(id)
      removed++
    }
    return removed
  }

  #entry (id: string): Entry {
    const entry = this.#uploads.get(id)
    if (entry === undefined) throw new UploadNotFound(id)
    return entry
  }
}

function copy (info: UploadInfo): UploadInfo {
  const copied = { ...info, metadata: { ...info.metadata } }
  if (info.binaryMetadata !== undefined) copied.binaryMetadata = { ...info.binaryMetadata }
  return copied
}
