/**
 * Uploads on local disk: `<directory>/<id>` holds the bytes, `<directory>/<id>.info` the JSON
 * description. The info file is created with O_EXCL (that is what claims the id) and later
 * replaced atomically (temporary file + rename); the data file appears with the first byte.
 *
 * The offset is the size of the data file (0 while there is none), so it is exactly what
 * reached the file system, and it survives a crash at any point. A chunk that must be verified before it counts (checksums)
 * is announced in the info file first (`pending`); until it is committed, the reported offset
 * stays at the chunk's start, and the next write cuts the unverified bytes off.
 *
 * Nothing planted in the directory is followed: files are opened with `O_NOFOLLOW` (or created
 * with `O_EXCL`), checked with `lstat`, and replaced by `rename` (which replaces a link, never
 * its target). An info file that is not a regular file names no upload; a data file that is not
 * one is an `UnsafeFile` error. New files get `fileMode` and a directory the store creates gets
 * `directoryMode`, exactly, whatever the umask (0o600 and 0o700 by default).
 */
import { randomBytes } from 'node:crypto'
import { constants, type Dir, type Stats } from 'node:fs'
import { access, chmod, lstat, mkdir, open, opendir, readdir, rename, rm, rmdir, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import {
  InvalidStorage, OffsetMismatch, StorageTaken, StoreFull, UnsafeFile, UploadExists, UploadNotFound, isComplete
} from './store.js'
import type {
  ByteRange, Chunk, Concatenates, DataStore, DefersLength, Expires, LeaseOptions, NewUpload, PlacesUploads,
  Serves, Terminates, UploadInfo
} from './store.js'
import { checkStoragePath, ForeignInfo, fromTusdInfo, isTusdInfo, parentsOf, serializeInfo, type InfoFile } from './file-layout.js'
import { isUploadId } from './ids.js'
import { toUploadInfo } from './info.js'

export interface FileStoreOptions {
  /** Where uploads are kept. Created if missing. */
  directory: string
  /** `fsync` data and info files before a write is acknowledged. Default false. */
  fsync?: boolean | undefined
  /** Mode of the upload directory when the store creates it (an existing one is left as it is). Default 0o700. */
  directoryMode?: number | undefined
  /** Mode of data and info files. Default 0o600: uploads are not readable by other users. */
  fileMode?: number | undefined
}

/** Open flags that never follow a symbolic link in the last path component. */
const NOFOLLOW = constants.O_NOFOLLOW

function checkMode (name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!Number.isInteger(value) || value < 0 || value > 0o777) throw new TypeError(`FileStore: "${name}" must be a permission mode from 0 to 0o777`)
  return value
}

/** Whether the process's umask would take bits off `mode` (so files need an explicit chmod). */
function maskedBy (mode: number): boolean {
  // reading the umask means setting it: set it back at once (nothing runs in between)
  let mask: number
  try {
    mask = process.umask(0)
  } catch {
    // worker threads cannot set it: chmod every new file to be sure
    return true
  }
  process.umask(mask)
  return (mode & mask) !== 0
}

/**
 * Bytes gathered in memory while a write is under way before the body is paused: up to 256 KiB
 * per upload (fewer, larger writes), shared out of 4 MiB when many uploads stream at once, so
 * memory stays flat however many there are (64 KiB floor).
 */
const GATHER_BUDGET = 4 * 1024 * 1024
const GATHER_MAX = 256 * 1024
const GATHER_MIN = 64 * 1024
let streaming = 0
function gatherLimit (): number {
  return Math.max(GATHER_MIN, Math.min(GATHER_MAX, Math.floor(GATHER_BUDGET / Math.max(1, streaming))))
}

/**
 * An info file as last read or written, and the size of the data file as last seen by a `get`
 * or left by a `write` of this process (unset when not known). `lease` is the lock lease under
 * which a `get` last checked both files; while the caller still holds that lease nobody else can
 * have changed them, and `get` answers from here (`updatedAt` is then the data's last change).
 */
interface CachedInfo { stamp: string, info: InfoFile, dataSize?: number, lease?: string, updatedAt?: Date }

/** How many info files each store keeps parsed in memory. */
const INFO_CACHE_SIZE = 10_000

