/**
 * tusd's gRPC hooks (`-hooks-grpc`): every event is a unary call `proto.HookHandler/InvokeHook`
 * with the messages of tusd's `hook.proto` (our own copy: `hook.proto` next to this file). As in tusd:
 *
 * - the request's header map carries the first value of each header;
 * - headers listed in `forwardHeaders` are also sent as gRPC metadata (first value, lowercased name);
 * - a call that fails with UNAVAILABLE or RESOURCE_EXHAUSTED is tried again, up to `retries`
 *   attempts in all (3 = one call and two retries, as tusd's retry interceptor counts), `backoff` ms apart;
 * - TLS with the server's certificate as the only trusted one, and a client certificate for mTLS;
 * - the answer has no `rejectTermination` (tusd's proto has none); an empty map is no change.
 *
 * `@grpc/grpc-js` and `@grpc/proto-loader` are optional peer dependencies, loaded only here.
 */
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { setTimeout as sleep } from 'node:timers/promises'
import type * as Grpc from '@grpc/grpc-js'
import { FlagError } from '../flag-kit.js'
import { canonicalHeaderKey } from './event.js'
import { decodeHookResponse, type HookRequest, type HookResponse, type HookTransport } from './protocol.js'

export interface GrpcHookOptions {
  /** `host:port` (any gRPC target). */
  endpoint: string
  /** Attempts per invocation; 0 counts as 1. Default 3. */
  retries?: number
  /** Milliseconds between attempts. Default 1000. */
  backoff?: number
  /** Client request headers to send as metadata. */
  forwardHeaders?: readonly string[]
  /** TLS: PEM files. Without it, a cleartext connection. */
  tls?: { serverCertificate: string, clientCertificate?: string | undefined, clientKey?: string | undefined } | undefined
}

/** The wire messages (proto-loader with `keepCase`, `longs: Number`, `defaults`). */
interface WireHttpResponse { statusCode: number, header: Record<string, string>, body: string }
interface WireHookResponse {
  httpResponse: WireHttpResponse | null
  rejectUpload: boolean
  stopUpload: boolean
  changeFileInfo: { id: string, metaData: Record<string, string>, storage: Record<string, string> } | null
}
type InvokeHook = (request: object, metadata: Grpc.Metadata, callback: (err: Grpc.ServiceError | null, response?: WireHookResponse) => void) => Grpc.ClientUnaryCall
type HookClient = Grpc.Client & { InvokeHook: InvokeHook }

/** tusd's retry interceptor retries these codes only. */
const RETRIED = new Set([14, 8]) // UNAVAILABLE, RESOURCE_EXHAUSTED

/** The proto file: next to this module in the sources, in bin/hooks/ of the package from dist/. */
export const HOOK_PROTO: string = ['./hook.proto', '../../../bin/hooks/hook.proto']
  .map((relative) => fileURLToPath(new URL(relative, import.meta.url)))
  .find((path) => existsSync(path)) ?? fileURLToPath(new URL('./hook.proto', import.meta.url))

/** The gRPC modules, or a `FlagError` saying how to install them. */
export async function loadGrpc (): Promise<{ grpc: typeof Grpc, service: Grpc.ServiceClientConstructor }> {
  let grpc: typeof Grpc
  let loader: typeof import('@grpc/proto-loader')
  try {
    grpc = await import('@grpc/grpc-js')
    loader = await import('@grpc/proto-loader')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err
    throw new FlagError('--hooks-grpc needs the @grpc/grpc-js and @grpc/proto-loader packages: npm install @grpc/grpc-js @grpc/proto-loader')
  }
  const definition = loader.loadSync(HOOK_PROTO, { keepCase: true, longs: Number, defaults: true })
  const root = grpc.loadPackageDefinition(definition) as { proto: { HookHandler: Grpc.ServiceClientConstructor } }
  return { grpc, service: root.proto.HookHandler }
}

/** The transport for `--hooks-grpc`; a `FlagError` for a missing package or unreadable file. */
export async function createGrpcHookTransport (options: GrpcHookOptions): Promise<GrpcHookTransport> {
  const { grpc, service } = await loadGrpc()
  return new GrpcHookTransport(grpc, service, options)
}

