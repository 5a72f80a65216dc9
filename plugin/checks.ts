/**
 * Checks shared by the handlers. Each throws the coded error the spec asks for.
 */
import type { FastifyRequest } from 'fastify'
import * as errors from './errors.js'
import { header, mediaType, OFFSET_OCTET_STREAM, parseInteger, TUS_VERSION } from './headers.js'
import { draftRules } from './ietf/versions.js'
import { UPLOAD_ID } from '../stores/ids.js'

/** `Tus-Resumable` must name a version we speak (412 otherwise); IETF draft requests have their own. */
export function requireVersion (request: FastifyRequest): void {
  if (draftRules(request) !== undefined) return
  if (header(request.headers, 'tus-resumable') !== TUS_VERSION) throw new errors.UnsupportedVersion()
}

/** Like `requireVersion`, but a missing header is fine (HEAD and GET, as browsers send them). */
export function checkVersionIfPresent (request: FastifyRequest): void {
  if (draftRules(request) !== undefined) return
  const version = header(request.headers, 'tus-resumable')
  if (version !== undefined && version !== TUS_VERSION) throw new errors.UnsupportedVersion()
}

/** The upload id from the URL; ids we could never have issued are simply not found. */
export function uploadId (request: FastifyRequest): string {
  const id = (request.params as { id?: string }).id ?? ''
  if (!UPLOAD_ID.test(id)) throw new errors.UploadNotFound()
  return id
}

/** True when the request carries a body (a length above zero, or chunked). */
export function hasBody (request: FastifyRequest): boolean {
  const length = request.headers['content-length']
  if (length !== undefined) return length !== '0'
  // HTTP/2 has no Transfer-Encoding: a body is there unless the headers ended the stream
  const stream = (request.raw as { stream?: { endAfterHeaders: boolean } }).stream
  if (stream !== undefined) return !stream.endAfterHeaders
  return request.headers['transfer-encoding'] !== undefined
}

/** True when the request carries tus bytes; a body of another type is refused with 415. */
export function hasTusBody (request: FastifyRequest): boolean {
  const type = mediaType(request.headers['content-type'])
  if (type === OFFSET_OCTET_STREAM) return true
  if (type !== undefined && hasBody(request)) throw new errors.InvalidContentType(OFFSET_OCTET_STREAM)
  return false
}

/** `Content-Length` when it is present and valid. */
export function contentLength (request: FastifyRequest): number | undefined {
  return parseInteger(request.headers['content-length'])
}