/** How many uploads an expiration sweep checks at once. */
const SWEEP_CONCURRENCY = 8

/** Upload ids the store accepts: they can never name a path outside the directory. */

/** Default modes: the upload directory and its files are the server user's only. */
export const FILE_STORE_MODES = Object.freeze({ directoryMode: 0o700, fileMode: 0o600 })

export class FileStore implements DataStore, Terminates, Concatenates, DefersLength, Serves, Expires, PlacesUploads {
  readonly directory: string
  /** `NewUpload.storage.Path`: a path relative to `directory` for the upload's bytes (tusd's `Storage.Path`). */
  readonly storageFields = Object.freeze(['Path'])
  readonly #fsync: boolean
  readonly #directoryMode: number
  readonly #fileMode: number
  /** Files must be chmod-ed after creation: the umask takes bits off `fileMode`. */
  readonly #chmodFiles: boolean
  /** Directories made for placed uploads must be chmod-ed: the umask takes bits off `directoryMode`. */
  readonly #chmodDirectories: boolean
  #ready: Promise<void> | undefined
  readonly #infoCache = new Map<string, CachedInfo>()

  constructor (options: FileStoreOptions) {
    if (typeof options?.directory !== 'string' || options.directory === '') {
      throw new TypeError('FileStore: "directory" must be a non-empty string')
    }
    this.directory = options.directory
    this.#fsync = options.fsync ?? false
    this.#directoryMode = checkMode('directoryMode', options.directoryMode, FILE_STORE_MODES.directoryMode)
    this.#fileMode = checkMode('fileMode', options.fileMode, FILE_STORE_MODES.fileMode)
    this.#chmodFiles = maskedBy(this.#fileMode)
    this.#chmodDirectories = maskedBy(this.#directoryMode)
  }

