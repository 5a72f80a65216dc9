/**
 * Errors for draft requests are `application/problem+json` (RFC 9457) bodies: the draft's own
 * problem types where the request's version defines them, `about:blank` otherwise, and always
 * our stable `code` so clients and logs can tell errors apart exactly as in tus v1.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { STATUS_CODES } from 'node:http'
import { completionHeader } from './headers.js'
import type { VersionRules } from './versions.js'

export const PROBLEM_TYPES = 'https://iana.org/assignments/http-problem-types#'
export const PROBLEM_JSON = 'application/problem+json'

interface HttpError extends Error {
  statusCode?: number
  code?: string
  headers?: Record<string, string>
}

function problemType (rules: VersionRules, code: string | undefined): string | undefined {
  if (!rules.problemTypes) return undefined
  switch (code) {
    case 'ERR_MISMATCHED_OFFSET': return 'mismatching-upload-offset'
    case 'ERR_UPLOAD_COMPLETED':
    case 'ERR_UPLOAD_COMPLETED_GONE': return 'completed-upload'
    case 'ERR_INCONSISTENT_UPLOAD_LENGTH':
    case 'ERR_UPLOAD_INVALIDATED': return rules.inconsistentLengthProblem ? 'inconsistent-upload-length' : undefined
    default: return undefined
  }
}

const TITLES: Record<string, string> = {
  'mismatching-upload-offset': 'Mismatching upload offset',
  'completed-upload': 'Upload is already completed',
  'inconsistent-upload-length': 'Inconsistent upload length'
}

/** Sends `err` (already made safe by `toHttpError`, plugin/http-errors.ts) as a problem for a draft request. */
export function sendProblem (request: FastifyRequest, reply: FastifyReply, rules: VersionRules, err: HttpError): void {
  const status = err.statusCode ?? 500
  const type = problemType(rules, err.code)
  const body: Record<string, unknown> = {
    type: type === undefined ? 'about:blank' : `${PROBLEM_TYPES}${type}`,
    title: type === undefined ? (STATUS_CODES[status] ?? 'Error') : TITLES[type],
    status,
    detail: err.message,
    code: err.code
  }
  // a 409 for a mismatched offset names both offsets (`expected-offset`, `provided-offset`)
  const offsets = err.code === 'ERR_MISMATCHED_OFFSET' ? request.tusState?.offsets : undefined
  if (offsets !== undefined) {
    body['expected-offset'] = offsets.expected
    body['provided-offset'] = offsets.provided
    reply.header('Upload-Offset', String(offsets.expected))
  }
  if (err.headers !== undefined) reply.headers(err.headers)
  // 7+: a creation or append that did not complete the upload says so, also when it failed
  const method = request.method
  if (rules.completeOnEveryResponse && (method === 'POST' || method === 'PATCH' || method === 'PUT')) {
    reply.header(...completionHeader(rules, false))
  }
  if (status >= 500) request.log.error({ err }, 'tus draft request failed')
  else request.log.info({ code: err.code, status }, 'tus draft request refused')
  reply.code(status).header('Content-Type', PROBLEM_JSON).send(Buffer.from(JSON.stringify(body)))
}
