/**
 * The GCS calls of the GCS store, on one bucket: listing, small JSON objects, streamed piece
 * uploads, compositions that are checked against the CRC32C their sources add up to (in levels
 * when there are more than 32 sources), and deletions pinned to the generation that was seen.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import type { Bucket, File, FileMetadata } from '@google-cloud/storage'
import { concatCrc32c, formatCrc32c } from './gcs-crc.js'
import { storedObject, type StoredObject } from './gcs-layout.js'

/** GCS composes at most this many sources in one request. */
export const MAX_COMPOSE_SOURCES = 32
const OCTET_STREAM = 'application/octet-stream'

/** Where a write's bytes come from: the next buffer, or `undefined` at the end. */
export interface Source {
  next: () => Promise<Buffer | undefined>
  /** Gives back the unused tail of the last buffer. */
  unshift: (buffer: Buffer) => void
}

/** A composition whose result does not hold exactly its sources. */
export class CompositionMismatch extends Error {
  readonly code = 'GCS_COMPOSITION_MISMATCH'
  constructor (readonly object: string, detail: string) {
    super(`GCS composed ${object} with a CRC32C or size that does not match its sources (${detail}); the result was deleted`)
    this.name = 'CompositionMismatch'
  }
}

export class GcsObjects {
  constructor (readonly bucket: Bucket, readonly concurrency: number) {}

  /** Every object whose name starts with `prefix`, page by page. */
  async * pages (prefix: string): AsyncGenerator<StoredObject[]> {
    let pageToken: string | undefined
    do {
      const [files, next] = await this.bucket.getFiles({ prefix, autoPaginate: false, maxResults: 1000, pageToken })
      yield files.map((file) => storedObject(file.metadata))
      pageToken = (next as { pageToken?: string } | null)?.pageToken
    } while (pageToken !== undefined)
  }

  async list (prefix: string): Promise<StoredObject[]> {
    const objects: StoredObject[] = []
    for await (const page of this.pages(prefix)) objects.push(...page)
    return objects
  }

  /** The object's metadata, or `undefined` when it does not exist. */
  async stat (name: string): Promise<StoredObject | undefined> {
    try {
      const [metadata] = await this.bucket.file(name).getMetadata()
      return storedObject(metadata)
    } catch (err) {
      if (statusOf(err) === 404) return undefined
      throw err
    }
  }

  /** The object's bytes as text, or `undefined` when it does not exist. */
  async readText (name: string): Promise<string | undefined> {
    try {
      const [contents] = await this.bucket.file(name).download()
      return contents.toString('utf8')
    } catch (err) {
      if (statusOf(err) === 404) return undefined
      throw err
    }
  }

  /** Writes a small object in one request; `ifGenerationMatch` 0 creates it only if it does not exist. */
  async write (name: string, contents: string | Buffer, type: ObjectType, ifGenerationMatch?: string | number): Promise<StoredObject> {
    const file = this.bucket.file(name)
    const { contentType, contentDisposition } = typeOf(type)
    await file.save(contents, {
      resumable: false,
      contentType,
      metadata: contentDisposition === undefined ? { contentType } : { contentType, contentDisposition },
      preconditionOpts: ifGenerationMatch === undefined ? undefined : { ifGenerationMatch }
    })
    return storedObject(file.metadata)
  }

  /**
   * Streams bytes from `source` into a new object `name` until `limit` bytes or the end. The
   * first buffer must be at hand (an object is never made empty this way). The SDK checks the
   * bytes against the CRC32C GCS computed, and deletes the object when they differ.
   */
  async upload (name: string, first: Buffer, source: Source, limit: number): Promise<StoredObject> {
    const file = this.bucket.file(name)
    const stream = file.createWriteStream({
      resumable: false,
      contentType: OCTET_STREAM,
      preconditionOpts: { ifGenerationMatch: 0 }
    })
    const failed = once(stream, 'error').then(([err]) => { throw err instanceof Error ? err : new Error(String(err)) })
    const finished = Promise.race([once(stream, 'finish'), failed])
    failed.catch(() => {})
    let size = 0
    try {
      for (let buffer: Buffer | undefined = first; buffer !== undefined; buffer = size < limit ? await source.next() : undefined) {
        let piece = buffer
        if (size + buffer.length > limit) {
          piece = buffer.subarray(0, limit - size)
          source.unshift(buffer.subarray(limit - size))
        }
        size += piece.length
        if (!stream.write(piece)) await Promise.race([once(stream, 'drain'), failed])
      }
      stream.end()
      await finished
    } catch (err) {
      stream.destroy()
      throw err
    }
    return storedObject(file.metadata)
  }

