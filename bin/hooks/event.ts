/**
 * Builds tusd's `HookRequest` from what the plugin's hooks receive: the upload (or, before
 * creation, the draft) and the Fastify request.
 */
import type { FastifyRequest } from 'fastify'
import type { UploadDraft } from '../../plugin/hooks.js'
import type { Metadata, UploadInfo } from '../../stores/store.js'
import type { FileInfo, HookRequest, HookType, HTTPRequest } from './protocol.js'

/** Where a store keeps an upload, as tusd's `FileInfo.Storage` (`null` when unknown). */
export type StorageInfo = (id: string) => Record<string, string> | null

export function hookRequest (type: HookType, request: FastifyRequest, upload: FileInfo): HookRequest {
  return { Type: type, Event: { Upload: upload, HTTPRequest: httpRequest(request) } }
}

/** An upload as tusd describes it. */
export function fileInfo (upload: UploadInfo, storage?: StorageInfo): FileInfo {
  const concat = upload.concat
  return {
    ID: upload.id,
    Size: upload.size ?? 0,
    SizeIsDeferred: upload.size === undefined,
    Offset: upload.offset,
    MetaData: definedValues(upload.metadata),
    IsPartial: concat?.kind === 'partial',
    IsFinal: concat?.kind === 'final',
    PartialUploads: concat?.kind === 'final' ? [...concat.parts] : null,
    // a placed upload says where it is; the others are where the store keeps every upload
    Storage: upload.storage !== undefined ? { ...upload.storage } : storage?.(upload.id) ?? null
  }
}

/** The upload pre-create sees: as tusd, without an id (it is not settled yet) and without storage. */
export function draftInfo (draft: UploadDraft): FileInfo {
  return { ...fileInfo({ ...draft, offset: 0, createdAt: new Date(0), updatedAt: new Date(0) }), ID: '', Storage: null }
}

export function httpRequest (request: FastifyRequest): HTTPRequest {
  const raw = request.raw
  const header = Object.create(null) as Record<string, string[]>
  const pairs = raw.rawHeaders
  for (let i = 0; i + 1 < pairs.length; i += 2) {
    // HTTP/2 pseudo-headers (`:path` …) are not headers to Go
    if ((pairs[i] as string).startsWith(':')) continue
    const name = canonicalHeaderKey(pairs[i] as string)
    ;(header[name] ??= []).push(pairs[i + 1] as string)
  }
  // Go keeps Host out of the header map; tusd puts it back as a single value (HTTP/2: `:authority`)
  header.Host = [request.headers.host ?? (request.headers[':authority'] as string | undefined) ?? '']
  return {
    Method: method(request),
    URI: raw.url ?? '',
    RemoteAddr: remoteAddress(request),
    Header: header
  }
}

/** Go's `http.CanonicalHeaderKey`: `upload-length` → `Upload-Length`. */
export function canonicalHeaderKey (name: string): string {
  // Go leaves names with characters outside the token set alone
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) return name
  return name.toLowerCase().replace(/(^|-)([a-z])/g, (_match, dash: string, letter: string) => `${dash}${letter.toUpperCase()}`)
}

/** The method the plugin served, `X-HTTP-Method-Override` applied. */
function method (request: FastifyRequest): string {
  const override = request.headers['x-http-method-override']
  const value = Array.isArray(override) ? override[0] : override
  return value !== undefined && value.trim() !== '' ? value.trim().toUpperCase() : request.raw.method ?? ''
}

/** `ip:port` as Go prints it (`[::1]:port` for IPv6), from the connection. */
function remoteAddress (request: FastifyRequest): string {
  const socket = request.raw.socket as { remoteAddress?: string, remotePort?: number } | undefined
  let address = socket?.remoteAddress
  if (address === undefined) return ''
  if (address.startsWith('::ffff:') && address.includes('.')) address = address.slice('::ffff:'.length)
  const host = address.includes(':') ? `[${address}]` : address
  return `${host}:${socket?.remotePort ?? 0}`
}

/** The metadata as tusd sends it: keys whose value is `undefined` (possible only in a hook's own object) are left out. */
function definedValues (metadata: Metadata): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [key, value] of Object.entries(metadata)) if (value !== undefined) out[key] = value
  return out
}
