/**
 * tus uploads stored in a Google Cloud Storage bucket. Finished uploads are plain objects under
 * tus/ in the bucket (their Content-Type from the `filetype` metadata); unfinished ones expire
 * after a day.
 *
 * Run (the bucket must exist; credentials come the usual Google way: GOOGLE_APPLICATION_CREDENTIALS,
 * `gcloud auth application-default login`, or the metadata server on Google Cloud):
 *   GCS_BUCKET=my-bucket npx tsx examples/gcs.ts
 * or against a GCS JSON API emulator (no credentials are sent to it):
 *   GCS_BUCKET=my-bucket GCS_ENDPOINT=http://127.0.0.1:4443 npx tsx examples/gcs.ts
 * then upload with any tus client to http://localhost:3000/files/
 *
 * One instance: the memory locker is enough. Several instances behind a load balancer share the
 * bucket and need a shared locker (fastify-tus/locks/redis or fastify-tus/locks/etcd).
 */
import Fastify from 'fastify'
import tus from 'fastify-tus'
import { MemoryLocker } from 'fastify-tus/locks/memory'
import { GcsStore } from 'fastify-tus/stores/gcs'

const endpoint = process.env.GCS_ENDPOINT
const store = new GcsStore({
  bucket: process.env.GCS_BUCKET ?? 'uploads',
  // unset for Google (Application Default Credentials); an emulator needs only its URL
  gcs: endpoint === undefined ? {} : { apiEndpoint: endpoint, projectId: 'emulator' },
  objectPrefix: process.env.GCS_OBJECT_PREFIX ?? 'tus/',
  // what one failed GCS request can cost a client; every PATCH writes at least one piece
  pieceSize: 16 * 1024 * 1024
})

const app = Fastify({ logger: true, requestTimeout: 0 })

await app.register(tus, {
  path: '/files/',
  store,
  locker: new MemoryLocker(),
  expiration: 24 * 60 * 60 * 1000,
  expirationInterval: 60 * 60 * 1000
})

await app.listen({ port: Number(process.env.PORT ?? 3000) })
