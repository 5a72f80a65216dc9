/**
 * The command's flags, tusd-style, declared once in `FLAGS`: name, value, default, `--help`
 * section and text, and where the value goes in the configuration. Parsing, `--help` and the
 * docs check (test/docs.test.ts) are derived from the table. Defaults that belong to another
 * module (the plugin's options, the S3 store, the hook protocol) are read from it.
 * `parseFlags` returns a checked configuration or throws a `FlagError` telling the user what to fix.
 */
import { DataOptionsSchema } from '../plugin/options.js'
import { normalizePublicUrl } from '../plugin/urls.js'
import { FILE_STORE_MODES } from '../stores/file.js'
import { S3_DEFAULTS } from '../stores/s3-defaults.js'
import {
  count, duration, flag, FlagError, formatHelp, httpUrl, list, mode, nonEmpty, oneOf, readFlags, regex, size, text, toggle,
  type ConfigOf, type Reader
} from './flag-kit.js'
import { DEFAULT_HOOK_EVENTS, HOOK_TYPES, type HookType } from './hooks/protocol.js'
import { formatSize } from './units.js'
import { availableParallelism } from 'node:os'

export { FlagError } from './flag-kit.js'

export type LogFormat = 'json' | 'pretty'
export type LockerKind = 'memory' | 'file' | 'redis' | 'etcd' | 'dynamodb'
const LOCKERS = ['memory', 'file', 'redis', 'etcd', 'dynamodb'] as const satisfies readonly LockerKind[]
export type TlsMode = 'tls13' | 'tls12' | 'tls12-strong'
const TLS_MODES = ['tls13', 'tls12', 'tls12-strong'] as const satisfies readonly TlsMode[]
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379'
const DEFAULT_ETCD_URL = 'http://127.0.0.1:2379'
/** `--public-url`: checked as the plugin's `publicUrl` option is. */
const publicUrl: Reader<string | undefined> = {
  read: (value, flag) => {
    if (value === undefined) return undefined
    const normalized = normalizePublicUrl(value)
    if (typeof normalized === 'object') throw new FlagError(`${flag} ${normalized.problem}, got "${value}"`)
    return normalized
  }
}
/** The plugin's own defaults, so the command's are the same. */
const plugin = DataOptionsSchema.properties
/** A URL path: `/` then path characters. */
const URL_PATH = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/

const port: Reader<number> = {
  read: (value = '8080', name) => {
    const number = Number(value)
    if (value.trim() === '' || !Number.isInteger(number) || number < 0 || number > 65535) throw new FlagError(`${name} must be 0-65535, got "${value}"`)
    return number
  },
  shown: '8080'
}

const urlPath = (fallback: string): Reader<string> => text(fallback, (value, name) => {
  if (!URL_PATH.test(value) || value.includes('//')) throw new FlagError(`${name} must be a URL path starting with "/" (no empty segments), got "${value}"`)
})

const redisUrl = text()
const checkedRedisUrl: Reader<string | undefined> = {
  read: (value, name) => {
    if (value !== undefined && !/^(rediss?|unix):\/\/./.test(value)) {
      throw new FlagError(`${name} must be a redis://, rediss:// or unix:// URL, got "${value}"`)
    }
    return redisUrl.read(value, name)
  }
}

/** tusd's rule: a comma-separated list of hook types; empty means every type. */
const hookEvents: Reader<HookType[]> = {
  read: (value, name) => {
    const names = list(DEFAULT_HOOK_EVENTS).read(value, name)
    if (names.length === 0) return [...HOOK_TYPES]
    for (const event of names) {
      if (!HOOK_TYPES.includes(event as HookType)) {
        throw new FlagError(`${name}: unknown hook event "${event}"; events are ${HOOK_TYPES.join(', ')}`)
      }
    }
    return [...new Set(names)] as HookType[]
  },
  shown: DEFAULT_HOOK_EVENTS.join(',')
}

/** `--workers`: a count, or `auto` for one per core. */
const workers: Reader<number> = {
  read: (value, name) => {
    if (value === undefined) return 1
    if (value.trim() === 'auto') return availableParallelism()
    return count(1, 1, 1024).read(value, name)
  },
  shown: '1'
}

