/**
 * The URLs the server hands out (`Location`, the parts of an `Upload-Concat` HEAD echoes) and
 * the upload URLs it accepts back (`Upload-Concat: final;…`). Nothing a client sends reaches a
 * URL unchecked: a host is a DNS name, an IPv4 address or a bracketed IPv6 address with an
 * optional port (no userinfo, path, query or spaces), and a scheme is `http` or `https`.
 *
 * Where the origin comes from, first match wins:
 * - `publicUrl` (`https://uploads.example.com`, optionally with a path prefix): no request header is read;
 * - with `respectForwardedHeaders`, the first hop of `Forwarded`, then `X-Forwarded-Host` /
 *   `X-Forwarded-Proto`, each value only when valid (a bad one is ignored);
 * - the connection: its `Host` (`:authority`) and whether it is TLS. An invalid `Host` is a
 *   `400 ERR_INVALID_HOST`.
 */
import type { FastifyRequest } from 'fastify'
import { isIPv6 } from 'node:net'
import * as errors from './errors.js'

export interface UrlOptions {
  relativeLocation: boolean
  respectForwardedHeaders: boolean
  /** Normalised by `normalizePublicUrl`: scheme, host, optional path prefix, no trailing slash. */
  publicUrl?: string | undefined
}

/** The shape of the `publicUrl` option: http(s), a host (name, IPv4, [IPv6]), optional port and path; nothing else. */
export const PUBLIC_URL_PATTERN = "^[Hh][Tt][Tt][Pp][Ss]?://(?:[A-Za-z0-9_.-]+|\\[[0-9A-Fa-f:.]+\\])(?::[0-9]{1,5})?(?:/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*)?$"

const LABEL = '[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
const DNS_NAME = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`)
const PORT = /^:(\d{1,5})$/

/** `host` or `host:port`: a DNS name, IPv4 or `[IPv6]`, nothing else. */
export function isValidHost (value: string): boolean {
  let name = value
  let port = ''
  if (value.startsWith('[')) {
    const end = value.indexOf(']')
    const inner = value.slice(1, end)
    if (end < 0 || !/^[0-9A-Fa-f:.]+$/.test(inner) || !isIPv6(inner)) return false
    name = ''
    port = value.slice(end + 1)
  } else {
    const colon = value.indexOf(':')
    if (colon >= 0) {
      name = value.slice(0, colon)
      port = value.slice(colon)
    }
    if (name.length === 0 || name.length > 253 || !DNS_NAME.test(name)) return false
  }
  if (port === '') return true
  const digits = PORT.exec(port)?.[1]
  return digits !== undefined && Number(digits) <= 65535
}

export function isValidScheme (value: string): value is 'http' | 'https' {
  return value === 'http' || value === 'https'
}

/**
 * The `publicUrl` option as URLs are built from it (`https://host[:port][/prefix]`, no trailing
 * slash), or a reason it is not usable. The options schema has checked its shape already.
 */
export function normalizePublicUrl (value: string): string | { problem: string } {
  if (!new RegExp(PUBLIC_URL_PATTERN).test(value)) return { problem: 'must be an absolute http(s) URL: scheme, host, optional port and path, without user name, query or fragment' }
  let url: URL
  try {
    url = new URL(value)
  } catch {
    return { problem: 'must be an absolute http(s) URL' }
  }
  if (!isValidScheme(url.protocol.slice(0, -1))) return { problem: 'must be an http or https URL' }
  if (url.username !== '' || url.password !== '') return { problem: 'must not carry a user name or password' }
  if (url.search !== '' || url.hash !== '' || value.includes('?') || value.includes('#')) return { problem: 'must not have a query or fragment' }
  if (!isValidHost(url.host)) return { problem: 'must name a valid host' }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`
}

/** Scheme and host as the client addressed the server. */
export function origin (options: UrlOptions, request: FastifyRequest): { proto: string, host: string } {
  const direct = connection(request)
  const seen = options.respectForwardedHeaders ? forwarded(request) : {}
  const proto = seen.proto ?? direct.proto
  const host = seen.host ?? direct.host
  if (host === undefined) throw new errors.InvalidHost()
  if ((proto === 'http' && host.endsWith(':80')) || (proto === 'https' && host.endsWith(':443'))) {
    return { proto, host: host.slice(0, host.lastIndexOf(':')) }
  }
  return { proto, host }
}

/**
 * Throws `ERR_INVALID_HOST` when the URL of an upload would be built from an invalid `Host`
 * (called before an upload is created, so a refused request leaves nothing behind).
 */
export function checkOrigin (options: UrlOptions, request: FastifyRequest): void {
  if (options.relativeLocation || options.publicUrl !== undefined) return
  origin(options, request)
}

/** The URL of upload `id` in the collection at `basePath`. */
export function uploadUrl (options: UrlOptions, request: FastifyRequest, basePath: string, id: string): string {
  if (options.publicUrl !== undefined) {
    if (!options.relativeLocation) return `${options.publicUrl}${basePath}${id}`
    return `${new URL(options.publicUrl).pathname.replace(/\/+$/, '')}${basePath}${id}`
  }
  if (options.relativeLocation) return `${basePath}${id}`
  const { proto, host } = origin(options, request)
  return `${proto}://${host}${basePath}${id}`
}

