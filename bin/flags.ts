/**
 * The command's flags, tusd-style. `parseFlags` turns argv into a checked configuration or
 * throws a `FlagError` whose message tells the user what to fix.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { DEFAULT_HOOK_EVENTS, HOOK_TYPES, type HookType } from './hooks/protocol.js'

export interface CliConfig {
  host: string
  port: number
  basePath: string
  uploadDir: string
  /** Mode of the upload directory when created (`--dir-perms`, tusd's name). */
  dirPerms: number
  /** Mode of upload and info files (`--file-perms`, tusd's name). */
  filePerms: number
  maxSize: number
  behindProxy: boolean
  relativeLocation: boolean
  networkTimeout: number
  acquireLockTimeout: number
  shutdownTimeout: number
  disableTermination: boolean
  disableDownload: boolean
  disableConcatenation: boolean
  /** Do not speak the IETF Resumable Uploads draft (`--disable-ietf-draft`). */
  disableIetfDraft: boolean
  /** Do not send the draft's 104 interim responses (`--disable-ietf-104`), e.g. behind nginx. */
  disableIetf104: boolean
  expiration: number
  expirationInterval: number
  disableCors: boolean
  /** Do not serve the demo page at `/`. */
  disableDemo: boolean
  corsAllowOrigin: RegExp | undefined
  corsAllowCredentials: boolean
  logLevel: string
  /** `json` (one JSON object a line) or `pretty` (pino-pretty, for a terminal). */
  logFormat: LogFormat
  /** Serve Prometheus metrics at `metricsPath`. */
  exposeMetrics: boolean
  metricsPath: string
  /** Which locker serialises requests per upload. */
  locker: LockerKind
  /** Redis for `locker: 'redis'`. */
  redisUrl: string
  /** etcd client URLs for `locker: 'etcd'`. */
  etcdUrls: string[]
  /** Store uploads in S3 instead of `uploadDir` (`--s3-bucket`). */
  s3: S3Flags | undefined
  /** Store uploads in Google Cloud Storage instead of `uploadDir` (`--gcs-bucket`). */
  gcs: GcsFlags | undefined
  hooks: HookFlags
}

/** `--s3-*`: the S3 store. Credentials and region come from the standard AWS environment. */
export interface S3Flags {
  bucket: string
  endpoint: string | undefined
  forcePathStyle: boolean
  objectPrefix: string
  partSize: number | undefined
  minPartSize: number | undefined
  maxConcurrentPartUploads: number | undefined
  bufferDir: string | undefined
}

/** `--gcs-*`: the GCS store. Credentials come the usual Google way (ADC), none with `endpoint`. */
export interface GcsFlags {
  bucket: string
  objectPrefix: string
  /** A GCS JSON API emulator or fake instead of Google, e.g. http://127.0.0.1:4443 (no credentials sent). */
  endpoint: string | undefined
}

/** tusd-compatible hook flags (`--hooks-*`). */
export interface HookFlags {
  /** `--hooks-http`: the endpoint for HTTP hooks. */
  http: string | undefined
  httpForwardHeaders: string[]
  /** Attempts per hook call, as tusd counts them. */
  httpRetry: number
  httpBackoff: number
  httpTimeout: number
  httpSizeLimit: number
  httpSkipVerify: boolean
  /** `--hooks-dir`: the directory of hook executables. */
  dir: string | undefined
  enabledEvents: HookType[]
  /** Milliseconds between post-receive events. */
  progressInterval: number
}

export type LogFormat = 'json' | 'pretty'
export type LockerKind = 'memory' | 'file' | 'redis' | 'etcd'
const LOCKERS: readonly LockerKind[] = ['memory', 'file', 'redis', 'etcd']
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
const DEFAULT_ETCD_URL = 'http://127.0.0.1:2379'

/**
 * Every flag of the command, as `parseArgs` reads it. Exported so the docs test can check that
 * docs/cli.md lists each one with its default: add a flag here and document it there.
 */
