/**
 * Uploads in an S3 bucket (AWS, or a compatible server: MinIO, Ceph radosgw, R2 …). One tus
 * upload is one S3 multipart upload on `<objectPrefix><id>`, which becomes the finished object;
 * beside it `<key>.info` holds the upload's description (JSON, so any metadata is safe) and
 * `<key>.part` the last bytes of an unfinished upload that are too few for a part.
 *
 * The offset is computed from S3 (the parts that belong to the upload, plus the leftover object
 * when it starts where they end; see s3-layout.ts), so several server instances can share a
 * bucket, and a crash at any point leaves an offset that is never ahead of the stored bytes. The
 * one exception is a caller holding a lock lease (`LeaseOptions.lease`, `Chunk.lease`): what this
 * store saw or left under the same lease is still true, since nobody else can have held the
 * upload's lock meanwhile, so a chain of PATCHes behind a leasing locker costs no S3 request
 * besides its parts.
 */
import {
  AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand,
  DeleteObjectsCommand, GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListPartsCommand,
  PutObjectCommand, S3Client, UploadPartCommand, UploadPartCopyCommand
} from '@aws-sdk/client-s3'
import type { S3ClientConfig } from '@aws-sdk/client-s3'
import type { Readable } from 'node:stream'
import { BufferPool, Slots, type BufferStats, type PartBuffer, type Payload } from './s3-buffer.js'
import {
  concatParts, countParts, isNotFound, isPreconditionFailed, partSizeFor,
  type PartCount, type Segment, type StoredPart
} from './s3-layout.js'
import { servedAs } from './content-type.js'
import { S3_DEFAULTS } from './s3-defaults.js'
import { writeParts } from './s3-parts.js'
import { InvalidStorage, OffsetMismatch, StorageTaken, StoreFull, UploadChanged, UploadCorrupt, UploadExists, UploadNotFound, isComplete } from './store.js'
import type {
  ByteRange, Chunk, Concatenates, DataStore, DefersLength, Expires, LeaseOptions, Metadata, NewUpload, PlacesUploads,
  Serves, Terminates, UploadInfo
} from './store.js'
import { checkRelativePlace } from './placement.js'
import { isUploadId } from './ids.js'
import { toUploadInfo, positive, type StoredInfo } from './info.js'

const MiB = 1024 * 1024

export interface S3StoreOptions {
  /** The bucket (it must exist). */
  bucket: string
  /** An S3 client to use. Give this or `s3`. */
  client?: S3Client | undefined
  /**
   * Configuration for a client the store makes (and destroys in `destroy()`), passed through.
   * `requestChecksumCalculation` and `responseChecksumValidation` default to `'WHEN_REQUIRED'`,
   * which every S3-compatible server accepts.
   */
  s3?: S3ClientConfig | undefined
  /** Prepended to every object key, e.g. `'uploads/'`. Default `''`. */
  objectPrefix?: string | undefined
  /** The key of an upload below `objectPrefix`. Default: the upload id. */
  objectKey?: ((id: string) => string) | undefined
  /** Preferred part size in bytes (larger when an upload would need more than `maxParts` parts). Default 8 MiB. */
  partSize?: number | undefined
  /** Smallest part besides the last; fewer bytes wait in the leftover object. Default 5 MiB (S3's minimum). */
  minPartSize?: number | undefined
  /** Largest part. Default 5 GiB (S3's maximum). */
  maxPartSize?: number | undefined
  /** Most parts in one upload. Default 10 000 (S3's maximum). */
  maxParts?: number | undefined
  /** All parts but the last have the same size (Cloudflare R2 requires it): `minPartSize` becomes `partSize`. Default false. */
  equalParts?: boolean | undefined
  /** Part uploads running at once, over all uploads of this store. Default 8. */
  maxConcurrentPartUploads?: number | undefined
  /** Bytes the store may hold in part buffers at once, over all uploads. Default 64 MiB, at least `partSize`. */
  maxBufferedBytes?: number | undefined
  /** Buffer parts in temporary files in this directory instead of memory. */
  bufferDirectory?: string | undefined
}