/**
 * The path under which `url` (absolute, or a path) names an upload, for `Upload-Concat`:
 * `undefined` for a URL that is not one the server could have handed out (a bad scheme or host,
 * userinfo, or with `publicUrl` another origin).
 */
export function uploadPath (options: UrlOptions, url: string): string | undefined {
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:/.test(url) || url.startsWith('//')
  let parsed: URL
  try {
    parsed = absolute ? new URL(url) : new URL(url, 'http://relative.invalid')
  } catch {
    return undefined
  }
  const prefix = options.publicUrl === undefined ? '' : new URL(options.publicUrl).pathname.replace(/\/+$/, '')
  if (absolute) {
    if (!isValidScheme(parsed.protocol.slice(0, -1)) || parsed.username !== '' || parsed.password !== '' || !isValidHost(parsed.host)) return undefined
    if (options.publicUrl !== undefined && parsed.origin !== new URL(options.publicUrl).origin) return undefined
  }
  if (!parsed.pathname.startsWith(`${prefix}/`)) return undefined
  return parsed.pathname.slice(prefix.length)
}

/** Scheme and host of the connection itself: `Host` (or HTTP/2 `:authority`) and TLS or not. */
function connection (request: FastifyRequest): { proto: string, host: string | undefined } {
  const socket = request.raw.socket as { encrypted?: boolean } | null | undefined
  const proto = socket?.encrypted === true ? 'https' : 'http'
  const host = first(request.headers.host) ?? first(request.headers[':authority'] as string | undefined)
  return { proto, host: host !== undefined && isValidHost(host) ? host : undefined }
}

const FORWARDED_HOST = /(?:^|[;\s])host=(?:"([^"]*)"|([^;,\s]*))/i
const FORWARDED_PROTO = /(?:^|[;\s])proto=(?:"([^"]*)"|([^;,\s]*))/i

/** Host and protocol from proxy headers (the first hop wins), each only when valid. */
function forwarded (request: FastifyRequest): { proto?: string, host?: string } {
  const headers = request.headers
  let host = first(headers['x-forwarded-host'], ',')
  let proto = first(headers['x-forwarded-proto'], ',')?.toLowerCase()
  const standard = first(headers.forwarded, ',')
  if (standard !== undefined) {
    const hostMatch = FORWARDED_HOST.exec(standard)
    const protoMatch = FORWARDED_PROTO.exec(standard)
    if (hostMatch !== null) host = hostMatch[1] ?? hostMatch[2]
    if (protoMatch !== null) proto = (protoMatch[1] ?? protoMatch[2])?.toLowerCase()
  }
  return {
    ...(proto !== undefined && isValidScheme(proto) ? { proto } : {}),
    ...(host !== undefined && isValidHost(host) ? { host } : {})
  }
}

/** The first value of a header (the first of a list when `separator` is given), trimmed; `undefined` when empty. */
function first (value: string | string[] | undefined, separator?: string): string | undefined {
  const text = Array.isArray(value) ? value[0] : value
  const item = separator === undefined ? text : text?.split(separator)[0]
  const trimmed = item?.trim()
  return trimmed === '' ? undefined : trimmed
}