export class GrpcHookTransport implements HookTransport {
  readonly #client: HookClient
  readonly #grpc: typeof Grpc
  readonly #attempts: number
  readonly #backoff: number
  readonly #forward: readonly string[]

  constructor (grpc: typeof Grpc, Service: Grpc.ServiceClientConstructor, options: GrpcHookOptions) {
    this.#grpc = grpc
    this.#attempts = Math.max(1, options.retries ?? 3)
    this.#backoff = options.backoff ?? 1000
    this.#forward = (options.forwardHeaders ?? []).map((name) => name.trim()).filter((name) => name !== '')
    const tls = options.tls
    const credentials = tls === undefined
      ? grpc.credentials.createInsecure()
      : grpc.credentials.createSsl(
        read(tls.serverCertificate, '--hooks-grpc-server-tls-certificate'),
        tls.clientKey === undefined ? null : read(tls.clientKey, '--hooks-grpc-client-tls-key'),
        tls.clientCertificate === undefined ? null : read(tls.clientCertificate, '--hooks-grpc-client-tls-certificate')
      )
    this.#client = new Service(options.endpoint, credentials) as unknown as HookClient
  }

  async invoke (hook: HookRequest): Promise<HookResponse> {
    const metadata = new this.#grpc.Metadata()
    for (const name of this.#forward) {
      const value = hook.Event.HTTPRequest.Header[canonicalHeaderKey(name)]?.[0]
      if (value === undefined || value === '') continue
      try {
        metadata.add(name.toLowerCase(), value)
      } catch {
        // not a legal metadata value: left out rather than failing the hook
      }
    }
    const request = wireRequest(hook)
    for (let attempt = 1; ; attempt++) {
      try {
        return fromWire(await this.#call(request, metadata))
      } catch (err) {
        const code = (err as Partial<Grpc.ServiceError>).code
        if (code === undefined || !RETRIED.has(code) || attempt >= this.#attempts) {
          throw new Error(`gRPC hook call failed${attempt > 1 ? ` after ${attempt} attempts` : ''}: ${(err as Error).message}`, { cause: err })
        }
      }
      await sleep(this.#backoff)
    }
  }

  async #call (request: object, metadata: Grpc.Metadata): Promise<WireHookResponse> {
    return await new Promise((resolve, reject) => {
      this.#client.InvokeHook(request, metadata, (err, response) => {
        if (err !== null) reject(err)
        else resolve(response as WireHookResponse)
      })
    })
  }

  close (): void {
    this.#client.close()
  }
}

/** tusd's `marshal`: the JSON request in the proto's shape, one value per header. */
export function wireRequest (hook: HookRequest): object {
  const { Upload: upload, HTTPRequest: http } = hook.Event
  const header: Record<string, string> = {}
  for (const [name, values] of Object.entries(http.Header)) {
    if (name !== '' && values.length > 0) header[name] = values[0] as string
  }
  return {
    type: hook.Type,
    event: {
      upload: {
        id: upload.ID,
        size: upload.Size,
        sizeIsDeferred: upload.SizeIsDeferred,
        offset: upload.Offset,
        metaData: upload.MetaData,
        isPartial: upload.IsPartial,
        isFinal: upload.IsFinal,
        partialUploads: upload.PartialUploads ?? [],
        storage: upload.Storage ?? {}
      },
      httpRequest: { method: http.Method, uri: http.URI, remoteAddr: http.RemoteAddr, header }
    }
  }
}

/** tusd's `unmarshal`, then the checks every transport's answer gets. An empty map is Go's nil: no change. */
export function fromWire (response: WireHookResponse): HookResponse {
  const changes = response.changeFileInfo
  const http = response.httpResponse
  return decodeHookResponse({
    RejectUpload: response.rejectUpload,
    StopUpload: response.stopUpload,
    HTTPResponse: http === null ? null : { StatusCode: Number(http.statusCode), Header: http.header, Body: http.body },
    ChangeFileInfo: changes === null ? null : { ID: changes.id, MetaData: orNull(changes.metaData), Storage: orNull(changes.storage) }
  })
}

function orNull (map: Record<string, string> | undefined): Record<string, string> | null {
  return map === undefined || Object.keys(map).length === 0 ? null : map
}

function read (path: string, flag: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new FlagError(`${flag} ${path} cannot be read: ${(err as Error).message}`)
  }
}