export const FLAG_OPTIONS = {
  host: { type: 'string', default: '0.0.0.0' },
  port: { type: 'string', default: '8080' },
  'base-path': { type: 'string', default: '/files/' },
  'upload-dir': { type: 'string', default: './uploads' },
  'dir-perms': { type: 'string', default: '0700' },
  'file-perms': { type: 'string', default: '0600' },
  'max-size': { type: 'string', default: '0' },
  'behind-proxy': { type: 'boolean', default: false },
  'relative-location': { type: 'boolean', default: false },
  'network-timeout': { type: 'string', default: '60s' },
  'acquire-lock-timeout': { type: 'string', default: '20s' },
  'shutdown-timeout': { type: 'string', default: '10s' },
  'disable-termination': { type: 'boolean', default: false },
  'disable-download': { type: 'boolean', default: false },
  'disable-concatenation': { type: 'boolean', default: false },
  'disable-ietf-draft': { type: 'boolean', default: false },
  'disable-ietf-104': { type: 'boolean', default: false },
  expiration: { type: 'string', default: '0' },
  'expiration-interval': { type: 'string', default: '1m' },
  'disable-cors': { type: 'boolean', default: false },
  'disable-demo': { type: 'boolean', default: false },
  'cors-allow-origin': { type: 'string' },
  'cors-allow-credentials': { type: 'boolean', default: false },
  'log-level': { type: 'string', default: 'info' },
  'log-format': { type: 'string', default: 'json' },
  'expose-metrics': { type: 'boolean', default: false },
  'metrics-path': { type: 'string', default: '/metrics' },
  locker: { type: 'string' },
  'redis-url': { type: 'string' },
  'etcd-url': { type: 'string' },
  's3-bucket': { type: 'string' },
  's3-endpoint': { type: 'string' },
  's3-force-path-style': { type: 'boolean', default: false },
  's3-object-prefix': { type: 'string' },
  's3-part-size': { type: 'string' },
  's3-min-part-size': { type: 'string' },
  's3-max-concurrent-part-uploads': { type: 'string' },
  's3-buffer-dir': { type: 'string' },
  'gcs-bucket': { type: 'string' },
  'gcs-object-prefix': { type: 'string' },
  'gcs-endpoint': { type: 'string' },
  'hooks-http': { type: 'string' },
  'hooks-http-forward-headers': { type: 'string', default: '' },
  'hooks-http-retry': { type: 'string', default: '3' },
  'hooks-http-backoff': { type: 'string', default: '1s' },
  'hooks-http-timeout': { type: 'string', default: '15s' },
  'hooks-http-size-limit': { type: 'string', default: '5KiB' },
  'hooks-http-skip-verify': { type: 'boolean', default: false },
  'hooks-dir': { type: 'string' },
  'hooks-enabled-events': { type: 'string', default: DEFAULT_HOOK_EVENTS.join(',') },
  'progress-hooks-interval': { type: 'string', default: '1s' },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', short: 'v', default: false }
} as const satisfies NonNullable<ParseArgsConfig['options']>

/**
 * Defaults that are not `parseArgs` defaults because the flag's presence matters (`--redis-url`
 * picks the Redis locker) or the store applies them; shown in `--help` and docs/cli.md.
 */
export const IMPLICIT_DEFAULTS: Readonly<Record<string, string>> = {
  locker: 'file',
  'redis-url': DEFAULT_REDIS_URL,
  'etcd-url': DEFAULT_ETCD_URL,
  's3-part-size': '8MiB',
  's3-min-part-size': '5MiB',
  's3-max-concurrent-part-uploads': '8'
}

export class FlagError extends Error {
  override name = 'FlagError'
}