const SECTIONS = {
  main: '',
  s3: `S3 storage (instead of files in --upload-dir, which then holds only lock files; see docs/stores/s3.md).
Credentials and region come from the usual AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
AWS_SESSION_TOKEN, AWS_REGION, AWS_PROFILE …); without AWS_REGION a custom endpoint gets us-east-1.`,
  gcs: `Google Cloud Storage (instead of files in --upload-dir, which then holds only lock files; see
docs/stores/gcs.md). Credentials come the usual Google way: GOOGLE_APPLICATION_CREDENTIALS, gcloud's
application default credentials, or the metadata server on Google Cloud.`,
  azure: `Azure Blob Storage (instead of files in --upload-dir, which then holds only lock files; see
docs/stores/azure.md). Credentials as tusd reads them: AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY.`,
  hooks: 'Hooks, as tusd sends them (one transport at a time; see docs/hooks.md):'
} as const

/**
 * Every flag of the command. The docs test checks that docs/cli.md lists each one with the
 * default shown here: add a flag here and document it there.
 */
export const FLAGS = {
  host: flag({ to: 'host', section: 'main', arg: 'HOST', help: 'interface to listen on', read: text('0.0.0.0') }),
  port: flag({ to: 'port', section: 'main', arg: 'PORT', help: 'port to listen on; 0 picks a free one', read: port }),
  'unix-sock': flag({ to: 'unixSock', section: 'main', arg: 'PATH', help: 'listen on this unix socket instead of --host and --port', read: nonEmpty() }),
  'tls-certificate': flag({ to: 'tls.certificate', section: 'main', arg: 'FILE', help: 'serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain', read: nonEmpty() }),
  'tls-key': flag({ to: 'tls.key', section: 'main', arg: 'FILE', help: 'the PEM private key of --tls-certificate', read: nonEmpty() }),
  'tls-mode': flag({
    to: 'tls.mode', section: 'main', arg: 'MODE', help: 'tls13 (TLS 1.3 only), tls12 (1.2 and 1.3, AEAD ciphers)\nor tls12-strong (1.2 only, AES-256-GCM)', read: oneOf(TLS_MODES, 'tls12')
  }),
  'enable-h2c': flag({ to: 'enableH2c', section: 'main', help: 'also serve cleartext HTTP/2 (prior knowledge) next to HTTP/1.1; not with TLS', read: toggle }),
  'base-path': flag({ to: 'basePath', section: 'main', arg: 'PATH', help: 'URL path of the upload collection', read: urlPath(plugin.path.default) }),
  'upload-dir': flag({
    to: 'uploadDir',
    section: 'main',
    arg: 'DIR',
    help: 'directory for uploads and lock files',
    read: text('./uploads', (value, name) => { if (value === '') throw new FlagError(`${name} must not be empty`) })
  }),
  'dir-perms': flag({ to: 'dirPerms', section: 'main', arg: 'MODE', help: 'octal mode of --upload-dir when it is created', read: mode(FILE_STORE_MODES.directoryMode) }),
  'file-perms': flag({ to: 'filePerms', section: 'main', arg: 'MODE', help: 'octal mode of upload and info files, whatever the umask', read: mode(FILE_STORE_MODES.fileMode) }),
  'max-size': flag({
    to: 'maxSize', section: 'main', arg: 'BYTES', help: 'largest upload accepted, e.g. 500000, 10MiB, 2GB; 0 = no limit', read: size(plugin.maxSize.default)
  }),
  'behind-proxy': flag({ to: 'behindProxy', section: 'main', help: 'trust X-Forwarded-* / Forwarded headers for URLs and client addresses', read: toggle }),
  'public-url': flag({
    to: 'publicUrl', section: 'main', arg: 'URL', help: 'the public base URL (https://uploads.example.com[/prefix]): Location is built\nfrom it, never from request headers; Upload-Concat URLs must be on it', read: publicUrl
  }),
  'relative-location': flag({ to: 'relativeLocation', section: 'main', help: 'send Location as a path instead of an absolute URL', read: toggle }),
  'network-timeout': flag({
    to: 'networkTimeout', section: 'main', arg: 'DURATION', help: 'silence allowed on a request body, e.g. 60, 60s, 2m', read: duration(plugin.networkTimeout.default, 1)
  }),
  'acquire-lock-timeout': flag({
    to: 'acquireLockTimeout', section: 'main', arg: 'DURATION', help: 'wait for an upload\'s lock before answering 423', read: duration(plugin.acquireLockTimeout.default, 0)
  }),
  workers: flag({
    to: 'workers',
    section: 'main',
    arg: 'N',
    help: 'processes serving requests on the one port (node:cluster); auto = one per core.\nThey share --upload-dir; use the file, redis or etcd locker (not memory)',
    read: workers
  }),
  'shutdown-timeout': flag({ to: 'shutdownTimeout', section: 'main', arg: 'DURATION', help: 'grace period on SIGTERM/SIGINT before exiting', read: duration(10_000, 0) }),
  'disable-termination': flag({ to: 'disableTermination', section: 'main', help: 'do not offer DELETE', read: toggle }),
  'disable-termination-for-finished-uploads': flag({
    to: 'disableTerminationForFinishedUploads', section: 'main', help: 'refuse DELETE of completed uploads (400); unfinished ones may still be deleted', read: toggle
  }),
  'disable-download': flag({ to: 'disableDownload', section: 'main', help: 'do not offer GET downloads', read: toggle }),
  'disable-concatenation': flag({ to: 'disableConcatenation', section: 'main', help: 'do not offer concatenation (parallel uploads)', read: toggle }),
  'max-concat-parts': flag({
    to: 'maxConcatParts',
    section: 'main',
    arg: 'N',
    help: `most partial uploads one final upload may name, 1-${plugin.maxConcatParts.maximum}`,
    read: count(plugin.maxConcatParts.default, plugin.maxConcatParts.minimum, plugin.maxConcatParts.maximum)
  }),
  'disable-ietf-draft': flag({ to: 'disableIetfDraft', section: 'main', help: 'do not speak the IETF Resumable Uploads draft (interop versions 3-8)', read: toggle }),
  'disable-ietf-104': flag({ to: 'disableIetf104', section: 'main', help: 'speak the draft without its 104 interim responses (for proxies such as nginx)', read: toggle }),
  expiration: flag({
    to: 'expiration', section: 'main', arg: 'DURATION', help: 'unfinished uploads expire after this long without activity; 0 = never', read: duration(plugin.expiration.default, 0)
  }),
  'expiration-interval': flag({ to: 'expirationInterval', section: 'main', arg: 'DURATION', help: 'how often expired uploads are deleted', read: duration(60_000, 1) }),
  'disable-cors': flag({ to: 'disableCors', section: 'main', help: 'no built-in CORS headers', read: toggle }),
  'disable-demo': flag({ to: 'disableDemo', section: 'main', help: 'do not serve the upload demo page at / (it is off anyway with --base-path /)', read: toggle }),
  'cors-allow-origin': flag({
    to: 'corsAllowOrigin', section: 'main', arg: 'REGEX', help: 'origins allowed by CORS, matched against the whole origin (default: all)', read: regex()
  }),
  'cors-allow-methods': flag({ to: 'corsAllowMethods', section: 'main', arg: 'LIST', help: 'more methods for Access-Control-Allow-Methods (added to the tus ones)', read: list([]) }),
  'cors-allow-headers': flag({ to: 'corsAllowHeaders', section: 'main', arg: 'LIST', help: 'more headers for Access-Control-Allow-Headers (added to the tus ones)', read: list([]) }),
  'cors-expose-headers': flag({ to: 'corsExposeHeaders', section: 'main', arg: 'LIST', help: 'more headers for Access-Control-Expose-Headers (added to the tus ones)', read: list([]) }),
  'cors-max-age': flag({ to: 'corsMaxAge', section: 'main', arg: 'SECONDS', help: 'how long browsers may cache a preflight (Access-Control-Max-Age)', read: count(86_400) }),
  'cors-allow-credentials': flag({ to: 'corsAllowCredentials', section: 'main', help: 'allow credentials (cookies, HTTP auth) in CORS requests', read: toggle }),
  'log-level': flag({ to: 'logLevel', section: 'main', arg: 'LEVEL', help: 'fatal, error, warn, info, debug, trace or silent', read: oneOf(LOG_LEVELS, 'info') }),
  'log-format': flag({
    to: 'logFormat', section: 'main', arg: 'FORMAT', help: 'json (one object a line) or pretty (human-readable)', read: oneOf(['json', 'pretty'] as const satisfies readonly LogFormat[], 'json')
  }),
  'expose-metrics': flag({ to: 'exposeMetrics', section: 'main', help: 'serve Prometheus metrics (see docs/metrics.md)', read: toggle }),
  'metrics-path': flag({ to: 'metricsPath', section: 'main', arg: 'PATH', help: 'URL path of the metrics', read: urlPath('/metrics') }),
  locker: flag({
    to: 'locker',
    section: 'main',
    arg: 'KIND',
    help: 'memory (one process), file (processes sharing --upload-dir on one host),\nredis or etcd (any number of hosts)\n(redis if --redis-url is given, etcd if --etcd-url is)',
    read: oneOf(LOCKERS),
    shown: 'file'
  }),
  'file-lock-lease': flag({
    to: 'fileLockLease',
    section: 'main',
    arg: 'DURATION',
    help: 'with --locker file, how long this process keeps an upload\'s lock after a request\n(its next request then touches no lock file; another process gets it at once); 0 = off',
    read: duration(10_000, 0)
  }),
  'redis-url': flag({
    to: 'redisUrl',
    section: 'main',
    arg: 'URL',
    help: 'Redis for --locker redis: redis://[user:pass@]host:port[/db], rediss://…\nor unix:///path/redis.sock',
    read: checkedRedisUrl,
    shown: DEFAULT_REDIS_URL
  }),
  'dynamodb-table': flag({ to: 'dynamodbTable', section: 'main', arg: 'NAME', help: 'DynamoDB table for --locker dynamodb (see docs/locks.md; region and credentials from the AWS environment)', read: text(), shown: 'tus-locks' }),
  'dynamodb-endpoint': flag({ to: 'dynamodbEndpoint', section: 'main', arg: 'URL', help: 'a DynamoDB-compatible endpoint instead of AWS, e.g. http://127.0.0.1:8000', read: httpUrl() }),
  'etcd-url': flag({ to: 'etcdUrl', section: 'main', arg: 'URL[,URL…]', help: 'etcd for --locker etcd: client URLs', read: text(), shown: DEFAULT_ETCD_URL }),
  help: flag({ to: 'help', section: 'main', short: 'h', help: 'show this help', read: toggle }),
  version: flag({ to: 'version', section: 'main', short: 'v', help: 'print the version', read: toggle }),

  's3-bucket': flag({ to: 's3.bucket', section: 's3', arg: 'NAME', help: 'store uploads in this bucket', read: text() }),
  's3-endpoint': flag({ to: 's3.endpoint', section: 's3', arg: 'URL', help: 'an S3-compatible server instead of AWS (MinIO, Ceph radosgw, R2 …)', read: httpUrl() }),
  's3-force-path-style': flag({
    to: 's3.forcePathStyle', section: 's3', help: 'address buckets as http://host/bucket/key (most S3-compatible servers need it)', read: toggle
  }),
  's3-object-prefix': flag({ to: 's3.objectPrefix', section: 's3', arg: 'PREFIX', help: 'put every object key under PREFIX, e.g. uploads/', read: text(''), shown: 'none' }),
  's3-part-size': flag({ to: 's3.partSize', section: 's3', arg: 'BYTES', help: 'preferred part size', read: size(undefined, 1), shown: formatSize(S3_DEFAULTS.partSize) }),
  's3-min-part-size': flag({
    to: 's3.minPartSize',
    section: 's3',
    arg: 'BYTES',
    help: 'smallest part besides the last; set it to --s3-part-size for R2',
    read: size(undefined, 1),
    shown: formatSize(S3_DEFAULTS.minPartSize)
  }),
  's3-max-concurrent-part-uploads': flag({
    to: 's3.maxConcurrentPartUploads',
    section: 's3',
    arg: 'N',
    help: 'part uploads running at once, over all uploads',
    read: count(undefined, 1),
    shown: String(S3_DEFAULTS.maxConcurrentPartUploads)
  }),
  's3-buffer-dir': flag({ to: 's3.bufferDir', section: 's3', arg: 'DIR', help: 'buffer parts in temporary files in DIR instead of memory', read: nonEmpty() }),

  'gcs-bucket': flag({ to: 'gcs.bucket', section: 'gcs', arg: 'NAME', help: 'store uploads in this bucket (not together with --s3-bucket)', read: text() }),
  'gcs-object-prefix': flag({ to: 'gcs.objectPrefix', section: 'gcs', arg: 'PREFIX', help: 'put every object name under PREFIX, e.g. uploads/', read: text(''), shown: 'none' }),
  'gcs-endpoint': flag({
    to: 'gcs.endpoint',
    section: 'gcs',
    arg: 'URL',
    help: 'a GCS JSON API emulator instead of Google, e.g. http://127.0.0.1:4443;\nno credentials are sent to it',
    read: httpUrl()
  }),

  'azure-storage': flag({ to: 'azure.container', section: 'azure', arg: 'CONTAINER', help: 'store uploads in this container (created if missing)', read: text() }),
  'azure-endpoint': flag({ to: 'azure.endpoint', section: 'azure', arg: 'URL', help: 'the blob service URL, e.g. Azurite\'s http://127.0.0.1:10000/devstoreaccount1', read: httpUrl() }),
  'azure-object-prefix': flag({ to: 'azure.objectPrefix', section: 'azure', arg: 'PREFIX', help: 'put every blob name under PREFIX, e.g. uploads/', read: text(''), shown: 'none' }),
  'azure-blob-access-tier': flag({ to: 'azure.accessTier', section: 'azure', arg: 'TIER', help: 'access tier of upload blobs: hot, cool, cold or archive (default: the account\'s)', read: oneOf(['hot', 'cool', 'cold', 'archive']) }),
  'azure-container-access-type': flag({
    to: 'azure.containerAccessType', section: 'azure', arg: 'TYPE', help: 'public access of a container created here: private, blob or container', read: oneOf(['private', 'blob', 'container'], 'private')
  }),

  'hooks-http': flag({ to: 'hooks.http', section: 'hooks', arg: 'URL', help: 'POST every hook event as JSON to URL', read: httpUrl() }),
  'hooks-http-forward-headers': flag({
    to: 'hooks.httpForwardHeaders', section: 'hooks', arg: 'LIST', help: 'client request headers to copy onto hook requests, e.g. Authorization,Cookie', read: list([])
  }),
  'hooks-http-retry': flag({
    to: 'hooks.httpRetry',
    section: 'hooks',
    arg: 'N',
    help: 'attempts per hook call on a network error or 5xx, counted as tusd does:\n3 is one call and two retries',
    read: count(3)
  }),
  'hooks-http-backoff': flag({ to: 'hooks.httpBackoff', section: 'hooks', arg: 'DURATION', help: 'wait between attempts', read: duration(1000, 0) }),
  'hooks-http-timeout': flag({ to: 'hooks.httpTimeout', section: 'hooks', arg: 'DURATION', help: 'time limit of one hook call, attempts included', read: duration(15_000, 1) }),
  'hooks-http-size-limit': flag({ to: 'hooks.httpSizeLimit', section: 'hooks', arg: 'BYTES', help: 'largest hook response accepted', read: size(5 * 1024) }),
  'hooks-http-skip-verify': flag({ to: 'hooks.httpSkipVerify', section: 'hooks', help: 'do not verify the TLS certificate of an https: hook endpoint', read: toggle }),
  'hooks-dir': flag({ to: 'hooks.dir', section: 'hooks', arg: 'DIR', help: 'run DIR/<hook> for every hook event (JSON on stdin and stdout)', read: nonEmpty() }),
  'hooks-enabled-events': flag({
    to: 'hooks.enabledEvents',
    section: 'hooks',
    arg: 'LIST',
    help: `hook events to send, comma-separated; empty for all of\n${HOOK_TYPES.slice(0, 4).join(', ')},\n${HOOK_TYPES.slice(4).join(', ')}`,
    read: hookEvents
  }),
  'hooks-grpc': flag({ to: 'hooks.grpc', section: 'hooks', arg: 'HOST:PORT', help: 'call every hook event on this gRPC server (tusd\'s proto.HookHandler)', read: nonEmpty() }),
  'hooks-grpc-retry': flag({ to: 'hooks.grpcRetry', section: 'hooks', arg: 'N', help: 'attempts per hook call while the server is unavailable, counted as tusd does', read: count(3) }),
  'hooks-grpc-backoff': flag({ to: 'hooks.grpcBackoff', section: 'hooks', arg: 'DURATION', help: 'wait between gRPC attempts', read: duration(1000, 0) }),
  'hooks-grpc-secure': flag({ to: 'hooks.grpcSecure', section: 'hooks', help: 'TLS to the gRPC server (needs --hooks-grpc-server-tls-certificate)', read: toggle }),
  'hooks-grpc-server-tls-certificate': flag({ to: 'hooks.grpcServerTlsCertificate', section: 'hooks', arg: 'FILE', help: 'PEM certificate (or CA) the gRPC server is checked against', read: nonEmpty() }),
  'hooks-grpc-client-tls-certificate': flag({ to: 'hooks.grpcClientTlsCertificate', section: 'hooks', arg: 'FILE', help: 'PEM client certificate for mutual TLS', read: nonEmpty() }),
  'hooks-grpc-client-tls-key': flag({ to: 'hooks.grpcClientTlsKey', section: 'hooks', arg: 'FILE', help: 'PEM key of --hooks-grpc-client-tls-certificate', read: nonEmpty() }),
  'hooks-grpc-forward-headers': flag({
    to: 'hooks.grpcForwardHeaders', section: 'hooks', arg: 'LIST', help: 'client request headers to send as gRPC metadata, e.g. Authorization', read: list([])
  }),
  'progress-hooks-interval': flag({
    to: 'hooks.progressInterval', section: 'hooks', arg: 'DURATION', help: 'time between post-receive events while a body streams in', read: duration(plugin.progressInterval.default, 1)
  })
} as const