/** The `.info` object. */
interface InfoObject extends StoredInfo {
  version: 1
  /** The multipart upload; absent for an upload created complete (length 0). */
  uploadId?: string
  partSize: number
  /** Parts numbered this or higher do not count (yet): a chunk being verified, or parts a crash left behind. */
  limit?: number
  /** The object is complete. */
  completed?: boolean
  /**
   * The object key below the prefix a hook chose (`NewUpload.storage.Key`); absent for the usual
   * key. A copy of this object at `<prefix><key>.info` (`claim`) claims the key and lets the
   * expiration sweep find the upload from its multipart upload.
   */
  key?: string
  /** This is the claim copy at a placed key, never updated: the upload's info is at its id's key. */
  claim?: true
}

interface Leftover {
  size: number
  start: number
  modified: Date | undefined
}

type State =
  | { completed: true, offset: number, updatedAt: Date }
  | {
    completed: false
    offset: number
    updatedAt: Date
    listed: StoredPart[]
    count: PartCount
    /** The leftover object when it counts. */
    leftover: Leftover | undefined
    /** A leftover object exists that does not count (its bytes went into a part). */
    staleLeftover: boolean
  }

/** An object under an upload's name that this store did not write (tusd's, say): a logged 500, left alone by sweeps. */
class ForeignObject extends UploadCorrupt {
  override name = 'ForeignObject'
}

/** The object metadata entry of a leftover object that says where in the upload it starts. */
const START = 'tus-start'

/**
 * An upload as this store last saw or left it under a lock lease: while the caller still holds
 * that lease, nobody else can have changed it.
 */
interface Known {
  lease: string
  info: InfoObject
  state: State
}

/** How many uploads the store remembers under leases (the oldest are forgotten first). */
const KNOWN_UPLOADS = 10_000

export class S3Store implements DataStore, Terminates, Concatenates, DefersLength, Serves, Expires, PlacesUploads {
  /** `NewUpload.storage.Key`: an object key below `objectPrefix` for the upload's bytes. */
  readonly storageFields = Object.freeze(['Key'])
  readonly client: S3Client
  readonly bucket: string
  readonly objectPrefix: string
  /** Largest upload this store can take with its part limits. */
  readonly maxUploadSize: number
  readonly #objectKey: (id: string) => string
  readonly #ownsClient: boolean
  readonly #partSize: number
  readonly #minPartSize: number
  readonly #maxPartSize: number
  readonly #maxParts: number
  readonly #pool: BufferPool
  readonly #slots: Slots
  readonly #known = new Map<string, Known>()

