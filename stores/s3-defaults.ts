/**
 * The S3 store's tuning defaults, in a module of their own so the command can show them without
 * loading the AWS SDK (an optional peer dependency).
 */
const MiB = 1024 * 1024

export const S3_DEFAULTS = Object.freeze({
  /** Preferred part size. */
  partSize: 8 * MiB,
  /** Smallest part besides the last (S3's own minimum). */
  minPartSize: 5 * MiB,
  /** Part uploads running at once, over all uploads of the store. */
  maxConcurrentPartUploads: 8
})