type Parsed = ConfigOf<typeof FLAGS>

/** `--s3-*`: the S3 store. Credentials and region come from the standard AWS environment. */
export type S3Flags = Parsed['s3'] & { bucket: string }
/** `--gcs-*`: the GCS store. Credentials come the usual Google way (ADC), none with `endpoint`. */
export type GcsFlags = Parsed['gcs'] & { bucket: string }
/** `--azure-*`: the Azure store. Credentials from `AZURE_STORAGE_ACCOUNT` / `AZURE_STORAGE_KEY`. */
export type AzureFlags = Parsed['azure'] & { container: string }
/** tusd-compatible hook flags (`--hooks-*`). */
export type HookFlags = Parsed['hooks']

/** The command's configuration: one value per flag, checked together. */
export type CliConfig = Omit<Parsed, 'help' | 'version' | 'locker' | 'etcdUrl' | 'redisUrl' | 's3' | 'gcs' | 'azure'> & {
  /** Which locker serialises requests per upload. */
  locker: LockerKind
  redisUrl: string
  etcdUrls: string[]
  /** Store uploads in S3 instead of `uploadDir` (`--s3-bucket`). */
  s3: S3Flags | undefined
  /** Store uploads in Google Cloud Storage instead of `uploadDir` (`--gcs-bucket`). */
  gcs: GcsFlags | undefined
  /** Store uploads in Azure Blob Storage instead of `uploadDir` (`--azure-storage`). */
  azure: AzureFlags | undefined
}

