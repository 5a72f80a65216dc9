/**
 * Uploads in a Google Cloud Storage bucket. Each PATCH streams its bytes into new objects
 * ("pieces", at most `pieceSize` bytes each) named after the offset they start at; every
 * `maxPieces` pieces are composed into one "body" object; when the last byte is there,
 * everything is composed into `<objectPrefix><id>`, the finished object. Every composition
 * writes a new object and is checked against the CRC32C its sources add up to before the
 * sources are deleted, so nothing is ever overwritten in place (GCS allows about one write per
 * second to one object name, and a bad composition can simply be dropped). See gcs-layout.ts
 * for the names and docs/stores/gcs.md for why this scheme.
 *
 * Nothing is cached between calls: the offset is read from GCS every time, so several server
 * instances can share a bucket, and a crash at any point leaves an offset that is exactly what
 * the stored objects hold.
 */
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { Storage, type StorageOptions } from '@google-cloud/storage'
import {
  isWorkObject, layoutOf, names, uploadIdOf, type Layout, type StoredObject
} from './gcs-layout.js'
import { GcsObjects, MAX_COMPOSE_SOURCES, statusOf, type ObjectType } from './gcs-objects.js'
import { BodySource } from './gcs-source.js'
import { servedAs } from './content-type.js'
import { OffsetMismatch, UploadChanged, UploadCorrupt, UploadExists, UploadNotFound, isComplete } from './store.js'
import type {
  ByteRange, Chunk, Concatenates, DataStore, DefersLength, Expires, NewUpload, Serves,
  Terminates, UploadInfo
} from './store.js'
import { isUploadId } from './ids.js'
import { toUploadInfo, positive, type StoredInfo } from './info.js'

export { CompositionMismatch } from './gcs-objects.js'

const MiB = 1024 * 1024
const JSON_TYPE = 'application/json'
const OCTET_STREAM = 'application/octet-stream'

export interface GcsStoreOptions {
  /** The bucket (it must exist). */
  bucket: string
  /** The client to use. Default: one made from `gcs`. */
  storage?: Storage | undefined
  /** Options for a client the store makes, passed through (default: credentials and project the usual Google way). */
  gcs?: StorageOptions | undefined
  /** Prepended to every object name, e.g. `'uploads/'`. Default `''`. */
  objectPrefix?: string | undefined
  /** Largest object one PATCH writes before it starts another; what a failed GCS request can lose. Default 16 MiB. */
  pieceSize?: number | undefined
  /** Pieces an unfinished upload may consist of before they are composed into one object. Default 32 (one compose request). */
  maxPieces?: number | undefined
  /** GCS requests the store runs at once for one operation (deletions, levels of a composition). Default 8. */
  concurrency?: number | undefined
}

/** The `.info` object. */
interface InfoObject extends StoredInfo {
  version: 1
}

interface State {
  key: string
  info: InfoObject
  layout: Layout
  /** The finished object, once it exists. */
  final: StoredObject | undefined
  offset: number
}

export class GcsStore implements DataStore, Terminates, Concatenates, DefersLength, Serves, Expires {
  readonly storage: Storage
  readonly bucket: string
  readonly objectPrefix: string
  readonly #objects: GcsObjects
  readonly #pieceSize: number
  readonly #maxPieces: number

