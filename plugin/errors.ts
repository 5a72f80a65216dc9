/**
 * Every error the plugin sends, in one place. Codes mirror tusd's `ERR_*` codes so clients and
 * dashboards that know tusd keep working; statuses follow the tus 1.0.0 spec where tusd departs
 * from it (415, 412 + Tus-Version). All are `@fastify/error` classes: `instanceof` works and
 * Fastify's error handling (and the application's own `setErrorHandler`) sees them.
 */
import createFastifyError from '@fastify/error'
import type { FastifyErrorConstructor } from '@fastify/error'

/**
 * `@fastify/error`'s factory, typed through its named `FastifyErrorConstructor` type so the
 * emitted declarations resolve under every moduleResolution (a default import's namespace does
 * not under `bundler`).
 */
/** The class of one coded error: `new`/call it, `instanceof` it; instances carry `code` and `statusCode`. */
export type CodedError<C extends string, SC extends number> = FastifyErrorConstructor<{ code: C, statusCode: SC }>

function createError<C extends string, SC extends number> (code: C, message: string, statusCode: SC, Base?: ErrorConstructor): CodedError<C, SC> {
  return createFastifyError(code, message, statusCode, Base)
}

/* Raised by stores and lockers, and by the plugin: one class each (stores/store.ts, locks/locker.ts) */
export { UploadNotFound, UploadExists, StoreFull, UploadChanged, StoreLimitExceeded, InvalidStorage, StorageTaken } from '../stores/store.js'
export { LockTimeout } from '../locks/locker.js'

/* Request validation */
export const UnsupportedVersion = createError('ERR_UNSUPPORTED_VERSION', 'Missing, invalid or unsupported Tus-Resumable header', 412)
/** The media type a body must have: `application/offset+octet-stream` (tus), `application/partial-upload` (draft 6+). */
export const InvalidContentType = createError('ERR_INVALID_CONTENT_TYPE', 'Content-Type must be %s', 415)
export const InvalidOffset = createError('ERR_INVALID_OFFSET', 'Upload-Offset must be a non-negative integer', 400)
export const InvalidUploadLength = createError('ERR_INVALID_UPLOAD_LENGTH', 'Upload-Length %s', 400)
export const InvalidDeferLength = createError('ERR_INVALID_UPLOAD_LENGTH_DEFER', 'Upload-Defer-Length must be 1', 400)
export const AmbiguousUploadLength = createError('ERR_AMBIGUOUS_UPLOAD_LENGTH', 'Upload-Length and Upload-Defer-Length must not both be present', 400)
export const InvalidMetadata = createError('ERR_INVALID_METADATA', 'Upload-Metadata is malformed: %s', 400)
export const InvalidHost = createError('ERR_INVALID_HOST', 'The Host header is not a valid host name or address', 400)
export const InvalidMethodOverride = createError('ERR_INVALID_METHOD_OVERRIDE', 'X-HTTP-Method-Override names an unsupported method', 405)
export const DownloadDisabled = createError('ERR_DOWNLOAD_DISABLED', 'Downloads are switched off on this server', 405)
export const TerminationDisabled = createError('ERR_TERMINATION_DISABLED', 'Termination (DELETE) is switched off on this server', 405)
export const MethodNotSupported = createError('ERR_METHOD_NOT_SUPPORTED', '%s is not supported on this URL', 405)
export const DeferLengthUnsupported = createError('ERR_NOT_IMPLEMENTED', 'The store does not support deferred upload lengths', 501)

export const InvalidChecksum = createError('ERR_INVALID_CHECKSUM', 'Upload-Checksum must be "<algorithm> <base64 digest>"', 400)
export const UnsupportedChecksumAlgorithm = createError('ERR_UNSUPPORTED_CHECKSUM_ALGORITHM', 'Checksum algorithm %s is not supported', 400)
export const ChecksumMismatch = createError('ERR_CHECKSUM_MISMATCH', 'The chunk does not match Upload-Checksum; it was discarded', 460)
export const InvalidConcat = createError('ERR_INVALID_CONCAT', 'Upload-Concat %s', 400)
export const ConcatDuplicatePart = createError('ERR_CONCAT_DUPLICATE_PART', 'Upload-Concat names the partial upload %s more than once', 400)
export const ConcatTooManyParts = createError('ERR_CONCAT_TOO_MANY_PARTS', 'Upload-Concat names more than %s partial uploads', 400)