export const HELP = formatHelp(FLAGS, `Usage: fastify-tus [flags]

A tus resumable upload server (tus 1.0.0) on Fastify.`, SECTIONS, 'Durations are seconds, or a number with ms, s, m or h.')

export function parseFlags (argv: string[]): CliConfig | 'help' | 'version' {
  const { help, version, locker, etcdUrl, redisUrl, s3, gcs, azure, ...values } = readFlags(FLAGS, argv)
  if (help) return 'help'
  if (version) return 'version'

  const basePath = values.basePath.endsWith('/') ? values.basePath : `${values.basePath}/`
  checkPaths(basePath, values)
  if (values.workers > 1 && locker === 'memory') {
    throw new FlagError('--workers needs a locker shared by processes: --locker file (the default), redis or etcd, not memory')
  }
  if (values.corsAllowCredentials && values.corsAllowOrigin === undefined && !values.disableCors) {
    throw new FlagError('--cors-allow-credentials needs --cors-allow-origin: with credentials every allowed site can act as the logged-in user, so name them')
  }
  const transports = (['http', 'dir', 'grpc'] as const).filter((name) => values.hooks[name] !== undefined)
  if (transports.length > 1) throw new FlagError(`${transports.map((name) => `--hooks-${name}`).join(' and ')} cannot be combined: choose one hook transport`)
  checkListening(values)
  checkGrpcHooks(values.hooks)
  return {
    ...values,
    basePath,
    ...lockerConfig(locker, redisUrl, etcdUrl),
    s3: s3Config(s3),
    gcs: gcsConfig(gcs, s3.bucket),
    azure: azureConfig(azure, s3.bucket, gcs.bucket)
  }
}

