/**
 * The storage contract. Stores know nothing about HTTP: the plugin talks to them only through
 * this file. A store implements the core (`DataStore`) and any of the capability interfaces
 * below; the plugin detects capabilities with the type guards and derives `Tus-Extension` from
 * them, so a store never advertises what it cannot do.
 */
import type { Readable } from 'node:stream'

export type Metadata = Record<string, string | undefined>

/**
 * A final upload's `value` is the `Upload-Concat` header as the client sent it, echoed on HEAD
 * (absent in infos written before it was kept: HEAD then lists the parts' URLs).
 */
export type Concat = { kind: 'partial' } | { kind: 'final', parts: string[], value?: string | undefined }

/** What a store knows about one upload. */
export interface UploadInfo {
  id: string
  /** Total length in bytes; `undefined` while the length is deferred. */
  size?: number | undefined
  /** Bytes stored and acknowledged so far. Never ahead of the bytes the store holds. */
  offset: number
  /** Decoded `Upload-Metadata` (an empty value is `''`; a value that is not UTF-8 is decoded with U+FFFD for each invalid sequence). */
  metadata: Metadata
  /** The values of `metadata` that are not UTF-8, as base64 of their exact bytes (absent when there are none). */
  binaryMetadata?: Metadata | undefined
  concat?: Concat | undefined
  /** A size limit for this upload (set by a `preCreate` hook); matters while the length is deferred. */
  maxSize?: number | undefined
  /**
   * Where the store keeps this upload, as tusd reports `FileInfo.Storage` (file store:
   * `{ Type: 'filestore', Path, InfoPath }`; S3: `{ Type: 's3store', Bucket, Key }`). Set only for
   * an upload placed by `NewUpload.storage` (or found with tusd's own description).
   */
  storage?: Record<string, string> | undefined
  createdAt: Date
  /** Last time bytes were written (or the upload was created): the clock for expiration. */
  updatedAt: Date
}

/** What the plugin asks a store to create. */
export interface NewUpload {
  id: string
  size?: number | undefined
  metadata: Metadata
  /** Persist it with the upload and return it from `get` (stores that do not echo the U+FFFD text instead). */
  binaryMetadata?: Metadata | undefined
  concat?: Concat | undefined
  maxSize?: number | undefined
  /**
   * Where to keep the upload's bytes, as tusd's `ChangeFileInfo.Storage`: only for a store that
   * `canPlace` (fields in its `storageFields`: `Path`, a relative path under the file store's
   * directory; `Key`, an object key under an object store's prefix). The store validates it
   * (`InvalidStorage`, `StorageTaken`) and persists it with the upload.
   */
  storage?: Record<string, string> | undefined
}

/** One chunk handed to `DataStore.write`. */
export interface Chunk {
  /** Where the chunk starts; always the upload's current offset. */
  offset: number
  /**
   * The bytes. The stream always ends cleanly: the plugin turns client aborts, idle timeouts
   * and lock releases into an early end, so a store simply persists everything it reads.
   */
  body: Readable
  /** Aborted when the store must give up (for instance at the end of a shutdown grace period). */
  signal?: AbortSignal | undefined
  /**
   * Called after the whole body was read and before its bytes become part of the upload. If it
   * throws, the store discards this chunk (the offset stays where it was) and rethrows.
   * The plugin uses it to verify `Upload-Checksum`.
   */
  beforeCommit?: (() => void | Promise<void>) | undefined
  /**
   * The lease of the upload's lock the caller holds, as `LeaseOptions.lease`: under the lease of
   * the store's last `get`, `create` or `write` of this upload, the store may use what it saw or
   * left then instead of reading the upload's state again (the S3 store does).
   */
  lease?: string | undefined
}

/** What the caller of `create` or `get` knows about the upload's lock. */
export interface LeaseOptions {
  /**
   * The lease of the upload's lock the caller holds (`Lock.lease`): the same value across holds
   * that follow one another without a break, so while it stays the same nobody else changed the
   * upload, and a `get` may answer from what the store saw or wrote under that lease (the file
   * store then makes no file-system call). Stores are free to ignore it.
   */
  lease?: string | undefined
}

