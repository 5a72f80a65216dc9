/**
 * The smallest useful server: tus uploads on local disk, under /files/.
 * Run: npx tsx examples/basic.ts, then upload with any tus client to http://localhost:3000/files/
 */
import Fastify from 'fastify'
import tus from 'fastify-tus'
import { FileLocker } from 'fastify-tus/locks/file'
import { FileStore } from 'fastify-tus/stores/file'

const app = Fastify({ logger: true, requestTimeout: 0 })

await app.register(tus, {
  path: '/files/',
  store: new FileStore({ directory: './uploads' }),
  locker: new FileLocker({ directory: './uploads' }),
  maxSize: 1024 ** 3 // 1 GiB
})

await app.listen({ port: Number(process.env.PORT ?? 3000) })
