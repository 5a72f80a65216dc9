import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { S3Store } from '../stores/s3.js'
import { storeConformance } from './conformance/store.js'
import { s3Server, withS3 } from './helpers/ceph-s3.js'

const MiB = 1024 * 1024

withS3(t, () => {
  storeConformance(t, 'S3Store', async () => {
    const server = await s3Server()
    const store = new S3Store({ s3: server.config, bucket: await server.bucket() })
    return { store, cleanup: async () => store.destroy() }
  })

  storeConformance(t, 'S3Store with 5 MiB parts buffered in files', async () => {
    const server = await s3Server()
    const directory = await mkdtemp(join(tmpdir(), 'tus-s3-buffers-'))
    const store = new S3Store({
      s3: server.config,
      bucket: await server.bucket(),
      objectPrefix: 'uploads/',
      partSize: 5 * MiB,
      maxBufferedBytes: 10 * MiB,
      bufferDirectory: directory
    })
    return {
      store,
      cleanup: async () => {
        store.destroy()
        t.same(await readdir(directory), [], 'no buffer file is left behind')
        await rm(directory, { recursive: true, force: true })
      }
    }
  })

  storeConformance(t, 'S3Store with equal parts (R2)', async () => {
    const server = await s3Server()
    const store = new S3Store({ s3: server.config, bucket: await server.bucket(), partSize: 5 * MiB, equalParts: true })
    return { store, cleanup: async () => store.destroy() }
  })
})
