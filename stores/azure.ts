/**
 * Uploads in an Azure Blob Storage container. For an upload whose key is `<objectPrefix><id>`:
 *
 * - `<key>.info`  a block blob holding the upload's description (JSON: length, metadata, …);
 * - `<key>`       a block blob holding the bytes: made empty at creation, then each PATCH stages
 *                 its bytes as blocks and commits the blob's block list with them appended
 *                 (after every block, or once at the end when a checksum must be verified first).
 *
 * The offset is the committed blob's length, read from Azure on every call: nothing is cached, so
 * several server instances can share a container, and a crash never loses a committed byte (a
 * crash between staging and committing leaves uncommitted blocks, which never count and which
 * Azure drops at the next commit). Every commit is conditional on the blob's ETag, so two writers
 * never both append at one offset. See docs/stores/azure.md.
 */
import { Readable } from 'node:stream'
import type { BlobHTTPHeaders, BlockBlobClient, BlockBlobTier, ContainerClient } from '@azure/storage-blob'
import { accessOf, containerClientOf, type AzureConnectionOptions } from './azure-client.js'
import { MAX_BLOCKS, blockId, blockSizeAt, cutIntoBlocks } from './azure-blocks.js'
import { servedAs } from './content-type.js'
import { uploadIdOf } from './gcs-layout.js'
import { UPLOAD_ID as SAFE_ID } from './ids.js'
import type { StoredInfo } from './info.js'
import { OffsetMismatch, StoreLimitExceeded, UploadChanged, UploadCorrupt, UploadExists, UploadNotFound, isComplete } from './store.js'
import type {
  ByteRange, Chunk, Concatenates, DataStore, DefersLength, Expires, NewUpload, Serves,
  Terminates, UploadInfo
} from './store.js'

export type { AzureConnectionOptions } from './azure-client.js'

const MiB = 1024 * 1024
/** Azure's largest block. */
const MAX_BLOCK_SIZE = 4000 * MiB

export interface AzureStoreOptions extends AzureConnectionOptions {
  /** Prepended to every blob name, e.g. `'uploads/'`. Default `''`. */
  objectPrefix?: string | undefined
  /** Access tier of the upload blobs (`Hot`, `Cool`, `Cold`, `Archive`). Default: the account's. */
  accessTier?: `${BlockBlobTier}` | undefined
  /** Size of the first 5,000 blocks of an upload; later ones double every 5,000. Default 8 MiB. */
  blockSize?: number | undefined
  /** Largest block (and most memory one write holds). Default 100 MiB. */
  maxBlockSize?: number | undefined
}

/** The `.info` blob. */
interface InfoBlob extends StoredInfo {
  version: 1
}

interface State {
  key: string
  info: InfoBlob
  infoEtag: string | undefined
  /** The data blob: its committed length and ETag, or undefined if it is missing. */
  blob: { size: number, etag: string | undefined, lastModified: Date | undefined } | undefined
  offset: number
}

export class AzureStore implements DataStore, Terminates, Concatenates, DefersLength, Serves, Expires {
  readonly container: ContainerClient
  readonly objectPrefix: string
  readonly accessTier: `${BlockBlobTier}` | undefined
  readonly blockSize: number
  readonly maxBlockSize: number
  #ready: Promise<void> | undefined
  readonly #create: { access: 'blob' | 'container' | undefined } | undefined

  constructor (options: AzureStoreOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('AzureStore: options are required')
    if (options.objectPrefix !== undefined && typeof options.objectPrefix !== 'string') throw new TypeError('AzureStore: "objectPrefix" must be a string')
    this.container = containerClientOf(options)
    this.objectPrefix = options.objectPrefix ?? ''
    if (options.accessTier !== undefined && !['Hot', 'Cool', 'Cold', 'Archive'].includes(options.accessTier)) {
      throw new TypeError('AzureStore: "accessTier" must be "Hot", "Cool", "Cold" or "Archive"')
    }
    this.accessTier = options.accessTier
    this.blockSize = positive('blockSize', options.blockSize ?? 8 * MiB)
    this.maxBlockSize = positive('maxBlockSize', options.maxBlockSize ?? 100 * MiB)
    if (this.maxBlockSize > MAX_BLOCK_SIZE) throw new RangeError('AzureStore: "maxBlockSize" must be at most 4000 MiB')
    if (this.blockSize > this.maxBlockSize) throw new RangeError('AzureStore: "blockSize" must not exceed "maxBlockSize"')
    this.#create = accessOf(options.createContainer)
  }