  constructor (options: S3StoreOptions) {
    if (typeof options?.bucket !== 'string' || options.bucket === '') throw new TypeError('S3Store: "bucket" must be a non-empty string')
    if ((options.client === undefined) === (options.s3 === undefined)) throw new TypeError('S3Store: give either "client" or "s3"')
    this.bucket = options.bucket
    this.objectPrefix = options.objectPrefix ?? ''
    this.#objectKey = options.objectKey ?? ((id) => id)
    this.#ownsClient = options.client === undefined
    this.client = options.client ?? new S3Client({
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...options.s3
    })
    const partSize = positive('S3Store', 'partSize', options.partSize ?? S3_DEFAULTS.partSize)
    this.#minPartSize = options.equalParts === true ? partSize : positive('S3Store', 'minPartSize', options.minPartSize ?? S3_DEFAULTS.minPartSize)
    if (partSize < this.#minPartSize) throw new RangeError('S3Store: "partSize" must be at least "minPartSize"')
    const budget = positive('S3Store', 'maxBufferedBytes', options.maxBufferedBytes ?? Math.max(64 * MiB, partSize))
    if (budget < partSize) throw new RangeError('S3Store: "maxBufferedBytes" must be at least "partSize"')
    this.#partSize = partSize
    // a part is buffered whole, so it never exceeds the budget
    this.#maxPartSize = Math.min(positive('S3Store', 'maxPartSize', options.maxPartSize ?? 5 * 1024 * MiB), budget)
    if (this.#maxPartSize < partSize) throw new RangeError('S3Store: "maxPartSize" must be at least "partSize"')
    this.#maxParts = positive('S3Store', 'maxParts', options.maxParts ?? 10_000)
    this.maxUploadSize = options.equalParts === true ? partSize * this.#maxParts : this.#maxPartSize * this.#maxParts
    this.#pool = new BufferPool(budget, options.bufferDirectory)
    this.#slots = new Slots(positive('S3Store', 'maxConcurrentPartUploads', options.maxConcurrentPartUploads ?? S3_DEFAULTS.maxConcurrentPartUploads))
  }

  /** How many bytes part buffers hold now, at most so far, and may hold. */
  get bufferStats (): BufferStats {
    return this.#pool.stats
  }

  /** Closes the client the store made from `s3` (a client passed in is left alone). */
  destroy (): void {
    if (this.#ownsClient) this.client.destroy()
  }

  async create (upload: NewUpload, options?: LeaseOptions): Promise<UploadInfo> {
    if (!isUploadId(upload.id)) throw new TypeError(`S3Store: invalid upload id ${JSON.stringify(upload.id)}`)
    this.#known.delete(upload.id)
    const key = this.#key(upload.id)
    const partSize = partSizeFor(upload.size, { partSize: this.#partSize, maxPartSize: this.#maxPartSize, maxParts: this.#maxParts })
    if (partSize === undefined) throw new RangeError(`S3Store: an upload of ${upload.size ?? 0} bytes is larger than the store allows (${this.maxUploadSize})`)
    if (await this.#exists(`${key}.info`)) throw new UploadExists(upload.id)
    const now = new Date()
    const info: InfoObject = { version: 1, id: upload.id, metadata: { ...upload.metadata }, createdAt: now.toISOString(), partSize }
    if (upload.size !== undefined) info.size = upload.size
    if (upload.binaryMetadata !== undefined) info.binaryMetadata = { ...upload.binaryMetadata }
    if (upload.concat !== undefined) info.concat = upload.concat
    if (upload.maxSize !== undefined) info.maxSize = upload.maxSize
    if (upload.storage !== undefined) info.key = await this.#claim(info, upload.storage)
    const headers = s3Headers(info.metadata)
    const dataKey = this.#dataKey(info)
    try {
      if (upload.size === 0) {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: dataKey, Body: Buffer.alloc(0), ...headers }))
        info.completed = true
      } else {
        const created = await this.client.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: dataKey, ...headers }))
        if (created.UploadId === undefined) throw new Error('S3 did not return an UploadId')
        info.uploadId = created.UploadId
      }
      await this.#putInfo(info, true)
    } catch (err) {
      // what this create made goes; a failure to clean up must not hide why it failed
      if (info.uploadId !== undefined) await this.#abort(dataKey, info.uploadId).catch(() => {})
      if (info.key !== undefined) await this.#delete(`${dataKey}.info`).catch(() => {})
      if (!isPreconditionFailed(err)) throw storeError(err)
      throw new UploadExists(upload.id)
    }
    // a new multipart upload has no parts, and no leftover object outlives the upload it was for
    const state: State = info.completed === true
      ? { completed: true, offset: 0, updatedAt: now }
      : { completed: false, offset: 0, updatedAt: now, listed: [], count: countParts([]), leftover: undefined, staleLeftover: false }
    this.#remember(options?.lease, info, state)
    return this.#uploadInfo(info, 0, now)
  }

  /**
   * Checks a chosen key and claims it: a copy of the info object is created at `<key>.info` with
   * `If-None-Match: *`, so two uploads (or an upload whose own key it is) never share it; an
   * object already at the key is refused. Resolves with the key below the prefix.
   */
  async #claim (info: InfoObject, storage: Record<string, string>): Promise<string> {
    const unknown = Object.keys(storage).filter((field) => field !== 'Key')
    if (unknown.length > 0) throw new InvalidStorage(`has fields the S3 store does not use: ${unknown.join(', ')}`)
    checkRelativePlace(storage.Key, 'Key')
    const key = storage.Key as string
    if (/\.(info|part)$/.test(key)) throw new InvalidStorage('has a Key that takes the name of an info or leftover object')
    const full = `${this.objectPrefix}${key}`
    if (await this.#exists(full)) throw new StorageTaken()
    try {
      await this.client.send(new PutObjectCommand({
        Bucket: this.bucket,
        Key: `${full}.info`,
        Body: JSON.stringify({ ...info, key, claim: true }),
        ContentType: 'application/json',
        IfNoneMatch: '*'
      }))
    } catch (err) {
      if (isPreconditionFailed(err)) throw new StorageTaken({ cause: err })
      throw storeError(err)
    }
    return key
  }

  /** The `UploadInfo` of an info object; a placed upload says where it is, as tusd's `Storage`. */
  #uploadInfo (info: InfoObject, offset: number, updatedAt: Date): UploadInfo {
    const upload = toUploadInfo(info, offset, updatedAt)
    if (info.key !== undefined) upload.storage = { Type: 's3store', Bucket: this.bucket, Key: this.#dataKey(info) }
    return upload
  }

