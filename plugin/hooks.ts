/**
 * Lifecycle hooks: typed callbacks that receive the `FastifyRequest` and the upload. Several may
 * be registered per name (as plugin options or with `app.tus.addHook`); they run in order and
 * may be async. Returning nothing is always valid. A hook rejects a request by throwing an error
 * with a `statusCode` (for example from `@fastify/error` or `http-errors`): it is sent with that
 * status, its headers and its message. Any other error is a generic 500 whose detail is logged.
 */
import type { FastifyRequest } from 'fastify'
import type { Metadata, UploadInfo } from '../stores/store.js'
import * as errors from './errors.js'

/** What a request does to an upload, as `authorize` sees it. */
/** `concat`: a final upload names this (partial) upload, whose bytes it will copy. */
export type Action = 'create' | 'head' | 'patch' | 'get' | 'delete' | 'concat'

/** The upload `preCreate` sees: what the client asked for, under the id it will get. */
export interface UploadDraft {
  id: string
  size?: number | undefined
  metadata: Metadata
  /** Values of `metadata` that are not UTF-8, as base64 of their exact bytes (see `metadataBytes`). */
  binaryMetadata?: Metadata | undefined
  concat?: UploadInfo['concat'] | undefined
  /** Where the upload's bytes will be kept, as an earlier `preCreate` hook chose (see `PreCreateResult.storage`). */
  storage?: Record<string, string> | undefined
}

/** What `preCreate` may change. */
export interface PreCreateResult {
  /** Use this id instead (1–100 characters of `[A-Za-z0-9_-]`). */
  id?: string | undefined
  /** Merged into the client's metadata; a `null` value removes the key. */
  metadata?: Record<string, string | null> | undefined
  /** A size limit for this upload, below the plugin's `maxSize`. */
  maxSize?: number | undefined
  /**
   * Where to keep the upload's bytes, as tusd's `ChangeFileInfo.Storage`: `{ Path }` (a path
   * relative to the file store's directory) or `{ Key }` (an object key under the S3/GCS store's
   * prefix). Merged into what earlier hooks chose; an empty value removes a field.
   */
  storage?: Record<string, string> | undefined
}

/** What `preFinish` may add to the response that completes an upload. */
export interface PreFinishResult {
  /**
   * The response's status instead of the dialect's (`201` for a creation, `204`/`200` for an append):
   * 200–204 or 207–299 (a success), or 400–599 (the upload stays complete; only the answer changes).
   * Refused (a 500, logged): 1xx, 205, 206, 3xx, anything else, and `204` with a `body`.
   */
  status?: number | undefined
  /** Added to the response; never the framing, hop-by-hop or tus state headers (see `PRE_FINISH_RESERVED_HEADERS`), nor `Location` on a creation. */
  headers?: Record<string, string> | undefined
  /** A body for the response (its status becomes 200 when the tus answer would be 204). */
  body?: unknown
}

/** What the completing response becomes: the status and body `preFinish` asked for, if any. */
export interface FinishResponse {
  status?: number
  body?: unknown
}

/** The completing response's status: `preFinish`'s, else the dialect's (`fallback`), a 204 with a body becoming 200. */
export function finishStatus (fallback: number, response: FinishResponse | undefined): number {
  if (response?.status !== undefined) return response.status
  return fallback === 204 && response?.body !== undefined ? 200 : fallback
}

/**
 * Headers `preFinish` may not set: the body's framing and the connection's (the server frames the
 * body), and the headers that tell the client where its upload stands, in either dialect.
 */
export const PRE_FINISH_RESERVED_HEADERS: ReadonlySet<string> = new Set([
  'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer',
  'proxy-authenticate', 'proxy-authorization',
  'tus-resumable', 'tus-version', 'tus-extension', 'tus-max-size', 'upload-offset', 'upload-length',
  'upload-defer-length', 'upload-concat', 'upload-expires', 'upload-complete', 'upload-incomplete',
  'upload-limit', 'upload-draft-interop-version'
])