  /** Creates the container when `createContainer` asks for it (once); later calls share the first. */
  async ready (): Promise<void> {
    if (this.#create === undefined) return
    this.#ready ??= this.container.createIfNotExists(this.#create.access === undefined ? {} : { access: this.#create.access })
      .then(() => {}, (err: unknown) => { this.#ready = undefined; throw err })
    await this.#ready
  }

  /** The name of the blob that holds the bytes of upload `id`. */
  blobName (id: string): string {
    return this.#key(id)
  }

  async create (upload: NewUpload): Promise<UploadInfo> {
    if (!SAFE_ID.test(upload.id)) throw new TypeError(`AzureStore: invalid upload id ${JSON.stringify(upload.id)}`)
    await this.ready()
    const key = this.#key(upload.id)
    const now = new Date()
    const info: InfoBlob = { version: 1, id: upload.id, metadata: { ...upload.metadata }, createdAt: now.toISOString() }
    if (upload.size !== undefined) info.size = upload.size
    if (upload.binaryMetadata !== undefined) info.binaryMetadata = { ...upload.binaryMetadata }
    if (upload.concat !== undefined) info.concat = upload.concat
    if (upload.maxSize !== undefined) info.maxSize = upload.maxSize
    const text = JSON.stringify(info)
    try {
      await this.#infoBlob(key).upload(text, Buffer.byteLength(text), {
        blobHTTPHeaders: { blobContentType: 'application/json' },
        conditions: { ifNoneMatch: '*' }
      })
    } catch (err) {
      if (statusOf(err) === 409 || statusOf(err) === 412) throw new UploadExists(upload.id)
      throw err
    }
    // then the bytes, empty (a crash before leaves no blob: the offset is 0 all the same)
    await this.#data(key).upload(Buffer.alloc(0), 0, { blobHTTPHeaders: headersOf(info), ...this.#tier() })
    return toUploadInfo(info, 0, now)
  }

  async get (id: string): Promise<UploadInfo> {
    const state = await this.#state(id)
    return toUploadInfo(state.info, state.offset, updatedAt(state))
  }

  async write (id: string, chunk: Chunk): Promise<number> {
    const state = await this.#state(id)
    if (state.offset !== chunk.offset) throw new OffsetMismatch(state.offset, chunk.offset)
    if (state.info.size !== undefined && state.offset >= state.info.size) return 0
    const data = this.#data(state.key)
    const committed = state.blob === undefined ? [] : (await data.getBlockList('committed')).committedBlocks ?? []
    const ids = committed.map((block) => block.name as string)
    let etag = state.blob?.etag
    let offset = state.offset
    const staged: string[] = []
    const headers = headersOf(state.info)
    const commit = async (): Promise<void> => {
      const list = [...ids, ...staged]
      try {
        const done = await data.commitBlockList(list, {
          blobHTTPHeaders: headers,
          conditions: etag === undefined ? { ifNoneMatch: '*' } : { ifMatch: etag },
          abortSignal: chunk.signal,
          ...this.#tier()
        })
        etag = done.etag
      } catch (err) {
        // another writer committed first
        if (statusOf(err) === 412 || statusOf(err) === 409) throw new OffsetMismatch(state.offset, chunk.offset)
        throw err
      }
      ids.push(...staged)
      staged.length = 0
    }
    const deferred = chunk.beforeCommit !== undefined
    let pending = 0
    const { failure } = await cutIntoBlocks(chunk.body, () => blockSizeAt(ids.length + staged.length, this.blockSize, this.maxBlockSize), async (block) => {
      if (ids.length + staged.length >= MAX_BLOCKS) throw new StoreLimitExceeded(`AzureStore: upload ${id} has reached Azure's limit of ${MAX_BLOCKS} blocks`)
      const name = blockId(offset + pending)
      await data.stageBlock(name, block, block.length, { abortSignal: chunk.signal })
      staged.push(name)
      pending += block.length
      if (!deferred) {
        await commit()
        offset += pending
        pending = 0
      }
    }, chunk.signal)
    if (deferred) {
      await chunk.beforeCommit?.()
      if (staged.length > 0) await commit()
      offset += pending
    }
    if (failure !== undefined && offset === state.offset) throw failure
    return offset - state.offset
  }

  async declareLength (id: string, size: number): Promise<void> {
    const state = await this.#state(id)
    if (state.info.size !== undefined) {
      if (state.info.size === size) return
      throw new UploadChanged(`upload ${id} already has a length`)
    }
    if (state.offset > size) throw new RangeError(`upload ${id} already has ${state.offset} bytes`)
    const info: InfoBlob = { ...state.info, size }
    const text = JSON.stringify(info)
    try {
      await this.#infoBlob(state.key).upload(text, Buffer.byteLength(text), {
        blobHTTPHeaders: { blobContentType: 'application/json' },
        conditions: state.infoEtag === undefined ? {} : { ifMatch: state.infoEtag }
      })
    } catch (err) {
      if (statusOf(err) === 412) throw new UploadChanged(`upload ${id} changed while its length was declared`, { cause: err })
      throw err
    }
  }

  async read (id: string, range?: ByteRange): Promise<Readable> {
    const state = await this.#state(id)
    if (!isComplete(toUploadInfo(state.info, state.offset, new Date()))) throw new UploadChanged(`upload ${id} is not complete`)
    if (state.offset === 0) return Readable.from([])
    const start = range?.start ?? 0
    const count = range === undefined ? undefined : range.end - range.start + 1
    const downloaded = await this.#data(state.key).download(start, count, {
      conditions: state.blob?.etag === undefined ? {} : { ifMatch: state.blob.etag }
    })
    const body = downloaded.readableStreamBody
    if (body === undefined) throw new Error(`AzureStore: no body for ${state.key}`)
    return body instanceof Readable ? body : Readable.from(body as AsyncIterable<Buffer>)
  }

  async remove (id: string): Promise<void> {
    if (!SAFE_ID.test(id)) return
    const key = this.#key(id)
    // the bytes first, then the description (the upload is gone)
    await this.#data(key).deleteIfExists()
    await this.#infoBlob(key).deleteIfExists()
  }

  async concat (id: string, parts: string[]): Promise<void> {
    const state = await this.#state(id)
    const sources: Array<{ key: string, size: number, etag: string | undefined }> = []
    for (const part of parts) {
      const partial = await this.#state(part)
      if (!isComplete(toUploadInfo(partial.info, partial.offset, new Date()))) throw new UploadChanged(`partial upload ${part} is not complete`)
      sources.push({ key: partial.key, size: partial.offset, etag: partial.blob?.etag })
    }
    const total = sources.reduce((sum, source) => sum + source.size, 0)
    if (state.info.size !== undefined && state.info.size !== total) throw new UploadChanged(`the parts of ${id} have ${total} bytes, not ${state.info.size}`)
    if (state.offset === total && total > 0) return
    if (state.offset !== 0) throw new UploadChanged(`upload ${id} has bytes already`)
    // a streamed copy through this process (Azurite has no Put Block From URL), one block in memory at a time
    const data = this.#data(state.key)
    const list: string[] = []
    let offset = 0
    for (const source of sources) {
      if (source.size === 0) continue
      const downloaded = await this.#data(source.key).download(0, undefined, {
        conditions: source.etag === undefined ? {} : { ifMatch: source.etag }
      })
      const body = downloaded.readableStreamBody
      if (body === undefined) throw new Error(`AzureStore: no body for ${source.key}`)
      const { failure } = await cutIntoBlocks(Readable.from(body as AsyncIterable<Buffer>), () => blockSizeAt(list.length, this.blockSize, this.maxBlockSize), async (block) => {
        if (list.length >= MAX_BLOCKS) throw new StoreLimitExceeded(`AzureStore: upload ${id} would have more than ${MAX_BLOCKS} blocks`)
        const name = blockId(offset)
        await data.stageBlock(name, block, block.length)
        list.push(name)
        offset += block.length
      })
      if (failure !== undefined) throw failure
    }
    if (offset !== total) throw new Error(`AzureStore: copied ${offset} bytes of the parts of ${id}, not ${total}`)
    await data.commitBlockList(list, {
      blobHTTPHeaders: headersOf(state.info),
      conditions: state.blob?.etag === undefined ? {} : { ifMatch: state.blob.etag },
      ...this.#tier()
    })
  }

  async removeExpired (before: Date): Promise<number> {
    // the listing is in name order and an upload's blobs are `<key>` and `<key>.info`: once it
    // passes `<key>/`, the upload is settled, so memory holds only the uploads the listing is in
    // the middle of, however many the container has
    const open = new Map<string, { info: boolean, newest: number }>()
    let removed = 0
    const settle = async (id: string, entry: { info: boolean, newest: number }): Promise<void> => {
      open.delete(id)
      if (await this.#expire(id, entry, before)) removed++
    }
    for await (const page of this.container.listBlobsFlat({ prefix: this.objectPrefix }).byPage({ maxPageSize: 1000 })) {
      const items = page.segment.blobItems
      for (const blob of items) {
        const parsed = uploadIdOf(this.objectPrefix, blob.name)
        if (parsed === undefined || (parsed.suffix !== undefined && parsed.suffix !== 'info')) continue
        const entry = open.get(parsed.id) ?? { info: false, newest: 0 }
        if (parsed.suffix === 'info') entry.info = true
        entry.newest = Math.max(entry.newest, blob.properties.lastModified?.getTime() ?? 0)
        open.set(parsed.id, entry)
      }
      const last = items.at(-1)?.name
      if (last === undefined) continue
      for (const [id, entry] of open) {
        if (`${this.objectPrefix}${id}/` <= last) await settle(id, entry)
      }
    }
    for (const [id, entry] of open) await settle(id, entry)
    return removed
  }

  /** Removes one listed upload if it expired; whether it did. */
  async #expire (id: string, entry: { info: boolean, newest: number }, before: Date): Promise<boolean> {
    if (entry.newest >= before.getTime()) return false
    if (!entry.info) {
      // bytes whose description is gone: a removal cut short
      await this.#data(this.#key(id)).deleteIfExists()
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
    if (!SAFE_ID.test(id)) throw new UploadNotFound(id)
    return `${this.objectPrefix}${id}`
  }

  #data (key: string): BlockBlobClient {
    return this.container.getBlockBlobClient(key)
  }

  #infoBlob (key: string): BlockBlobClient {
    return this.container.getBlockBlobClient(`${key}.info`)
  }

  #tier (): { tier?: `${BlockBlobTier}` } {
    return this.accessTier === undefined ? {} : { tier: this.accessTier }
  }

  async #state (id: string): Promise<State> {
    const key = this.#key(id)
    const [described, properties] = await Promise.all([
      this.#infoBlob(key).download().then(async (response) => ({ text: await textOf(response.readableStreamBody), etag: response.etag }), (err: unknown) => {
        if (statusOf(err) === 404) return undefined
        throw err
      }),
      this.#data(key).getProperties().then((response) => response, (err: unknown) => {
        if (statusOf(err) === 404) return undefined
        throw err
      })
    ])
    if (described === undefined) throw new UploadNotFound(id)
    const info = JSON.parse(described.text) as InfoBlob
    if (info.version !== 1 || info.id !== id) throw new UploadCorrupt(`AzureStore: ${key}.info is not the description of upload ${id}`)
    const blob = properties === undefined
      ? undefined
      : { size: properties.contentLength ?? 0, etag: properties.etag, lastModified: properties.lastModified }
    const offset = blob?.size ?? 0
    if (info.size !== undefined && offset > info.size) throw new UploadCorrupt(`AzureStore: ${key} has ${offset} bytes, but upload ${id} has a length of ${info.size}`)
    return { key, info, infoEtag: described.etag, blob, offset }
  }
}

