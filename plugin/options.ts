/**
 * The plugin's options. The TypeBox schema is the source of truth for the data options (their
 * types, bounds and defaults); functional options (store, locker, callbacks) are checked by shape.
 * `resolveOptions` runs once at register time and returns a frozen copy; the caller's object is
 * never touched. Any problem is an `ERR_TUS_INVALID_OPTION` that names the option.
 */
import { Type, type Static } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import type { FastifyRequest } from 'fastify'
import { isLocker, type Locker } from '../locks/locker.js'
import { MemoryLocker } from '../locks/memory.js'
import { isDataStore, type DataStore } from '../stores/store.js'
import { InvalidOption } from './errors.js'
import { resolveCors, type CorsOptions, type ResolvedCors } from './cors.js'
import { HOOK_NAMES, type HookName, type HooksOption } from './hooks.js'
import { normalizePublicUrl, PUBLIC_URL_PATTERN } from './urls.js'
import { resolveMetrics, type MetricsOptions, type ResolvedMetrics } from './metrics-options.js'

export const DataOptionsSchema = Type.Object({
  /** URL path of the upload collection. Default `/files/`. */
  path: Type.String({ pattern: '^/[A-Za-z0-9._~!$&\'()*+,;=:@%/-]*$', default: '/files/' }),
  /**
   * Largest upload in bytes (`Tus-Max-Size`); 0 means no limit. Default 0. Or a function of the request
   * (and the upload's id, `null` on OPTIONS) that returns such a number, asked once per request: see `MaxSize`.
   */
  maxSize: Type.Union([
    Type.Integer({ minimum: 0 }),
    Type.Function([Type.Any(), Type.Union([Type.String(), Type.Null()])], Type.Any())
  ], { default: 0 }),
  /** Send `Location` as a path instead of an absolute URL. Default false. */
  relativeLocation: Type.Boolean({ default: false }),
  /** Build absolute URLs from `Forwarded` / `X-Forwarded-Host` / `X-Forwarded-Proto` (invalid values are ignored). Default false. */
  respectForwardedHeaders: Type.Boolean({ default: false }),
  /**
   * The server's public base URL, e.g. `https://uploads.example.com` or `https://example.com/tus`:
   * upload URLs are this plus `path` plus the id, and no request header is consulted;
   * `Upload-Concat` URLs must be on it. An absolute http(s) URL without query, fragment or userinfo.
   */
  publicUrl: Type.Optional(Type.String({ pattern: PUBLIC_URL_PATTERN })),
  /** Milliseconds a request body may stay silent before it is ended (bytes received are kept). Default 60 000. */
  networkTimeout: Type.Integer({ minimum: 1, default: 60_000 }),
  /** Milliseconds to wait for an upload's lock before answering 423. Default 20 000. */
  acquireLockTimeout: Type.Integer({ minimum: 0, default: 20_000 }),
  /** Do not offer DELETE (`termination`). Default false. */
  disableTermination: Type.Boolean({ default: false }),
  /**
   * Refuse DELETE of a completed upload (`400 ERR_INVALID_TERMINATION`), as `@tus/server`'s option of
   * this name; unfinished uploads (partial ones included) may still be terminated. Default false.
   */
  disableTerminationForFinishedUploads: Type.Boolean({ default: false }),
  /** Do not offer GET downloads. Default false. */
  disableDownload: Type.Boolean({ default: false }),
  /** Do not offer `concatenation` (parallel uploads). Default false. */
  disableConcatenation: Type.Boolean({ default: false }),
  /**
   * Most partial uploads one final upload may name (each is locked while it is read). Default 100:
   * far above what parallel clients use, and 100 absolute URLs of 32-character ids fit the 8 KiB
   * `Upload-Concat` header that proxies commonly allow.
   */
  maxConcatParts: Type.Integer({ minimum: 1, maximum: 10_000, default: 100 }),
  /** Milliseconds between `onUploadProgress` calls while a body streams in. Default 1000. */
  progressInterval: Type.Integer({ minimum: 1, default: 1000 }),
  /** Unfinished uploads expire this many ms after their last write (`expiration`); 0 = never. Default 0. */
  expiration: Type.Integer({ minimum: 0, default: 0 }),
  /**
   * Also speak the IETF "Resumable Uploads for HTTP" draft (interop versions 3 to 8) on the same
   * routes, for requests that carry `Upload-Draft-Interop-Version` (see docs/ietf-draft.md). Default true.
   */
  ietfDraft: Type.Boolean({ default: true }),
  /**
   * Send the draft's `104 Upload Resumption Supported` interim responses. Turn off behind a proxy
   * that mishandles 1xx responses (nginx). Default true.
   */
  ietfInformational: Type.Boolean({ default: true }),
  /** Milliseconds between sweeps that delete expired uploads (from `onReady` to `onClose`); 0 = no sweep. Default 0. */
  expirationInterval: Type.Integer({ minimum: 0, default: 0 })
})

/**
 * The largest upload: a number of bytes (0 = no limit), or a function of the request that returns one
 * (or a promise of one), as `@tus/server`'s `maxSize`. The function gets the upload's id: the new id
 * on a creation (before `preCreate` may rename it), the upload's on a request about one, `null` on
 * OPTIONS. It is asked at most once per request. An answer that is not a non-negative safe integer,
 * or a throw, fails the request as a hook would (an error with a `statusCode` is sent as it is,
 * anything else is a generic 500 whose detail is logged).
 */
