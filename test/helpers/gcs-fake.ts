/**
 * A test-only fake of the Google Cloud Storage JSON API, on 127.0.0.1 and a free port: the
 * endpoints `@google-cloud/storage` 7.x uses (multipart and resumable uploads, object metadata
 * GET/PATCH, media downloads with ranges, compose, delete, list), with real CRC32C/MD5 hashes,
 * generations and preconditions, and errors in the GCS JSON shape. No real GCS server can run
 * here (docs/stores/gcs.md); test/gcs-fake-contract.test.ts pins the fake to the SDK's requests.
 *
 * Both `/storage/v1/b/…` (`apiEndpoint`) and `/b/…` (`STORAGE_EMULATOR_HOST`) are accepted.
 * Faults can be injected per operation (`inject`), and every request is recorded (`requests`).
 */
import { randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Storage, type StorageOptions } from '@google-cloud/storage'
import {
  FakeBuckets, GcsError, etagOf, resourceOf, type ObjectFields, type Preconditions, type StoredObject
} from './gcs-fake-model.js'

export type Operation =
  | 'upload.multipart' | 'upload.media' | 'upload.resumable.create' | 'upload.resumable.put' | 'upload.resumable.cancel'
  | 'object.get' | 'object.media' | 'object.patch' | 'object.delete' | 'object.compose' | 'object.list'
  | 'bucket.get' | 'bucket.insert'

export interface RecordedRequest {
  operation: Operation | 'unknown'
  method: string
  path: string
  query: Record<string, string>
  headers: IncomingMessage['headers']
  bucket: string | undefined
  /** The object name (the destination of a compose, the name of an upload). */
  object: string | undefined
  /** A JSON body (compose, patch, resumable session); the JSON part of a multipart upload. */
  json: unknown
  bodyLength: number
  status: number
}

/** Something to go wrong on the next matching request(s). */
export interface Fault {
  operation: Operation
  /** Only for this object name (or names matching it). */
  object?: string | RegExp
  /** How many matching requests it applies to. Default 1. */
  times?: number
  /** Answer this error status instead of doing the operation (or after it, with `after`). */
  status?: number
  reason?: string
  /** Do the operation, then answer the error: the server changed, the client thinks it failed. */
  after?: boolean
  /** Close the connection without an answer (before doing the operation). */
  reset?: boolean
  /** Change the bytes an upload or a compose stores (the resource then describes the changed bytes). */
  corrupt?: (data: Buffer) => Buffer
}

interface Session {
  bucket: string
  name: string
  fields: ObjectFields
  conditions: Preconditions
  chunks: Buffer[]
  received: number
  done: StoredObject | undefined
}

interface Route {
  operation: Operation | 'unknown'
  bucket?: string
  object?: string
}

const RESUMABLE_QUANTUM = 256 * 1024

/**
 * The `@google-cloud/storage` version whose requests this fake was written for and checked
 * against (test/gcs-fake-contract.test.ts fails when the installed SDK differs: then re-check
 * the requests the new SDK sends, and bump this).
 */
export const FAKE_SDK_VERSION = '7.22.0'

export class GcsFake {
  readonly buckets = new FakeBuckets()
  readonly requests: RecordedRequest[] = []
  readonly #sessions = new Map<string, Session>()
  readonly #faults: Array<Fault & { left: number }> = []
  readonly #server: Server
  #url = ''

  private constructor () {
    this.#server = createServer((req, res) => { this.#handle(req, res).catch((err: unknown) => { res.destroy(err as Error) }) })
    this.#server.keepAliveTimeout = 1000
  }

  /** Starts a fake on 127.0.0.1 and a free port. */
  static async start (): Promise<GcsFake> {
    const fake = new GcsFake()
    await new Promise<void>((resolve, reject) => {
      fake.#server.once('error', reject)
      fake.#server.listen(0, '127.0.0.1', () => { resolve() })
    })
    fake.#url = `http://127.0.0.1:${(fake.#server.address() as AddressInfo).port}`
    return fake
  }

  /** `http://127.0.0.1:PORT`, the `apiEndpoint` for the SDK. */
  get url (): string {
    return this.#url
  }

