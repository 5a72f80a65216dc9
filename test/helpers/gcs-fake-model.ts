/**
 * The in-memory buckets of the GCS fake (gcs-fake.ts): objects with generations, hashes and
 * JSON resources shaped like the GCS JSON API's, listing with prefixes and pages, composition,
 * and the precondition and error rules the store relies on. Test-only: no real GCS server can
 * run here (see docs/stores/gcs.md).
 */
import { createHash } from 'node:crypto'
import { CRC32C } from '@google-cloud/storage'

export interface StoredObject {
  bucket: string
  name: string
  data: Buffer
  generation: string
  metageneration: number
  contentType: string | undefined
  contentEncoding: string | undefined
  contentDisposition: string | undefined
  cacheControl: string | undefined
  metadata: Record<string, string>
  timeCreated: Date
  updated: Date
  crc32c: string
  /** Absent for composite objects, as on GCS. */
  md5Hash: string | undefined
  /** Set for composite objects. */
  componentCount: number | undefined
}

/** The writable fields of an object resource. */
export interface ObjectFields {
  contentType?: string
  contentEncoding?: string
  contentDisposition?: string
  cacheControl?: string
  metadata?: Record<string, string | null>
  crc32c?: string
  md5Hash?: string
}

export interface Preconditions {
  ifGenerationMatch?: string
  ifGenerationNotMatch?: string
  ifMetagenerationMatch?: string
  ifMetagenerationNotMatch?: string
}

/** An error the fake answers in the GCS JSON error shape. */
export class GcsError extends Error {
  constructor (readonly code: number, readonly reason: string, message: string) {
    super(message)
  }

  toJSON (): unknown {
    return { error: { code: this.code, message: this.message, errors: [{ domain: 'global', reason: this.reason, message: this.message }] } }
  }
}

export const MAX_COMPOSE_SOURCES = 32

export function crc32cOf (data: Buffer): string {
  const crc = new CRC32C()
  crc.update(data)
  return crc.toString()
}

export function md5Of (data: Buffer): string {
  return createHash('md5').update(data).digest('base64')
}

export class FakeBuckets {
  readonly #buckets = new Map<string, Map<string, StoredObject>>()
  #generation = BigInt(Date.now()) * 1000n

  bucket (name: string): Map<string, StoredObject> {
    let bucket = this.#buckets.get(name)
    if (bucket === undefined) {
      bucket = new Map()
      this.#buckets.set(name, bucket)
    }
    return bucket
  }

