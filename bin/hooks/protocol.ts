/**
 * tusd's hook protocol, as its transports speak it: the hook types, the `HookRequest` sent for
 * each event and the `HookResponse` read back. Field names and JSON shapes are tusd's
 * (`pkg/hooks`, `pkg/handler`), so hook receivers written for tusd work unchanged.
 *
 * Responses are decoded the way Go's `encoding/json` fills tusd's structs: unknown keys are
 * ignored, keys match field names case-insensitively, `null` leaves a field at its zero value,
 * and a value of the wrong type is an error.
 */
import { validateHeaderName, validateHeaderValue } from 'node:http'

export type HookType = 'pre-create' | 'post-create' | 'post-receive' | 'pre-finish' | 'post-finish' | 'pre-terminate' | 'post-terminate'

/** Every hook type, in the order tusd lists them. */
export const HOOK_TYPES: readonly HookType[] = Object.freeze([
  'pre-create', 'post-create', 'post-receive', 'pre-terminate', 'post-terminate', 'post-finish', 'pre-finish'
])

/** tusd's default for `-hooks-enabled-events`. */
export const DEFAULT_HOOK_EVENTS: readonly HookType[] = Object.freeze([
  'pre-create', 'post-create', 'post-receive', 'post-terminate', 'post-finish'
])

/** The hooks whose answer can reject or change the request (tusd calls them synchronously). */
export const BLOCKING_HOOKS: ReadonlySet<HookType> = new Set(['pre-create', 'pre-finish', 'pre-terminate'])

/** tusd's `FileInfo`. */
export interface FileInfo {
  ID: string
  /** 0 while the length is deferred. */
  Size: number
  SizeIsDeferred: boolean
  Offset: number
  MetaData: Record<string, string>
  IsPartial: boolean
  IsFinal: boolean
  PartialUploads: string[] | null
  Storage: Record<string, string> | null
}

/** tusd's `HTTPRequest`: the client request behind the event. */
export interface HTTPRequest {
  Method: string
  URI: string
  RemoteAddr: string
  /** Canonical header names (`Upload-Length`), every value of each. */
  Header: Record<string, string[]>
}

export interface HookRequest {
  Type: HookType
  Event: {
    Upload: FileInfo
    HTTPRequest: HTTPRequest
  }
}

/** tusd's `HTTPResponse`: zero values (`0`, `''`, `{}`) change nothing. */
export interface HTTPResponse {
  StatusCode: number
  Body: string
  Header: Record<string, string>
}

export interface FileInfoChanges {
  /** `''` keeps the id. */
  ID: string
  /** `null` keeps the metadata; a map replaces it entirely. */
  MetaData: Record<string, string> | null
  /** `null` keeps the store's usual place; `{ Path }` (file store) or `{ Key }` (S3, GCS) places the upload. */
  Storage: Record<string, string> | null
}

export interface HookResponse {
  HTTPResponse: HTTPResponse
  RejectUpload: boolean
  RejectTermination: boolean
  ChangeFileInfo: FileInfoChanges
  StopUpload: boolean
}

/** A way to deliver hook events: HTTP, a directory of executables … */
export interface HookTransport {
  /** Resolves with the hook's answer; rejects when the hook could not be run or answered badly. */
  invoke: (request: HookRequest) => Promise<HookResponse>
  /** Releases what the transport holds (connections). */
  close?: () => Promise<void> | void
}

export function emptyHttpResponse (): HTTPResponse {
  return { StatusCode: 0, Body: '', Header: {} }
}

export function emptyHookResponse (): HookResponse {
  return {
    HTTPResponse: emptyHttpResponse(),
    RejectUpload: false,
    RejectTermination: false,
    ChangeFileInfo: { ID: '', MetaData: null, Storage: null },
    StopUpload: false
  }
}

/** tusd's `MergeWith`: a non-zero status or non-empty body of `next` wins; headers are merged. */
export function mergeHttpResponse (base: HTTPResponse, next: HTTPResponse): HTTPResponse {
  return {
    StatusCode: next.StatusCode !== 0 ? next.StatusCode : base.StatusCode,
    Body: next.Body !== '' ? next.Body : base.Body,
    Header: { ...base.Header, ...next.Header }
  }
}

/**
 * Headers a hook may not set: `Location` (the server names uploads) and the hop-by-hop headers
 * plus `Content-Length`, which belong to the connection and the server's framing of the body.
 */
export const RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'location', 'connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'te', 'trailer',
  'proxy-authenticate', 'proxy-authorization', 'content-length'
])

