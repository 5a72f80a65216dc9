/**
 * What the file store's directory may hold besides its own `<id>` and `<id>.info`: uploads placed
 * at a path a hook chose (`NewUpload.storage.Path`, tusd's `Storage.Path`) and uploads written by
 * tusd's filestore, whose `.info` is tusd's `FileInfo` JSON (capitalised keys).
 *
 * A chosen path is relative to the directory and can never leave it or take a name the store uses:
 * `/`-separated components, none empty, none starting with `.` (so no `.`, `..` or temporary
 * file), no NUL, control character or backslash, and a first component that does not end with
 * `.info`, `.lock` or `.stop` (the names of info files and of the file locker's files).
 */
import { basename, isAbsolute, relative, resolve, sep } from 'node:path'
import type { Metadata } from './store.js'
import { checkRelativePlace } from './placement.js'
import type { StoredInfo } from './info.js'
import { InvalidStorage } from './store.js'

/**
 * The relative path `value` names, checked (`checkRelativePlace`, and a first component that is
 * not an info or lock file name); `InvalidStorage` (with the reason, safe to send) otherwise.
 */
export function checkStoragePath (value: unknown): string {
  const first = checkRelativePlace(value, 'Path')[0] as string
  if (/\.(info|lock|stop)$/.test(first)) throw new InvalidStorage('has a Path that takes the name of an info or lock file')
  return value as string
}

/** The parent directories of a relative path, shortest first (`a/b/c` → `a`, `a/b`). */
export function parentsOf (path: string): string[] {
  const parts = path.split('/')
  const parents: string[] = []
  for (let i = 1; i < parts.length; i++) parents.push(parts.slice(0, i).join('/'))
  return parents
}

/** The store's own info file, and what it keeps of a tusd one. */
export interface InfoFile extends StoredInfo {
  /** Start of a chunk that is written but not verified yet. */
  pending?: number
  /** Where the bytes are, relative to the directory, when not at `<id>`. */
  storage?: { path: string }
  /** A tusd info file as read: written back in tusd's shape, so tusd can still read it. */
  tusd?: Record<string, unknown>
}

/** Whether a parsed `.info` is tusd's `FileInfo` (capitalised keys) rather than the store's own. */
export function isTusdInfo (raw: unknown): raw is Record<string, unknown> {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'ID' in raw && !('id' in raw)
}

/** Thrown for a tusd info file the store will not serve (its data outside the directory, a bad field). */
export class ForeignInfo extends Error {
  override name = 'ForeignInfo'
}

/**
 * The store's view of tusd's `FileInfo` for upload `id`. tusd writes `Storage.Path` as the path
 * it opened (absolute, or relative to its working directory): it is honoured when it resolves
 * inside `directory`; `Offset` is stale in tusd's files and is ignored (the data file's size is
 * the offset, as in tusd).
 */
export function fromTusdInfo (raw: Record<string, unknown>, id: string, directory: string, createdAt: Date): InfoFile {
  if (raw.ID !== id) throw new ForeignInfo(`tusd info names upload ${JSON.stringify(raw.ID)}, not ${JSON.stringify(id)}`)
  const info: InfoFile = { id, metadata: stringMap(raw.MetaData), createdAt: createdAt.toISOString(), tusd: raw }
  if (raw.SizeIsDeferred !== true) {
    if (typeof raw.Size !== 'number' || !Number.isSafeInteger(raw.Size) || raw.Size < 0) throw new ForeignInfo('tusd info has no valid Size')
    info.size = raw.Size
  }
  if (typeof raw.pending === 'number' && Number.isSafeInteger(raw.pending)) info.pending = raw.pending
  if (raw.IsPartial === true) info.concat = { kind: 'partial' }
  if (raw.IsFinal === true) {
    const parts = Array.isArray(raw.PartialUploads) ? raw.PartialUploads.filter((part): part is string => typeof part === 'string') : []
    info.concat = { kind: 'final', parts }
  }
  const storage = raw.Storage as Record<string, unknown> | null | undefined
  const path = typeof storage === 'object' && storage !== null ? storage.Path : undefined
  if (typeof path === 'string' && path !== '') {
    const root = resolve(directory)
    const inside = relative(root, resolve(path))
    const outside = inside === '' || inside.startsWith('..') || isAbsolute(inside)
    // tusd's default place seen from elsewhere (the directory was moved or mounted at another path): the bytes beside the info
    if (outside && basename(path) === id) return info
    if (outside) throw new ForeignInfo('tusd info keeps its bytes outside the upload directory')
    const placed = inside.split(sep).join('/')
    if (placed !== id) {
      try {
        info.storage = { path: checkStoragePath(placed) }
      } catch {
        throw new ForeignInfo('tusd info keeps its bytes at a path the store does not use')
      }
    }
  }
  return info
}

/** The JSON of an info file: the store's own shape, or tusd's for a file tusd wrote. */
export function serializeInfo (info: InfoFile): string {
  const { tusd, ...own } = info
  if (tusd === undefined) return JSON.stringify(own)
  const shaped: Record<string, unknown> = { ...tusd, Size: info.size ?? 0, SizeIsDeferred: info.size === undefined }
  if (info.pending !== undefined) shaped.pending = info.pending; else delete shaped.pending
  return JSON.stringify(shaped)
}

function stringMap (value: unknown): Metadata {
  const map: Metadata = Object.create(null) as Metadata
  if (typeof value !== 'object' || value === null) return map
  for (const [key, text] of Object.entries(value)) {
    if (typeof text === 'string') map[key] = text
  }
  return map
}
