/**
 * tus uploads stored in an S3 bucket: AWS, or an S3-compatible server (MinIO, Ceph radosgw, R2 …).
 * Finished uploads are plain objects under tus/ in the bucket; unfinished ones expire after a day.
 *
 * Run (the bucket must exist; credentials come from the usual AWS environment):
 *   S3_BUCKET=my-bucket AWS_REGION=eu-west-1 npx tsx examples/s3.ts
 *   S3_BUCKET=my-bucket S3_ENDPOINT=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=… npx tsx examples/s3.ts
 * then upload with any tus client to http://localhost:3000/files/
 *
 * One instance: the memory locker is enough. Several instances behind a load balancer share the
 * bucket and need a shared locker (fastify-tus/locks/redis).
 */
import Fastify from 'fastify'
import tus from 'fastify-tus'
import { MemoryLocker } from 'fastify-tus/locks/memory'
import { S3Store } from 'fastify-tus/stores/s3'

const endpoint = process.env.S3_ENDPOINT
const store = new S3Store({
  bucket: process.env.S3_BUCKET ?? 'uploads',
  s3: {
    region: process.env.AWS_REGION ?? 'us-east-1',
    // unset for AWS; S3-compatible servers usually want path-style bucket URLs
    endpoint,
    forcePathStyle: endpoint !== undefined
  },
  objectPrefix: 'tus/',
  partSize: 16 * 1024 * 1024,
  // at most 256 MiB of parts in memory, whatever the number of uploads
  maxBufferedBytes: 256 * 1024 * 1024
})

const app = Fastify({ logger: true, requestTimeout: 0 })
app.addHook('onClose', async () => { store.destroy() })

await app.register(tus, {
  path: '/files/',
  store,
  locker: new MemoryLocker(),
  maxSize: store.maxUploadSize,
  expiration: 24 * 60 * 60 * 1000,
  expirationInterval: 60 * 60 * 1000
})

await app.listen({ port: Number(process.env.PORT ?? 3000) })
