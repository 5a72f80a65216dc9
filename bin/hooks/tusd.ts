/**
 * tusd's hook events on the plugin's lifecycle hooks. Each enabled tusd hook type becomes one
 * plugin hook that builds the `HookRequest`, asks the transport, and applies the answer the way
 * tusd does:
 *
 * | tusd            | plugin hook        | the answer                                                            |
 * |-----------------|--------------------|-----------------------------------------------------------------------|
 * | pre-create      | `preCreate`        | `RejectUpload` → 400 ERR_UPLOAD_REJECTED; `ChangeFileInfo.ID/MetaData/Storage` |
 * | post-create     | `postCreate`       | ignored (not awaited)                                                 |
 * | post-receive    | `onUploadProgress` | `StopUpload` → the upload is terminated, 400 ERR_UPLOAD_STOPPED        |
 * | pre-finish      | `preFinish`        | `HTTPResponse` sets the status, headers and body (checked by the plugin) |
 * | post-finish     | `onUploadComplete` | ignored (not awaited)                                                 |
 * | pre-terminate   | `preTerminate`     | `RejectTermination` → 400 ERR_UPLOAD_TERMINATION_REJECTED              |
 * | post-terminate  | `postTerminate`    | ignored (not awaited)                                                 |
 *
 * A blocking hook's `HTTPResponse` (status, body, headers) is merged into the response it
 * belongs to: the rejection, the stop, or the successful answer. A transport failure of a
 * blocking hook is a generic 500 (the detail is logged, never sent); of any other hook, a log line.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../../plugin/index.js'
import type { HooksOption, PreCreateResult, PreFinishResult } from '../../plugin/hooks.js'
import type { Metadata, UploadInfo } from '../../stores/store.js'
import { draftInfo, fileInfo, hookRequest, type StorageInfo } from './event.js'
import { emptyHttpResponse, mergeHttpResponse, type FileInfo, type HookResponse, type HookTransport, type HookType, type HTTPResponse } from './protocol.js'

export interface TusdHooksOptions {
  transport: HookTransport
  /** The tusd hook types to deliver. */
  enabled: readonly HookType[]
  /** `FileInfo.Storage` for an upload id. */
  storage?: StorageInfo
}

/** The responses hooks asked for, per request: one for success, one for a refusal. */
interface PendingResponses {
  success?: HTTPResponse
  failure?: HTTPResponse
}

export class TusdHooks {
  readonly transport: HookTransport
  readonly enabled: ReadonlySet<HookType>
  /** Pass as the plugin's `hooks` option. */
  readonly hooks: HooksOption
  readonly #storage: StorageInfo | undefined
  readonly #responses = new WeakMap<FastifyRequest, PendingResponses>()
  readonly #running = new Set<Promise<unknown>>()

  constructor (options: TusdHooksOptions) {
    this.transport = options.transport
    this.enabled = new Set(options.enabled)
    this.#storage = options.storage
    const hooks: HooksOption = {}
    if (this.enabled.has('pre-create')) hooks.preCreate = async (request, draft) => await this.#preCreate(request, draftInfo(draft), draft.metadata)
    if (this.enabled.has('post-create')) hooks.postCreate = (request, upload) => { this.#notify('post-create', request, upload) }
    if (this.enabled.has('post-receive')) hooks.onUploadProgress = async (request, upload) => { await this.#postReceive(request, upload) }
    if (this.enabled.has('pre-finish')) hooks.preFinish = async (request, upload) => await this.#preFinish(request, upload)
    if (this.enabled.has('post-finish')) hooks.onUploadComplete = (request, upload) => { this.#notify('post-finish', request, upload) }
    if (this.enabled.has('pre-terminate')) hooks.preTerminate = async (request, upload) => { await this.#preTerminate(request, upload) }
    if (this.enabled.has('post-terminate')) hooks.postTerminate = (request, upload) => { this.#notify('post-terminate', request, upload) }
    this.hooks = hooks
  }

  /**
   * An `onSend` hook for the app (added before the plugin is registered): merges what the hooks
   * asked for into the response, as tusd's `HTTPResponse.MergeWith`.
   */
  readonly onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown): Promise<unknown> => {
    const pending = this.#responses.get(request)
    if (pending === undefined) return payload
    const response = reply.statusCode >= 400 ? pending.failure : pending.success
    if (response === undefined) return payload
    reply.headers(response.Header)
    if (response.StatusCode !== 0) reply.code(response.StatusCode)
    if (response.Body === '') return payload
    if (!Object.keys(response.Header).some((name) => name.toLowerCase() === 'content-type')) reply.type('text/plain; charset=utf-8')
    return response.Body
  }

  /** Waits for the hook calls still running (non-blocking ones are not awaited by requests). */
  async close (): Promise<void> {
    while (this.#running.size > 0) await Promise.allSettled([...this.#running])
    await this.transport.close?.()
  }

  async #invoke (type: HookType, request: FastifyRequest, upload: FileInfo): Promise<HookResponse> {
    const call = this.transport.invoke(hookRequest(type, request, upload))
    this.#running.add(call)
    try {
      return await call
    } catch (err) {
      throw new Error(`tusd ${type} hook failed: ${(err as Error).message}`, { cause: err })
    } finally {
      this.#running.delete(call)
    }
  }

  /** Fire and forget, as tusd's post-* hooks: errors are logged. */
  #notify (type: HookType, request: FastifyRequest, upload: UploadInfo): void {
    this.#invoke(type, request, fileInfo(upload, this.#storage)).catch((err: unknown) => {
      request.log.error({ err, uploadId: upload.id, hook: type }, 'tus hook failed')
    })
  }

  #respond (request: FastifyRequest, kind: keyof PendingResponses, response: HTTPResponse): void {
    const pending = this.#responses.get(request) ?? {}
    pending[kind] = mergeHttpResponse(pending[kind] ?? emptyHttpResponse(), response)
    this.#responses.set(request, pending)
  }