  bucketNames (): string[] {
    return [...this.#buckets.keys()]
  }

  /** The live object, checked against an optional generation and preconditions. */
  get (bucket: string, name: string, generation?: string, conditions: Preconditions = {}): StoredObject {
    const object = this.bucket(bucket).get(name)
    if (object === undefined || (generation !== undefined && generation !== object.generation)) {
      throw notFound(bucket, name)
    }
    checkPreconditions(object, conditions)
    return object
  }

  /** Stores a new generation of `name` (a new object when it did not exist). */
  put (bucket: string, name: string, data: Buffer, fields: ObjectFields, conditions: Preconditions = {}, composite?: number): StoredObject {
    if (name === '' || Buffer.byteLength(name) > 1024) throw new GcsError(400, 'invalid', 'The object name is invalid.')
    const objects = this.bucket(bucket)
    checkPreconditions(objects.get(name), conditions)
    const crc32c = crc32cOf(data)
    if (fields.crc32c !== undefined && fields.crc32c !== crc32c) {
      throw new GcsError(400, 'invalid', `Provided CRC32C "${fields.crc32c}" doesn't match calculated CRC32C "${crc32c}".`)
    }
    const md5Hash = composite === undefined ? md5Of(data) : undefined
    if (fields.md5Hash !== undefined && fields.md5Hash !== md5Hash) {
      throw new GcsError(400, 'invalid', `Provided MD5 hash "${fields.md5Hash}" doesn't match calculated MD5 hash "${md5Hash ?? ''}".`)
    }
    const now = new Date()
    const object: StoredObject = {
      bucket,
      name,
      data,
      generation: (++this.#generation).toString(),
      metageneration: 1,
      contentType: fields.contentType,
      contentEncoding: fields.contentEncoding,
      contentDisposition: fields.contentDisposition,
      cacheControl: fields.cacheControl,
      metadata: mergeMetadata({}, fields.metadata),
      timeCreated: now,
      updated: now,
      crc32c,
      md5Hash,
      componentCount: composite
    }
    objects.set(name, object)
    return object
  }

  patch (bucket: string, name: string, fields: ObjectFields, conditions: Preconditions, generation?: string): StoredObject {
    const object = this.get(bucket, name, generation, conditions)
    if (fields.contentType !== undefined) object.contentType = fields.contentType
    if (fields.contentEncoding !== undefined) object.contentEncoding = fields.contentEncoding
    if (fields.contentDisposition !== undefined) object.contentDisposition = fields.contentDisposition
    if (fields.cacheControl !== undefined) object.cacheControl = fields.cacheControl
    if (fields.metadata !== undefined) object.metadata = mergeMetadata(object.metadata, fields.metadata)
    object.metageneration++
    object.updated = new Date()
    return object
  }

  delete (bucket: string, name: string, conditions: Preconditions, generation?: string): void {
    this.get(bucket, name, generation, conditions)
    this.bucket(bucket).delete(name)
  }

  compose (
    bucket: string,
    destination: string,
    sources: Array<{ name: string, generation?: string, ifGenerationMatch?: string }>,
    fields: ObjectFields,
    conditions: Preconditions,
    transform: (data: Buffer) => Buffer = (data) => data
  ): StoredObject {
    if (sources.length === 0) throw new GcsError(400, 'required', 'You must provide at least one source component.')
    if (sources.length > MAX_COMPOSE_SOURCES) {
      throw new GcsError(400, 'invalid', `The number of source components provided (${sources.length}) exceeds the maximum (${MAX_COMPOSE_SOURCES}).`)
    }
    const parts = sources.map((source) => {
      const object = this.get(bucket, source.name, source.generation)
      if (source.ifGenerationMatch !== undefined && source.ifGenerationMatch !== object.generation) throw conditionNotMet()
      return object
    })
    const components = parts.reduce((sum, part) => sum + (part.componentCount ?? 1), 0)
    const data = transform(Buffer.concat(parts.map((part) => part.data)))
    return this.put(bucket, destination, data, { ...fields, crc32c: undefined, md5Hash: undefined }, conditions, components)
  }

  /** Names in order, filtered like objects.list. */
  list (bucket: string, query: ListQuery): ListPage {
    const names = [...this.bucket(bucket).keys()].sort(compareNames)
    const max = Math.min(Math.max(query.maxResults ?? 1000, 1), 1000)
    const items: StoredObject[] = []
    const prefixes = new Set<string>()
    let count = 0
    let next: string | undefined
    const after = query.pageToken === undefined ? undefined : Buffer.from(query.pageToken, 'base64url').toString()
    const afterPrefix = after !== undefined && query.delimiter !== undefined && query.delimiter !== '' && after.endsWith(query.delimiter)
    for (const name of names) {
      if (query.prefix !== undefined && !name.startsWith(query.prefix)) continue
      if (query.startOffset !== undefined && compareNames(name, query.startOffset) < 0) continue
      if (query.endOffset !== undefined && compareNames(name, query.endOffset) >= 0) continue
      if (after !== undefined && (compareNames(name, after) <= 0 || (afterPrefix && name.startsWith(after)))) continue
      let collapsed: string | undefined
      if (query.delimiter !== undefined && query.delimiter !== '') {
        const at = name.indexOf(query.delimiter, query.prefix?.length ?? 0)
        if (at >= 0) collapsed = name.slice(0, at + query.delimiter.length)
      }
      if (collapsed !== undefined && prefixes.has(collapsed)) continue
      if (count === max) {
        next = Buffer.from(lastName(items, prefixes) ?? '').toString('base64url')
        break
      }
      if (collapsed !== undefined) prefixes.add(collapsed)
      else items.push(this.bucket(bucket).get(name) as StoredObject)
      count++
    }
    return { items, prefixes: [...prefixes], nextPageToken: next }
  }
}

export interface ListQuery {
  prefix?: string
  delimiter?: string
  pageToken?: string
  maxResults?: number
  startOffset?: string
  endOffset?: string
}

export interface ListPage {
  items: StoredObject[]
  prefixes: string[]
  nextPageToken: string | undefined
}

/** The object resource of the JSON API (numbers as strings, as GCS sends them). */
export function resourceOf (object: StoredObject, baseUrl: string): Record<string, unknown> {
  const encoded = encodeURIComponent(object.name)
  const resource: Record<string, unknown> = {
    kind: 'storage#object',
    id: `${object.bucket}/${object.name}/${object.generation}`,
    selfLink: `${baseUrl}/storage/v1/b/${object.bucket}/o/${encoded}`,
    mediaLink: `${baseUrl}/download/storage/v1/b/${object.bucket}/o/${encoded}?generation=${object.generation}&alt=media`,
    name: object.name,
    bucket: object.bucket,
    generation: object.generation,
    metageneration: String(object.metageneration),
    storageClass: 'STANDARD',
    size: String(object.data.length),
    crc32c: object.crc32c,
    etag: etagOf(object),
    timeCreated: object.timeCreated.toISOString(),
    updated: object.updated.toISOString(),
    timeStorageClassUpdated: object.timeCreated.toISOString()
  }
  if (object.contentType !== undefined) resource.contentType = object.contentType
  if (object.contentEncoding !== undefined) resource.contentEncoding = object.contentEncoding
  if (object.contentDisposition !== undefined) resource.contentDisposition = object.contentDisposition
  if (object.cacheControl !== undefined) resource.cacheControl = object.cacheControl
  if (object.md5Hash !== undefined) resource.md5Hash = object.md5Hash
  if (object.componentCount !== undefined) resource.componentCount = object.componentCount
  if (Object.keys(object.metadata).length > 0) resource.metadata = { ...object.metadata }
  return resource
}

export function etagOf (object: StoredObject): string {
  return Buffer.from(`${object.generation}/${object.metageneration}`).toString('base64')
}

export function notFound (bucket: string, name: string): GcsError {
  return new GcsError(404, 'notFound', `No such object: ${bucket}/${name}`)
}

function conditionNotMet (): GcsError {
  return new GcsError(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.')
}

function checkPreconditions (object: StoredObject | undefined, conditions: Preconditions): void {
  const generation = object?.generation ?? '0'
  const { ifGenerationMatch, ifGenerationNotMatch, ifMetagenerationMatch, ifMetagenerationNotMatch } = conditions
  if (ifGenerationMatch !== undefined && ifGenerationMatch !== generation) throw conditionNotMet()
  if (ifGenerationNotMatch !== undefined && ifGenerationNotMatch === generation) {
    if (object === undefined) throw conditionNotMet()
    throw new GcsError(304, 'notModified', 'Not Modified')
  }
  if (ifMetagenerationMatch !== undefined && ifMetagenerationMatch !== String(object?.metageneration ?? 0)) throw conditionNotMet()
  if (ifMetagenerationNotMatch !== undefined && ifMetagenerationNotMatch === String(object?.metageneration ?? 0)) {
    throw new GcsError(304, 'notModified', 'Not Modified')
  }
}

function mergeMetadata (current: Record<string, string>, changes: Record<string, string | null> | undefined): Record<string, string> {
  const merged = { ...current }
  for (const [key, value] of Object.entries(changes ?? {})) {
    if (value === null) delete merged[key]
    else merged[key] = String(value)
  }
  return merged
}

/** GCS orders names by their UTF-8 bytes. */
function compareNames (a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b))
}

function lastName (items: StoredObject[], prefixes: Set<string>): string | undefined {
  const names = [...items.map((item) => item.name), ...prefixes].sort(compareNames)
  return names[names.length - 1]
}