/** The core every store implements. */
export interface DataStore {
  create (upload: NewUpload, options?: LeaseOptions): Promise<UploadInfo>
  /** Throws `UploadNotFound` when there is no such upload. */
  get (id: string, options?: LeaseOptions): Promise<UploadInfo>
  /** Appends a chunk at `chunk.offset` and resolves with the number of bytes persisted. */
  write (id: string, chunk: Chunk): Promise<number>
}

/** `termination`: remove an upload and everything stored for it. Idempotent for missing uploads. */
export interface Terminates {
  remove (id: string): Promise<void>
}

/** `concatenation`: fill the final upload `id` (already created) with the bytes of `parts`, in order. */
export interface Concatenates {
  concat (id: string, parts: string[]): Promise<void>
}

/** `creation-defer-length`: set the length of an upload created without one. */
export interface DefersLength {
  declareLength (id: string, size: number): Promise<void>
}

export interface ByteRange {
  /** First byte, inclusive. */
  start: number
  /** Last byte, inclusive. */
  end: number
}

/** Downloads: stream the bytes of an upload (or a range of them). */
export interface Serves {
  read (id: string, range?: ByteRange): Promise<Readable>
}

/** `expiration`: delete unfinished uploads whose last activity is before `before`. */
export interface Expires {
  removeExpired (before: Date): Promise<number>
}

/**
 * Per-upload storage: the store keeps an upload's bytes where `NewUpload.storage` says (validated:
 * never outside its directory or prefix, never over another upload's files or an existing file).
 */
export interface PlacesUploads {
  /** The `NewUpload.storage` fields the store honours: `['Path']` (file store), `['Key']` (object stores). */
  readonly storageFields: readonly string[]
}

export type Store = DataStore & Partial<Terminates & Concatenates & DefersLength & Serves & Expires>

function hasMethod (store: object, name: string): boolean {
  return typeof (store as Record<string, unknown>)[name] === 'function'
}

export function isDataStore (store: unknown): store is DataStore {
  return typeof store === 'object' && store !== null &&
    hasMethod(store, 'create') && hasMethod(store, 'get') && hasMethod(store, 'write')
}
export function canTerminate (store: DataStore): store is DataStore & Terminates {
  return hasMethod(store, 'remove')
}
export function canConcat (store: DataStore): store is DataStore & Concatenates {
  return hasMethod(store, 'concat')
}
export function canDeferLength (store: DataStore): store is DataStore & DefersLength {
  return hasMethod(store, 'declareLength')
}
export function canServe (store: DataStore): store is DataStore & Serves {
  return hasMethod(store, 'read')
}
export function canPlace (store: DataStore): store is DataStore & PlacesUploads {
  const fields = (store as Partial<PlacesUploads>).storageFields
  return Array.isArray(fields) && fields.length > 0
}
export function canExpire (store: DataStore): store is DataStore & Expires {
  return hasMethod(store, 'removeExpired')
}

/** True once every byte of a known-length upload is stored. */
export function isComplete (info: UploadInfo): boolean {
  return info.size !== undefined && info.offset === info.size
}

/**
 * True when `err` is an Error carrying `code` (the store and locker errors below carry stable
 * codes). The plugin recognises these errors by class or by code, so a store published on its own,
 * with its own copy of these classes, is understood as well.
 */
export function hasErrorCode (err: unknown, ...codes: string[]): err is Error & { code: string } {
  return err instanceof Error && codes.includes((err as { code?: unknown }).code as string)
}

/**
 * Raised by `get`, `write`, `read` … for an upload that does not exist. The one class for this
 * code: the plugin sends it as it is (`errors.UploadNotFound`, 404).
 */
export class UploadNotFound extends Error {
  readonly code = 'ERR_UPLOAD_NOT_FOUND'
  readonly statusCode = 404
  constructor (readonly id?: string) {
    super('Upload not found')
    this.name = 'UploadNotFound'
  }
}

/**
 * Raised by `create` when an upload with that id exists already (the store must not touch it).
 * The one class for this code: the plugin sends it (`errors.UploadExists`, 409); a store's own
 * copy with the earlier code `UPLOAD_EXISTS` is recognised too.
 */