export type MaxSize = number | MaxSizeFunction
export type MaxSizeFunction = (request: FastifyRequest, uploadId: string | null) => number | Promise<number>

export type DataOptions = Omit<Static<typeof DataOptionsSchema>, 'maxSize'> & { maxSize: MaxSize }

export interface FunctionalOptions {
  /** Where uploads are kept. Required. */
  store: DataStore
  /** Serialises requests per upload. Default: a `MemoryLocker` (one process). */
  locker?: Locker | undefined
  /** Makes the id of a new upload. Must return 1–100 characters of `[A-Za-z0-9_-]`. Default: 32 random hex digits. */
  generateId?: ((request: FastifyRequest) => string | Promise<string>) | undefined
  /** Lifecycle hooks, one function or a list per name (see docs/hooks.md). More with `app.tus.addHook`. */
  hooks?: HooksOption | undefined
  /** Built-in CORS (on by default: every origin, no credentials); `false` leaves CORS to e.g. `@fastify/cors`. */
  cors?: boolean | CorsOptions | undefined
  /**
   * Prometheus metrics (see docs/metrics.md): `true` for a new registry (`app.tus.metrics.registry`),
   * or `{ registry, prefix, buckets }`. Default false: no metrics, no extra work per request.
   */
  metrics?: boolean | MetricsOptions | undefined
}

/** What `app.register(tus, options)` accepts. */
/** Every data option may be left out or given as `undefined` (so `exactOptionalPropertyTypes` callers need no conditional spreads). */
export type TusPluginOptions = { [K in keyof DataOptions]?: DataOptions[K] | undefined } & FunctionalOptions

export interface ResolvedOptions extends DataOptions {
  store: DataStore
  locker: Locker
  generateId: ((request: FastifyRequest) => string | Promise<string>) | undefined
  hooks: HooksOption
  cors: ResolvedCors | undefined
  metrics: ResolvedMetrics | undefined
}

const dataKeys = new Set(Object.keys(DataOptionsSchema.properties))
const functionalKeys = new Set(['store', 'locker', 'generateId', 'hooks', 'cors', 'metrics'])

export function resolveOptions (input: unknown): Readonly<ResolvedOptions> {
  if (typeof input !== 'object' || input === null) throw new InvalidOption('options', 'must be an object')
  const given = input as Record<string, unknown>
  const data: Record<string, unknown> = {}
  // a maxSize function is checked by the schema's shape only: TypeBox clones values, not functions
  const maxSizeFunction = typeof given.maxSize === 'function' ? given.maxSize as MaxSizeFunction : undefined
  for (const [key, value] of Object.entries(given)) {
    if (dataKeys.has(key)) {
      if (value !== undefined && !(key === 'maxSize' && maxSizeFunction !== undefined)) data[key] = value
    } else if (key === 'prefix') {
      throw new InvalidOption('prefix', 'is not used by fastify-tus: set "path" instead')
    } else if (!functionalKeys.has(key) && !isFastifyRegisterOption(key)) {
      throw new InvalidOption(key, 'is not an option of fastify-tus')
    }
  }
  const withDefaults = Value.Default(DataOptionsSchema, data) as Record<string, unknown>
  const first = Value.Errors(DataOptionsSchema, withDefaults).First()
  if (first !== undefined) {
    const name = first.path.replace(/^\//, '').split('/')[0] ?? 'options'
    throw new InvalidOption(name, `is invalid: ${first.message} (got ${JSON.stringify(first.value)})`)
  }
  const options = withDefaults as DataOptions

  if (!isDataStore(given.store)) throw new InvalidOption('store', 'must be a store with create(), get() and write() methods')
  if (given.locker !== undefined && !isLocker(given.locker)) throw new InvalidOption('locker', 'must be a locker with a lock() method')
  if (given.generateId !== undefined && typeof given.generateId !== 'function') throw new InvalidOption('generateId', 'must be a function')
  const hooks = checkHooks(given.hooks)
  const cors = resolveCors(given.cors)
  const metrics = resolveMetrics(given.metrics)

  const path = options.path.endsWith('/') ? options.path : `${options.path}/`
  const publicUrl = options.publicUrl === undefined ? undefined : normalizePublicUrl(options.publicUrl)
  if (typeof publicUrl === 'object') throw new InvalidOption('publicUrl', `${publicUrl.problem} (got ${JSON.stringify(options.publicUrl)})`)
  return Object.freeze({
    ...options,
    maxSize: maxSizeFunction ?? options.maxSize,
    path,
    publicUrl,
    store: given.store,
    locker: (given.locker as Locker | undefined) ?? new MemoryLocker(),
    generateId: given.generateId as ResolvedOptions['generateId'],
    hooks,
    cors,
    metrics
  })
}

function checkHooks (value: unknown): HooksOption {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null) throw new InvalidOption('hooks', 'must be an object of hook functions')
  for (const [name, fns] of Object.entries(value)) {
    if (!HOOK_NAMES.includes(name as HookName)) throw new InvalidOption(`hooks.${name}`, `is not a hook; hooks are ${HOOK_NAMES.join(', ')}`)
    const list: unknown[] = Array.isArray(fns) ? fns : [fns]
    if (!list.every((fn) => typeof fn === 'function')) throw new InvalidOption(`hooks.${name}`, 'must be a function or a list of functions')
  }
  return { ...(value as HooksOption) }
}

/** Options Fastify itself reads from a plugin's options object. */
function isFastifyRegisterOption (key: string): boolean {
  return key === 'logLevel' || key === 'logSerializers'
}