export const HELP = `Usage: fastify-tus [flags]

A tus resumable upload server (tus 1.0.0) on Fastify.

  --host HOST                 interface to listen on (default 0.0.0.0)
  --port PORT                 port to listen on; 0 picks a free one (default 8080)
  --base-path PATH            URL path of the upload collection (default /files/)
  --upload-dir DIR            directory for uploads and lock files (default ./uploads)
  --dir-perms MODE            octal mode of --upload-dir when it is created (default 0700)
  --file-perms MODE           octal mode of upload and info files, whatever the umask (default 0600)
  --max-size BYTES            largest upload accepted, e.g. 500000, 10MiB, 2GB; 0 = no limit (default 0)
  --behind-proxy              trust X-Forwarded-* / Forwarded headers for URLs and client addresses
  --relative-location         send Location as a path instead of an absolute URL
  --network-timeout DURATION  silence allowed on a request body, e.g. 60, 60s, 2m (default 60s)
  --acquire-lock-timeout DURATION
                              wait for an upload's lock before answering 423 (default 20s)
  --shutdown-timeout DURATION grace period on SIGTERM/SIGINT before exiting (default 10s)
  --disable-termination       do not offer DELETE
  --disable-download          do not offer GET downloads
  --disable-concatenation     do not offer concatenation (parallel uploads)
  --disable-ietf-draft        do not speak the IETF Resumable Uploads draft (interop versions 3-8)
  --disable-ietf-104          speak the draft without its 104 interim responses (for proxies such as nginx)
  --expiration DURATION       unfinished uploads expire after this long without activity; 0 = never (default 0)
  --expiration-interval DURATION
                              how often expired uploads are deleted (default 1m)
  --disable-cors              no built-in CORS headers
  --disable-demo              do not serve the upload demo page at / (it is off anyway with --base-path /)
  --cors-allow-origin REGEX   origins allowed by CORS, matched against the whole origin (default: all)
  --cors-allow-credentials    allow credentials (cookies, HTTP auth) in CORS requests
  --log-level LEVEL           fatal, error, warn, info, debug, trace or silent (default info)
  --log-format FORMAT         json (one object a line) or pretty (human-readable) (default json)
  --expose-metrics            serve Prometheus metrics (see docs/metrics.md)
  --metrics-path PATH         URL path of the metrics (default /metrics)
  --locker KIND               memory (one process), file (processes sharing --upload-dir on one host),
                              redis or etcd (any number of hosts)
                              (default file; redis if --redis-url is given, etcd if --etcd-url is)
  --redis-url URL             Redis for --locker redis: redis://[user:pass@]host:port[/db], rediss://…
                              or unix:///path/redis.sock (default ${DEFAULT_REDIS_URL})
  --etcd-url URL[,URL…]       etcd for --locker etcd: client URLs (default ${DEFAULT_ETCD_URL})
  -h, --help                  show this help
  -v, --version               print the version

S3 storage (instead of files in --upload-dir, which then holds only lock files; see docs/stores/s3.md).
Credentials and region come from the usual AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION, AWS_PROFILE …); without AWS_REGION a custom endpoint gets us-east-1.
  --s3-bucket NAME            store uploads in this bucket
  --s3-endpoint URL           an S3-compatible server instead of AWS (MinIO, Ceph radosgw, R2 …)
  --s3-force-path-style       address buckets as http://host/bucket/key (most S3-compatible servers need it)
  --s3-object-prefix PREFIX   put every object key under PREFIX, e.g. uploads/ (default none)
  --s3-part-size BYTES        preferred part size (default 8MiB)
  --s3-min-part-size BYTES    smallest part besides the last; set it to --s3-part-size for R2 (default 5MiB)
  --s3-max-concurrent-part-uploads N
                              part uploads running at once, over all uploads (default 8)
  --s3-buffer-dir DIR         buffer parts in temporary files in DIR instead of memory

Google Cloud Storage (instead of files in --upload-dir, which then holds only lock files; see
docs/stores/gcs.md). Credentials come the usual Google way: GOOGLE_APPLICATION_CREDENTIALS, gcloud's
application default credentials, or the metadata server on Google Cloud.
  --gcs-bucket NAME           store uploads in this bucket (not together with --s3-bucket)
  --gcs-object-prefix PREFIX  put every object name under PREFIX, e.g. uploads/ (default none)
  --gcs-endpoint URL          a GCS JSON API emulator instead of Google, e.g. http://127.0.0.1:4443;
                              no credentials are sent to it

Hooks, as tusd sends them (one transport at a time; see docs/hooks.md):
  --hooks-http URL            POST every hook event as JSON to URL
  --hooks-http-forward-headers LIST
                              client request headers to copy onto hook requests, e.g. Authorization,Cookie
  --hooks-http-retry N        attempts per hook call on a network error or 5xx, counted as tusd does:
                              3 is one call and two retries (default 3)
  --hooks-http-backoff DURATION
                              wait between attempts (default 1s)
  --hooks-http-timeout DURATION
                              time limit of one hook call, attempts included (default 15s)
  --hooks-http-size-limit BYTES
                              largest hook response accepted (default 5KiB)
  --hooks-http-skip-verify    do not verify the TLS certificate of an https: hook endpoint
  --hooks-dir DIR             run DIR/<hook> for every hook event (JSON on stdin and stdout)
  --hooks-enabled-events LIST hook events to send, comma-separated; empty for all of pre-create,
                              post-create, post-receive, pre-finish, post-finish, pre-terminate,
                              post-terminate (default ${DEFAULT_HOOK_EVENTS.join(',')})
  --progress-hooks-interval DURATION
                              time between post-receive events while a body streams in (default 1s)

Durations are seconds, or a number with ms, s, m or h.`

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