  /** Where an upload's bytes are: the key of its id, or the key it was placed at. */
  #dataKey (info: Pick<InfoObject, 'id' | 'key'>): string {
    return info.key === undefined ? this.#key(info.id) : `${this.objectPrefix}${info.key}`
  }

  async get (id: string, options?: LeaseOptions): Promise<UploadInfo> {
    const lease = options?.lease
    let { info, state } = await this.#current(id, lease)
    if (!state.completed && state.offset === info.size) {
      this.#known.delete(id)
      state = await this.#finish(info, state)
      info = { ...withLimit(info, undefined), completed: true }
    }
    this.#remember(lease, info, state)
    return this.#uploadInfo(info, state.offset, state.updatedAt)
  }

  /** The upload as it stands: remembered under `lease`, else read from S3. */
  async #current (id: string, lease: string | undefined): Promise<{ info: InfoObject, state: State }> {
    const known = lease === undefined ? undefined : this.#known.get(id)
    if (known !== undefined && known.lease === lease) return known
    const { info, modified } = await this.#readInfo(id)
    return { info, state: await this.#state(info, modified) }
  }

  /** Remembers the upload as it is now under `lease` (without a lease, forgets it). */
  #remember (lease: string | undefined, info: InfoObject, state: State): void {
    this.#known.delete(info.id)
    if (lease === undefined) return
    if (this.#known.size >= KNOWN_UPLOADS) {
      const oldest = this.#known.keys().next().value
      if (oldest !== undefined) this.#known.delete(oldest)
    }
    this.#known.set(info.id, { lease, info, state })
  }

  async write (id: string, chunk: Chunk): Promise<number> {
    const { info, state } = await this.#current(id, chunk.lease)
    // whatever happens next, the upload is known again only once this write has succeeded
    this.#known.delete(id)
    if (state.offset !== chunk.offset) throw new OffsetMismatch(state.offset, chunk.offset)
    if (state.completed) return 0
    if (state.offset === info.size) {
      const done = await this.#finish(info, state)
      this.#remember(chunk.lease, { ...withLimit(info, undefined), completed: true }, done)
      return 0
    }
    const key = this.#dataKey(info)
    const uploadId = info.uploadId as string
    const { count, leftover } = state
    // parts that will be uploaded before they may count: behind a limit in the info object
    const limited = count.stray || chunk.beforeCommit !== undefined
    const prefix = leftover === undefined ? undefined : { stream: await this.#download(`${key}.part`), length: leftover.size }
    let written
    try {
      written = await writeParts(chunk.body, {
        pool: this.#pool,
        slots: this.#slots,
        upload: async (number, payload, length) => await this.#uploadPart(key, uploadId, number, payload, length),
        beforeFirstUpload: limited && info.limit !== count.next ? async () => await this.#putInfo({ ...info, limit: count.next }) : undefined,
        partSize: info.partSize,
        minPartSize: Math.min(this.#minPartSize, info.partSize),
        maxParts: this.#maxParts,
        firstNumber: count.next,
        start: count.bytes,
        size: info.size,
        prefix,
        signal: chunk.signal
      })
    } catch (err) {
      prefix?.stream.destroy()
      throw storeError(err)
    }
    const { parts, remainder } = written
    try {
      // a refused chunk: its parts stay behind the limit and are overwritten by the next write
      await chunk.beforeCommit?.()
      const all = [...count.counted, ...parts]
      if (written.reachedEnd) {
        await this.#complete(info, all)
        const end = chunk.offset + written.bodyBytes
        this.#remember(chunk.lease, { ...withLimit(info, undefined), completed: true }, { completed: true, offset: end, updatedAt: new Date() })
        return written.bodyBytes
      }
      let stored = info
      if (parts.length > 0) {
        // the new parts count from now on; parts left beyond them stay behind the limit
        const last = parts[parts.length - 1]?.number as number
        const limit = state.listed.some((part) => part.number > last) ? last + 1 : undefined
        if (limit !== (limited ? count.next : info.limit)) await this.#putInfo(withLimit(info, limit))
        stored = withLimit(info, limit)
      }
      const end = count.bytes + parts.reduce((sum, part) => sum + part.size, 0)
      let left: Leftover | undefined = parts.length > 0 ? undefined : leftover
      if (remainder !== undefined && remainder.length > 0 && (parts.length > 0 || written.bodyBytes > 0)) {
        await this.#putLeftover(key, remainder, end)
        left = { size: remainder.length, start: end, modified: new Date() }
      } else if (parts.length > 0 && (leftover !== undefined || state.staleLeftover)) {
        await this.#delete(`${key}.part`)
      }
      this.#rememberWritten(chunk, stored, state, parts, left)
      return written.bodyBytes
    } catch (err) {
      throw storeError(err)
    } finally {
      await remainder?.release()
    }
  }

  /**
   * Remembers the upload as a write left it (under the chunk's lease): the parts listed before
   * with the new ones in their place, and the leftover object now there. What the count finds
   * must be where the write says the upload ends, or nothing is remembered.
   */
  #rememberWritten (chunk: Chunk, info: InfoObject, before: Extract<State, { completed: false }>, parts: StoredPart[], leftover: Leftover | undefined): void {
    if (chunk.lease === undefined) return
    const numbers = new Set(parts.map((part) => part.number))
    const listed = [...before.listed.filter((part) => !numbers.has(part.number)), ...parts]
    const count = countParts(listed, info.limit)
    const offset = count.bytes + (leftover?.size ?? 0)
    if ((leftover !== undefined && leftover.start !== count.bytes) || offset < chunk.offset) return
    const changed = offset > chunk.offset || parts.length > 0
    const state: State = {
      completed: false,
      offset,
      updatedAt: changed ? new Date() : before.updatedAt,
      listed,
      count,
      leftover,
      staleLeftover: parts.length === 0 && leftover === undefined && before.staleLeftover
    }
    this.#remember(chunk.lease, info, state)
  }

  async declareLength (id: string, size: number): Promise<void> {
    this.#known.delete(id)
    const { info, modified } = await this.#readInfo(id)
    if (info.size !== undefined) {
      if (info.size === size) return
      throw new UploadChanged(`upload ${id} already has a length`)
    }
    if (size > info.partSize * this.#maxParts) throw new RangeError(`S3Store: ${size} bytes need more than ${this.#maxParts} parts of ${info.partSize} bytes`)
    const state = await this.#state(info, modified)
    if (state.offset > size) throw new RangeError(`upload ${id} already has ${state.offset} bytes`)
    const sized = { ...info, size }
    await this.#putInfo(sized)
    if (!state.completed && state.offset === size) await this.#finish(sized, state)
  }

  async read (id: string, range?: ByteRange): Promise<Readable> {
    const { info, modified } = await this.#readInfo(id)
    if (info.completed !== true) {
      this.#known.delete(id)
      let state = await this.#state(info, modified)
      if (!state.completed && state.offset === info.size) state = await this.#finish(info, state)
      if (!state.completed) throw new UploadChanged(`upload ${id} is not complete`)
    }
    return await this.#download(this.#dataKey(info), range)
  }

  async remove (id: string): Promise<void> {
    if (!isUploadId(id)) return
    this.#known.delete(id)
    let key = this.#key(id)
    let uploadId: string | undefined
    let placed = false
    try {
      const { info } = await this.#readInfo(id)
      uploadId = info.uploadId
      key = this.#dataKey(info)
      placed = info.key !== undefined
    } catch (err) {
      if (!(err instanceof UploadNotFound)) throw err
      // the claim of an upload placed at this id's key: nothing here is this upload's
      if (await this.#exists(`${key}.info`)) return
    }
    const uploads = new Set(uploadId === undefined ? [] : [uploadId])
    // also multipart uploads a crashed create left on the key
    for await (const upload of this.#multipartUploads(key)) {
      if (upload.key === key) uploads.add(upload.uploadId)
    }
    for (const upload of uploads) await this.#abort(key, upload)
    await this.client.send(new DeleteObjectsCommand({
      Bucket: this.bucket,
      // a placed upload: its claim at `<key>.info` goes with its bytes, its info (at the id's key) last
      Delete: { Quiet: true, Objects: [{ Key: key }, { Key: `${key}.part` }, { Key: `${key}.info` }] }
    }))
    if (placed) await this.#delete(`${this.#key(id)}.info`)
  }

  async concat (id: string, parts: string[]): Promise<void> {
    this.#known.delete(id)
    const { info } = await this.#readInfo(id)
    const sources: Array<{ key: string, size: number }> = []
    for (const part of parts) {
      const upload = await this.get(part)
      if (!isComplete(upload)) throw new UploadChanged(`partial upload ${part} is not complete`)
      const { info: partInfo } = await this.#readInfo(part)
      sources.push({ key: this.#dataKey(partInfo), size: upload.size as number })
    }
    const total = sources.reduce((sum, source) => sum + source.size, 0)
    if (info.size !== undefined && info.size !== total) throw new UploadChanged(`the parts of ${id} have ${total} bytes, not ${info.size}`)
    if (info.uploadId === undefined) return
    const plan = concatParts(sources, info.partSize)
    if (plan.length > this.#maxParts) throw new RangeError(`S3Store: concatenating ${id} needs more than ${this.#maxParts} parts`)
    const key = this.#dataKey(info)
    try {
      const done = await Promise.all(plan.map(async (segments, index) => await this.#concatPart(key, info.uploadId as string, index + 1, segments)))
      await this.#complete(info, done)
    } catch (err) {
      throw storeError(err)
    }
  }

  async removeExpired (before: Date): Promise<number> {
    let removed = 0
    for await (const upload of this.#multipartUploads(this.objectPrefix)) {
      if (upload.initiated !== undefined && upload.initiated >= before) continue
      let info: InfoObject | undefined
      let claimed = false
      try {
        // a placed upload's claim names its id
        const found = (await this.#readInfoAt(`${upload.key}.info`, undefined)).info
        claimed = found.claim === true
        info = claimed ? (await this.#readInfo(found.id)).info : found
      } catch (err) {
        // another program's upload (tusd's `<key>.info` is its own JSON): not this store's to expire
        if (err instanceof ForeignObject) continue
        if (!(err instanceof UploadNotFound)) throw err
      }
      if (info === undefined || info.uploadId !== upload.uploadId || this.#dataKey(info) !== upload.key) {
        // a multipart upload without its info object: a create that crashed, or a removal halfway
        await this.#abort(upload.key, upload.uploadId)
        if (info === undefined) await this.#delete(`${upload.key}.part`)
        // the claim of a placed upload whose create crashed
        if (info === undefined && claimed) await this.#delete(`${upload.key}.info`)
        continue
      }
      let current: UploadInfo
      try {
        current = await this.get(info.id)
      } catch (err) {
        if (err instanceof UploadNotFound) continue
        throw err
      }
      if (isComplete(current) || current.updatedAt >= before) continue
      await this.remove(info.id)
      removed++
    }
    return removed
  }

  #key (id: string): string {
    if (!isUploadId(id)) throw new UploadNotFound(id)
    return `${this.objectPrefix}${this.#objectKey(id)}`
  }

  async #readInfo (id: string): Promise<{ info: InfoObject, modified: Date }> {
    return await this.#readInfoAt(`${this.#key(id)}.info`, id)
  }

  /**
   * The info object at `infoKey`; with `id`, it must be that upload's own (a claim another
   * upload made at a key that is also an id names no upload of that id).
   */
  async #readInfoAt (infoKey: string, id: string | undefined): Promise<{ info: InfoObject, modified: Date }> {
    let text: string
    let modified: Date
    try {
      const result = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: infoKey }))
      text = await (result.Body as { transformToString: () => Promise<string> }).transformToString()
      modified = result.LastModified ?? new Date(0)
    } catch (err) {
      if (isNotFound(err)) throw new UploadNotFound(id)
      throw err
    }
    let info: InfoObject
    try {
      info = JSON.parse(text) as InfoObject
    } catch {
      throw new ForeignObject(`S3Store: ${infoKey} is not an upload's info object`)
    }
    if (typeof info !== 'object' || info === null || info.version !== 1 || typeof info.id !== 'string' || typeof info.partSize !== 'number') throw new ForeignObject(`S3Store: ${infoKey} is not an upload's info object`)
    if (id !== undefined && (info.claim === true || info.id !== id)) throw new UploadNotFound(id)
    if (info.key !== undefined) checkRelativePlace(info.key, 'Key')
    return { info, modified }
  }

  async #putInfo (info: InfoObject, create = false): Promise<void> {
    await this.client.send(new PutObjectCommand({
      Bucket: this.bucket,
      Key: `${this.#key(info.id)}.info`,
      Body: JSON.stringify(info),
      ContentType: 'application/json',
      IfNoneMatch: create ? '*' : undefined
    }))
  }

  /** Where an upload stands, from its parts and leftover object. */
  async #state (info: InfoObject, modified: Date): Promise<State> {
    if (info.completed === true) return { completed: true, offset: info.size ?? 0, updatedAt: modified }
    const key = this.#dataKey(info)
    const [listed, head] = await Promise.all([
      info.uploadId === undefined ? undefined : this.#listParts(key, info.uploadId),
      this.#headLeftover(key)
    ])
    if (listed === undefined) {
      // the multipart upload is gone: completed (the object exists) or removed
      const object = await this.#head(key)
      if (object === undefined) throw new UploadNotFound(info.id)
      return { completed: true, offset: object.size, updatedAt: object.modified ?? modified }
    }
    const count = countParts(listed, info.limit)
    const leftover = head !== undefined && head.start === count.bytes ? head : undefined
    let updatedAt = modified
    for (const time of [...count.counted.map((part) => part.modified), leftover?.modified]) {
      if (time !== undefined && time > updatedAt) updatedAt = time
    }
    return {
      completed: false,
      offset: count.bytes + (leftover?.size ?? 0),
      updatedAt,
      listed,
      count,
      leftover,
      staleLeftover: head !== undefined && leftover === undefined
    }
  }

  /** Completes an upload whose bytes are all stored (the leftover becomes the last part). */
  async #finish (info: InfoObject, state: Extract<State, { completed: false }>): Promise<State> {
    const parts = [...state.count.counted]
    const key = this.#dataKey(info)
    if (state.leftover !== undefined) {
      const buffer = await this.#pool.buffer(state.leftover.size)
      try {
        for await (const piece of await this.#download(`${key}.part`)) await buffer.append(piece as Buffer)
        const number = state.count.next
        const etag = await this.#slots.run(async () => await this.#uploadPart(key, info.uploadId as string, number, buffer.payload(), buffer.length))
        parts.push({ number, size: buffer.length, etag })
      } finally {
        await buffer.release()
      }
    }
    await this.#complete(info, parts)
    return { completed: true, offset: state.offset, updatedAt: new Date() }
  }

  /** Turns the parts into the object, then marks the info object complete. */
  async #complete (info: InfoObject, parts: StoredPart[]): Promise<void> {
    const key = this.#dataKey(info)
    const uploadId = info.uploadId as string
    if (parts.length === 0) {
      await this.client.send(new PutObjectCommand({
        Bucket: this.bucket, Key: key, Body: Buffer.alloc(0), ...s3Headers(info.metadata)
      }))
      await this.#abort(key, uploadId)
    } else {
      try {
        await this.client.send(new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.number, ETag: part.etag })) }
        }))
      } catch (err) {
        // completed meanwhile (another instance finishing the same upload)?
        if (!isNotFound(err) || await this.#head(key) === undefined) throw err
      }
    }
    await this.#delete(`${key}.part`)
    const done: InfoObject = { ...withLimit(info, undefined), completed: true }
    await this.#putInfo(done)
  }

  async #concatPart (key: string, uploadId: string, number: number, segments: Segment[]): Promise<StoredPart> {
    const size = segments.reduce((sum, segment) => sum + segment.end - segment.start + 1, 0)
    const [single] = segments
    if (segments.length === 1 && single !== undefined) {
      const result = await this.#slots.run(async () => await this.client.send(new UploadPartCopyCommand({
        Bucket: this.bucket,
        Key: key,
        UploadId: uploadId,
        PartNumber: number,
        CopySource: `${this.bucket}/${encodeURIComponent(single.key).replace(/%2F/g, '/')}`,
        CopySourceRange: `bytes=${single.start}-${single.end}`
      })))
      const etag = result.CopyPartResult?.ETag
      if (etag === undefined) throw new Error('S3 did not return the ETag of a copied part')
      return { number, size, etag }
    }
    // the budget before a slot, as writes take them: nobody holds a slot while waiting for bytes
    const buffer = await this.#pool.buffer(size)
    try {
      for (const segment of segments) {
        for await (const piece of await this.#download(segment.key, segment)) await buffer.append(piece as Buffer)
      }
      if (buffer.length !== size) throw new UploadChanged('a partial upload changed while it was concatenated')
      const etag = await this.#slots.run(async () => await this.#uploadPart(key, uploadId, number, buffer.payload(), buffer.length))
      return { number, size, etag }
    } finally {
      await buffer.release()
    }
  }

  async #uploadPart (key: string, uploadId: string, number: number, payload: Payload, length: number): Promise<string> {
    // a stream cannot be sent twice, so the SDK does not retry it: a file-buffered part is retried here
    for (let attempt = 1; ; attempt++) {
      try {
        const result = await this.client.send(new UploadPartCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: number,
          Body: Buffer.isBuffer(payload) ? payload : payload(),
          ContentLength: length
        }))
        if (result.ETag === undefined) throw new Error('S3 did not return the ETag of a part')
        return result.ETag
      } catch (err) {
        if (Buffer.isBuffer(payload) || attempt >= 3 || !isRetryable(err)) throw err
      }
    }
  }

  async #putLeftover (key: string, buffer: PartBuffer, start: number): Promise<void> {
    const payload = buffer.payload()
    await this.client.send(new PutObjectCommand({
      Bucket: this.bucket,
      Key: `${key}.part`,
      Body: Buffer.isBuffer(payload) ? payload : payload(),
      ContentLength: buffer.length,
      Metadata: { [START]: String(start) }
    }))
  }

  async #listParts (key: string, uploadId: string): Promise<StoredPart[] | undefined> {
    const parts: StoredPart[] = []
    let marker: string | undefined
    try {
      do {
        const page = await this.client.send(new ListPartsCommand({
          Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumberMarker: marker
        }))
        for (const part of page.Parts ?? []) {
          if (part.PartNumber === undefined || part.ETag === undefined) continue
          parts.push({ number: part.PartNumber, size: part.Size ?? 0, etag: part.ETag, modified: part.LastModified })
        }
        marker = page.IsTruncated === true ? page.NextPartNumberMarker : undefined
      } while (marker !== undefined)
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
    return parts
  }

  async * #multipartUploads (prefix: string): AsyncGenerator<{ key: string, uploadId: string, initiated: Date | undefined }> {
    let keyMarker: string | undefined
    let uploadIdMarker: string | undefined
    do {
      const page = await this.client.send(new ListMultipartUploadsCommand({
        Bucket: this.bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker
      }))
      for (const upload of page.Uploads ?? []) {
        if (upload.Key === undefined || upload.UploadId === undefined) continue
        yield { key: upload.Key, uploadId: upload.UploadId, initiated: upload.Initiated }
      }
      const more = page.IsTruncated === true
      keyMarker = more ? page.NextKeyMarker : undefined
      uploadIdMarker = more ? page.NextUploadIdMarker : undefined
    } while (keyMarker !== undefined)
  }

  async #headLeftover (key: string): Promise<Leftover | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: `${key}.part` }))
      const start = Number(head.Metadata?.[START])
      // without a valid start it cannot be placed: it never counts
      return { size: head.ContentLength ?? 0, start: Number.isSafeInteger(start) ? start : -1, modified: head.LastModified }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  async #head (key: string): Promise<{ size: number, modified: Date | undefined } | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }))
      return { size: head.ContentLength ?? 0, modified: head.LastModified }
    } catch (err) {
      if (isNotFound(err)) return undefined
      throw err
    }
  }

  async #exists (key: string): Promise<boolean> {
    return await this.#head(key) !== undefined
  }

  async #download (key: string, range?: ByteRange): Promise<Readable> {
    const result = await this.client.send(new GetObjectCommand({
      Bucket: this.bucket, Key: key, Range: range === undefined ? undefined : `bytes=${range.start}-${range.end}`
    }))
    return result.Body as Readable
  }

  async #abort (key: string, uploadId: string): Promise<void> {
    try {
      await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
  }

  async #delete (key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }))
    } catch (err) {
      if (!isNotFound(err)) throw err
    }
  }
}

function withLimit (info: InfoObject, limit: number | undefined): InfoObject {
  const { limit: _old, ...rest } = info
  return limit === undefined ? rest : { ...rest, limit }
}

/** Whether an S3 call may succeed when tried again (network trouble, throttling, 5xx). */
function isRetryable (err: unknown): boolean {
  const status = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode
  return status === undefined || status >= 500 || status === 429
}

/** S3 errors that mean "no room" become `StoreFull`. */
function storeError (err: unknown): unknown {
  const name = (err as { name?: string } | undefined)?.name
  if (name === 'QuotaExceeded' || name === 'XMinioStorageFull' || name === 'StorageFull') return new StoreFull({ cause: err })
  return err
}

/** The object's `Content-Type` and `Content-Disposition`: what a download of the upload gets. */
function s3Headers (metadata: Readonly<Metadata>): { ContentType: string, ContentDisposition: string } {
  const served = servedAs(metadata)
  return { ContentType: served.contentType, ContentDisposition: served.contentDisposition }
}