/**
 * A status `preFinish` may set: a final success the clients of both dialects take as one (no 205
 * Reset Content, no 206 Partial Content) or an error; never an interim 1xx or a redirect, which would
 * send the client elsewhere with the upload's URL.
 */
export function isPreFinishStatus (status: unknown): status is number {
  if (typeof status !== 'number' || !Number.isInteger(status)) return false
  if (status >= 200 && status <= 299) return status !== 205 && status !== 206
  return status >= 400 && status <= 599
}

/** Checks one `preFinish` result; a bad one is the application's mistake, so a TypeError (a logged 500). */
export function checkPreFinishResult (result: PreFinishResult, creation: boolean): void {
  if (result.status !== undefined && !isPreFinishStatus(result.status)) {
    throw new TypeError(`preFinish returned the status ${String(result.status)}: use 200-204, 207-299 or 400-599`)
  }
  if (result.headers === undefined) return
  if (typeof result.headers !== 'object' || result.headers === null) throw new TypeError('preFinish returned headers that are not an object')
  for (const name of Object.keys(result.headers)) {
    const lower = name.toLowerCase()
    if (PRE_FINISH_RESERVED_HEADERS.has(lower) || (creation && lower === 'location')) {
      throw new TypeError(`preFinish may not set the header ${JSON.stringify(name)}${lower === 'location' ? ' on a creation (it is the upload\'s URL)' : ''}`)
    }
  }
}

export interface Progress {
  /** Bytes this request has delivered so far. */
  bytes: number
  /** The upload's offset now. */
  offset: number
}

type MaybePromise<T> = T | Promise<T>

export interface TusHooks {
  /** Every request: POST before naming (no upload yet), the others with the loaded upload, before its lock is taken. */
  authorize: (request: FastifyRequest, upload: UploadInfo | undefined, action: Action) => MaybePromise<void>
  /** Before an upload is created: reject it, rename it, change its metadata or set its size limit. */
  preCreate: (request: FastifyRequest, upload: UploadDraft) => MaybePromise<PreCreateResult | undefined | void>
  /** After the upload was created, before its first bytes are written. */
  postCreate: (request: FastifyRequest, upload: UploadInfo) => MaybePromise<void>
  /** While a body streams in (every `progressInterval` ms) and once when the request ends. Errors are logged. */
  onUploadProgress: (request: FastifyRequest, upload: UploadInfo, progress: Progress) => MaybePromise<void>
  /** The upload just completed; runs before the response, whose status, headers and body it may set. */
  preFinish: (request: FastifyRequest, upload: UploadInfo) => MaybePromise<PreFinishResult | undefined | void>
  /** After the response that completed the upload was sent. Errors are logged, never sent. */
  onUploadComplete: (request: FastifyRequest, upload: UploadInfo) => MaybePromise<void>
  /** Before an upload is deleted: throw to refuse. */
  preTerminate: (request: FastifyRequest, upload: UploadInfo) => MaybePromise<void>
  /** After an upload was deleted. Errors are logged, never sent. */
  postTerminate: (request: FastifyRequest, upload: UploadInfo) => MaybePromise<void>
}

export type HookName = keyof TusHooks

export const HOOK_NAMES: readonly HookName[] = Object.freeze([
  'authorize', 'preCreate', 'postCreate', 'onUploadProgress', 'preFinish', 'onUploadComplete', 'preTerminate', 'postTerminate'
])

/** The `hooks` plugin option: one function or a list per name. */
export type HooksOption = { [K in HookName]?: TusHooks[K] | Array<TusHooks[K]> }

export class HookRegistry {
  readonly #hooks = new Map<HookName, Array<TusHooks[HookName]>>()

  add<K extends HookName> (name: K, fn: TusHooks[K]): void {
    if (!HOOK_NAMES.includes(name)) throw new errors.InvalidHook(`unknown hook "${String(name)}"; hooks are ${HOOK_NAMES.join(', ')}`)
    if (typeof fn !== 'function') throw new errors.InvalidHook(`hook "${name}" must be a function`)
    const list = this.#hooks.get(name) ?? []
    list.push(fn)
    this.#hooks.set(name, list)
  }

