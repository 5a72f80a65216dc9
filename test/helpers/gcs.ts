/**
 * Where the GCS store tests run: on the fake (test/helpers/gcs-fake.ts), or on a real bucket
 * when `GCS_BUCKET` is set (credentials the usual Google way, e.g.
 * `GOOGLE_APPLICATION_CREDENTIALS`). On a real bucket every test works under its own prefix
 * below `fastify-tus-test/<run>/`, and everything under it is deleted at the end.
 */
import { randomBytes } from 'node:crypto'
import { Storage, type StorageOptions } from '@google-cloud/storage'
import { GcsFake } from './gcs-fake.js'

export interface GcsTarget {
  storage: Storage
  bucket: string
  /** The fake, unless the tests run on a real bucket. */
  fake: GcsFake | undefined
  /** A new prefix no other test uses, ending in `/`. */
  prefix: () => string
  /** A client with other options (e.g. no retries), on the same server. */
  client: (options: StorageOptions) => Storage
  /** Names of the objects under `prefix`, in order. */
  names: (prefix: string) => Promise<string[]>
  close: () => Promise<void>
}

/** The bucket of a real-GCS run, or undefined to use the fake. */
export const REAL_BUCKET = process.env.GCS_BUCKET === '' ? undefined : process.env.GCS_BUCKET

let counter = 0

export async function gcsTarget (): Promise<GcsTarget> {
  const run = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`
  const root = `fastify-tus-test/${run}/`
  const prefix = (): string => `${root}${(counter++).toString(36)}/`
  if (REAL_BUCKET !== undefined) {
    const storage = new Storage()
    const names = async (under: string): Promise<string[]> => {
      const [files] = await storage.bucket(REAL_BUCKET).getFiles({ prefix: under })
      return files.map((file) => file.name)
    }
    return {
      storage,
      bucket: REAL_BUCKET,
      fake: undefined,
      prefix,
      client: (options) => new Storage(options),
      names,
      close: async () => { await storage.bucket(REAL_BUCKET).deleteFiles({ prefix: root, force: true }) }
    }
  }
  const fake = await GcsFake.start()
  const storage = fake.storage()
  const bucket = 'tus-test'
  return {
    storage,
    bucket,
    fake,
    prefix,
    client: (options) => fake.storage(options),
    names: async (under) => fake.objects(bucket).map((object) => object.name).filter((name) => name.startsWith(under)),
    close: async () => { await fake.close() }
  }
}
