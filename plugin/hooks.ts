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
  size?: number
  metadata: Metadata
  /** Values of `metadata` that are not UTF-8, as base64 of their exact bytes (see `metadataBytes`). */
  binaryMetadata?: Metadata
  concat?: UploadInfo['concat']
  /** Where the upload's bytes will be kept, as an earlier `preCreate` hook chose (see `PreCreateResult.storage`). */
  storage?: Record<string, string>
}

/** What `preCreate` may change. */
export interface PreCreateResult {
  /** Use this id instead (1–100 characters of `[A-Za-z0-9_-]`). */
  id?: string
  /** Merged into the client's metadata; a `null` value removes the key. */
  metadata?: Record<string, string | null>
  /** A size limit for this upload, below the plugin's `maxSize`. */
  maxSize?: number
  /**
   * Where to keep the upload's bytes, as tusd's `ChangeFileInfo.Storage`: `{ Path }` (a path
   * relative to the file store's directory) or `{ Key }` (an object key under the S3/GCS store's
   * prefix). Merged into what earlier hooks chose; an empty value removes a field.
   */
  storage?: Record<string, string>
}

/** What `preFinish` may add to the response that completes an upload. */
export interface PreFinishResult {
  headers?: Record<string, string>
  /** A body for the response (its status becomes 200 when the tus answer would be 204). */
  body?: unknown
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
  /** The upload just completed; runs before the response, which it may shape. */
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
        throw new TypeError(`preCreate returned an invalid maxSize ${String(result.maxSize)}`)
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
      throw new TypeError(`preCreate returned a non-string metadata value for "${key}"`)
    }
  }
  return merged
}