export function parseFlags (argv: string[]): CliConfig | 'help' | 'version' {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: FLAG_OPTIONS
    }))
  } catch (err) {
    throw new FlagError((err as Error).message)
  }
  if (values.help) return 'help'
  if (values.version) return 'version'

  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new FlagError(`--port must be 0-65535, got "${values.port}"`)
  const basePath = values['base-path']
  if (!basePath.startsWith('/')) throw new FlagError(`--base-path must start with "/", got "${basePath}"`)
  if (!LOG_LEVELS.has(values['log-level'])) throw new FlagError(`--log-level must be one of ${[...LOG_LEVELS].join(', ')}`)
  const logFormat = values['log-format']
  if (logFormat !== 'json' && logFormat !== 'pretty') throw new FlagError(`--log-format must be json or pretty, got "${logFormat}"`)
  const metricsPath = values['metrics-path']
  if (!/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/.test(metricsPath)) throw new FlagError(`--metrics-path must be a URL path starting with "/", got "${metricsPath}"`)
  if (basePath !== '/' && `${metricsPath}/`.startsWith(basePath.endsWith('/') ? basePath : `${basePath}/`)) {
    throw new FlagError(`--metrics-path ${metricsPath} must not be inside --base-path ${basePath}`)
  }
  if (values['upload-dir'] === '') throw new FlagError('--upload-dir must not be empty')
  const redisUrl = values['redis-url']
  const etcdUrl = values['etcd-url']
  if (redisUrl !== undefined && etcdUrl !== undefined) throw new FlagError('--redis-url and --etcd-url cannot both be given')
  const locker = values.locker ?? (redisUrl !== undefined ? 'redis' : etcdUrl !== undefined ? 'etcd' : 'file')
  if (!isLockerKind(locker)) throw new FlagError(`--locker must be one of ${LOCKERS.join(', ')}, got "${locker}"`)
  if (redisUrl !== undefined && locker !== 'redis') throw new FlagError(`--redis-url is only used with --locker redis, not --locker ${locker}`)
  if (redisUrl !== undefined && !/^(rediss?|unix):\/\/./.test(redisUrl)) {
    throw new FlagError(`--redis-url must be a redis://, rediss:// or unix:// URL, got "${redisUrl}"`)
  }
  if (etcdUrl !== undefined && locker !== 'etcd') throw new FlagError(`--etcd-url is only used with --locker etcd, not --locker ${locker}`)
  const etcdUrls = (etcdUrl ?? DEFAULT_ETCD_URL).split(',').map((url) => url.trim())
  for (const url of etcdUrls) {
    if (!/^https?:\/\/./.test(url)) throw new FlagError(`--etcd-url must be http:// or https:// URLs separated by commas, got "${url}"`)
  }
  let corsAllowOrigin: RegExp | undefined
  if (values['cors-allow-origin'] !== undefined) {
    try {
      corsAllowOrigin = new RegExp(values['cors-allow-origin'])
    } catch {
      throw new FlagError(`--cors-allow-origin must be a regular expression, got "${values['cors-allow-origin']}"`)
    }
  }

  return {
    host: values.host,
    port,
    basePath: basePath.endsWith('/') ? basePath : `${basePath}/`,
    uploadDir: values['upload-dir'],
    dirPerms: parseMode('--dir-perms', values['dir-perms']),
    filePerms: parseMode('--file-perms', values['file-perms']),
    maxSize: parseSize('--max-size', values['max-size']),
    behindProxy: values['behind-proxy'],
    relativeLocation: values['relative-location'],
    networkTimeout: parseDuration('--network-timeout', values['network-timeout'], 1),
    acquireLockTimeout: parseDuration('--acquire-lock-timeout', values['acquire-lock-timeout'], 0),
    shutdownTimeout: parseDuration('--shutdown-timeout', values['shutdown-timeout'], 0),
    disableTermination: values['disable-termination'],
    disableDownload: values['disable-download'],
    disableConcatenation: values['disable-concatenation'],
    disableIetfDraft: values['disable-ietf-draft'],
    disableIetf104: values['disable-ietf-104'],
    expiration: parseDuration('--expiration', values.expiration, 0),
    expirationInterval: parseDuration('--expiration-interval', values['expiration-interval'], 1),
    disableCors: values['disable-cors'],
    disableDemo: values['disable-demo'],
    corsAllowOrigin,
    corsAllowCredentials: values['cors-allow-credentials'],
    logLevel: values['log-level'],
    logFormat,
    exposeMetrics: values['expose-metrics'],
    metricsPath,
    locker,
    redisUrl: redisUrl ?? DEFAULT_REDIS_URL,
    etcdUrls,
    s3: s3Flags(values),
    gcs: gcsFlags(values),
    hooks: {
      http: hookEndpoint(values['hooks-http'], values['hooks-dir']),
      httpForwardHeaders: list(values['hooks-http-forward-headers']),
      httpRetry: parseCount('--hooks-http-retry', values['hooks-http-retry']),
      httpBackoff: parseDuration('--hooks-http-backoff', values['hooks-http-backoff'], 0),
      httpTimeout: parseDuration('--hooks-http-timeout', values['hooks-http-timeout'], 1),
      httpSizeLimit: parseSize('--hooks-http-size-limit', values['hooks-http-size-limit']),
      httpSkipVerify: values['hooks-http-skip-verify'],
      dir: values['hooks-dir'],
      enabledEvents: hookEvents(values['hooks-enabled-events']),
      progressInterval: parseDuration('--progress-hooks-interval', values['progress-hooks-interval'], 1)
    }
  }
}

