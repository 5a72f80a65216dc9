/**
 * The S3 store's bookkeeping rules, as pure functions: which uploaded parts belong to an upload,
 * how large its parts are, and how a concatenation is cut into parts.
 *
 * An upload is the multipart upload's parts 1, 2, 3 … without a gap, stopping before `limit`
 * (the first part number whose content is not trusted yet: a chunk waiting for its checksum, or
 * parts left behind by a crash), then the leftover object when it starts exactly where those
 * parts end. Anything else that exists (a part after a gap, a leftover whose bytes already went
 * into a part) is not part of the upload and is overwritten or deleted later.
 */

export interface StoredPart {
  number: number
  size: number
  etag: string
  modified?: Date
}

export interface PartCount {
  /** The parts that belong to the upload, in order. */
  counted: StoredPart[]
  /** Their total size. */
  bytes: number
  /** The number the next part gets. */
  next: number
  /** Whether parts numbered `next` or higher exist (they must not count until overwritten). */
  stray: boolean
}

export function countParts (listed: StoredPart[], limit?: number): PartCount {
  const byNumber = new Map(listed.map((part) => [part.number, part]))
  const counted: StoredPart[] = []
  let bytes = 0
  const end = limit ?? Number.POSITIVE_INFINITY
  let next = 1
  for (;;) {
    const part = next < end ? byNumber.get(next) : undefined
    if (part === undefined) break
    counted.push(part)
    bytes += part.size
    next++
  }
  return { counted, bytes, next, stray: listed.some((part) => part.number >= next) }
}

export interface PartLimits {
  /** Preferred part size. */
  partSize: number
  /** Largest part the store will make. */
  maxPartSize: number
  /** Most parts in one multipart upload. */
  maxParts: number
}

/**
 * The part size of an upload of `size` bytes (`undefined`: deferred): the preferred size, or
 * larger when the upload would need too many parts. `undefined` when even the largest part is
 * not enough.
 */
export function partSizeFor (size: number | undefined, limits: PartLimits): number | undefined {
  if (size === undefined) return limits.partSize
  const needed = Math.max(limits.partSize, Math.ceil(size / limits.maxParts))
  return needed <= limits.maxPartSize ? needed : undefined
}

/** A byte range of a source object, both ends inclusive. */
export interface Segment {
  key: string
  start: number
  end: number
}

/**
 * Cuts the concatenation of `sources` into parts of `partSize` bytes (the last may be shorter).
 * A part inside one source can be copied on the server; one that spans sources is assembled.
 */
export function concatParts (sources: Array<{ key: string, size: number }>, partSize: number): Segment[][] {
  const parts: Segment[][] = []
  let current: Segment[] = []
  let room = partSize
  for (const source of sources) {
    let start = 0
    while (start < source.size) {
      const take = Math.min(room, source.size - start)
      current.push({ key: source.key, start, end: start + take - 1 })
      start += take
      room -= take
      if (room === 0) {
        parts.push(current)
        current = []
        room = partSize
      }
    }
  }
  if (current.length > 0) parts.push(current)
  return parts
}

/** Whether an S3 error means "no such object / upload". */
export function isNotFound (err: unknown): boolean {
  const e = err as { name?: string, Code?: string, $metadata?: { httpStatusCode?: number } } | undefined
  if (e === undefined || e === null) return false
  return e.$metadata?.httpStatusCode === 404 || e.name === 'NoSuchKey' || e.name === 'NoSuchUpload' || e.name === 'NotFound'
}

/** Whether an S3 error is a failed precondition (`If-None-Match: *` on an existing object). */
export function isPreconditionFailed (err: unknown): boolean {
  const e = err as { name?: string, $metadata?: { httpStatusCode?: number } } | undefined
  return e?.$metadata?.httpStatusCode === 412 || e?.name === 'PreconditionFailed'
}