  async create (upload: NewUpload, options?: LeaseOptions): Promise<UploadInfo> {
    if (!isUploadId(upload.id)) throw new TypeError(`FileStore: unsafe upload id ${JSON.stringify(upload.id)}`)
    await this.#ensureDirectory()
    const now = new Date()
    const info: InfoFile = { id: upload.id, metadata: { ...upload.metadata }, createdAt: now.toISOString() }
    if (upload.size !== undefined) info.size = upload.size
    if (upload.binaryMetadata !== undefined) info.binaryMetadata = { ...upload.binaryMetadata }
    if (upload.concat !== undefined) info.concat = upload.concat
    if (upload.maxSize !== undefined) info.maxSize = upload.maxSize
    if (upload.storage !== undefined) info.storage = { path: await this.#claim(upload.storage) }
    const path = this.#infoPath(upload.id)
    let handle: FileHandle
    try {
      handle = await open(path, 'wx', this.#fileMode)
    } catch (err) {
      if (info.storage !== undefined) await rm(this.#dataPath(info), { force: true })
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UploadExists(upload.id)
      throw mapFsError(err)
    }
    if (info.storage === undefined && await exists(this.#dataPath(info))) {
      // a file (or a directory of placed uploads) already has this upload's name: not ours to take
      await handle.close()
      await rm(path, { force: true })
      throw new StorageTaken()
    }
    try {
      if (this.#chmodFiles) await handle.chmod(this.#fileMode)
      await handle.writeFile(serializeInfo(info))
      if (this.#fsync) await handle.sync()
      // a new id has no data file yet (removal deletes the bytes before the info file). Under a
      // lease the next get is answered from here, so the info file's stamp (one more system call)
      // is only taken without one; an empty stamp makes a later unleased get read the file again
      const stamp = options?.lease === undefined ? stampOf(await handle.stat()) : ''
      const entry = this.#remember(upload.id, stamp, info)
      entry.dataSize = 0
      entry.updatedAt = now
      // created under the caller's lock: its next get under the same lease needs no file-system call
      entry.lease = options?.lease
      await handle.close()
    } catch (err) {
      await handle.close().catch(() => {})
      this.#infoCache.delete(upload.id)
      await rm(path, { force: true })
      if (info.storage !== undefined) await rm(this.#dataPath(info), { force: true })
      throw mapFsError(err)
    }
    return this.#uploadInfo(info, 0, now)
  }

  /**
   * Checks a chosen place and claims it: its directories are made (with `directoryMode`), each
   * checked to be a directory and not a link, and the data file is created empty with `O_EXCL`
   * (so an existing file, link or another upload's bytes are never taken). Resolves with the path.
   */
  async #claim (storage: Record<string, string>): Promise<string> {
    const unknown = Object.keys(storage).filter((field) => field !== 'Path')
    if (unknown.length > 0) throw new InvalidStorage(`has fields the file store does not use: ${unknown.join(', ')}`)
    const path = checkStoragePath(storage.Path)
    const first = path.split('/')[0] as string
    // the place of an upload's own bytes, or a directory that would hide them
    if (await exists(join(this.directory, `${first}.info`))) throw new StorageTaken()
    for (const parent of parentsOf(path)) {
      const full = join(this.directory, parent)
      let made = false
      try {
        await mkdir(full, { mode: this.#directoryMode })
        made = true
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code === 'ENOTDIR') throw new InvalidStorage('has a Path through a file or a link')
        if (code !== 'EEXIST') throw mapFsError(err)
      }
      // made now: its mode exactly, whatever the umask; one that exists must be a directory, not a link
      if (made) {
        if (this.#chmodDirectories) await chmod(full, this.#directoryMode)
      } else {
        const stats = await lstat(full).catch(() => undefined)
        if (stats?.isDirectory() !== true) throw new InvalidStorage('has a Path through a file or a link')
      }
    }
    let handle: FileHandle
    try {
      handle = await open(join(this.directory, path), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW, this.#fileMode)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EEXIST' || code === 'ELOOP' || code === 'EISDIR') throw new StorageTaken({ cause: err })
      if (code === 'ENOTDIR') throw new InvalidStorage('has a Path through a file or a link')
      throw mapFsError(err)
    }
    try {
      if (this.#chmodFiles) await handle.chmod(this.#fileMode)
    } finally {
      await handle.close()
    }
    // an upload of that id created meanwhile: it checks for this file after its info file, this
    // checks for its info file after the file, so one of the two always sees the other and backs out
    if (await exists(join(this.directory, `${first}.info`))) {
      await rm(join(this.directory, path), { force: true })
      throw new StorageTaken()
    }
    return path
  }

  /** The `UploadInfo` of an info file; a placed upload says where it is, as tusd's `Storage`. */
  #uploadInfo (info: InfoFile, offset: number, updatedAt: Date): UploadInfo {
    const upload = toUploadInfo(info, offset, updatedAt)
    if (info.storage !== undefined) {
      upload.storage = { Type: 'filestore', Path: this.#dataPath(info), InfoPath: this.#infoPath(info.id) }
    }
    return upload
  }

  async get (id: string, options?: LeaseOptions): Promise<UploadInfo> {
    const lease = options?.lease
    const known = this.#infoCache.get(id)
    // the caller's lock has not left this process since both files were checked: no I/O
    if (lease !== undefined && known?.lease === lease && known.dataSize !== undefined && known.updatedAt !== undefined) {
      return this.#uploadInfo(known.info, offsetOf(known.info, known.dataSize), known.updatedAt)
    }
    // the info and the usual data file at once; a placed upload's bytes are elsewhere
    const usual = this.#statData({ id }).catch((err: unknown) => err instanceof Error ? err : new Error(String(err)))
    const { info, mtime } = await this.#readInfo(id)
    let stats = await usual
    if (info.storage !== undefined) stats = await this.#statData(info)
    if (stats instanceof Error) throw stats
    const updatedAt = stats?.mtime ?? mtime
    const cached = this.#infoCache.get(id)
    if (cached?.info === info) {
      cached.dataSize = stats?.size ?? 0
      cached.updatedAt = updatedAt
      cached.lease = lease
    }
    return this.#uploadInfo(info, offsetOf(info, stats?.size ?? 0), updatedAt)
  }

  /**
   * Writes are made by the holder of the upload's lock, after the `get` (or `create`) that
   * checked the upload under that lock: the info and data size cached then are current, so
   * they are used as they are (the size is asked of the file only when not known).
   */
  async write (id: string, chunk: Chunk): Promise<number> {
    const cached = this.#infoCache.get(id)
    const info = cached?.info ?? (await this.#readInfo(id)).info
    const known = cached?.dataSize
    // whatever happens next, the size is known again only once this write has succeeded
    if (cached !== undefined) delete cached.dataSize
    let handle: FileHandle
    try {
      await this.#checkParents(info)
      handle = await open(this.#dataPath(info), constants.O_RDWR | constants.O_CREAT | NOFOLLOW, this.#fileMode)
    } catch (err) {
      throw notFoundOr(id, err)
    }
    try {
      let size = known ?? (await handle.stat()).size
      if (size === 0 && this.#chmodFiles) await handle.chmod(this.#fileMode)
      // a size remembered from a read that raced with an earlier write may be behind: only the
      // file itself can say the offset is wrong
      if (known !== undefined && offsetOf(info, size) !== chunk.offset) size = (await handle.stat()).size
      const current = offsetOf(info, size)
      if (current !== chunk.offset) throw new OffsetMismatch(current, chunk.offset)
      if (size > chunk.offset) await handle.truncate(chunk.offset)
      if (chunk.beforeCommit !== undefined) await this.#writeInfo({ ...info, pending: chunk.offset })
      const written = await copyInto(handle, chunk)
      if (this.#fsync) await handle.sync()
      if (chunk.beforeCommit !== undefined) {
        try {
          await chunk.beforeCommit()
        } catch (err) {
          await handle.truncate(chunk.offset)
          await this.#writeInfo(info)
          throw err
        }
        await this.#writeInfo(info)
      }
      const after = this.#infoCache.get(id)
      if (after !== undefined) {
        after.dataSize = chunk.offset + written
        after.updatedAt = new Date()
      }
      return written
    } finally {
      await handle.close()
    }
  }

  async declareLength (id: string, size: number): Promise<void> {
    const { info } = await this.#readInfo(id)
    await this.#writeInfo({ ...info, size })
  }

  async read (id: string, range?: ByteRange): Promise<Readable> {
    const { info } = await this.#readInfo(id)
    if (await this.#statData(info) === undefined) return Readable.from([])
    const handle = await openNoFollow(this.#dataPath(info))
    return handle.createReadStream(range === undefined ? {} : { start: range.start, end: range.end })
  }

  async remove (id: string): Promise<void> {
    if (!isUploadId(id)) return
    // where the bytes are (a placed upload's own path); an unreadable info names the usual place,
    // no info at all names nothing (a file under the id's name is then a placed upload's, not this one's)
    const info: Pick<InfoFile, 'id' | 'storage'> | undefined = await this.#readInfo(id).then(({ info }) => info, async () => await exists(this.#infoPath(id)) ? { id } : undefined)
    this.#infoCache.delete(id)
    if (info === undefined) return
    // the bytes go first: the id stays claimed by its info file until nothing of it is left, so
    // a removal cut short never leaves bytes that a new upload of the same id would inherit
    if (info.storage === undefined || await this.#checkParents(info).then(() => true, () => false)) {
      await rm(this.#dataPath(info), { force: true })
    }
    await rm(this.#infoPath(id), { force: true })
    if (info.storage !== undefined) await this.#removeEmptyParents(info.storage.path)
  }

  async concat (id: string, parts: string[]): Promise<void> {
    const { info } = await this.#readInfo(id)
    const tmp = join(this.directory, `.${id}.concat.${randomBytes(6).toString('hex')}`)
    const handle = await open(tmp, 'wx', this.#fileMode)
    try {
      if (this.#chmodFiles) await handle.chmod(this.#fileMode)
      let position = 0
      for (const part of parts) {
        const { info: partInfo } = await this.#readInfo(part)
        if (await this.#statData(partInfo) === undefined) continue
        for await (const buffer of (await openNoFollow(this.#dataPath(partInfo))).createReadStream()) {
          position += await writeAll(handle, buffer as Buffer, position)
        }
      }
      if (this.#fsync) await handle.sync()
    } catch (err) {
      await handle.close()
      await rm(tmp, { force: true })
      throw mapFsError(err)
    }
    await handle.close()
    try {
      await this.#checkParents(info)
      await rename(tmp, this.#dataPath(info))
    } catch (err) {
      await rm(tmp, { force: true })
      throw mapFsError(err)
    }
  }

  /**
   * Streams the directory (`opendir`: a directory of a million uploads is never listed whole) and
   * checks at most `SWEEP_CONCURRENCY` uploads at a time.
   */
  async removeExpired (before: Date): Promise<number> {
    let dir: Dir
    try {
      dir = await opendir(this.directory, { bufferSize: 256 })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0
      throw err
    }
    let removed = 0
    const running = new Set<Promise<void>>()
    let failure: unknown
    try {
      for await (const entry of dir) {
        if (failure !== undefined) break
        if (!entry.name.endsWith('.info')) continue
        const task = this.#expireOne(entry.name, before).then((gone) => { if (gone) removed++ }, (err: unknown) => { failure ??= err })
          .finally(() => running.delete(task))
        running.add(task)
        if (running.size >= SWEEP_CONCURRENCY) await Promise.race(running)
      }
    } finally {
      await Promise.all(running)
    }
    if (failure !== undefined) throw failure
    return removed
  }

  /** Removes the upload of info file `name` if it expired before `before`; whether it did. */
  async #expireOne (name: string, before: Date): Promise<boolean> {
    const id = name.slice(0, -'.info'.length)
    let upload: UploadInfo
    try {
      upload = await this.get(id)
    } catch (err) {
      // an info file a crash left empty: nothing of that upload can ever be read
      if (err instanceof UploadNotFound && await this.#abandonedBefore(name, before)) {
        await this.remove(id)
        return true
      }
      // anything else (a planted link, an unreadable file) is left for the operator
      return false
    }
    if (isComplete(upload) || upload.updatedAt >= before) return false
    await this.remove(id)
    return true
  }

  async #abandonedBefore (name: string, before: Date): Promise<boolean> {
    try {
      return (await lstat(join(this.directory, name))).mtime < before
    } catch {
      return false
    }
  }

  /** Where an upload's bytes are: `<id>`, or the path it was placed at. */
  #dataPath (info: Pick<InfoFile, 'id' | 'storage'>): string {
    return join(this.directory, info.storage?.path ?? info.id)
  }

  /**
   * A placed upload's directories must still be directories, not links planted since: `lstat`
   * each (the last component is opened with `O_NOFOLLOW`). Nothing to check for `<id>`.
   */
  async #checkParents (info: Pick<InfoFile, 'storage'>): Promise<void> {
    if (info.storage === undefined) return
    for (const parent of parentsOf(info.storage.path)) {
      let stats: Stats
      try {
        stats = await lstat(join(this.directory, parent))
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
        throw mapFsError(err)
      }
      if (!stats.isDirectory()) throw new UnsafeFile()
    }
  }

  /** Removes the directories of a placed upload that it leaves empty (never the upload directory). */
  async #removeEmptyParents (path: string): Promise<void> {
    for (const parent of parentsOf(path).reverse()) {
      const full = join(this.directory, parent)
      try {
        if ((await readdir(full)).length > 0) return
        await rmdir(full)
      } catch {
        return
      }
    }
  }

  #infoPath (id: string): string {
    return join(this.directory, `${id}.info`)
  }

  /**
   * Creates the upload directory if missing (with `directoryMode`) and checks that it is a
   * directory this process can write; rejects with the file-system error otherwise. Requests do
   * this on their own; a server calls it at start to fail early on a bad directory.
   */
  async ready (): Promise<void> {
    await this.#ensureDirectory()
    await access(this.directory, constants.W_OK | constants.X_OK)
  }

  async #ensureDirectory (): Promise<void> {
    this.#ready ??= mkdir(this.directory, { recursive: true, mode: this.#directoryMode }).then(async (created) => {
      // created now: its mode exactly, whatever the umask (an existing directory is the operator's)
      if (created !== undefined) await chmod(this.directory, this.#directoryMode)
    }).catch((err: unknown) => {
      this.#ready = undefined
      throw mapFsError(err)
    })
    await this.#ready
  }

  /**
   * The info file, from a per-process cache when the file is unchanged. Info files are only
   * ever replaced by rename, so a new inode (or size, or mtime) means new content: one `stat`
   * replaces open + read + close, and a change made by another process is always seen.
   */
  async #readInfo (id: string): Promise<{ info: InfoFile, mtime: Date }> {
    if (!isUploadId(id)) throw new UploadNotFound(id)
    const path = this.#infoPath(id)
    let stats: Stats
    try {
      stats = await lstat(path)
    } catch (err) {
      this.#infoCache.delete(id)
      throw notFoundOr(id, err)
    }
    // the store only ever writes regular files: anything else under the name is no upload of ours
    if (!stats.isFile()) {
      this.#infoCache.delete(id)
      throw new UploadNotFound(id)
    }
    const stamp = stampOf(stats)
    const cached = this.#infoCache.get(id)
    if (cached?.stamp === stamp) return { info: cached.info, mtime: stats.mtime }
    let info: InfoFile
    try {
      const raw = JSON.parse(await readNoFollow(path)) as unknown
      // tusd's filestore wrote it: its own JSON, served as it is
      info = isTusdInfo(raw) ? fromTusdInfo(raw, id, this.directory, stats.mtime) : raw as InfoFile
      if (info.storage !== undefined) checkStoragePath(info.storage.path)
    } catch (err) {
      // an info file still being created (or left empty by a crash then) names no upload yet;
      // one swapped for a link since the lstat is not followed
      if (err instanceof SyntaxError || (err as NodeJS.ErrnoException).code === 'ELOOP') throw new UploadNotFound(id)
      // a description the store will not follow (bytes outside the directory): never served
      if (err instanceof ForeignInfo || err instanceof InvalidStorage) throw new UnsafeFile({ cause: err })
      throw notFoundOr(id, err)
    }
    this.#remember(id, stamp, info)
    return { info, mtime: stats.mtime }
  }

  #remember (id: string, stamp: string, info: InfoFile): CachedInfo {
    if (this.#infoCache.size >= INFO_CACHE_SIZE) {
      // forget the oldest entry (a Map iterates in insertion order)
      const oldest = this.#infoCache.keys().next().value
      if (oldest !== undefined) this.#infoCache.delete(oldest)
    }
    this.#infoCache.delete(id)
    const entry: CachedInfo = { stamp, info }
    this.#infoCache.set(id, entry)
    return entry
  }

  /** The data file's size and time, or `undefined` while no byte was written. */
  async #statData (info: Pick<InfoFile, 'id' | 'storage'>): Promise<Stats | undefined> {
    await this.#checkParents(info)
    let stats: Stats
    try {
      stats = await lstat(this.#dataPath(info))
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw mapFsError(err)
    }
    if (!stats.isFile()) throw new UnsafeFile()
    return stats
  }

  async #writeInfo (info: InfoFile): Promise<void> {
    const target = this.#infoPath(info.id)
    const tmp = `${target}.${uniqueSuffix()}.tmp`
    try {
      // `wx`: a fresh file, never something planted under the name; `rename` replaces the name itself
      if (this.#fsync || this.#chmodFiles) {
        const handle = await open(tmp, 'wx', this.#fileMode)
        try {
          if (this.#chmodFiles) await handle.chmod(this.#fileMode)
          await handle.writeFile(serializeInfo(info))
          if (this.#fsync) await handle.sync()
        } finally {
          await handle.close()
        }
      } else {
        await writeFile(tmp, serializeInfo(info), { flag: 'wx', mode: this.#fileMode })
      }
      await rename(tmp, target)
    } catch (err) {
      await rm(tmp, { force: true })
      throw mapFsError(err)
    }
    // the next read of this upload (usually the very next request) needs no open/read/parse
    try {
      this.#remember(info.id, stampOf(await lstat(target)), info)
    } catch {
      this.#infoCache.delete(info.id)
    }
  }
}

/** Unique temporary-file names without asking the system for randomness every time. */
const processTag = randomBytes(6).toString('hex')
let counter = 0
function uniqueSuffix (): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER
  return `${processTag}${counter.toString(36)}`
}

/** What identifies one version of an info file (they are only ever replaced, never edited). */
function stampOf ({ ino, size, mtimeMs, ctimeMs }: { ino: number, size: number, mtimeMs: number, ctimeMs: number }): string {
  return `${ino}:${size}:${mtimeMs}:${ctimeMs}`
}

function offsetOf (info: InfoFile, fileSize: number): number {
  return info.pending === undefined ? fileSize : Math.min(info.pending, fileSize)
}

/**
 * Streams the body into the file at `chunk.offset`. Chunks that arrive while a write is under
 * way are gathered and go out together in one `writev` (never concatenated: `read()` on a byte
 * stream would copy them), so a fast client is never held to one write per network chunk. An
 * early end, a failing body or an aborted signal keeps what was written.
 */
async function copyInto (handle: FileHandle, chunk: Chunk): Promise<number> {
  const body = chunk.body
  let written = 0
  let gathered: Buffer[] = []
  let gatheredBytes = 0
  let writing = false
  let ended = false
  streaming++
  let stopped = false
  return await new Promise<number>((resolve, reject) => {
    const stop = (err?: unknown): void => {
      if (!stopped) streaming--
      stopped = true
      body.off('data', onData)
      body.off('end', onEnd)
      body.off('error', onEnd)
      body.off('close', onEnd)
      if (!body.readableEnded) body.destroy()
      if (err === undefined) resolve(written); else reject(err)
    }
    const flush = (): void => {
      if (writing) return
      if (chunk.signal?.aborted === true || (ended && gathered.length === 0)) {
        stop()
        return
      }
      if (gathered.length === 0) return
      const buffers = gathered
      gathered = []
      gatheredBytes = 0
      writing = true
      writeBuffers(handle, buffers, chunk.offset + written).then((bytes) => {
        written += bytes
        writing = false
        if (!ended) body.resume()
        flush()
      }, (err: unknown) => stop(mapFsError(err)))
    }
    const onData = (data: Buffer): void => {
      gathered.push(data)
      gatheredBytes += data.length
      // enough waiting for the disk: let the network wait too
      if (gatheredBytes >= gatherLimit()) body.pause()
      flush()
    }
    const onEnd = (): void => {
      ended = true
      flush()
    }
    body.on('data', onData)
    body.once('end', onEnd)
    body.once('error', onEnd)
    body.once('close', onEnd)
    if (body.readableEnded || body.destroyed) onEnd()
  })
}

async function writeBuffers (handle: FileHandle, buffers: Buffer[], position: number): Promise<number> {
  const total = buffers.reduce((sum, buffer) => sum + buffer.length, 0)
  const { bytesWritten } = await handle.writev(buffers, position)
  if (bytesWritten === total) return total
  // a short write (rare on files): finish the rest piece by piece
  const rest = Buffer.concat(buffers).subarray(bytesWritten)
  return bytesWritten + await writeAll(handle, rest, position + bytesWritten)
}

async function writeAll (handle: FileHandle, buffer: Buffer, position: number): Promise<number> {
  let done = 0
  while (done < buffer.length) {
    const { bytesWritten } = await handle.write(buffer, done, buffer.length - done, position + done)
    done += bytesWritten
  }
  return done
}

/** Whether anything (a file, a directory, a link) has this name. */
async function exists (path: string): Promise<boolean> {
  try {
    await lstat(path)
    return true
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw mapFsError(err)
  }
}

/** Opens a file for reading without following a link (a link is an `UnsafeFile`). */
async function openNoFollow (path: string): Promise<FileHandle> {
  try {
    return await open(path, constants.O_RDONLY | NOFOLLOW)
  } catch (err) {
    throw mapFsError(err)
  }
}

/** A whole file, opened without following a link. */
async function readNoFollow (path: string): Promise<string> {
  const handle = await open(path, constants.O_RDONLY | NOFOLLOW)
  try {
    return await handle.readFile('utf8')
  } finally {
    await handle.close()
  }
}

function mapFsError (err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  if (code === 'ENOSPC' || code === 'EDQUOT') return new StoreFull({ cause: err })
  // O_NOFOLLOW met a link
  if (code === 'ELOOP') return new UnsafeFile({ cause: err })
  return err
}

function notFoundOr (id: string, err: unknown): unknown {
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new UploadNotFound(id)
  return mapFsError(err)
}
