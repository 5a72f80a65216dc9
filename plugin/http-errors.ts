/**
 * Turning anything thrown while serving a request into an error that is safe to send: coded HTTP
 * errors pass, store and locker errors get their status, the rest becomes a generic 500 whose
 * detail is logged only.
 */
import type { FastifyBaseLogger } from 'fastify'
import { LockTimeout, LockUnavailable } from '../locks/locker.js'
import { OffsetMismatch, StoreFull, StoreLimitExceeded, UnsafeFile, UploadChanged, UploadCorrupt, UploadExists, UploadNotFound, hasErrorCode } from '../stores/store.js'
import * as errors from './errors.js'

/** An error meant for the client: it carries a 4xx/5xx `statusCode` (Fastify's convention). */
export function isHttpError (err: unknown): err is Error & { statusCode: number } {
  if (!(err instanceof Error)) return false
  const status = (err as { statusCode?: unknown }).statusCode
  return typeof status === 'number' && Number.isInteger(status) && status >= 400 && status <= 599
}

/**
 * Store and locker errors are recognised by class or by `code`: a store or locker published on
 * its own throws its own copy of these classes (codes of earlier versions included).
 */
export function toHttpError (err: unknown, log: FastifyBaseLogger): Error {
  if (!(err instanceof UploadNotFound) && hasErrorCode(err, 'ERR_UPLOAD_NOT_FOUND', 'UPLOAD_NOT_FOUND')) return new UploadNotFound()
  if (!(err instanceof LockTimeout) && hasErrorCode(err, 'ERR_LOCK_TIMEOUT', 'LOCK_TIMEOUT')) return new LockTimeout()
  if (err instanceof LockUnavailable || hasErrorCode(err, 'LOCK_UNAVAILABLE')) {
    log.error({ err }, 'tus locker unavailable')
    return new errors.LockerUnavailable({ cause: err })
  }
  if (err instanceof OffsetMismatch || hasErrorCode(err, 'OFFSET_MISMATCH')) {
    const { actual, expected } = err as OffsetMismatch
    return new errors.MismatchedOffset(actual, expected)
  }
  if (err instanceof StoreFull || hasErrorCode(err, 'ERR_STORAGE_FULL', 'STORE_FULL')) {
    // the store's cause (ENOSPC, a quota) is for the operator only
    log.error({ err }, 'tus store is full')
    return new StoreFull()
  }
  if (err instanceof UploadChanged || hasErrorCode(err, 'ERR_UPLOAD_CHANGED')) {
    log.warn({ err }, 'tus upload changed while a request was served')
    return new UploadChanged()
  }
  if (err instanceof StoreLimitExceeded || hasErrorCode(err, 'ERR_STORE_LIMIT_EXCEEDED')) {
    log.warn({ err }, 'tus upload would pass a limit of the storage service')
    return new StoreLimitExceeded()
  }
  if (err instanceof UploadCorrupt || hasErrorCode(err, 'ERR_UPLOAD_CORRUPT')) {
    log.error({ err }, 'tus store found an upload it did not write')
    return new errors.InternalError({ cause: err })
  }
  if (err instanceof errors.InvalidHook) {
    // a hook or generateId returned something unusable: the server's bug, told to its log only
    log.error({ err }, 'tus hook returned an invalid result')
    return new errors.InternalError({ cause: err })
  }
  if (err instanceof UnsafeFile) {
    log.error({ err }, 'tus upload file is a link or not a regular file: not followed')
    return new errors.UnsafeUploadFile()
  }
  if (hasErrorCode(err, 'ERR_UPLOAD_EXISTS', 'UPLOAD_EXISTS')) {
    // generateId or a preCreate hook named an id that is taken: the application should know
    log.warn({ err }, 'tus upload id collision')
    return err instanceof UploadExists ? err : new UploadExists()
  }
  if (isHttpError(err)) return err
  log.error({ err }, 'tus request failed')
  return new errors.InternalError({ cause: err })
}
