/**
 * Built-in CORS for browser clients, on by default like tusd's, but stricter: origins are
 * matched exactly (a RegExp must match the whole origin), a disallowed origin simply gets no
 * CORS headers (the browser then refuses the response), and `*` is never sent with credentials.
 * Credentials need origins given explicitly (never "every origin"), and the `null` origin (sandboxed
 * frames, `file:` pages, some redirects: anyone can send it) never gets them.
 * Set `cors: false` to use `@fastify/cors` or a proxy instead.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { InvalidOption } from './errors.js'

export interface CorsOptions {
  /** Allowed origins: a list, an anchored RegExp, or a function. Default: every origin. */
  origin?: (string | string[] | RegExp | ((origin: string, request: FastifyRequest) => boolean | Promise<boolean>)) | undefined
  /**
   * Send `Access-Control-Allow-Credentials: true` (cookies, HTTP auth). Default false. Needs `origin`:
   * with credentials, any site allowed can act as the logged-in user.
   */
  credentials?: boolean | undefined
  /** More methods to allow, beyond the tus ones (as tusd's `-cors-allow-methods`, appended). */
  allowedMethods?: string[] | undefined
  /** More request headers to allow, beyond the tus ones. */
  allowedHeaders?: string[] | undefined
  /** More response headers to expose, beyond the tus ones. */
  exposedHeaders?: string[] | undefined
  /** Seconds a browser may cache a preflight. Default 86400. */
  maxAge?: number | undefined
}

export interface ResolvedCors {
  allows: (origin: string, request: FastifyRequest) => boolean | Promise<boolean>
  credentials: boolean
  allowMethods: string
  allowHeaders: string
  exposeHeaders: string
  maxAge: string
}

const METHODS = ['POST', 'HEAD', 'PATCH', 'OPTIONS', 'GET', 'DELETE']
const ALLOW_HEADERS = [
  'Authorization', 'Origin', 'X-Requested-With', 'X-Request-ID', 'X-HTTP-Method-Override', 'Content-Type',
  'Upload-Length', 'Upload-Offset', 'Tus-Resumable', 'Upload-Metadata', 'Upload-Defer-Length', 'Upload-Concat',
  'Upload-Checksum', 'Upload-Incomplete', 'Upload-Complete', 'Upload-Draft-Interop-Version', 'Content-Disposition'
]
const EXPOSE_HEADERS = [
  'Location', 'Upload-Offset', 'Upload-Length', 'Upload-Metadata', 'Upload-Defer-Length', 'Upload-Concat',
  'Upload-Expires', 'Upload-Complete', 'Upload-Incomplete', 'Upload-Limit', 'Upload-Draft-Interop-Version',
  'Tus-Version', 'Tus-Resumable', 'Tus-Max-Size', 'Tus-Extension', 'Tus-Checksum-Algorithm'
]

export function resolveCors (value: unknown): ResolvedCors | undefined {
  if (value === false) return undefined
  const options = (value === undefined || value === true ? {} : value) as CorsOptions
  if (typeof options !== 'object' || options === null) throw new InvalidOption('cors', 'must be a boolean or an object')
  const credentials = options.credentials ?? false
  if (typeof credentials !== 'boolean') throw new InvalidOption('cors.credentials', 'must be a boolean')
  if (credentials && options.origin === undefined) {
    throw new InvalidOption('cors.credentials', 'needs cors.origin: with credentials every allowed site can act as the logged-in user, so list them')
  }
  if (credentials && [options.origin].flat().includes('null')) {
    throw new InvalidOption('cors.origin', 'must not allow "null" with credentials: any page can send that origin')
  }
  const maxAge = options.maxAge ?? 86400
  if (!Number.isInteger(maxAge) || maxAge < 0) throw new InvalidOption('cors.maxAge', 'must be a non-negative integer')
  return {
    allows: originCheck(options.origin),
    credentials,
    allowMethods: [...new Set([...METHODS, ...headerList('cors.allowedMethods', options.allowedMethods).map((method) => method.toUpperCase())])].join(', '),
    allowHeaders: [...ALLOW_HEADERS, ...headerList('cors.allowedHeaders', options.allowedHeaders)].join(', '),
    exposeHeaders: [...EXPOSE_HEADERS, ...headerList('cors.exposedHeaders', options.exposedHeaders)].join(', '),
    maxAge: String(maxAge)
  }
}

function headerList (name: string, value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'string' && /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/.test(item))) {
    throw new InvalidOption(name, `must be a list of ${name === 'cors.allowedMethods' ? 'method' : 'header'} names`)
  }
  return value as string[]
}

function originCheck (origin: CorsOptions['origin']): ResolvedCors['allows'] {
  if (origin === undefined) return () => true
  if (typeof origin === 'string') return (candidate) => candidate === origin
  if (Array.isArray(origin) && origin.every((item) => typeof item === 'string')) {
    const set = new Set(origin)
    return (candidate) => set.has(candidate)
  }
  if (origin instanceof RegExp) {
    // anchored, whatever the caller wrote: https?://example\.com must not match example.com.evil.io
    const anchored = new RegExp(`^(?:${origin.source})$`, origin.flags.replace('g', '').replace('y', ''))
    return (candidate) => anchored.test(candidate)
  }
  if (typeof origin === 'function') return origin
  throw new InvalidOption('cors.origin', 'must be a string, a list of strings, a RegExp or a function')
}

/** Adds the CORS headers a response needs (nothing when there is no or a refused `Origin`). */
export async function applyCors (cors: ResolvedCors, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  reply.header('Vary', appendVary(reply.getHeader('vary'), 'Origin'))
  const origin = request.headers.origin
  if (origin === undefined || (cors.credentials && origin === 'null') || !(await cors.allows(origin, request))) return
  reply.header('Access-Control-Allow-Origin', origin)
  if (cors.credentials) reply.header('Access-Control-Allow-Credentials', 'true')
  if (request.method === 'OPTIONS' && request.headers['access-control-request-method'] !== undefined) {
    reply.header('Access-Control-Allow-Methods', cors.allowMethods)
    reply.header('Access-Control-Allow-Headers', cors.allowHeaders)
    reply.header('Access-Control-Max-Age', cors.maxAge)
  } else {
    reply.header('Access-Control-Expose-Headers', cors.exposeHeaders)
  }
}

function appendVary (current: unknown, value: string): string {
  if (typeof current !== 'string' || current === '') return value
  return current.split(',').some((item) => item.trim().toLowerCase() === value.toLowerCase()) ? current : `${current}, ${value}`
}
