/**
 * Two server instances serving the same uploads, as behind a load balancer without sticky
 * sessions: both keep uploads in one directory (on several hosts: a shared file system, or use a
 * bucket) and lock them through one Redis. An upload started on one instance can be resumed on
 * the other, even while the first is still reading a dead connection: the second asks the first,
 * through Redis, to let go of the upload.
 *
 * Run (needs a Redis server and `npm install ioredis`):
 *   REDIS_URL=redis://127.0.0.1:6379 npx tsx examples/multi-instance-redis.ts
 * It prints the URLs of instance A (port 3001) and instance B (port 3002). Create an upload on A,
 * send part of it, and send the rest to the same upload id on B:
 *   curl -i -X POST http://localhost:3001/files/ -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 10' \
 *     -H 'Content-Type: application/offset+octet-stream' --data-binary hello
 *   curl -i -X PATCH http://localhost:3002/files/<id> -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 5' \
 *     -H 'Content-Type: application/offset+octet-stream' --data-binary world
 */
import Fastify, { type FastifyInstance } from 'fastify'
import tus from 'fastify-tus'
import { RedisLocker } from 'fastify-tus/locks/redis'
import { FileStore } from 'fastify-tus/stores/file'

const redis = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const directory = process.env.UPLOAD_DIR ?? './uploads'

async function instance (name: string, port: number): Promise<FastifyInstance> {
  const app = Fastify({ logger: { level: 'warn' }, requestTimeout: 0 })
  // on separate hosts each instance has its own locker; what they share is the Redis server
  const locker = new RedisLocker({ redis })
  app.addHook('onClose', async () => { await locker.close() })
  await app.register(tus, {
    path: '/files/',
    store: new FileStore({ directory }),
    locker,
    // behind a load balancer, Location must name it: set respectForwardedHeaders (or relativeLocation)
    respectForwardedHeaders: true
  })
  const address = await app.listen({ port, host: '127.0.0.1' })
  console.log(`instance ${name}: ${address}/files/`)
  return app
}

const apps = [
  await instance('A', Number(process.env.PORT_A ?? 3001)),
  await instance('B', Number(process.env.PORT_B ?? 3002))
]

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    Promise.all(apps.map(async (app) => { await app.close() })).then(() => process.exit(0), () => process.exit(1))
  })
}
