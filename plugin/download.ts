/**
 * What a download response says about the file: its type (from `filetype` metadata, only when
 * it is a well-formed media type), its disposition (inline only for types a browser cannot turn
 * into active content), its validator, and the byte range asked for.
 */
import type { ByteRange, Metadata, UploadInfo } from '../stores/store.js'

/** Types a browser may show inline; everything else (HTML, SVG, PDF, scripts …) is an attachment. */
const INLINE = new Set([
  'text/plain', 'image/png', 'image/jpeg', 'image/gif', 'image/bmp', 'image/webp', 'image/avif',
  'audio/wave', 'audio/wav', 'audio/x-wav', 'audio/x-pn-wav', 'audio/webm', 'audio/ogg', 'audio/mpeg',
  'video/mp4', 'video/webm', 'video/ogg', 'application/ogg'
])

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:\\s*;\\s*${TOKEN}=(?:${TOKEN}|"[^"\\\\\\r\\n]*"))*$`)

/** `filetype` when it is a valid media type, else `application/octet-stream`. */
export function contentType (metadata: Metadata): string {
  const type = metadata.filetype?.trim()
  return type !== undefined && MEDIA_TYPE.test(type) ? type : 'application/octet-stream'
}

/** `inline` or `attachment`, with an RFC 6266 filename (ASCII fallback plus UTF-8 `filename*`). */
export function contentDisposition (type: string, filename: string | undefined): string {
  const bare = type.split(';')[0]?.trim().toLowerCase() ?? ''
  const kind = INLINE.has(bare) ? 'inline' : 'attachment'
  if (filename === undefined || filename === '') return kind
  const base = filename.split(/[/\\]/).pop() ?? ''
  if (base === '') return kind
  const ascii = base.replace(/[^\x20-\x7E]/g, '_').replace(/["\\]/g, '_')
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeRfc5987(base)}`
}

function encodeRfc5987 (value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}

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
