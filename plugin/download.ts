/**
 * What a download response says about the file: its type and disposition (the rule the S3 and
 * GCS stores store objects with, `stores/content-type.ts`), the headers that keep a served file
 * from running as a page of the server's origin, its validator, and the byte range asked for.
 */
import type { ByteRange, UploadInfo } from '../stores/store.js'

export { servedAs } from '../stores/content-type.js'

/**
 * Sent with every download: `sandbox` makes a document that a browser renders anyway an opaque
 * origin without scripts; `default-src 'none'` loads nothing from it.
 */
export const DOWNLOAD_CSP = "default-src 'none'; sandbox"

/**
 * `same-site`: pages of the server's own site (the app that uploads, on a sibling host) may embed
 * downloads (`<img>`, `<video>`), other sites may not load them as subresources (Spectre-style
 * reads through `no-cors` requests). Top-level navigation and downloads are not affected.
 */
export const DOWNLOAD_CORP = 'same-site'

/** A strong validator: a completed upload never changes. */
export function etag (upload: UploadInfo): string {
  return `"${upload.id.slice(0, 16)}-${upload.size ?? 0}-${upload.createdAt.getTime().toString(36)}"`
}

/**
 * The single byte range of a `Range` header: a range, `'unsatisfiable'`, or `undefined` to
 * send the whole file (no header, a malformed one, or several ranges, which servers may ignore).
 */
export function parseRange (value: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (value === undefined) return undefined
  const match = /^bytes=(\d*)-(\d*)$/.exec(value.trim())
  if (match === null) return undefined
  const [, first = '', last = ''] = match
  if (first === '' && last === '') return undefined
  if (first === '') {
    const suffix = Number(last)
    if (suffix === 0 || size === 0) return 'unsatisfiable'
    return { start: Math.max(0, size - suffix), end: size - 1 }
  }
  const start = Number(first)
  if (start >= size) return 'unsatisfiable'
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1)
  if (end < start) return undefined
  return { start, end }
}
