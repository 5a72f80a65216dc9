/**
 * Turning anything thrown while serving a request into an error that is safe to send: coded HTTP
 * errors pass, store and locker errors get their status, the rest becomes a generic 500 whose
 * detail is logged only.
 */
import type { FastifyBaseLogger } from 'fastify'
import { LockUnavailable } from '../locks/locker.js'
import { OffsetMismatch, StoreFull, UnsafeFile, UploadExists } from '../stores/store.js'
import * as errors from './errors.js'

/** An error meant for the client: it carries a 4xx/5xx `statusCode` (Fastify's convention). */
export function isHttpError (err: unknown): err is Error & { statusCode: number } {
  if (!(err instanceof Error)) return false
  const status = (err as { statusCode?: unknown }).statusCode
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599
}

export function toHttpError (err: unknown, log: FastifyBaseLogger): Error {
  if (err instanceof LockUnavailable) {
    log.error({ err }, 'tus locker unavailable')
    return new errors.LockerUnavailable({ cause: err })
  }
  if (err instanceof OffsetMismatch) return new errors.MismatchedOffset(err.actual, err.expected)
  if (err instanceof StoreFull) {
    // the store's cause (ENOSPC, a quota) is for the operator only
    log.error({ err }, 'tus store is full')
    return new StoreFull()
  }
  if (err instanceof UnsafeFile) {
    log.error({ err }, 'tus upload file is a link or not a regular file: not followed')
    return new errors.UnsafeUploadFile()
  }
  if (err instanceof UploadExists) {
    log.error({ err }, 'tus upload id collision')
    return new errors.InternalError({ cause: err })
  }
  if (isHttpError(err)) return err
  log.error({ err }, 'tus request failed')
  return new errors.InternalError({ cause: err })
}
