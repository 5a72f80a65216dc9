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
import { access, chmod, lstat, mkdir, open, opendir, rename, rm, writeFile, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import {
  OffsetMismatch, StoreFull, UnsafeFile, UploadExists, UploadNotFound, isComplete
} from './store.js'
import type {
  ByteRange, Chunk, Concat, Concatenates, DataStore, DefersLength, Expires, LeaseOptions, Metadata, NewUpload,
  Serves, Terminates, UploadInfo
} from './store.js'
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

/** What the `.info` file holds. */
interface InfoFile {
  id: string
  size?: number
  metadata: Metadata
  binaryMetadata?: Metadata
  concat?: Concat
  maxSize?: number
  createdAt: string
  /** Start of a chunk that is written but not verified yet. */
  pending?: number
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

export class FileStore implements DataStore, Terminates, Concatenates, DefersLength, Serves, Expires {
  readonly directory: string
  readonly #fsync: boolean
  readonly #directoryMode: number
  readonly #fileMode: number
  /** Files must be chmod-ed after creation: the umask takes bits off `fileMode`. */
  readonly #chmodFiles: boolean
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
    const path = this.#infoPath(upload.id)
    let handle: FileHandle
    try {
      handle = await open(path, 'wx', this.#fileMode)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new UploadExists(upload.id)
      throw mapFsError(err)
    }
    try {
      if (this.#chmodFiles) await handle.chmod(this.#fileMode)
      await handle.writeFile(JSON.stringify(info))
      if (this.#fsync) await handle.sync()
      // a new id has no data file yet (removal deletes the bytes before the info file)
      const entry = this.#remember(upload.id, stampOf(await handle.stat()), info)
      entry.dataSize = 0
      entry.updatedAt = now
      // created under the caller's lock: its next get under the same lease needs no file-system call
      entry.lease = options?.lease
      await handle.close()
    } catch (err) {
      await handle.close().catch(() => {})
      this.#infoCache.delete(upload.id)
      await rm(path, { force: true })
      throw mapFsError(err)
    }
    return toUploadInfo(info, 0, now)
  }

  async get (id: string, options?: LeaseOptions): Promise<UploadInfo> {
    const lease = options?.lease
    const known = this.#infoCache.get(id)
    // the caller's lock has not left this process since both files were checked: no I/O
    if (lease !== undefined && known?.lease === lease && known.dataSize !== undefined && known.updatedAt !== undefined) {
      return toUploadInfo(known.info, offsetOf(known.info, known.dataSize), known.updatedAt)
    }
    const [{ info, mtime }, stats] = await Promise.all([this.#readInfo(id), this.#statData(id)])
    const updatedAt = stats?.mtime ?? mtime
    const cached = this.#infoCache.get(id)
    if (cached?.info === info) {
      cached.dataSize = stats?.size ?? 0
      cached.updatedAt = updatedAt
      cached.lease = lease
    }
    return toUploadInfo(info, offsetOf(info, stats?.size ?? 0), updatedAt)
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
      handle = await open(this.#dataPath(id), constants.O_RDWR | constants.O_CREAT | NOFOLLOW, this.#fileMode)
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
    await this.#readInfo(id)
    const path = this.#dataPath(id)
    if (await this.#statData(id) === undefined) return Readable.from([])
    const handle = await openNoFollow(path)
    return handle.createReadStream(range === undefined ? {} : { start: range.start, end: range.end })
  }

  async remove (id: string): Promise<void> {
    if (!isUploadId(id)) return
    this.#infoCache.delete(id)
    // the bytes go first: the id stays claimed by its info file until nothing of it is left, so
    // a removal cut short never leaves bytes that a new upload of the same id would inherit
    await rm(this.#dataPath(id), { force: true })
    await rm(this.#infoPath(id), { force: true })
  }

  async concat (id: string, parts: string[]): Promise<void> {
    await this.#readInfo(id)
    const tmp = join(this.directory, `.${id}.concat.${randomBytes(6).toString('hex')}`)
    const handle = await open(tmp, 'wx', this.#fileMode)
    try {
      if (this.#chmodFiles) await handle.chmod(this.#fileMode)
      let position = 0
      for (const part of parts) {
        await this.#readInfo(part)
        if (await this.#statData(part) === undefined) continue
        for await (const buffer of (await openNoFollow(this.#dataPath(part))).createReadStream()) {
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
    await rename(tmp, this.#dataPath(id))
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

  #dataPath (id: string): string {
    return join(this.directory, id)
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
      info = JSON.parse(await readNoFollow(path)) as InfoFile
    } catch (err) {
      // an info file still being created (or left empty by a crash then) names no upload yet;
      // one swapped for a link since the lstat is not followed
      if (err instanceof SyntaxError || (err as NodeJS.ErrnoException).code === 'ELOOP') throw new UploadNotFound(id)
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
  async #statData (id: string): Promise<Stats | undefined> {
    let stats: Stats
    try {
      stats = await lstat(this.#dataPath(id))
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
          await handle.writeFile(JSON.stringify(info))
          if (this.#fsync) await handle.sync()
        } finally {
          await handle.close()
        }
      } else {
        await writeFile(tmp, JSON.stringify(info), { flag: 'wx', mode: this.#fileMode })
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
