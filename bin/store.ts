/**
 * The store the command runs with: files in `--upload-dir`, or an S3 bucket with `--s3-bucket`.
 * The S3 store is loaded only then, so `@aws-sdk/client-s3` (an optional peer dependency) is
 * needed only then.
 */
import { join } from 'node:path'
import { FileStore } from '../stores/file.js'
import type { DataStore } from '../stores/store.js'
import { FlagError, type S3Flags } from './flags.js'

export interface CommandStore {
  store: DataStore
  close: () => Promise<void>
  /** The largest upload the store can hold, if it has a limit. */
  maxSize: number | undefined
  /** The `Storage` object of tusd's hook events. */
  storage: (id: string) => Record<string, string>
}

export async function createStore (s3: S3Flags | undefined, directory: string): Promise<CommandStore> {
  if (s3 === undefined) {
    return {
      store: new FileStore({ directory }),
      close: async () => {},
      maxSize: undefined,
      storage: (id) => ({ Type: 'filestore', Path: join(directory, id), InfoPath: join(directory, `${id}.info`) })
    }
  }
  let module: typeof import('../stores/s3.js')
  try {
    module = await import('../stores/s3.js')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err
    throw new FlagError('--s3-bucket needs the @aws-sdk/client-s3 package: npm install @aws-sdk/client-s3')
  }
  let store
  try {
    store = new module.S3Store({
      bucket: s3.bucket,
      s3: {
        endpoint: s3.endpoint,
        forcePathStyle: s3.forcePathStyle,
        // S3-compatible servers rarely care about the region, but the SDK needs one
        region: s3.endpoint !== undefined && process.env.AWS_REGION === undefined ? 'us-east-1' : undefined
      },
      objectPrefix: s3.objectPrefix,
      partSize: s3.partSize,
      minPartSize: s3.minPartSize,
      maxConcurrentPartUploads: s3.maxConcurrentPartUploads,
      bufferDirectory: s3.bufferDir
    })
  } catch (err) {
    if (err instanceof RangeError || err instanceof TypeError) throw new FlagError(err.message.replace(/^S3Store: /, 'S3: '))
    throw err
  }
  const s3Store = store
  return {
    store: s3Store,
    close: async () => { s3Store.destroy() },
    maxSize: s3Store.maxUploadSize,
    storage: (id) => ({ Type: 's3store', Bucket: s3.bucket, Key: `${s3.objectPrefix}${id}` })
  }
}