/** The metrics take a path of their own: not the collection or an upload, not the demo page's. */
function checkPaths (basePath: string, { metricsPath, exposeMetrics, disableDemo }: Pick<Parsed, 'metricsPath' | 'exposeMetrics' | 'disableDemo'>): void {
  if (basePath === '/' ? metricsPath === '/' : `${metricsPath}/`.startsWith(basePath)) {
    throw new FlagError(`--metrics-path ${metricsPath} must not be inside --base-path ${basePath}`)
  }
  // the demo page is served at / and under /demo/ (unless the collection owns /)
  const demo = !disableDemo && basePath !== '/'
  if (exposeMetrics && demo && (metricsPath === '/' || metricsPath === '/demo' || metricsPath.startsWith('/demo/'))) {
    throw new FlagError(`--metrics-path ${metricsPath} is the demo page's: choose another path, or --disable-demo`)
  }
}

/** tusd's rules: TLS needs both files, h2c is cleartext only. */
function checkListening ({ tls, enableH2c }: Pick<Parsed, 'tls' | 'enableH2c'>): void {
  if ((tls.certificate === undefined) !== (tls.key === undefined)) throw new FlagError('--tls-certificate and --tls-key go together')
  if (enableH2c && tls.certificate !== undefined) throw new FlagError('--enable-h2c is cleartext HTTP/2: it cannot be combined with --tls-certificate (HTTPS has HTTP/2 anyway)')
}