/** Thrown for a hook answer that is not a valid `HookResponse`. */
export class HookResponseError extends Error {
  override name = 'HookResponseError'
}

/** Parses a hook's JSON answer into a `HookResponse`, as tusd does. */
export function parseHookResponse (text: string): HookResponse {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new HookResponseError(`failed to parse hook response: ${(err as Error).message}`)
  }
  return decodeHookResponse(value)
}

export function decodeHookResponse (value: unknown): HookResponse {
  const response = emptyHookResponse()
  for (const [key, field] of fields(value, 'HookResponse', ['HTTPResponse', 'RejectUpload', 'RejectTermination', 'ChangeFileInfo', 'StopUpload'])) {
    switch (key) {
      case 'HTTPResponse': response.HTTPResponse = decodeHttpResponse(field); break
      case 'ChangeFileInfo': response.ChangeFileInfo = decodeChanges(field); break
      case 'RejectUpload': case 'RejectTermination': case 'StopUpload':
        response[key] = field === null ? false : bool(field, key)
    }
  }
  return response
}

function decodeHttpResponse (value: unknown): HTTPResponse {
  const response = emptyHttpResponse()
  for (const [key, field] of fields(value, 'HTTPResponse', ['StatusCode', 'Body', 'Header'])) {
    if (field === null) continue
    if (key === 'StatusCode') {
      if (typeof field !== 'number' || !Number.isInteger(field)) throw new HookResponseError(`HTTPResponse.StatusCode must be an integer, got ${JSON.stringify(field)}`)
      if (field !== 0 && (field < 100 || field > 599)) throw new HookResponseError(`HTTPResponse.StatusCode ${field} is not an HTTP status`)
      if (field !== 0 && field < 200) throw new HookResponseError(`HTTPResponse.StatusCode ${field} is not a final status (200-599)`)
      response.StatusCode = field
    } else if (key === 'Body') {
      response.Body = string(field, 'HTTPResponse.Body')
    } else {
      const header = stringMap(field, 'HTTPResponse.Header')
      for (const [name, text] of Object.entries(header)) {
        try {
          validateHeaderName(name)
          validateHeaderValue(name, text)
        } catch {
          throw new HookResponseError(`HTTPResponse.Header has an invalid header ${JSON.stringify(name)}`)
        }
        if (RESERVED_HEADERS.has(name.toLowerCase())) throw new HookResponseError(`HTTPResponse.Header may not set ${JSON.stringify(name)}`)
      }
      response.Header = header
    }
  }
  return response
}

function decodeChanges (value: unknown): FileInfoChanges {
  const changes: FileInfoChanges = { ID: '', MetaData: null, Storage: null }
  for (const [key, field] of fields(value, 'ChangeFileInfo', ['ID', 'MetaData', 'Storage'])) {
    if (key === 'ID') {
      changes.ID = field === null ? '' : string(field, 'ChangeFileInfo.ID')
    } else {
      changes[key as 'MetaData' | 'Storage'] = field === null ? null : stringMap(field, `ChangeFileInfo.${key}`)
    }
  }
  return changes
}

/**
 * The object's entries under the struct field names they match, in document order (a later key
 * overwrites an earlier one, as in Go): an exact match first, else a case-insensitive one.
 */
function fields (value: unknown, type: string, names: readonly string[]): Array<[string, unknown]> {
  if (value === null) return []
  if (typeof value !== 'object' || Array.isArray(value)) throw new HookResponseError(`${type} must be a JSON object, got ${JSON.stringify(value)}`)
  const result: Array<[string, unknown]> = []
  for (const [key, field] of Object.entries(value)) {
    const name = names.includes(key) ? key : names.find((candidate) => candidate.toLowerCase() === key.toLowerCase())
    if (name !== undefined) result.push([name, field])
  }
  return result
}

function bool (value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') throw new HookResponseError(`${name} must be a boolean, got ${JSON.stringify(value)}`)
  return value
}

function string (value: unknown, name: string): string {
  if (typeof value !== 'string') throw new HookResponseError(`${name} must be a string, got ${JSON.stringify(value)}`)
  return value
}

function stringMap (value: unknown, name: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HookResponseError(`${name} must be an object of strings`)
  const map: Record<string, string> = Object.create(null) as Record<string, string>
  for (const [key, text] of Object.entries(value)) {
    map[key] = text === null ? '' : string(text, `${name}.${key}`)
  }
  return map
}
