/**
 * The type and disposition a stored upload is served with, from the client's `filetype` and
 * `filename` metadata. One rule for every place a file leaves the server: the plugin's GET
 * downloads and the objects the S3 and GCS stores write (a public bucket serves them as they
 * are stored). A served file must never run as a page: types a browser would run (HTML, XML,
 * SVG, scripts, multipart streams) become `application/octet-stream`, and only plain text,
 * images, audio and video may be shown `inline`.
 */
import type { Metadata } from './store.js'

/** Types a browser may show inline; everything else (PDF, archives …) is an attachment. */
const INLINE = new Set([
  'text/plain', 'image/png', 'image/jpeg', 'image/gif', 'image/bmp', 'image/webp', 'image/avif',
  'audio/wave', 'audio/wav', 'audio/x-wav', 'audio/x-pn-wav', 'audio/webm', 'audio/ogg', 'audio/mpeg',
  'video/mp4', 'video/webm', 'video/ogg', 'application/ogg'
])

/** Bare types (lower case) a browser renders as a document or runs: never stored or served as such. */
const ACTIVE = /html|xml|svg|script|^multipart\/|^text\/xsl$|^text\/cache-manifest$|^application\/x-shockwave-flash$/

const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+"
const MEDIA_TYPE = new RegExp(`^${TOKEN}/${TOKEN}(?:\\s*;\\s*${TOKEN}=(?:${TOKEN}|"[^"\\\\\\r\\n]*"))*$`)

export const OCTET_STREAM = 'application/octet-stream'

/**
 * `filetype` when it is a valid (ASCII) media type that cannot run as a page, else
 * `application/octet-stream`.
 */
export function safeContentType (metadata: Readonly<Metadata>): string {
  const type = metadata.filetype?.trim()
  if (type === undefined || !MEDIA_TYPE.test(type)) return OCTET_STREAM
  return ACTIVE.test(bareType(type)) ? OCTET_STREAM : type
}

/** `inline` or `attachment`, with an RFC 6266 filename (ASCII fallback plus UTF-8 `filename*`); ASCII only. */
export function safeContentDisposition (type: string, filename: string | undefined): string {
  const kind = INLINE.has(bareType(type)) ? 'inline' : 'attachment'
  if (filename === undefined || filename === '') return kind
  const base = filename.split(/[/\\]/).pop() ?? ''
  if (base === '') return kind
  const ascii = base.replace(/[^\x20-\x7E]/g, '_').replace(/["\\]/g, '_')
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeRfc5987(base)}`
}

/** Both headers for an upload's metadata. */
export function servedAs (metadata: Readonly<Metadata>): { contentType: string, contentDisposition: string } {
  const contentType = safeContentType(metadata)
  return { contentType, contentDisposition: safeContentDisposition(contentType, metadata.filename) }
}

function bareType (type: string): string {
  return type.split(';')[0]?.trim().toLowerCase() ?? ''
}

function encodeRfc5987 (value: string): string {
  return encodeURIComponent(value).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
}