function checkGrpcHooks (hooks: Parsed['hooks']): void {
  if (hooks.grpc === undefined) return
  if (hooks.grpcSecure && hooks.grpcServerTlsCertificate === undefined) throw new FlagError('--hooks-grpc-secure needs --hooks-grpc-server-tls-certificate')
  if ((hooks.grpcClientTlsCertificate === undefined) !== (hooks.grpcClientTlsKey === undefined)) {
    throw new FlagError('--hooks-grpc-client-tls-certificate and --hooks-grpc-client-tls-key go together')
  }
  if (hooks.grpcClientTlsCertificate !== undefined && !hooks.grpcSecure) throw new FlagError('--hooks-grpc-client-tls-certificate needs --hooks-grpc-secure')
}

function lockerConfig (kind: LockerKind | undefined, redisUrl: string | undefined, etcdUrl: string | undefined): Pick<CliConfig, 'locker' | 'redisUrl' | 'etcdUrls'> {
  if (redisUrl !== undefined && etcdUrl !== undefined) throw new FlagError('--redis-url and --etcd-url cannot both be given')
  const locker = kind ?? (redisUrl !== undefined ? 'redis' : etcdUrl !== undefined ? 'etcd' : 'file')
  if (redisUrl !== undefined && locker !== 'redis') throw new FlagError(`--redis-url is only used with --locker redis, not --locker ${locker}`)
  if (etcdUrl !== undefined && locker !== 'etcd') throw new FlagError(`--etcd-url is only used with --locker etcd, not --locker ${locker}`)
  const etcdUrls = (etcdUrl ?? DEFAULT_ETCD_URL).split(',').map((url) => url.trim())
  for (const url of etcdUrls) {
    if (!/^https?:\/\/./.test(url)) throw new FlagError(`--etcd-url must be http:// or https:// URLs separated by commas, got "${url}"`)
  }
  return { locker, redisUrl: redisUrl ?? DEFAULT_REDIS_URL, etcdUrls }
}