  /**
   * Composes `sources` (pinned to their generations) into the new object `destination`, in
   * levels of intermediate objects (`scratch(level, index)`) when there are more than 32, and
   * checks the result's CRC32C and size against the sources'. A result that does not match is
   * deleted (`CompositionMismatch`); the sources are left alone.
   */
  async compose (sources: readonly StoredObject[], destination: string, type: ObjectType, scratch: (tag: string, level: number, index: number) => string): Promise<StoredObject> {
    const { contentType, contentDisposition } = typeOf(type)
    if (sources.length <= MAX_COMPOSE_SOURCES) return await this.#disposed(await this.#composeOnce(sources, destination, contentType), contentDisposition)
    const tag = randomBytes(6).toString('hex')
    const intermediates: StoredObject[] = []
    try {
      let level = sources
      for (let depth = 0; level.length > MAX_COMPOSE_SOURCES; depth++) {
        const groups: StoredObject[][] = []
        for (let i = 0; i < level.length; i += MAX_COMPOSE_SOURCES) groups.push(level.slice(i, i + MAX_COMPOSE_SOURCES))
        level = await this.#map(groups, async (group, index) => {
          const made = await this.#composeOnce(group, scratch(tag, depth, index), OCTET_STREAM)
          intermediates.push(made)
          return made
        })
      }
      return await this.#disposed(await this.#composeOnce(level, destination, contentType), contentDisposition)
    } finally {
      await this.deleteAll(intermediates).catch(() => {})
    }
  }

  /** Deletes the objects (each only in the generation listed); objects already gone or replaced are skipped. */
  async deleteAll (objects: readonly StoredObject[]): Promise<void> {
    await this.#map(objects, async (object) => { await this.delete(object.name, object.generation) })
  }

  /** Deletes an object (in `generation`, when given); a missing or replaced object is no error. */
  async delete (name: string, generation?: string): Promise<void> {
    try {
      await this.bucket.file(name).delete(generation === undefined ? {} : { ifGenerationMatch: generation })
    } catch (err) {
      const status = statusOf(err)
      if (status !== 404 && status !== 412) throw err
    }
  }

  async #composeOnce (sources: readonly StoredObject[], destination: string, contentType: string): Promise<StoredObject> {
    const expected = { size: sources.reduce((sum, source) => sum + source.size, 0), crc32c: concatCrc32c(sources) }
    const target = this.bucket.file(destination)
    target.metadata = { contentType } satisfies FileMetadata
    const files: File[] = sources.map((source) => this.bucket.file(source.name, { generation: source.generation }))
    let made: StoredObject
    try {
      const [, response] = await this.bucket.combine(files, target, { ifGenerationMatch: 0 })
      made = storedObject(response as FileMetadata)
    } catch (err) {
      // a retried request whose first attempt went through finds its own result in place
      if (statusOf(err) !== 412) throw err
      const existing = await this.stat(destination)
      if (existing === undefined || existing.size !== expected.size || existing.crc32c !== expected.crc32c) throw err
      return existing
    }
    if (made.size !== expected.size || made.crc32c !== expected.crc32c) {
      await this.delete(made.name, made.generation)
      throw new CompositionMismatch(destination, `${made.size} bytes with CRC32C ${formatCrc32c(made.crc32c)}, expected ${expected.size} bytes with ${formatCrc32c(expected.crc32c)}`)
    }
    return made
  }

  /**
   * Sets `Content-Disposition` on a composed object (the SDK's compose request carries only its
   * type and encoding), in the generation just made.
   */
  async #disposed (made: StoredObject, contentDisposition: string | undefined): Promise<StoredObject> {
    if (contentDisposition === undefined) return made
    await this.bucket.file(made.name).setMetadata({ contentDisposition }, { ifGenerationMatch: made.generation })
    return made
  }

  /** `work` over `items`, at most `concurrency` at once, results in order. */
  async #map<T, R> (items: readonly T[], work: (item: T, index: number) => Promise<R>): Promise<R[]> {
    const results: R[] = new Array<R>(items.length)
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < items.length) {
        const index = next++
        results[index] = await work(items[index] as T, index)
      }
    }
    await Promise.all(Array.from({ length: Math.min(this.concurrency, items.length) }, worker))
    return results
  }
}

/** A media type, or the type and disposition of an object that is served (`stores/content-type.ts`). */
export type ObjectType = string | { contentType: string, contentDisposition?: string }

function typeOf (type: ObjectType): { contentType: string, contentDisposition?: string } {
  return typeof type === 'string' ? { contentType: type } : type
}

/** The HTTP status of an SDK error, if it has one. */
export function statusOf (err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code
  return typeof code === 'number' ? code : undefined
}