interface S3Values {
  's3-bucket'?: string
  's3-endpoint'?: string
  's3-force-path-style': boolean
  's3-object-prefix'?: string
  's3-part-size'?: string
  's3-min-part-size'?: string
  's3-max-concurrent-part-uploads'?: string
  's3-buffer-dir'?: string
}

function s3Flags (values: S3Values): S3Flags | undefined {
  const bucket = values['s3-bucket']
  if (bucket === undefined) {
    const stray = Object.entries(values).find(([name, value]) => name.startsWith('s3-') && value !== undefined && value !== false)
    if (stray !== undefined) throw new FlagError(`--${stray[0]} needs --s3-bucket`)
    return undefined
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(bucket)) throw new FlagError(`--s3-bucket must be a bucket name, got "${bucket}"`)
  const endpoint = values['s3-endpoint']
  if (endpoint !== undefined && !/^https?:\/\/./.test(endpoint)) throw new FlagError(`--s3-endpoint must be an http:// or https:// URL, got "${endpoint}"`)
  const size = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined
    const bytes = parseSize(flag, value)
    if (bytes < 1) throw new FlagError(`${flag} must be at least 1 byte`)
    return bytes
  }
  const partSize = size('--s3-part-size', values['s3-part-size'])
  const minPartSize = size('--s3-min-part-size', values['s3-min-part-size'])
  if (minPartSize !== undefined && minPartSize > (partSize ?? 8 * 1024 * 1024)) throw new FlagError('--s3-min-part-size must not be larger than --s3-part-size')
  if (partSize !== undefined && minPartSize === undefined && partSize < 5 * 1024 * 1024) {
    throw new FlagError('--s3-part-size below 5MiB needs a --s3-min-part-size no larger than it')
  }
  const concurrency = values['s3-max-concurrent-part-uploads']
  const maxConcurrentPartUploads = concurrency === undefined ? undefined : parseCount('--s3-max-concurrent-part-uploads', concurrency)
  if (maxConcurrentPartUploads === 0) throw new FlagError('--s3-max-concurrent-part-uploads must be at least 1')
  if (values['s3-buffer-dir'] === '') throw new FlagError('--s3-buffer-dir must not be empty')
  return {
    bucket,
    endpoint,
    forcePathStyle: values['s3-force-path-style'],
    objectPrefix: values['s3-object-prefix'] ?? '',
    partSize,
    minPartSize,
    maxConcurrentPartUploads,
    bufferDir: values['s3-buffer-dir']
  }
}

interface GcsValues {
  's3-bucket'?: string
  'gcs-bucket'?: string
  'gcs-object-prefix'?: string
  'gcs-endpoint'?: string
}

/** GCS bucket names: 3-63 characters (up to 222 with dots), lowercase letters, digits, -, _ and . */
const GCS_BUCKET = /^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$/

