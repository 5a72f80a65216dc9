/**
 * tus uploads stored in an Azure Blob Storage container. Finished uploads are plain block blobs
 * under tus/ in the container (their Content-Type from the `filetype` metadata); unfinished ones
 * expire after a day.
 *
 * Run with the account's key (as tusd reads it):
 *   AZURE_STORAGE_ACCOUNT=myaccount AZURE_STORAGE_KEY=... AZURE_CONTAINER=uploads npx tsx examples/azure.ts
 * or against Azurite (`npx azurite-blob --inMemoryPersistence`), with its well-known development account:
 *   AZURE_STORAGE_ACCOUNT=devstoreaccount1 AZURE_STORAGE_KEY=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw== \
 *   AZURE_ENDPOINT=http://127.0.0.1:10000/devstoreaccount1 npx tsx examples/azure.ts
 * then upload with any tus client to http://localhost:3000/files/
 *
 * One instance: the memory locker is enough. Several instances behind a load balancer share the
 * container and need a shared locker (fastify-tus/locks/redis, etcd or dynamodb).
 */
import Fastify from 'fastify'
import tus from 'fastify-tus'
import { MemoryLocker } from 'fastify-tus/locks/memory'
import { AzureStore } from 'fastify-tus/stores/azure'

const store = new AzureStore({
  container: process.env.AZURE_CONTAINER ?? 'uploads',
  // AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY are read from the environment;
  // pass `credential: new DefaultAzureCredential()` (@azure/identity) for Microsoft Entra ID instead
  ...(process.env.AZURE_ENDPOINT === undefined ? {} : { endpoint: process.env.AZURE_ENDPOINT }),
  objectPrefix: process.env.AZURE_OBJECT_PREFIX ?? 'tus/',
  createContainer: true
})
await store.ready()

const app = Fastify({ logger: true, requestTimeout: 0 })

await app.register(tus, {
  path: '/files/',
  store,
  locker: new MemoryLocker(),
  expiration: 24 * 60 * 60 * 1000,
  expirationInterval: 60 * 60 * 1000
})

await app.listen({ port: Number(process.env.PORT ?? 3000) })
