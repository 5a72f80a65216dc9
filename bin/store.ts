/**
 * The store the command runs with: files in `--upload-dir`, an S3 bucket with `--s3-bucket`, or
 * a Google Cloud Storage bucket with `--gcs-bucket`. The S3 and GCS stores are loaded only then,
 * so `@aws-sdk/client-s3` and `@google-cloud/storage` (optional peer dependencies) are needed
 * only then.
 */
import { join } from 'node:path'
import { FILE_STORE_MODES, FileStore } from '../stores/file.js'
import { makeDirectory } from './directory.js'
import type { DataStore } from '../stores/store.js'
import { FlagError, type AzureFlags, type GcsFlags, type S3Flags } from './flags.js'

export interface CommandStore {
  store: DataStore
  close: () => Promise<void>
  /** The largest upload the store can hold, if it has a limit. */
  maxSize: number | undefined
  /** The `Storage` object of tusd's hook events. */
  storage: (id: string) => Record<string, string>
}

export async function createStore (s3: S3Flags | undefined, directory: string, gcs?: GcsFlags, modes?: { directoryMode: number, fileMode: number }, azure?: AzureFlags): Promise<CommandStore> {
  if (azure !== undefined) return await createAzureStore(azure)
  if (gcs !== undefined) {
    if (s3 !== undefined) throw new FlagError('--gcs-bucket and --s3-bucket cannot both be given: choose one store')
    return await createGcsStore(gcs)
  }
  if (s3 === undefined) {
    const store = new FileStore({ directory, ...modes })
    // a directory that cannot hold uploads is a start-up error, not a 500 on the first upload
    try {
      await makeDirectory(directory, modes?.directoryMode ?? FILE_STORE_MODES.directoryMode)
      await store.ready()
    } catch (err) {
      const { code, message } = err as NodeJS.ErrnoException
      throw new FlagError(`--upload-dir ${directory} cannot hold uploads: ${code === 'EEXIST' || code === 'ENOTDIR' ? 'not a directory' : code ?? message}`)
    }
    return {
      store,
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
    if (err instanceof RangeError || err instanceof TypeError) throw new FlagError(s3FlagMessage(err.message))
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

async function createGcsStore (gcs: GcsFlags): Promise<CommandStore> {
  let module: typeof import('../stores/gcs.js')
  try {
    module = await import('../stores/gcs.js')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err
    throw new FlagError('--gcs-bucket needs the @google-cloud/storage package: npm install @google-cloud/storage')
  }
  const store = new module.GcsStore({
    bucket: gcs.bucket,
    objectPrefix: gcs.objectPrefix,
    // an emulator needs no credentials (the SDK sends none to a custom endpoint) and no real project
    gcs: gcs.endpoint === undefined ? {} : { apiEndpoint: gcs.endpoint, projectId: process.env.GOOGLE_CLOUD_PROJECT ?? 'emulator' }
  })
  return {
    store,
    close: async () => {},
    maxSize: undefined,
    // tusd's gcsstore reports Type, Bucket and Key (the object name)
    storage: (id) => ({ Type: 'gcsstore', Bucket: gcs.bucket, Key: `${gcs.objectPrefix}${id}` })
  }
}

/** The S3 store's option names in its message, as the flags that set them. */
const S3_OPTION_FLAGS: Readonly<Record<string, string>> = {
  partSize: '--s3-part-size', minPartSize: '--s3-min-part-size', maxConcurrentPartUploads: '--s3-max-concurrent-part-uploads'
}

function s3FlagMessage (message: string): string {
  return message.replace(/^S3Store: /, 'S3: ').replace(/"(\w+)"/g, (quoted, name: string) => S3_OPTION_FLAGS[name] ?? quoted)
}

const ACCESS_TIERS = { hot: 'Hot', cool: 'Cool', cold: 'Cold', archive: 'Archive' } as const

async function createAzureStore (azure: AzureFlags): Promise<CommandStore> {
  let module: typeof import('../stores/azure.js')
  try {
    module = await import('../stores/azure.js')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ERR_MODULE_NOT_FOUND') throw err
    throw new FlagError('--azure-storage needs the @azure/storage-blob package: npm install @azure/storage-blob')
  }
  let store
  try {
    store = new module.AzureStore({
      container: azure.container,
      endpoint: azure.endpoint,
      objectPrefix: azure.objectPrefix,
      accessTier: azure.accessTier === undefined ? undefined : ACCESS_TIERS[azure.accessTier],
      // as tusd: the container is created when missing, with the access type asked for
      createContainer: azure.containerAccessType
    })
  } catch (err) {
    // no account or key in the environment, a bad endpoint
    if (err instanceof TypeError || err instanceof RangeError) throw new FlagError(err.message.replace(/^AzureStore: /, 'Azure: '))
    throw err
  }
  return {
    store,
    close: async () => {},
    maxSize: undefined,
    // tusd's azurestore reports Type, Container and Key (the blob name)
    storage: (id) => ({ Type: 'azurestore', Container: azure.container, Key: `${azure.objectPrefix}${id}` })
  }
}
