/**
 * Per-user uploads with lifecycle hooks:
 *
 * - every request needs `Authorization: Bearer <token>`; the token names a user (401 otherwise);
 * - `preCreate` stamps the upload with its owner (whatever the client put in its metadata) and
 *   gives it the owner's size limit (413 beyond it);
 * - `authorize` lets only the owner touch an upload afterwards: HEAD, PATCH, GET, DELETE (403),
 *   and name it as a part of a final upload (concatenation, action 'concat');
 * - `onUploadComplete` moves the finished file to `completed/<user>/<id>-<filename>`.
 *
 * Run: npx tsx examples/auth-hooks.ts, then for instance
 *   curl -i -X POST http://localhost:3000/files/ -H 'Authorization: Bearer ann-secret' \
 *     -H 'Tus-Resumable: 1.0.0' -H 'Upload-Length: 5' -H 'Content-Type: application/offset+octet-stream' --data-binary hello
 * or tus-js-client with `headers: { Authorization: 'Bearer ann-secret' }`.
 */
import createError from '@fastify/error'
import Fastify, { type FastifyRequest } from 'fastify'
import tus from 'fastify-tus'
import { FileLocker } from 'fastify-tus/locks/file'
import { FileStore } from 'fastify-tus/stores/file'
import { createWriteStream } from 'node:fs'
import { mkdir, rename } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { pipeline } from 'node:stream/promises'

interface User {
  name: string
  /** Largest upload this user may send, in bytes. */
  maxSize: number
}

// In a real application: a session store, a JWT check, an OAuth introspection …
const USERS = new Map<string, User>([
  ['ann-secret', { name: 'ann', maxSize: 100 * 1024 * 1024 }],
  ['bob-secret', { name: 'bob', maxSize: 1024 * 1024 }]
])

const Unauthorized = createError('APP_UNAUTHORIZED', 'A valid bearer token is required', 401)
const Forbidden = createError('APP_FORBIDDEN', 'This upload belongs to another user', 403)

function userOf (request: FastifyRequest): User {
  const token = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1]
  const user = token === undefined ? undefined : USERS.get(token)
  if (user === undefined) {
    // a hook error with a statusCode is sent as is, headers included
    throw Object.assign(new Unauthorized(), { headers: { 'www-authenticate': 'Bearer' } })
  }
  return user
}

const uploads = process.env.UPLOAD_DIR ?? './uploads'
const completed = process.env.COMPLETED_DIR ?? './completed'
const store = new FileStore({ directory: uploads })

const app = Fastify({ logger: true, requestTimeout: 0 })

await app.register(tus, {
  path: '/files/',
  store,
  locker: new FileLocker({ directory: uploads }),
  hooks: {
    // every request, before anything is locked; for a final upload also once per part ('concat')
    authorize: (request, upload) => {
      const user = userOf(request)
      if (upload !== undefined && upload.metadata.owner !== user.name) throw new Forbidden()
    },
    // the owner is the authenticated user, not what the client claims
    preCreate: (request) => {
      const user = userOf(request)
      return { metadata: { owner: user.name }, maxSize: user.maxSize }
    },
    // after the response that completed the upload: move the file out of the upload area
    onUploadComplete: async (request, upload) => {
      // a partial upload is only a piece of a later final upload: leave it where it is
      if (upload.concat?.kind === 'partial') return
      const owner = upload.metadata.owner ?? 'unknown'
      const name = basename(upload.metadata.filename ?? 'upload').replace(/[^\w.-]/g, '_')
      const directory = join(completed, owner)
      await mkdir(directory, { recursive: true })
      const target = join(directory, `${upload.id}-${name}`)
      try {
        // same file system: a rename is instant
        await rename(join(uploads, upload.id), target)
      } catch {
        // elsewhere: copy through the store
        await pipeline(await store.read(upload.id), createWriteStream(target))
      }
      await store.remove(upload.id)
      request.log.info({ uploadId: upload.id, owner, target }, 'upload moved')
    }
  }
})

await app.listen({ port: Number(process.env.PORT ?? 3000) })