function gcsFlags (values: GcsValues): GcsFlags | undefined {
  const bucket = values['gcs-bucket']
  if (bucket === undefined) {
    for (const name of ['gcs-object-prefix', 'gcs-endpoint'] as const) {
      if (values[name] !== undefined) throw new FlagError(`--${name} needs --gcs-bucket`)
    }
    return undefined
  }
  if (values['s3-bucket'] !== undefined) throw new FlagError('--gcs-bucket and --s3-bucket cannot both be given: choose one store')
  if (!GCS_BUCKET.test(bucket) || (!bucket.includes('.') && bucket.length > 63)) {
    throw new FlagError(`--gcs-bucket must be a bucket name (lowercase letters, digits, -, _ and .), got "${bucket}"`)
  }
  const endpoint = values['gcs-endpoint']
  if (endpoint !== undefined && !/^https?:\/\/[^/]/.test(endpoint)) {
    throw new FlagError(`--gcs-endpoint must be an http:// or https:// URL, got "${endpoint}"`)
  }
  return { bucket, objectPrefix: values['gcs-object-prefix'] ?? '', endpoint: endpoint?.replace(/\/+$/, '') }
}

function isLockerKind (value: string): value is LockerKind {
  return (LOCKERS as readonly string[]).includes(value)
}

function hookEndpoint (endpoint: string | undefined, dir: string | undefined): string | undefined {
  if (dir === '') throw new FlagError('--hooks-dir must not be empty')
  if (endpoint === undefined) return undefined
  if (dir !== undefined) throw new FlagError('--hooks-http and --hooks-dir cannot be combined: choose one hook transport')
  let url: URL
  try {
    url = new URL(endpoint)
  } catch {
    throw new FlagError(`--hooks-http must be an http: or https: URL, got "${endpoint}"`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new FlagError(`--hooks-http must be an http: or https: URL, got "${endpoint}"`)
  return endpoint
}

/** tusd's rule: a comma-separated list of hook types; empty means every type. */
function hookEvents (value: string): HookType[] {
  const names = list(value)
  if (names.length === 0) return [...HOOK_TYPES]
  for (const name of names) {
    if (!HOOK_TYPES.includes(name as HookType)) {
      throw new FlagError(`--hooks-enabled-events: unknown hook event "${name}"; events are ${HOOK_TYPES.join(', ')}`)
    }
  }
  return [...new Set(names)] as HookType[]
}

function list (value: string): string[] {
  return value.split(',').map((item) => item.trim()).filter((item) => item !== '')
}

function parseCount (flag: string, value: string): number {
  if (!/^\d+$/.test(value.trim())) throw new FlagError(`${flag} must be a whole number, got "${value}"`)
  return Number(value.trim())
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `60`, `60s`, `1.5m`, `500ms` → milliseconds. */
export function parseDuration (flag: string, value: string, minimum: number): number {
  const match = DURATION.exec(value.trim())
  if (match === null) throw new FlagError(`${flag} must be a duration such as 60, 60s, 2m or 500ms, got "${value}"`)
  const ms = Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 1000))
  if (ms < minimum) throw new FlagError(`${flag} must be at least ${minimum} ms, got "${value}"`)
  return ms
}

const SIZE = /^(\d+)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?$/i
const UNIT_BYTES: Record<string, number> = {
  b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3, tb: 1e12, tib: 1024 ** 4
}

/** `1048576`, `10MiB`, `2GB` → bytes. */
export function parseSize (flag: string, value: string): number {
  const match = SIZE.exec(value.trim())
  if (match === null) throw new FlagError(`${flag} must be a size such as 1048576, 10MiB or 2GB, got "${value}"`)
  const bytes = Number(match[1]) * (UNIT_BYTES[(match[2] ?? 'b').toLowerCase()] ?? 1)
  if (!Number.isSafeInteger(bytes)) throw new FlagError(`${flag} is too large: "${value}"`)
  return bytes
}

/** An octal permission mode, as tusd takes it: `0700`, `700` or `0o700`. */
function parseMode (flag: string, value: string): number {
  const match = /^(?:0o?)?([0-7]{1,3})$/.exec(value.trim())
  if (match === null) throw new FlagError(`${flag} must be an octal mode such as 0700, got "${value}"`)
  return parseInt(match[1] as string, 8)
}