  /** An SDK client talking to this fake (no credentials are looked up or sent). */
  storage (options: StorageOptions = {}): Storage {
    return new Storage({ apiEndpoint: this.#url, projectId: 'fake-project', ...options })
  }

  inject (fault: Fault): void {
    this.#faults.push({ ...fault, left: fault.times ?? 1 })
  }

  /** Faults injected but not used up. */
  get pendingFaults (): number {
    return this.#faults.filter((fault) => fault.left > 0).length
  }

  /** Names and sizes of the objects in a bucket, in name order. */
  objects (bucket: string): Array<{ name: string, size: number }> {
    return [...this.buckets.bucket(bucket).values()]
      .map((object) => ({ name: object.name, size: object.data.length }))
      .sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)))
  }

  /** The requests of one operation, optionally for one object. */
  calls (operation: Operation, object?: string | RegExp): RecordedRequest[] {
    return this.requests.filter((request) => request.operation === operation && (object === undefined || matches(object, request.object)))
  }

  async close (): Promise<void> {
    await new Promise<void>((resolve) => {
      this.#server.close(() => { resolve() })
      this.#server.closeAllConnections()
    })
  }

  async #handle (req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.#url)
    const query = Object.fromEntries(url.searchParams)
    const body = await readBody(req)
    const route = routeOf(req.method ?? 'GET', url.pathname, query)
    const record: RecordedRequest = {
      operation: route.operation,
      method: req.method ?? 'GET',
      path: url.pathname,
      query,
      headers: req.headers,
      bucket: route.bucket,
      object: route.object,
      json: undefined,
      bodyLength: body.length,
      status: 0
    }
    this.requests.push(record)
    const reply = (status: number, payload?: unknown, headers: Record<string, string> = {}): void => {
      record.status = status
      if (payload === undefined || status === 304) {
        res.writeHead(status, headers).end()
      } else if (Buffer.isBuffer(payload)) {
        res.writeHead(status, headers).end(payload)
      } else {
        res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8', ...headers }).end(JSON.stringify(payload))
      }
    }
    try {
      if (route.operation === 'unknown') throw new GcsError(404, 'notFound', `Not Found: ${req.method ?? ''} ${url.pathname}`)
      const context: Context = { req, url, query, body, route, record }
      if (route.operation === 'upload.resumable.put' || route.operation === 'upload.resumable.cancel') {
        const session = this.#sessions.get(query.upload_id ?? '')
        if (session !== undefined) {
          record.bucket = session.bucket
          record.object = session.name
          route.object = session.name
        }
      }
      const fault = this.#takeFault(route)
      if (fault?.reset === true) {
        record.status = -1
        req.socket.destroy()
        return
      }
      if (fault?.status !== undefined && fault.after !== true) throw faultError(fault)
      const [status, payload, headers] = this.#operate(context, fault?.corrupt)
      if (fault?.status !== undefined) throw faultError(fault)
      reply(status, payload, headers)
    } catch (err) {
      if (!(err instanceof GcsError)) throw err
      reply(err.code, err.toJSON())
    }
  }

  #takeFault (route: Route): Fault | undefined {
    const fault = this.#faults.find((candidate) => candidate.left > 0 && candidate.operation === route.operation &&
      (candidate.object === undefined || matches(candidate.object, route.object)))
    if (fault !== undefined) fault.left--
    return fault
  }

  #operate (context: Context, corrupt: ((data: Buffer) => Buffer) | undefined): Answer {
    const { route, query, body, req, record } = context
    const bucket = route.bucket ?? ''
    const change = corrupt ?? ((data: Buffer) => data)
    switch (route.operation) {
      case 'bucket.get':
        this.buckets.bucket(bucket)
        return [200, { kind: 'storage#bucket', id: bucket, name: bucket, storageClass: 'STANDARD', location: 'US' }]
      case 'bucket.insert': {
        const { name } = parseJson(body) as { name?: string }
        record.json = { name }
        if (typeof name !== 'string' || name === '') throw new GcsError(400, 'required', 'Required')
        this.buckets.bucket(name)
        return [200, { kind: 'storage#bucket', id: name, name, storageClass: 'STANDARD', location: 'US' }]
      }
      case 'upload.multipart': {
        const { fields, data } = parseMultipart(req.headers['content-type'], body)
        record.json = fields
        const name = query.name ?? (fields as { name?: string }).name
        if (name === undefined) throw new GcsError(400, 'required', 'Required: object name')
        record.object = name
        const object = this.buckets.put(bucket, name, change(data), objectFields(fields), preconditions(query))
        return [200, resourceOf(object, this.#url)]
      }
      case 'upload.media': {
        if (query.name === undefined) throw new GcsError(400, 'required', 'Required: object name')
        const fields: ObjectFields = { contentType: req.headers['content-type'] }
        const object = this.buckets.put(bucket, query.name, change(body), fields, preconditions(query))
        return [200, resourceOf(object, this.#url)]
      }
      case 'upload.resumable.create': {
        const json = body.length === 0 ? {} : parseJson(body)
        record.json = json
        const name = query.name ?? (json as { name?: string }).name
        if (name === undefined) throw new GcsError(400, 'required', 'Required: object name')
        record.object = name
        const fields = objectFields(json)
        const type = req.headers['x-upload-content-type']
        if (fields.contentType === undefined && typeof type === 'string') fields.contentType = type
        const id = randomUUID()
        this.#sessions.set(id, { bucket, name, fields, conditions: preconditions(query), chunks: [], received: 0, done: undefined })
        const location = `${this.#url}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o?uploadType=resumable&name=${encodeURIComponent(name)}&upload_id=${id}`
        return [200, undefined, { location }]
      }
      case 'upload.resumable.put':
        return this.#resumablePut(context, change)
      case 'upload.resumable.cancel': {
        const id = query.upload_id ?? ''
        if (!this.#sessions.delete(id)) throw new GcsError(404, 'notFound', 'No such upload session')
        return [499, undefined]
      }
      case 'object.get': {
        const object = this.buckets.get(bucket, route.object ?? '', query.generation, preconditions(query))
        return [200, resourceOf(object, this.#url)]
      }
      case 'object.media':
        return this.#download(context)
      case 'object.patch': {
        const json = parseJson(body)
        record.json = json
        const object = this.buckets.patch(bucket, route.object ?? '', objectFields(json), preconditions(query), query.generation)
        return [200, resourceOf(object, this.#url)]
      }
      case 'object.delete':
        this.buckets.delete(bucket, route.object ?? '', preconditions(query), query.generation)
        return [204, undefined]
      case 'object.compose': {
        const json = parseJson(body) as ComposeRequest
        record.json = json
        if (!Array.isArray(json.sourceObjects)) throw new GcsError(400, 'required', 'Required: sourceObjects')
        const sources = json.sourceObjects.map((source) => {
          if (typeof source?.name !== 'string') throw new GcsError(400, 'required', 'Required: sourceObjects[].name')
          return {
            name: source.name,
            generation: source.generation === undefined ? undefined : String(source.generation),
            ifGenerationMatch: source.objectPreconditions?.ifGenerationMatch === undefined ? undefined : String(source.objectPreconditions.ifGenerationMatch)
          }
        })
        const object = this.buckets.compose(bucket, route.object ?? '', sources, objectFields(json.destination ?? {}), preconditions(query), change)
        return [200, resourceOf(object, this.#url)]
      }
      case 'object.list': {
        const page = this.buckets.list(bucket, {
          prefix: query.prefix,
          delimiter: query.delimiter,
          pageToken: query.pageToken,
          maxResults: query.maxResults === undefined ? undefined : Number(query.maxResults),
          startOffset: query.startOffset,
          endOffset: query.endOffset
        })
        const answer: Record<string, unknown> = { kind: 'storage#objects' }
        if (page.items.length > 0) answer.items = page.items.map((item) => resourceOf(item, this.#url))
        if (page.prefixes.length > 0) answer.prefixes = page.prefixes
        if (page.nextPageToken !== undefined) answer.nextPageToken = page.nextPageToken
        return [200, answer]
      }
      default:
        throw new GcsError(404, 'notFound', 'Not Found')
    }
  }

  #resumablePut ({ req, query, body }: Context, change: (data: Buffer) => Buffer): Answer {
    const session = this.#sessions.get(query.upload_id ?? '')
    if (session === undefined) throw new GcsError(404, 'notFound', 'No such upload session')
    if (session.done !== undefined) return [200, resourceOf(session.done, this.#url)]
    const range = parseContentRange(req.headers['content-range'])
    if (range === undefined) throw new GcsError(400, 'invalid', `Invalid Content-Range: ${String(req.headers['content-range'])}`)
    if (range.first !== undefined) {
      if (range.first > session.received) {
        throw new GcsError(400, 'invalid', `Content-Range starts at ${range.first}, after the ${session.received} bytes received`)
      }
      if (range.last !== undefined && range.last - range.first + 1 !== body.length) {
        throw new GcsError(400, 'invalid', `Content-Range says ${range.last - range.first + 1} bytes, the body has ${body.length}`)
      }
      const fresh = body.subarray(session.received - range.first)
      session.chunks.push(fresh)
      session.received += fresh.length
    } else if (body.length > 0) {
      throw new GcsError(400, 'invalid', 'A status query (bytes */…) must have no body')
    }
    if (range.total !== undefined && session.received > range.total) {
      throw new GcsError(400, 'invalid', `Received ${session.received} bytes, more than the ${range.total} announced`)
    }
    const final = range.total !== undefined ? session.received === range.total : range.first !== undefined && range.last === undefined
    if (final) {
      session.done = this.buckets.put(session.bucket, session.name, change(Buffer.concat(session.chunks)), session.fields, session.conditions)
      session.chunks = []
      return [200, resourceOf(session.done, this.#url)]
    }
    if (range.first !== undefined && body.length % RESUMABLE_QUANTUM !== 0) {
      throw new GcsError(400, 'invalid', `A non-final chunk must be a multiple of ${RESUMABLE_QUANTUM} bytes, got ${body.length}`)
    }
    return [308, undefined, session.received > 0 ? { range: `bytes=0-${session.received - 1}` } : {}]
  }

  #download ({ req, query, route }: Context): Answer {
    const object = this.buckets.get(route.bucket ?? '', route.object ?? '', query.generation, preconditions(query))
    const size = object.data.length
    const hash = object.md5Hash === undefined ? `crc32c=${object.crc32c}` : `crc32c=${object.crc32c},md5=${object.md5Hash}`
    const headers: Record<string, string> = {
      'content-type': object.contentType ?? 'application/octet-stream',
      'x-goog-hash': hash,
      'x-goog-generation': object.generation,
      'x-goog-metageneration': String(object.metageneration),
      'x-goog-stored-content-length': String(size),
      'x-goog-stored-content-encoding': 'identity',
      etag: etagOf(object),
      'last-modified': object.updated.toUTCString(),
      'accept-ranges': 'bytes'
    }
    const range = parseRange(req.headers.range, size)
    if (range === 'unsatisfiable') {
      throw new GcsError(416, 'requestedRangeNotSatisfiable', 'The requested range cannot be satisfied.')
    }
    if (range === undefined) return [200, object.data, headers]
    return [206, object.data.subarray(range.start, range.end + 1), { ...headers, 'content-range': `bytes ${range.start}-${range.end}/${size}` }]
  }
}

interface Context {
  req: IncomingMessage
  url: URL
  query: Record<string, string>
  body: Buffer
  route: Route
  record: RecordedRequest
}

type Answer = [number, unknown, Record<string, string>?]

interface ComposeRequest {
  destination?: Record<string, unknown>
  sourceObjects?: Array<{ name?: unknown, generation?: string | number, objectPreconditions?: { ifGenerationMatch?: string | number } }>
}

function routeOf (method: string, pathname: string, query: Record<string, string>): Route {
  const segments = pathname.split('/').slice(1).map((segment) => decodeURIComponent(segment))
  if (segments[0] === 'upload' && segments[1] === 'storage' && segments[2] === 'v1' && segments[3] === 'b' && segments[5] === 'o' && segments.length === 6) {
    const bucket = segments[4]
    if (method === 'POST' && query.uploadType === 'multipart') return { operation: 'upload.multipart', bucket, object: query.name }
    if (method === 'POST' && query.uploadType === 'media') return { operation: 'upload.media', bucket, object: query.name }
    if (method === 'POST' && query.uploadType === 'resumable' && query.upload_id === undefined) return { operation: 'upload.resumable.create', bucket, object: query.name }
    if (method === 'PUT' && query.upload_id !== undefined) return { operation: 'upload.resumable.put', bucket }
    if (method === 'DELETE' && query.upload_id !== undefined) return { operation: 'upload.resumable.cancel', bucket }
    return { operation: 'unknown' }
  }
  // JSON API: /storage/v1/b/… with apiEndpoint, /b/… with STORAGE_EMULATOR_HOST; /download/storage/v1/b/… for media links
  let rest = segments
  if (rest[0] === 'download' && rest[1] === 'storage' && rest[2] === 'v1') rest = rest.slice(3)
  else if (rest[0] === 'storage' && rest[1] === 'v1') rest = rest.slice(2)
  if (rest[0] !== 'b') return { operation: 'unknown' }
  const bucket = rest[1]
  if (rest.length === 1 && method === 'POST') return { operation: 'bucket.insert' }
  if (bucket === undefined || bucket === '') return { operation: 'unknown' }
  if (rest.length === 2) return method === 'GET' ? { operation: 'bucket.get', bucket } : { operation: 'unknown' }
  if (rest[2] !== 'o') return { operation: 'unknown' }
  if (rest.length === 3) return method === 'GET' ? { operation: 'object.list', bucket } : { operation: 'unknown' }
  const object = rest[3]
  if (rest.length === 5 && rest[4] === 'compose' && method === 'POST') return { operation: 'object.compose', bucket, object }
  if (rest.length !== 4) return { operation: 'unknown' }
  if (method === 'GET') return { operation: query.alt === 'media' ? 'object.media' : 'object.get', bucket, object }
  if (method === 'PATCH') return { operation: 'object.patch', bucket, object }
  if (method === 'DELETE') return { operation: 'object.delete', bucket, object }
  return { operation: 'unknown' }
}

async function readBody (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

function parseJson (body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch {
    throw new GcsError(400, 'parseError', 'Parse Error')
  }
}

/** A `multipart/related` upload: the JSON resource, then the bytes. */
function parseMultipart (contentType: string | undefined, body: Buffer): { fields: unknown, data: Buffer } {
  const boundary = /boundary="?([^";]+)"?/i.exec(contentType ?? '')?.[1]
  if (contentType?.toLowerCase().startsWith('multipart/related') !== true || boundary === undefined) {
    throw new GcsError(400, 'invalid', 'Multipart uploads need Content-Type multipart/related with a boundary')
  }
  const delimiter = Buffer.from(`--${boundary}`)
  const parts: Buffer[] = []
  let at = body.indexOf(delimiter)
  while (at >= 0) {
    const start = at + delimiter.length
    if (body.subarray(start, start + 2).toString() === '--') break
    const next = body.indexOf(delimiter, start)
    if (next < 0) throw new GcsError(400, 'invalid', 'Unterminated multipart body')
    // the part runs from after the delimiter's CRLF to before the next delimiter's CRLF
    parts.push(body.subarray(start + 2, next - 2))
    at = next
  }
  if (parts.length !== 2) throw new GcsError(400, 'invalid', `A multipart upload has 2 parts, got ${parts.length}`)
  const [json, media] = parts.map((part) => {
    const split = part.indexOf('\r\n\r\n')
    if (split < 0) throw new GcsError(400, 'invalid', 'A multipart part without headers')
    return part.subarray(split + 4)
  }) as [Buffer, Buffer]
  return { fields: parseJson(json), data: media }
}

function objectFields (value: unknown): ObjectFields {
  const fields = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>
  const text = (key: string): string | undefined => typeof fields[key] === 'string' ? fields[key] : undefined
  const result: ObjectFields = {}
  for (const key of ['contentType', 'contentEncoding', 'contentDisposition', 'cacheControl', 'crc32c', 'md5Hash'] as const) {
    const value = text(key)
    if (value !== undefined) result[key] = value
  }
  if (typeof fields.metadata === 'object' && fields.metadata !== null) result.metadata = fields.metadata as Record<string, string | null>
  return result
}

function preconditions (query: Record<string, string>): Preconditions {
  const result: Preconditions = {}
  for (const key of ['ifGenerationMatch', 'ifGenerationNotMatch', 'ifMetagenerationMatch', 'ifMetagenerationNotMatch'] as const) {
    if (query[key] !== undefined) result[key] = query[key]
  }
  return result
}

/** `bytes A-B/T`, `bytes A-*\/T`, `bytes *\/T` with `*` for an unknown total. */
function parseContentRange (value: string | undefined): { first?: number, last?: number, total?: number } | undefined {
  const match = /^bytes (?:(\*)|(\d+)-(\d+|\*))\/(\*|\d+)$/.exec(value?.trim() ?? '')
  if (match === null) return undefined
  const [, star, first, last, total] = match
  return {
    first: star === undefined ? Number(first) : undefined,
    last: last === undefined || last === '*' ? undefined : Number(last),
    total: total === '*' ? undefined : Number(total)
  }
}

function parseRange (value: string | undefined, size: number): { start: number, end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(value?.trim() ?? '')
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
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) }
}

function faultError (fault: Fault): GcsError {
  const status = fault.status ?? 500
  return new GcsError(status, fault.reason ?? 'injected', `injected fault: ${status}`)
}

function matches (pattern: string | RegExp, name: string | undefined): boolean {
  if (name === undefined) return false
  return typeof pattern === 'string' ? pattern === name : pattern.test(name)
}