export class UploadExists extends Error {
  readonly code = 'ERR_UPLOAD_EXISTS'
  readonly statusCode = 409
  constructor (readonly id?: string) {
    super('An upload with this id exists already')
    this.name = 'UploadExists'
  }
}

/** Raised by `write` when `chunk.offset` is not the upload's offset (a caller bug or a race). */
export class OffsetMismatch extends Error {
  readonly code = 'OFFSET_MISMATCH'
  constructor (readonly expected: number, readonly actual: number) {
    super(`chunk offset ${actual} does not match upload offset ${expected}`)
    this.name = 'OffsetMismatch'
  }
}

/**
 * Raised when an upload's file is not one the store made: a symbolic link (or another kind of
 * file) planted under its name. The store never follows it.
 */
export class UnsafeFile extends Error {
  readonly code = 'UNSAFE_FILE'
  constructor (options?: { cause?: unknown }) {
    super('an upload file is a symbolic link or not a regular file; it was not followed', options)
    this.name = 'UnsafeFile'
  }
}

/**
 * Raised when an upload is not in the state an operation needs because something else changed it
 * meanwhile (another server's write, a condition the storage service refused) or it is not
 * complete where it must be. The client may ask for the offset and try again. The message is for
 * the operator: the plugin logs it and sends a fresh one with a generic message (409).
 */
export class UploadChanged extends Error {
  readonly code = 'ERR_UPLOAD_CHANGED'
  readonly statusCode = 409
  constructor (detail?: string, options?: { cause?: unknown }) {
    super(detail ?? 'The upload changed while this request was served; ask for its offset and try again', options)
    this.name = 'UploadChanged'
  }
}

/**
 * Raised when an upload would go past a limit of the storage service (S3's 10,000 parts, Azure's
 * 50,000 blocks). The plugin logs the message and sends a fresh, generic one (413).
 */
export class StoreLimitExceeded extends Error {
  readonly code = 'ERR_STORE_LIMIT_EXCEEDED'
  readonly statusCode = 413
  constructor (detail?: string, options?: { cause?: unknown }) {
    super(detail ?? 'The upload would go past a limit of the storage service', options)
    this.name = 'StoreLimitExceeded'
  }
}

/**
 * Raised when what a store finds for an upload is not what it wrote (an info object for another
 * upload, more bytes than the upload's length). An operator's problem: the plugin logs it and
 * answers 500.
 */
export class UploadCorrupt extends Error {
  readonly code = 'ERR_UPLOAD_CORRUPT'
  constructor (detail: string, options?: { cause?: unknown }) {
    super(detail, options)
    this.name = 'UploadCorrupt'
  }
}

/**
 * Raised when a store runs out of space (for example ENOSPC). The one class for this code: the
 * plugin logs the cause and sends a fresh one (`errors.StoreFull`, 507).
 */
export class StoreFull extends Error {
  readonly code = 'ERR_STORAGE_FULL'
  readonly statusCode = 507
  constructor (options?: { cause?: unknown }) {
    super('The server has no storage space left for this upload', options)
    this.name = 'StoreFull'
  }
}

/**
 * Raised by `create` for a `storage` the store refuses: a path or key that could leave its
 * directory or prefix (`..`, absolute, NUL, a link on the way) or a name the store reserves. The
 * message says why and is safe to send (400).
 */
export class InvalidStorage extends Error {
  readonly code = 'ERR_INVALID_STORAGE'
  readonly statusCode = 400
  constructor (reason = 'is not valid') {
    super(`The storage chosen for the upload ${reason}`)
    this.name = 'InvalidStorage'
  }
}

/**
 * Raised by `create` when the `storage` chosen for a new upload is taken: another upload's data or
 * info file, or a file that exists already (409).
 */
export class StorageTaken extends Error {
  readonly code = 'ERR_STORAGE_TAKEN'
  readonly statusCode = 409
  constructor (options?: { cause?: unknown }) {
    super('The storage chosen for the upload is already in use', options)
    this.name = 'StorageTaken'
  }
}