/** The S3 store's flags, or `undefined` without `--s3-bucket` (then no other `--s3-*` flag may be given). */
function s3Config (s3: Parsed['s3']): S3Flags | undefined {
  const { bucket } = s3
  if (bucket === undefined) {
    const stray = Object.entries(s3).find(([, value]) => value !== undefined && value !== false && value !== '')
    if (stray !== undefined) throw new FlagError(`--s3-${kebab(stray[0])} needs --s3-bucket`)
    return undefined
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$/.test(bucket)) throw new FlagError(`--s3-bucket must be a bucket name, got "${bucket}"`)
  return { ...s3, bucket }
}

/** GCS bucket names: 3-63 characters (up to 222 with dots), lowercase letters, digits, -, _ and . */
const GCS_BUCKET = /^[a-z0-9][a-z0-9._-]{1,221}[a-z0-9]$/

function gcsConfig (gcs: Parsed['gcs'], s3Bucket: string | undefined): GcsFlags | undefined {
  const { bucket } = gcs
  if (bucket === undefined) {
    const stray = Object.entries(gcs).find(([, value]) => value !== undefined && value !== '')
    if (stray !== undefined) throw new FlagError(`--gcs-${kebab(stray[0])} needs --gcs-bucket`)
    return undefined
  }
  if (s3Bucket !== undefined) throw new FlagError('--gcs-bucket and --s3-bucket cannot both be given: choose one store')
  if (!GCS_BUCKET.test(bucket) || (!bucket.includes('.') && bucket.length > 63)) {
    throw new FlagError(`--gcs-bucket must be a bucket name (lowercase letters, digits, -, _ and .), got "${bucket}"`)
  }
  return { ...gcs, bucket, endpoint: gcs.endpoint?.replace(/\/+$/, '') }
}