  async #preCreate (request: FastifyRequest, upload: FileInfo, metadata: Metadata): Promise<PreCreateResult> {
    const answer = await this.#invoke('pre-create', request, upload)
    if (answer.RejectUpload) {
      this.#respond(request, 'failure', answer.HTTPResponse)
      throw new errors.UploadRejected()
    }
    this.#respond(request, 'success', answer.HTTPResponse)
    const result: PreCreateResult = {}
    const changes = answer.ChangeFileInfo
    if (changes.ID !== '') result.id = changes.ID
    if (changes.MetaData !== null) result.metadata = replaceMetadata(metadata, changes.MetaData)
    if (changes.Storage !== null) {
      const storage = storageRequest(changes.Storage)
      if (storage !== undefined) result.storage = storage
    }
    return result
  }

  async #postReceive (request: FastifyRequest, upload: UploadInfo): Promise<void> {
    const answer = await this.#invoke('post-receive', request, fileInfo(upload, this.#storage))
    if (!answer.StopUpload) return
    if (request.server.tus.stopUpload(request, new errors.UploadStopped())) {
      this.#respond(request, 'failure', answer.HTTPResponse)
      request.log.info({ uploadId: upload.id }, 'tus upload stopped by the post-receive hook')
    } else {
      request.log.info({ uploadId: upload.id }, 'tus post-receive hook asked to stop an upload whose request had ended')
    }
  }

  async #preFinish (request: FastifyRequest, upload: UploadInfo): Promise<PreFinishResult> {
    const answer = await this.#invoke('pre-finish', request, fileInfo(upload, this.#storage))
    const response = answer.HTTPResponse
    this.#respond(request, 'success', response)
    // status, headers and body through the plugin, which checks them (a redirect is refused) and
    // turns a 204 with a body into a 200
    const result: PreFinishResult = { headers: response.Header }
    if (response.StatusCode !== 0) result.status = response.StatusCode
    if (response.Body !== '') result.body = response.Body
    return result
  }

  async #preTerminate (request: FastifyRequest, upload: UploadInfo): Promise<void> {
    const answer = await this.#invoke('pre-terminate', request, fileInfo(upload, this.#storage))
    if (answer.RejectTermination) {
      this.#respond(request, 'failure', answer.HTTPResponse)
      throw new errors.TerminationRejected()
    }
    this.#respond(request, 'success', answer.HTTPResponse)
  }
}

/**
 * The place a hook chose (`Path` for the file store, `Key` for object stores), as the plugin's
 * `preCreate` takes it: `Type` (which tusd's stores ignore on the way in) and empty values are
 * left out; `undefined` when nothing is left.
 */
export function storageRequest (storage: Record<string, string>): Record<string, string> | undefined {
  const request: Record<string, string> = Object.create(null) as Record<string, string>
  for (const [key, value] of Object.entries(storage)) {
    if (key !== 'Type' && value !== '') request[key] = value
  }
  return Object.keys(request).length > 0 ? request : undefined
}

/**
 * tusd replaces the metadata with the hook's map; the plugin merges changes into the client's
 * metadata, so every key the hook left out is removed with `null`.
 */
export function replaceMetadata (current: Metadata, replacement: Record<string, string>): Record<string, string | null> {
  const changes: Record<string, string | null> = Object.create(null) as Record<string, string | null>
  for (const key of Object.keys(current)) changes[key] = null
  return Object.assign(changes, replacement)
}
