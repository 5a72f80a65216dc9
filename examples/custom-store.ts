/**
 * A store written outside fastify-tus: uploads kept in a Map, with the core contract only
 * (create, get, write). docs/writing-a-store.md walks through it; examples/custom-store.test.ts
 * runs the package's conformance suite (`fastify-tus/testing`) against it with node:test.
 */
import type { Readable } from 'node:stream'
import { OffsetMismatch, UploadExists, UploadNotFound } from 'fastify-tus/stores/store'
import type { Chunk, DataStore, NewUpload, UploadInfo } from 'fastify-tus/stores/store'

const SAFE_ID = /^[A-Za-z0-9_-]+$/

export class MapStore implements DataStore {
  readonly #uploads = new Map<string, { info: UploadInfo, bytes: Buffer[] }>()

  async create (upload: NewUpload): Promise<UploadInfo> {
    if (!SAFE_ID.test(upload.id)) throw new UploadNotFound(upload.id)
    if (this.#uploads.has(upload.id)) throw new UploadExists(upload.id)
    const now = new Date()
    const info: UploadInfo = { ...upload, offset: 0, createdAt: now, updatedAt: now }
    this.#uploads.set(upload.id, { info, bytes: [] })
    return { ...info }
  }

  async get (id: string): Promise<UploadInfo> {
    return { ...this.#find(id).info }
  }

  async write (id: string, chunk: Chunk): Promise<number> {
    const upload = this.#find(id)
    if (chunk.offset !== upload.info.offset) throw new OffsetMismatch(upload.info.offset, chunk.offset)
    const received = await readAll(chunk.body)
    // beforeCommit may refuse the chunk (a checksum); then nothing is kept
    if (chunk.beforeCommit !== undefined) await chunk.beforeCommit()
    upload.bytes.push(received)
    upload.info.offset += received.length
    upload.info.updatedAt = new Date()
    return received.length
  }

  #find (id: string): { info: UploadInfo, bytes: Buffer[] } {
    const upload = SAFE_ID.test(id) ? this.#uploads.get(id) : undefined
    if (upload === undefined) throw new UploadNotFound(id)
    return upload
  }
}

/** Everything the body delivers; a body that fails keeps what arrived before the failure. */
async function readAll (body: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  try {
    for await (const part of body) parts.push(part as Buffer)
  } catch {
    // the client went away: what arrived still counts
  }
  return Buffer.concat(parts)
}
