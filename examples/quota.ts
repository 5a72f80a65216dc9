/**
 * Per-client quotas on upload creation, with one `preCreate` hook and the plugin's events:
 *
 * - a client is its `X-Api-Key` header, or its address without one (behind a proxy, set Fastify's
 *   `trustProxy` so that `request.ip` is the client's, not the proxy's);
 * - at most `QUOTA_UPLOADS` unfinished uploads per client, and `QUOTA_BYTES` bytes among them
 *   (a deferred-length upload gets what is left as its own limit): `429 APP_QUOTA_EXCEEDED`;
 * - at most `QUOTA_RATE` creations per client per minute: `429 APP_TOO_MANY_CREATIONS` with
 *   `Retry-After`;
 * - a slot is given back when the upload completes, is deleted, or is gone (expired).
 *
 * The counts live in this process's memory: several instances need a shared counter (Redis
 * INCR with a TTL, for instance). To limit every request, not only creations, put
 * `@fastify/rate-limit` in front as well.
 *
 * Run: npx tsx examples/quota.ts (PORT, UPLOAD_DIR, QUOTA_UPLOADS, QUOTA_BYTES, QUOTA_RATE).
 */
import createError from '@fastify/error'
import Fastify, { type FastifyRequest } from 'fastify'
import tus from 'fastify-tus'
import { FileStore } from 'fastify-tus/stores/file'
import { UploadNotFound } from 'fastify-tus/stores/store'

const MAX_UPLOADS = Number(process.env.QUOTA_UPLOADS ?? 5)
const MAX_BYTES = Number(process.env.QUOTA_BYTES ?? 1024 * 1024 * 1024)
const MAX_RATE = Number(process.env.QUOTA_RATE ?? 30)
const WINDOW_MS = 60_000

const QuotaExceeded = createError('APP_QUOTA_EXCEEDED', 'Upload quota exceeded: %s', 429)
const TooManyCreations = createError('APP_TOO_MANY_CREATIONS', 'Too many uploads created; try again later', 429)

function clientOf (request: FastifyRequest): string {
  const key = request.headers['x-api-key']
  return typeof key === 'string' && key !== '' ? `key:${key}` : `ip:${request.ip}`
}

/** Unfinished uploads per client: id → bytes counted against the quota. */
const open = new Map<string, Map<string, number>>()
/** Creations per client in the current minute. */
const windows = new Map<string, { start: number, count: number }>()

function release (id: string): void {
  for (const [client, uploads] of open) {
    if (uploads.delete(id) && uploads.size === 0) open.delete(client)
  }
}

const store = new FileStore({ directory: process.env.UPLOAD_DIR ?? './uploads' })
const app = Fastify({ logger: true, requestTimeout: 0 })

await app.register(tus, {
  path: '/files/',
  store,
  expiration: 24 * 3600_000,
  expirationInterval: 60_000,
  hooks: {
    preCreate: (request, upload) => {
      const client = clientOf(request)
      const now = Date.now()
      let window = windows.get(client)
      if (window === undefined || now - window.start >= WINDOW_MS) {
        window = { start: now, count: 0 }
        windows.set(client, window)
      }
      if (window.count >= MAX_RATE) {
        const retryAfter = Math.ceil((window.start + WINDOW_MS - now) / 1000)
        // a hook error with a statusCode is sent as is, headers included
        throw Object.assign(new TooManyCreations(), { headers: { 'retry-after': String(retryAfter) } })
      }
      window.count++
      const uploads = open.get(client) ?? new Map<string, number>()
      if (uploads.size >= MAX_UPLOADS) throw new QuotaExceeded(`at most ${MAX_UPLOADS} unfinished uploads`)
      const used = [...uploads.values()].reduce((sum, bytes) => sum + bytes, 0)
      const left = MAX_BYTES - used
      if ((upload.size ?? 0) > left) throw new QuotaExceeded(`${left} bytes left of ${MAX_BYTES}`)
      // reserved now, so that concurrent creations cannot both take the last slot
      uploads.set(upload.id, upload.size ?? left)
      open.set(client, uploads)
      // a deferred length may not grow past what is left
      return upload.size === undefined ? { maxSize: left } : undefined
    }
  }
})

app.tus.on('upload-complete', ({ upload }) => { release(upload.id) })
app.tus.on('upload-terminated', ({ upload }) => { release(upload.id) })
// expired (or otherwise vanished) uploads give their slot back too
setInterval(() => {
  for (const uploads of [...open.values()]) {
    for (const id of uploads.keys()) {
      store.get(id).then(() => {}, (err: unknown) => { if (err instanceof UploadNotFound) release(id) })
    }
  }
}, 60_000).unref()

await app.listen({ port: Number(process.env.PORT ?? 3000) })