/** The same Content-Type and Content-Disposition downloads get: nothing a browser would run from a public container. */
function headersOf (info: InfoBlob): BlobHTTPHeaders {
  const served = servedAs(info.metadata)
  return { blobContentType: served.contentType, blobContentDisposition: served.contentDisposition }
}

async function textOf (body: NodeJS.ReadableStream | undefined): Promise<string> {
  if (body === undefined) return ''
  const parts: Buffer[] = []
  for await (const part of body as AsyncIterable<Buffer | string>) parts.push(Buffer.from(part))
  return Buffer.concat(parts).toString('utf8')
}

function statusOf (err: unknown): number | undefined {
  return (err as { statusCode?: number } | undefined)?.statusCode
}

function positive (name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`AzureStore: "${name}" must be a positive integer`)
  return value
}

function updatedAt (state: State): Date {
  return new Date(Math.max(new Date(state.info.createdAt).getTime(), state.blob?.lastModified?.getTime() ?? 0))
}

function toUploadInfo (info: InfoBlob, offset: number, updated: Date): UploadInfo {
  const upload: UploadInfo = { id: info.id, offset, metadata: info.metadata, createdAt: new Date(info.createdAt), updatedAt: updated }
  if (info.size !== undefined) upload.size = info.size
  if (info.binaryMetadata !== undefined) upload.binaryMetadata = info.binaryMetadata
  if (info.concat !== undefined) upload.concat = info.concat
  if (info.maxSize !== undefined) upload.maxSize = info.maxSize
  return upload
}
