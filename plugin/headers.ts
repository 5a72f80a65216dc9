/**
 * Parsing and serialising tus headers. Parsers are strict: a value that is not exactly what the
 * spec allows is `undefined` (or throws a coded 400), never silently reinterpreted.
 */
import type { IncomingHttpHeaders } from 'node:http'
import type { Metadata } from '../stores/store.js'
import { InvalidMetadata } from './errors.js'

export const TUS_VERSION = '1.0.0'
export const OFFSET_OCTET_STREAM = 'application/offset+octet-stream'

const INTEGER = /^(?:0|[1-9][0-9]{0,15})$/

/** A non-negative integer without sign, leading zeros or spaces; `undefined` if invalid. */
export function parseInteger (value: string | undefined): number | undefined {
  if (value === undefined || !INTEGER.test(value)) return undefined
  const number = Number(value)
  return Number.isSafeInteger(number) ? number : undefined
}

/** One header value as a string (joins repeated headers like Node does for unknown ones). */
export function header (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  if (Array.isArray(value)) return value.join(', ')
  return value
}

/** The media type of a Content-Type value, lower-cased and without parameters. */
export function mediaType (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const semicolon = value.indexOf(';')
  return (semicolon === -1 ? value : value.slice(0, semicolon)).trim().toLowerCase()
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const KEY = /^[\x21-\x2B\x2D-\x7E]+$/ // printable ASCII without space and comma
const utf8 = new TextDecoder('utf-8', { fatal: true })

/**
 * Parses `Upload-Metadata`; throws `ERR_INVALID_METADATA` (400) on anything malformed. A value
 * may be any bytes (tus 1.0): one that is not UTF-8 is decoded leniently (each invalid sequence
 * becomes U+FFFD) and, when `binary` is given, its exact bytes are added there as base64.
 */
export function parseMetadata (value: string | undefined, binary?: Metadata): Metadata {
  // no prototype: a key such as "__proto__" is just a key
  const metadata: Metadata = Object.create(null) as Metadata
  if (value === undefined || value.trim() === '') return metadata
  for (const raw of value.split(',')) {
    const pair = raw.trim()
    const parts = pair.split(' ')
    const key = parts[0] ?? ''
    if (parts.length > 2) throw new InvalidMetadata('a pair has more than one space')
    if (!KEY.test(key)) throw new InvalidMetadata('a key is empty or not printable ASCII')
    if (Object.hasOwn(metadata, key)) throw new InvalidMetadata(`key "${key}" appears twice`)
    const encoded = parts[1] ?? ''
    if (!BASE64.test(encoded)) throw new InvalidMetadata(`the value of "${key}" is not base64`)
    const bytes = Buffer.from(encoded, 'base64')
    try {
      metadata[key] = utf8.decode(bytes)
    } catch {
      metadata[key] = bytes.toString('utf8')
      if (binary !== undefined) binary[key] = encoded
    }
  }
  return metadata
}

/**
 * Serialises metadata for `Upload-Metadata`; an empty value is sent as the bare key. A key in
 * `binary` (base64 of the exact bytes of a value that is not UTF-8) is sent with those bytes.
 */
export function serializeMetadata (metadata: Metadata, binary?: Metadata): string {
  const pairs: string[] = []
  for (const [key, value] of Object.entries(metadata)) {
    if (value === undefined) continue
    const encoded = ownValue(binary, key) ?? Buffer.from(value, 'utf8').toString('base64')
    pairs.push(encoded === '' ? key : `${key} ${encoded}`)
  }
  return pairs.join(',')
}

/** A metadata value the record has as its own (never one inherited from `Object.prototype`). */
function ownValue (metadata: Metadata | undefined, key: string): string | undefined {
  return metadata !== undefined && Object.hasOwn(metadata, key) ? metadata[key] : undefined
}

/** The exact bytes of a metadata value (also one that is not UTF-8); `undefined` if the key is absent. */
export function metadataBytes (upload: { metadata: Metadata, binaryMetadata?: Metadata }, key: string): Buffer | undefined {
  const binary = ownValue(upload.binaryMetadata, key)
  if (binary !== undefined) return Buffer.from(binary, 'base64')
  const text = ownValue(upload.metadata, key)
  return text === undefined ? undefined : Buffer.from(text, 'utf8')
}
