/**
 * Writing a store outside this package is a supported path: the conformance suites ship as
 * `fastify-tus/testing` and run under any test runner, and the plugin understands a store's
 * errors by their codes when the store throws its own copies of the classes.
 */
import { execFile } from 'node:child_process'
import { copyFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { MemoryStore } from '../stores/memory.js'
import { StoreLimitExceeded, UploadChanged, type Chunk, type UploadInfo } from '../stores/store.js'
import { buildApp, createUpload, OCTET, TUS } from './helpers/app.js'
import { packedConsumer, ROOT } from './helpers/consumer.js'
import { toHttpError } from '../plugin/http-errors.js'

const run = promisify(execFile)

/** An error as a separately published store would throw it: its own class, the same code. */
function foreign (code: string, fields: Record<string, unknown> = {}): Error {
  return Object.assign(new Error(`foreign ${code}`), { code }, fields)
}

class ForeignErrorsStore extends MemoryStore {
  override async get (id: string): Promise<UploadInfo> {
    if (id.startsWith('missing')) throw foreign('UPLOAD_NOT_FOUND')
    return await super.get(id)
  }

  override async write (id: string, chunk: Chunk): Promise<number> {
    const info = await super.get(id)
    if (chunk.offset !== info.offset) throw foreign('OFFSET_MISMATCH', { expected: info.offset, actual: chunk.offset })
    return await super.write(id, chunk)
  }
}

t.test('store errors are recognised by code as well as class', async (t) => {
  const { app } = await buildApp(t, { store: new ForeignErrorsStore() })
  const missing = await app.inject({ method: 'HEAD', url: '/files/missing1', headers: TUS })
  t.equal(missing.statusCode, 404)
  const url = await createUpload(app)
  const patch = await app.inject({
    method: 'PATCH',
    url,
    headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' },
    payload: 'hello'
  })
  t.equal(patch.statusCode, 204)
  t.equal(patch.headers['upload-offset'], '5')
  // the plugin checks the offset itself first; a store-side mismatch comes from a race, so call the mapping directly
  const mapped = toHttpError(foreign('OFFSET_MISMATCH', { expected: 5, actual: 0 }), app.log) as Error & { statusCode: number, code: string }
  t.equal(mapped.statusCode, 409)
  t.equal(mapped.code, 'ERR_MISMATCHED_OFFSET')
  const exists = toHttpError(foreign('UPLOAD_EXISTS'), app.log) as Error & { statusCode: number, code: string }
  t.equal(exists.statusCode, 409)
  t.equal(exists.code, 'ERR_UPLOAD_EXISTS')
  const timeout = toHttpError(foreign('LOCK_TIMEOUT'), app.log) as Error & { code: string }
  t.equal(timeout.code, 'ERR_LOCK_TIMEOUT')
  const changed = toHttpError(foreign('ERR_UPLOAD_CHANGED'), app.log) as Error & { statusCode: number, code: string }
  t.same([changed.statusCode, changed.code], [409, 'ERR_UPLOAD_CHANGED'])
  t.notMatch(changed.message, /foreign/, 'the store\'s own text stays in the log')
  const limit = toHttpError(foreign('ERR_STORE_LIMIT_EXCEEDED'), app.log) as Error & { statusCode: number, code: string }
  t.same([limit.statusCode, limit.code], [413, 'ERR_STORE_LIMIT_EXCEEDED'])
  t.notMatch(limit.message, /foreign/)
  const corrupt = toHttpError(foreign('ERR_UPLOAD_CORRUPT'), app.log) as Error & { statusCode: number, code: string }
  t.same([corrupt.statusCode, corrupt.code], [500, 'ERR_INTERNAL_SERVER_ERROR'])
})

t.test('a store\'s coded failures reach the client with their status and a generic message', async (t) => {
  class Racing extends MemoryStore {
    override async write (id: string, chunk: Chunk): Promise<number> {
      if (id.startsWith('x')) throw new UploadChanged(`upload ${id} was written by another server`)
      throw new StoreLimitExceeded(`upload ${id} needs more than 10000 parts`)
    }
  }
  let n = 0
  const { app } = await buildApp(t, { store: new Racing(), generateId: () => (n++ === 0 ? 'x1' : 'y1') })
  for (const [status, code] of [[409, 'ERR_UPLOAD_CHANGED'], [413, 'ERR_STORE_LIMIT_EXCEEDED']] as const) {
    const url = await createUpload(app)
    const patch = await app.inject({ method: 'PATCH', url, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'hello' })
    t.equal(patch.statusCode, status)
    t.match(patch.body, code)
    t.notMatch(patch.body, /another server|10000 parts/, 'the store\'s detail is not sent')
  }
})

t.test('a hook that returns an unusable result is a 500 whose text stays in the log', async (t) => {
  const { app } = await buildApp(t, { hooks: { preCreate: () => ({ maxSize: -1 }) } })
  const res = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '5' } })
  t.equal(res.statusCode, 500)
  t.match(res.body, 'ERR_INTERNAL_SERVER_ERROR')
  t.notMatch(res.body, /maxSize/)
})

t.test('examples/custom-store.ts passes the packed fastify-tus/testing suite under node:test', async (t) => {
  const dir = await packedConsumer(t)
  for (const file of ['custom-store.ts', 'custom-store.test.ts']) await copyFile(join(ROOT, 'examples', file), join(dir, file))
  const { stdout } = await run(process.execPath, ['--import', import.meta.resolve('tsx'), '--test', '--test-reporter=tap', 'custom-store.test.ts'], { cwd: dir })
  t.match(stdout, /# tests 15\b/)
  t.match(stdout, /# skip(ped)? 6\b/)
  t.match(stdout, /# fail 0\b/)
  t.match(stdout, /ok \d+ - a failing body keeps the bytes that arrived/)
  t.match(stdout, /# SKIP store does not serve downloads/)
})