/** Azure container names: 3-63 lowercase letters, digits and single hyphens. */
const AZURE_CONTAINER = /^(?=.{3,63}$)[a-z0-9]+(?:-[a-z0-9]+)*$/

function azureConfig (azure: Parsed['azure'], s3Bucket: string | undefined, gcsBucket: string | undefined): AzureFlags | undefined {
  const { container } = azure
  if (container === undefined) {
    const stray = Object.entries(azure).find(([key, value]) => value !== undefined && value !== '' && !(key === 'containerAccessType' && value === 'private'))
    if (stray !== undefined) throw new FlagError(`--azure-${kebab(stray[0] === 'accessTier' ? 'blobAccessTier' : stray[0])} needs --azure-storage`)
    return undefined
  }
  if (s3Bucket !== undefined || gcsBucket !== undefined) throw new FlagError('--azure-storage cannot be combined with --s3-bucket or --gcs-bucket: choose one store')
  if (!AZURE_CONTAINER.test(container)) throw new FlagError(`--azure-storage must be a container name (3-63 lowercase letters, digits and hyphens), got "${container}"`)
  return { ...azure, container, endpoint: azure.endpoint?.replace(/\/+$/, '') }
}

/** `objectPrefix` → `object-prefix`, for messages about a group's flags. */
function kebab (key: string): string {
  return key.replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`)
}
