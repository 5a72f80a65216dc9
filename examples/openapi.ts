/**
 * The tus routes in an OpenAPI document: @fastify/swagger collects the schemas fastify-tus gives
 * its routes (headers, statuses, descriptions) and @fastify/swagger-ui shows them.
 * Run: npx tsx examples/openapi.ts, then open http://localhost:3000/documentation
 * (the document itself: http://localhost:3000/documentation/json).
 */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import Fastify from 'fastify'
import tus from 'fastify-tus'
import { FileStore } from 'fastify-tus/stores/file'

const app = Fastify({ logger: true, requestTimeout: 0 })

// register @fastify/swagger before the routes it should document
await app.register(swagger, {
  openapi: {
    info: { title: 'Uploads', version: '1.0.0', description: 'Resumable uploads (tus 1.0.0 and the IETF draft)' },
    tags: [{ name: 'tus', description: 'Resumable uploads' }]
  }
})
await app.register(swaggerUi, { routePrefix: '/documentation' })

await app.register(tus, { path: '/files/', store: new FileStore({ directory: './uploads' }) })

await app.listen({ port: Number(process.env.PORT ?? 3000) })
