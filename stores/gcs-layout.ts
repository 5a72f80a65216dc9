/**
 * Where the GCS store keeps an upload, and how its state is read back from a listing.
 *
 * For an upload whose key is `<objectPrefix><id>`:
 *
 * - `<key>.info`                  the upload's description (JSON)
 * - `<key>.piece.<start>`         bytes written by a PATCH, from offset `<start>` (16 digits)
 * - `<key>.body.<end>`            bytes 0 … end-1, composed from earlier pieces
 * - `<key>.pending.<tag>.<start>` bytes of a chunk that waits for its checksum; they never count
 * - `<key>.compose.<tag>.<l>.<i>` intermediate objects of a composition of more than 32 sources
 * - `<key>`                       the finished upload; it exists only once every byte is there
 *
 * The offset of an unfinished upload is the end of its chain: the newest body (or offset 0),
 * then the piece that starts where that ends, and so on. A piece or body that is not on the
 * chain is stale (left behind by a crash between composing and deleting) and never counts, so
 * a crash at any point leaves an offset that is exactly what the chain holds.
 */
import { parseCrc32c } from './gcs-crc.js'
import { isUploadId } from './ids.js'

/** What the store needs to know of one object. */
export interface StoredObject {
  name: string
  generation: string
  size: number
  /** CRC32C, unsigned. */
  crc32c: number
  updated: Date
}

/** An upload's objects besides the finished one, as a listing of `<key>.` shows them. */
export interface Layout {
  info: StoredObject | undefined
  /** The objects that hold bytes 0 … offset-1, in order. */
  chain: StoredObject[]
  offset: number
  /** Objects of the upload that do not count: bodies and pieces off the chain, pending and intermediate objects. */
  stale: StoredObject[]
  /** The newest change to the description or the chain. */
  updatedAt: Date | undefined
}

const DIGITS = 16

export const names = {
  info: (key: string): string => `${key}.info`,
  piece: (key: string, start: number): string => `${key}.piece.${pad(start)}`,
  body: (key: string, end: number): string => `${key}.body.${pad(end)}`,
  pending: (key: string, tag: string, start: number): string => `${key}.pending.${tag}.${pad(start)}`,
  composing: (key: string, tag: string, level: number, index: number): string => `${key}.compose.${tag}.${level}.${index}`
}

const PIECE = /^piece\.(\d{16})$/
const BODY = /^body\.(\d{16})$/
const SCRATCH = /^(?:pending|compose)\./

/** The layout of the upload with key `key`, from the objects listed under `<key>.`. */
export function layoutOf (key: string, objects: readonly StoredObject[]): Layout {
  let info: StoredObject | undefined
  const bodies: Array<{ end: number, object: StoredObject }> = []
  const pieces = new Map<number, StoredObject>()
  const stale: StoredObject[] = []
  for (const object of objects) {
    if (!object.name.startsWith(`${key}.`)) continue
    const rest = object.name.slice(key.length + 1)
    if (rest === 'info') {
      info = object
      continue
    }
    const body = BODY.exec(rest)
    const piece = PIECE.exec(rest)
    if (body !== null) bodies.push({ end: Number(body[1]), object })
    else if (piece !== null) pieces.set(Number(piece[1]), object)
    else if (SCRATCH.test(rest)) stale.push(object)
  }
  // the newest body is the longest one that is as long as its name says
  bodies.sort((a, b) => b.end - a.end)
  const body = bodies.find((candidate) => candidate.end > 0 && candidate.object.size === candidate.end)
  for (const other of bodies) if (other !== body) stale.push(other.object)
  const chain: StoredObject[] = body === undefined ? [] : [body.object]
  let offset = body?.end ?? 0
  for (let piece = pieces.get(offset); piece !== undefined && piece.size > 0; piece = pieces.get(offset)) {
    chain.push(piece)
    pieces.delete(offset)
    offset += piece.size
  }
  stale.push(...pieces.values())
  let updatedAt = info?.updated
  for (const object of chain) if (updatedAt === undefined || object.updated > updatedAt) updatedAt = object.updated
  return { info, chain, offset, stale, updatedAt }
}

/** The store's view of an object resource from the JSON API. */
export function storedObject (resource: { name?: string, generation?: string | number, size?: string | number, crc32c?: string, updated?: string }): StoredObject {
  const crc32c = parseCrc32c(resource.crc32c)
  if (resource.name === undefined || resource.generation === undefined || crc32c === undefined) {
    throw new Error(`GCS returned an incomplete object resource for ${resource.name ?? 'an object'}`)
  }
  return {
    name: resource.name,
    generation: String(resource.generation),
    size: Number(resource.size ?? 0),
    crc32c,
    updated: resource.updated === undefined ? new Date(0) : new Date(resource.updated)
  }
}

/** The upload id of an object name under `prefix`, if it is one of the store's names. */
export function uploadIdOf (prefix: string, name: string): { id: string, suffix: string | undefined } | undefined {
  if (!name.startsWith(prefix)) return undefined
  const rest = name.slice(prefix.length)
  const dot = rest.indexOf('.')
  const id = dot < 0 ? rest : rest.slice(0, dot)
  if (!isUploadId(id)) return undefined
  return { id, suffix: dot < 0 ? undefined : rest.slice(dot + 1) }
}

/** Whether `suffix` (after `<key>.`) names one of the store's own objects (anything but the description). */
export function isWorkObject (suffix: string): boolean {
  return PIECE.test(suffix) || BODY.test(suffix) || SCRATCH.test(suffix)
}

function pad (value: number): string {
  if (!Number.isSafeInteger(value) || value < 0 || value >= 10 ** DIGITS) throw new RangeError(`GcsStore: offset ${value} out of range`)
  return String(value).padStart(DIGITS, '0')
}
