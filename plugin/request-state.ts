/**
 * What the plugin keeps about one request, in one place: the `tusState` request decoration of the
 * routes' scope (null until a step needs it, so a request that needs none costs nothing).
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { UploadInfo } from '../stores/store.js'
import type { UploadSession } from './sessions.js'

export interface TusRequestState {
  /** The request's hold on an upload while its body may stream (`stopUpload`, shutdown). */
  session?: UploadSession
  /** The upload this request completed: `onUploadComplete` and `upload-complete` follow the response. */
  completed?: UploadInfo
  /** The code of the error the request failed with, for the metrics. */
  errorCode?: string
  /** A tus v1 request answered as if the route did not exist: no headers of ours. */
  notRouted?: boolean
  /** The draft's overrun error (a body past the length), told apart from other inconsistent lengths. */
  overrun?: Error
  /** The draft's mismatched offsets, for the problem body of its 409. */
  offsets?: { expected: number, provided: number }
  /** The plugin's `maxSize` for this request (a function's answer, asked once), Infinity for none. */
  maxSize?: number
}

declare module 'fastify' {
  interface FastifyRequest {
    /** fastify-tus' per-request state (internal; null on requests outside its routes). */
    tusState: TusRequestState | null
  }
}

/** The request's state, made on first use. */
export function stateOf (request: { tusState: TusRequestState | null }): TusRequestState {
  return (request.tusState ??= {})
}

/**
 * From here on the request's log lines carry the upload's id (`uploadId`), bound once in a child
 * logger (about a microsecond) rather than repeated in each line. The reply gets the same logger,
 * so Fastify's own lines for the request ("request completed", errors) carry it too.
 */
export function logUpload (request: FastifyRequest, reply: FastifyReply, uploadId: string): void {
  const log = request.log.child({ uploadId })
  request.log = log
  reply.log = log
}