  constructor (options: GcsStoreOptions) {
    if (typeof options?.bucket !== 'string' || options.bucket === '') throw new TypeError('GcsStore: "bucket" must be a non-empty string')
    if (options.storage !== undefined && options.gcs !== undefined) throw new TypeError('GcsStore: give "storage" or "gcs", not both')
    if (options.objectPrefix !== undefined && typeof options.objectPrefix !== 'string') throw new TypeError('GcsStore: "objectPrefix" must be a string')
    this.bucket = options.bucket
    this.objectPrefix = options.objectPrefix ?? ''
    this.storage = options.storage ?? new Storage(options.gcs)
    this.#pieceSize = positive('GcsStore', 'pieceSize', options.pieceSize ?? 16 * MiB)
    this.#maxPieces = positive('GcsStore', 'maxPieces', options.maxPieces ?? MAX_COMPOSE_SOURCES)
    if (this.#maxPieces < 2) throw new RangeError('GcsStore: "maxPieces" must be at least 2')
    this.#objects = new GcsObjects(this.storage.bucket(this.bucket), positive('GcsStore', 'concurrency', options.concurrency ?? 8))
  }

  /** The name of the finished object of upload `id`. */
  objectName (id: string): string {
    return this.#key(id)
  }

  async create (upload: NewUpload): Promise<UploadInfo> {
    if (!isUploadId(upload.id)) throw new TypeError(`GcsStore: invalid upload id ${JSON.stringify(upload.id)}`)
    const key = this.#key(upload.id)
    const [leftovers, final] = await Promise.all([this.#objects.list(`${key}.`), this.#objects.stat(key)])
    if (leftovers.some((object) => object.name === names.info(key))) throw new UploadExists(upload.id)
    // what an earlier upload with this id left behind (a removal cut short) must not count for this one
    await this.#objects.deleteAll(final === undefined ? leftovers : [...leftovers, final])
    const now = new Date()
    const info: InfoObject = { version: 1, id: upload.id, metadata: { ...upload.metadata }, createdAt: now.toISOString() }
    if (upload.size !== undefined) info.size = upload.size
    if (upload.binaryMetadata !== undefined) info.binaryMetadata = { ...upload.binaryMetadata }
    if (upload.concat !== undefined) info.concat = upload.concat
    if (upload.maxSize !== undefined) info.maxSize = upload.maxSize
    try {
      await this.#objects.write(names.info(key), JSON.stringify(info), JSON_TYPE, 0)
    } catch (err) {
      if (statusOf(err) === 412) throw new UploadExists(upload.id)
      throw err
    }
    if (upload.size === 0) await this.#objects.write(key, Buffer.alloc(0), servedAs(info.metadata), 0)
    return toUploadInfo(info, 0, now)
  }

  async get (id: string): Promise<UploadInfo> {
    const state = await this.#completed(await this.#state(id))
    return toUploadInfo(state.info, state.offset, updatedAt(state))
  }

  async write (id: string, chunk: Chunk): Promise<number> {
    const state = await this.#state(id)
    if (state.offset !== chunk.offset) throw new OffsetMismatch(state.offset, chunk.offset)
    if (state.final !== undefined) return 0
    if (state.info.size !== undefined && state.offset >= state.info.size) {
      await this.#finish(state, state.layout.chain)
      return 0
    }
    await this.#objects.deleteAll(state.layout.stale)
    const source = new BodySource(chunk.body, chunk.signal)
    let pieces: StoredObject[]
    try {
      pieces = await this.#receive(state, source, chunk.beforeCommit !== undefined)
    } finally {
      await source.close()
    }
    const written = pieces.reduce((sum, piece) => sum + piece.size, 0)
    let chain = [...state.layout.chain, ...pieces]
    if (chunk.beforeCommit !== undefined) {
      try {
        await chunk.beforeCommit()
      } catch (err) {
        await this.#objects.deleteAll(pieces)
        throw err
      }
      if (pieces.length > 0) {
        // the verified bytes become one piece at once
        const piece = await this.#compose(state.key, pieces, names.piece(state.key, state.offset), OCTET_STREAM)
        await this.#objects.deleteAll(pieces)
        chain = [...state.layout.chain, piece]
      }
    }
    const offset = state.offset + written
    if (state.info.size !== undefined && offset === state.info.size) {
      await this.#finish(state, chain)
    } else if (chain.length >= this.#maxPieces) {
      // the bytes are stored either way; a failed composition is tried again after the next write
      await this.#compact(state.key, chain, offset).catch(() => {})
    }
    return written
  }

  async declareLength (id: string, size: number): Promise<void> {
    const state = await this.#state(id)
    if (state.info.size !== undefined) {
      if (state.info.size === size) return
      throw new UploadChanged(`upload ${id} already has a length`)
    }
    if (state.offset > size) throw new RangeError(`upload ${id} already has ${state.offset} bytes`)
    const info: InfoObject = { ...state.info, size }
    try {
      await this.#objects.write(names.info(state.key), JSON.stringify(info), JSON_TYPE, state.layout.info?.generation)
    } catch (err) {
      if (statusOf(err) === 412) throw new UploadChanged(`upload ${id} changed while its length was declared`, { cause: err })
      throw err
    }
    if (state.offset === size) await this.#finish({ ...state, info }, state.layout.chain)
  }

  async read (id: string, range?: ByteRange): Promise<Readable> {
    const state = await this.#completed(await this.#state(id))
    if (state.final === undefined) throw new UploadChanged(`upload ${id} is not complete`)
    if (state.final.size === 0) return Readable.from([])
    const file = this.#objects.bucket.file(state.final.name, { generation: state.final.generation })
    return file.createReadStream(range === undefined ? {} : { start: range.start, end: range.end })
  }

  async remove (id: string): Promise<void> {
    if (!isUploadId(id)) return
    const key = this.#key(id)
    // the finished object first, then the description (the upload is gone), then the rest
    await this.#objects.delete(key)
    await this.#objects.delete(names.info(key))
    await this.#objects.deleteAll(await this.#objects.list(`${key}.`))
  }

  async concat (id: string, parts: string[]): Promise<void> {
    const state = await this.#state(id)
    const sources: StoredObject[] = []
    for (const part of parts) {
      const partial = await this.#completed(await this.#state(part))
      if (partial.final === undefined) throw new UploadChanged(`partial upload ${part} is not complete`)
      sources.push(partial.final)
    }
    const total = sources.reduce((sum, source) => sum + source.size, 0)
    if (state.info.size !== undefined && state.info.size !== total) throw new UploadChanged(`the parts of ${id} have ${total} bytes, not ${state.info.size}`)
    if (state.final !== undefined) {
      if (state.final.size === total) return
      throw new UploadChanged(`upload ${id} is complete already`)
    }
    if (sources.length === 0) {
      await this.#objects.write(state.key, Buffer.alloc(0), servedAs(state.info.metadata), 0)
      return
    }
    await this.#compose(state.key, sources, state.key, servedAs(state.info.metadata))
  }

  async removeExpired (before: Date): Promise<number> {
    interface Group { info: boolean, final: boolean, newest: number, work: StoredObject[] }
    // the listing is in name order and an upload's objects are `<key>` and `<key>.<suffix>`: once
    // it passes `<key>/`, the upload's group is whole and is settled, so only the uploads the
    // listing is in the middle of are held in memory, however many the bucket has
    const groups = new Map<string, Group>()
    let removed = 0
    const settle = async (id: string, group: Group): Promise<void> => {
      groups.delete(id)
      if (await this.#expireGroup(id, group, before)) removed++
    }
    for await (const page of this.#objects.pages(this.objectPrefix)) {
      const last = page.at(-1)?.name
      for (const object of page) {
        const parsed = uploadIdOf(this.objectPrefix, object.name)
        if (parsed === undefined) continue
        let group = groups.get(parsed.id)
        if (group === undefined) {
          group = { info: false, final: false, newest: 0, work: [] }
          groups.set(parsed.id, group)
        }
        if (parsed.suffix === undefined) group.final = true
        else if (parsed.suffix === 'info') group.info = true
        else if (isWorkObject(parsed.suffix)) group.work.push(object)
        else continue
        group.newest = Math.max(group.newest, object.updated.getTime())
      }
      if (last === undefined) continue
      for (const [id, group] of groups) {
        if (`${this.objectPrefix}${id}/` <= last) await settle(id, group)
      }
    }
    for (const [id, group] of groups) await settle(id, group)
    return removed
  }

  /** Settles one upload's listed objects for `removeExpired`; whether the upload was removed. */
  async #expireGroup (id: string, group: { info: boolean, final: boolean, newest: number, work: StoredObject[] }, before: Date): Promise<boolean> {
    // a finished upload never expires; objects without a description are leftovers of a removal
    if (group.final || group.newest >= before.getTime()) return false
    if (!group.info) {
      await this.#objects.deleteAll(group.work)
      return false
    }
    let upload: UploadInfo
    try {
      upload = await this.get(id)
    } catch (err) {
      if (err instanceof UploadNotFound) return false
      throw err
    }
    if (isComplete(upload) || upload.updatedAt >= before) return false
    await this.remove(id)
    return true
  }

  #key (id: string): string {
    if (!isUploadId(id)) throw new UploadNotFound(id)
    return `${this.objectPrefix}${id}`
  }

  async #state (id: string): Promise<State> {
    const key = this.#key(id)
    const [text, objects, final] = await Promise.all([
      this.#objects.readText(names.info(key)),
      this.#objects.list(`${key}.`),
      this.#objects.stat(key)
    ])
    if (text === undefined) throw new UploadNotFound(id)
    const info = JSON.parse(text) as InfoObject
    if (info.version !== 1 || info.id !== id) throw new UploadCorrupt(`GcsStore: ${names.info(key)} is not the description of upload ${id}`)
    const layout = layoutOf(key, objects)
    let offset = layout.offset
    if (final !== undefined) {
      if (info.size !== undefined && final.size !== info.size) {
        throw new UploadCorrupt(`GcsStore: ${key} has ${final.size} bytes, but upload ${id} has a length of ${info.size}`)
      }
      offset = final.size
    }
    return { key, info, layout, final, offset }
  }

  /** The state, after finishing an upload whose bytes are all there but not yet composed (a crash, or the last write). */
  async #completed (state: State): Promise<State> {
    if (state.final !== undefined || state.info.size === undefined || state.offset !== state.info.size) return state
    return { ...state, final: await this.#finish(state, state.layout.chain) }
  }

  /** Reads the body into new pieces (pending ones while a checksum is outstanding). */
  async #receive (state: State, source: BodySource, pending: boolean): Promise<StoredObject[]> {
    const tag = randomBytes(6).toString('hex')
    const pieces: StoredObject[] = []
    let start = state.offset
    try {
      for (let first = await source.next(); first !== undefined; first = await source.next()) {
        const name = pending ? names.pending(state.key, tag, start) : names.piece(state.key, start)
        let piece: StoredObject
        try {
          piece = await this.#objects.upload(name, first, source, this.#pieceSize)
        } catch (err) {
          // another writer stored a piece at this offset first
          if (statusOf(err) === 412 && !pending) throw new OffsetMismatch(start, state.offset)
          throw err
        }
        pieces.push(piece)
        start += piece.size
      }
    } catch (err) {
      if (pending) await this.#objects.deleteAll(pieces).catch(() => {})
      throw err
    }
    return pieces
  }