  has (name: HookName): boolean {
    return (this.#hooks.get(name)?.length ?? 0) > 0
  }

  list<K extends HookName> (name: K): Array<TusHooks[K]> {
    return (this.#hooks.get(name) ?? []) as Array<TusHooks[K]>
  }

  /** Runs every hook of `name` in order, awaiting each. */
  async run<K extends HookName> (name: K, ...args: Parameters<TusHooks[K]>): Promise<void> {
    for (const fn of this.list(name)) {
      await (fn as (...a: Parameters<TusHooks[K]>) => unknown)(...args)
    }
  }
}

/** Applies `preCreate` results in order; each hook sees the draft as the previous ones left it. */
export async function runPreCreate (registry: HookRegistry, request: FastifyRequest, draft: UploadDraft): Promise<{ draft: UploadDraft, maxSize: number | undefined }> {
  let maxSize: number | undefined
  for (const fn of registry.list('preCreate')) {
    const copy = { ...draft, metadata: { ...draft.metadata } }
    if (draft.binaryMetadata !== undefined) copy.binaryMetadata = { ...draft.binaryMetadata }
    const result = await fn(request, copy)
    if (result === undefined || result === null) continue
    if (result.id !== undefined) draft = { ...draft, id: result.id }
    if (result.metadata !== undefined) draft = withMetadata(draft, mergeMetadata(draft.metadata, result.metadata))
    if (result.storage !== undefined && result.storage !== null) draft = withStorage(draft, result.storage)
    if (result.maxSize !== undefined) {
      if (!Number.isSafeInteger(result.maxSize) || result.maxSize < 0) {
        throw new errors.InvalidHook(`preCreate returned an invalid maxSize ${String(result.maxSize)}`)
      }
      maxSize = Math.min(result.maxSize, maxSize ?? Number.POSITIVE_INFINITY)
    }
  }
  return { draft, maxSize }
}

/** The draft with `changes` merged into its storage (an empty value removes a field). */
function withStorage (draft: UploadDraft, changes: unknown): UploadDraft {
  if (typeof changes !== 'object' || changes === null || Array.isArray(changes)) throw new TypeError('preCreate returned a storage that is not an object of strings')
  const { storage: current, ...rest } = draft
  const storage: Record<string, string> = Object.create(null) as Record<string, string>
  Object.assign(storage, current)
  for (const [key, value] of Object.entries(changes)) {
    if (typeof value !== 'string') throw new TypeError(`preCreate returned a non-string storage value for "${key}"`)
    if (value === '') delete storage[key]; else storage[key] = value
  }
  return Object.keys(storage).length > 0 ? { ...rest, storage } : rest
}

/** The draft with new metadata: a value that is not UTF-8 keeps its bytes while its text is left as it was. */
function withMetadata (draft: UploadDraft, metadata: Metadata): UploadDraft {
  const { binaryMetadata: binary, ...rest } = draft
  if (binary === undefined) return { ...rest, metadata }
  const kept: Metadata = Object.create(null) as Metadata
  for (const [key, bytes] of Object.entries(binary)) {
    if (Object.hasOwn(metadata, key) && metadata[key] === draft.metadata[key]) kept[key] = bytes
  }
  return Object.keys(kept).length > 0 ? { ...rest, metadata, binaryMetadata: kept } : { ...rest, metadata }
}

/** `base` with `changes` merged in; a `null` value removes the key. */
export function mergeMetadata (base: Metadata, changes: Record<string, string | null>): Metadata {
  const merged: Metadata = Object.create(null) as Metadata
  Object.assign(merged, base)
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) {
      delete merged[key]
    } else if (typeof value === 'string') {
      merged[key] = value
    } else {
      throw new errors.InvalidHook(`preCreate returned a non-string metadata value for "${key}"`)
    }
  }
  return merged
}