/* The IETF draft dialect (plugin/ietf/) */
export const InvalidUploadComplete = createError('ERR_INVALID_UPLOAD_COMPLETE', '%s must be ?0 or ?1', 400)
export const UnexpectedUploadHeader = createError('ERR_INVALID_REQUEST_HEADER', '%s is not allowed on %s', 400)
export const InconsistentLength = createError('ERR_INCONSISTENT_UPLOAD_LENGTH', 'The upload length indicators disagree: %s', 400)
export const UploadCompleted = createError('ERR_UPLOAD_COMPLETED', 'The upload is already complete', 400)
export const UploadInvalidated = createError('ERR_UPLOAD_INVALIDATED', 'The body goes past the upload length of %s bytes: the upload is invalid and was removed', 400)
export const UploadCompletedGone = createError('ERR_UPLOAD_COMPLETED_GONE', 'The upload is already complete', 410)

/* Upload state */
export const MismatchedOffset = createError('ERR_MISMATCHED_OFFSET', 'Upload-Offset %s does not match the upload offset %s', 409)
export const MaxSizeExceeded = createError('ERR_MAX_SIZE_EXCEEDED', 'Upload-Length exceeds the maximum upload size of %s bytes', 413)
export const UploadSizeExceeded = createError('ERR_UPLOAD_SIZE_EXCEEDED', 'The request body exceeds the upload length', 413)
export const IncompleteUpload = createError('ERR_INCOMPLETE_UPLOAD', 'The upload is not complete yet', 409)
export const UploadNotFinished = createError('ERR_UPLOAD_NOT_FINISHED', 'A partial upload of the final one is not finished', 400)
export const UnsafeUploadFile = createError('ERR_UNSAFE_UPLOAD_FILE', 'The upload cannot be used: its stored file is not one the server made', 500)
export const ModifyFinal = createError('ERR_MODIFY_FINAL', 'A final upload is built by concatenation and cannot be written', 403)
export const UploadExpired = createError('ERR_UPLOAD_EXPIRED', 'The upload expired', 410)
/** A `preCreate` hook (or a tusd hook's `ChangeFileInfo.Storage`) chose storage the store cannot honour. */
export const StorageUnsupported = createError('ERR_STORAGE_UNSUPPORTED', 'The store cannot keep the upload where it was asked to: %s', 400)
export const RangeNotSatisfiable = createError('ERR_RANGE_NOT_SATISFIABLE', 'The requested range is outside the upload', 416)

/* Body and connection */
export const UploadInterrupted = createError('ERR_UPLOAD_INTERRUPTED', 'The upload was interrupted by a newer request for it', 400)
export const LockLost = createError('ERR_LOCK_LOST', 'The lock on the upload was lost; retry the request', 503)
export const ReadTimeout = createError('ERR_READ_TIMEOUT', 'No data was received for too long', 408)
export const UnexpectedEof = createError('ERR_UNEXPECTED_EOF', 'The request body ended early', 400)
export const ServerShutdown = createError('ERR_SERVER_SHUTDOWN', 'The server is shutting down; retry later', 503)
export const LockerUnavailable = createError('ERR_LOCKER_UNAVAILABLE', 'The upload lock service cannot be reached; retry later', 503)

/* Refusals by hooks (tusd's codes; a hook may throw these or its own coded errors) */
export const UploadRejected = createError('ERR_UPLOAD_REJECTED', 'The upload was rejected by the server', 400)
export const TerminationRejected = createError('ERR_UPLOAD_TERMINATION_REJECTED', 'The termination of the upload was rejected by the server', 400)

/* Refused by an option */
export const FinishedTermination = createError('ERR_INVALID_TERMINATION', 'A completed upload cannot be terminated', 400)
export const UploadStopped = createError('ERR_UPLOAD_STOPPED', 'The upload was stopped by the server', 400)

/* Anything else: the detail is logged, never sent */
export const InternalError = createError('ERR_INTERNAL_SERVER_ERROR', 'Internal server error', 500)

/* Register-time option errors */
export const InvalidOption = createError('ERR_TUS_INVALID_OPTION', 'fastify-tus option "%s" %s', 500, TypeError)
export const InvalidHook = createError('ERR_TUS_INVALID_HOOK', 'fastify-tus: %s', 500, TypeError)