  /** Composes the chain into a new body object and deletes what it replaces. */
  async #compact (key: string, chain: readonly StoredObject[], end: number): Promise<void> {
    await this.#compose(key, chain, names.body(key, end), OCTET_STREAM)
    await this.#objects.deleteAll(chain)
  }

  /** Composes every byte into the finished object, then deletes the work objects. */
  async #finish (state: State, chain: readonly StoredObject[]): Promise<StoredObject> {
    const { key, info } = state
    const type = servedAs(info.metadata)
    let final: StoredObject
    try {
      final = chain.length === 0
        ? await this.#objects.write(key, Buffer.alloc(0), type, 0)
        : await this.#compose(key, chain, key, type)
    } catch (err) {
      // finished meanwhile by another instance
      if (statusOf(err) !== 412) throw err
      const existing = await this.#objects.stat(key)
      if (existing === undefined || existing.size !== info.size) throw err
      final = existing
    }
    await this.#objects.deleteAll([...chain, ...state.layout.stale]).catch(() => {})
    return final
  }

  async #compose (key: string, sources: readonly StoredObject[], destination: string, type: ObjectType): Promise<StoredObject> {
    return await this.#objects.compose(sources, destination, type, (tag, level, index) => names.composing(key, tag, level, index))
  }
}

function updatedAt (state: State): Date {
  const times = [state.layout.updatedAt, state.final?.updated].filter((time): time is Date => time !== undefined)
  const newest = Math.max(new Date(state.info.createdAt).getTime(), ...times.map((time) => time.getTime()))
  return new Date(newest)
}
