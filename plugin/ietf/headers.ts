/**
 * The draft's header fields are Structured Fields (RFC 9651), parsed and serialised with
 * `structured-headers`. A value that does not parse, or parses to the wrong type, is treated as
 * absent, as the draft says since -09 ("the entire header field is ignored").
 */
import type { FastifyRequest } from 'fastify'
import { parseItem, serializeBoolean, serializeDictionary } from 'structured-headers'
import { header } from '../headers.js'
import type { VersionRules } from './versions.js'

export const PARTIAL_UPLOAD = 'application/partial-upload'
export const RESUMPTION_STATUS = 104

function item (value: string | undefined): unknown {
  if (value === undefined) return undefined
  try {
    return parseItem(value)[0]
  } catch {
    return undefined
  }
}

/** An sf-boolean header; `undefined` when absent or not a Boolean (parameters are allowed). */
export function booleanField (request: FastifyRequest, name: string): boolean | undefined {
  const value = item(header(request.headers, name))
  return typeof value === 'boolean' ? value : undefined
}

/** An sf-integer as the bare item of a field (parameters may follow); a Decimal such as `10.0` is not one. */
const SF_INTEGER = /^[ \t]*\d{1,15}[ \t]*(?:;|$)/

/** A non-negative sf-integer header; `undefined` when absent or invalid (a Decimal included). */
export function integerField (request: FastifyRequest, name: string): number | undefined {
  const raw = header(request.headers, name)
  if (raw === undefined || !SF_INTEGER.test(raw)) return undefined
  const value = item(raw)
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : undefined
}

/** Whether the request carries the header at all (valid or not). */
export function present (request: FastifyRequest, name: string): boolean {
  return request.headers[name] !== undefined
}

/**
 * Does this request say it carries the end of the upload? `true`/`false` from the version's
 * completion field (`Upload-Incomplete` is inverted), `undefined` when absent or invalid.
 */
export function requestCompletes (request: FastifyRequest, rules: VersionRules): boolean | undefined {
  const value = booleanField(request, rules.completionField)
  if (value === undefined) return undefined
  return rules.completionField === 'upload-incomplete' ? !value : value
}

/** The completion field for a response: the upload's state, in the version's own header. */
export function completionHeader (rules: VersionRules, complete: boolean): [string, string] {
  if (rules.completionField === 'upload-incomplete') return ['Upload-Incomplete', serializeBoolean(!complete)]
  return ['Upload-Complete', serializeBoolean(complete)]
}

export interface Limits {
  maxSize?: number
  /** Seconds until an unfinished upload expires. */
  lifetime?: number
}

/** `Upload-Limit`: never empty (`min-size=0` at least), with the version's lifetime key. */
export function uploadLimit (rules: VersionRules, limits: Limits): string {
  const dictionary: Record<string, number> = { 'min-size': 0 }
  if (limits.maxSize !== undefined && Number.isFinite(limits.maxSize)) dictionary['max-size'] = limits.maxSize
  if (limits.lifetime !== undefined && rules.lifetimeKey !== undefined) dictionary[rules.lifetimeKey] = Math.max(0, Math.floor(limits.lifetime))
  return serializeDictionary(dictionary)
}
