/**
 * A creation holds the new upload's lock from the moment the upload exists until its body is
 * done: a client that learns the id early (the draft's 104, a chosen id, a postCreate hook) and
 * resumes interrupts the creation as a newer PATCH would, and no acknowledged byte is overwritten.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp, OCTET, TUS } from './helpers/app.js'
import { rawRequest } from './helpers/http.js'
import { completion, exchange, type Parsed } from './helpers/ietf.js'

function portOf (app: FastifyInstance): number {
  return (app.server.address() as { port: number }).port
}

async function until (check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (check()) return
    await sleep(10)
  }
  throw new Error(`timed out waiting for ${what}`)
}

t.test('IETF draft creation: a resume after the 104 interrupts the stalled body; no acknowledged byte is overwritten', async (t) => {
  const { app } = await buildApp(t, { fileStore: true, progressInterval: 10 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = portOf(app)
  const IV = { 'Upload-Draft-Interop-Version': '6' }
  const creation = exchange(port, 'POST', '/files/', { ...IV, ...completion(6, true), 'Content-Length': '10' })
  creation.write('AAAA')
  // the 104 with Location, then a progress 104 acknowledging the 4 bytes
  await until(() => creation.responses.some((r) => r.status === 104 && r.headers['upload-offset'] === '4'), 'the offset 104')
  const location = creation.responses.find((r) => r.headers.location !== undefined)?.headers.location as string
  const path = new URL(location).pathname

  const head = (await exchange(port, 'HEAD', path, IV, { head: true }).done).at(-1) as Parsed
  t.ok(head.status >= 200 && head.status < 300, 'the HEAD answers')
  t.equal(head.headers['upload-offset'], '4', 'the resume sees the acknowledged bytes')
  const original = (await creation.done).at(-1) as Parsed
  t.equal(original.status, 400, 'the creation was interrupted by the resume')
  t.equal(original.headers['upload-offset'], '4')

  const append = (await exchange(port, 'PATCH', path, { ...IV, 'Content-Type': 'application/partial-upload', ...completion(6, true), 'Upload-Offset': '4', 'Content-Length': '6' }, { body: 'BBBBBB' }).done).at(-1) as Parsed
  t.equal(append.status, 204, 'the resumed bytes are acknowledged')
  creation.write('CCCCCC') // the rest of the original body, too late
  await sleep(50)
  t.equal((await app.inject({ method: 'GET', url: path })).body, 'AAAABBBBBB', 'exactly the acknowledged bytes')
})

t.test('tus creation-with-upload under a preCreate-chosen id: a resume interrupts the stalled body', async (t) => {
  const { app } = await buildApp(t, { fileStore: true, hooks: { preCreate: () => ({ id: 'chosen-by-hook' }) } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const creation = rawRequest(portOf(app), 'POST', '/files/', { ...TUS, 'Upload-Length': '10', 'Content-Type': OCTET, 'Content-Length': '10' })
  creation.write('AAAA')
  const path = '/files/chosen-by-hook'
  await sleep(150) // the 4 bytes are read; the body stalls
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.statusCode, 200)
  const offset = Number(head.headers['upload-offset'])
  const original = await creation.response
  t.equal(original?.status, 201, 'the creation answers with what it stored')
  t.equal(original?.headers['upload-offset'], String(offset), 'the offset the resume saw')
  const rest = 'BBBBBBBBBB'.slice(offset)
  const patch = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': String(offset) }, payload: rest })
  t.equal(patch.statusCode, 204)
  creation.write('CCCCCC')
  await sleep(50)
  t.equal((await app.inject({ method: 'GET', url: path })).body, 'AAAABBBBBB'.slice(0, offset) + rest, 'exactly the acknowledged bytes')
  t.equal(offset, 4, 'the bytes that had arrived were kept')
})

t.test('a postCreate hook that resumes the new upload interrupts the creation instead of being overwritten', async (t) => {
  let resumed: Promise<{ offset: number, status: number }> | undefined
  const { app } = await buildApp(t, {
    fileStore: true,
    hooks: {
      postCreate: async (request, upload) => {
        const app = request.server
        const path = `/files/${upload.id}`
        // not awaited: the creation holds the lock until its body is done
        resumed = (async () => {
          const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
          const offset = Number(head.headers['upload-offset'])
          const patch = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': String(offset) }, payload: 'Z'.repeat(8 - offset) })
          return { offset, status: patch.statusCode }
        })()
        await sleep(50)
      }
    }
  })
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '8', 'content-type': OCTET }, payload: 'original' })
  t.equal(created.statusCode, 201)
  const acknowledged = Number(created.headers['upload-offset'])
  const resume = await (resumed as Promise<{ offset: number, status: number }>)
  t.equal(resume.offset, acknowledged, 'the resume starts where the creation stopped')
  t.equal(resume.status, 204, 'the resumed bytes are acknowledged')
  const path = new URL(created.headers.location as string).pathname
  const body = (await app.inject({ method: 'GET', url: path })).body
  t.equal(body, 'original'.slice(0, acknowledged) + 'Z'.repeat(8 - acknowledged), 'nothing acknowledged was overwritten')
})

t.test('a postCreate hook that waits for a request on the new upload waits for the lock (423), nothing is overwritten', async (t) => {
  let status: number | undefined
  const { app } = await buildApp(t, {
    acquireLockTimeout: 100,
    hooks: {
      postCreate: async (request, upload) => {
        const patch = await request.server.inject({ method: 'PATCH', url: `/files/${upload.id}`, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'ZZZZ' })
        status = patch.statusCode
      }
    }
  })
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '4', 'content-type': OCTET }, payload: 'abcd' })
  t.equal(status, 423, 'the hook\'s PATCH waited for the lock the creation holds')
  t.equal(created.statusCode, 201)
  const offset = Number(created.headers['upload-offset'])
  const path = new URL(created.headers.location as string).pathname
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.headers['upload-offset'], String(offset), 'the creation\'s answer is the truth')
})

t.test('a creation under a chosen id that is taken does not interrupt that upload\'s body', async (t) => {
  const { app } = await buildApp(t, { hooks: { preCreate: (request) => ({ id: request.headers['x-id'] as string }) } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const first = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'x-id': 'taken', 'upload-length': '8' } })
  t.equal(first.statusCode, 201)
  const patch = rawRequest(portOf(app), 'PATCH', '/files/taken', { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '8' })
  patch.write('abcd')
  await sleep(100)
  const again = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'x-id': 'taken', 'upload-length': '8' } })
  t.equal(again.statusCode, 409, 'an id collision is a conflict with a stable code')
  t.equal(again.json().code, 'ERR_UPLOAD_EXISTS')
  patch.write('efgh')
  const answer = await patch.response
  t.equal(answer?.status, 204, 'the body in flight was not interrupted')
  t.equal(answer?.headers['upload-offset'], '8')
})

t.test('an id collision (generateId or a preCreate id) answers 409 ERR_UPLOAD_EXISTS in both dialects; the upload keeps its bytes', async (t) => {
  for (const fileStore of [false, true]) {
    const { app } = await buildApp(t, {
      fileStore,
      generateId: () => 'same',
      hooks: { preCreate: (request) => (typeof request.headers['x-id'] === 'string' ? { id: request.headers['x-id'] } : undefined) }
    })
    const first = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '5', 'content-type': OCTET }, payload: 'hello' })
    t.equal(first.statusCode, 201)
    const second = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '5', 'content-type': OCTET }, payload: 'XXXXX' })
    t.equal(second.statusCode, 409, 'generateId returned a taken id')
    t.equal(second.json().code, 'ERR_UPLOAD_EXISTS')
    t.notMatch(second.body, /same/, 'the id is not echoed in the message')
    const hooked = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '5', 'x-id': 'same' } })
    t.equal(hooked.statusCode, 409, 'a preCreate hook named a taken id')
    t.equal(hooked.json().code, 'ERR_UPLOAD_EXISTS')
    const draft = await app.inject({ method: 'POST', url: '/files/', headers: { 'upload-draft-interop-version': '8', 'upload-complete': '?1', 'content-type': 'application/octet-stream' }, payload: 'YYYYY' })
    t.equal(draft.statusCode, 409, 'the draft dialect too')
    t.equal(draft.headers['content-type'], 'application/problem+json')
    t.equal(draft.json().code, 'ERR_UPLOAD_EXISTS')
    const head = await app.inject({ method: 'HEAD', url: '/files/same', headers: TUS })
    t.equal(head.headers['upload-offset'], '5')
    t.equal(head.headers['upload-length'], '5')
    const upload = await app.tus.store.get('same')
    t.same(upload.metadata, {}, 'the existing upload is untouched')
    t.equal(upload.offset, 5)
  }
})

t.test('a store whose own UploadExists copy carries the earlier code is answered 409 too', async (t) => {
  const { MemoryStore } = await import('../stores/memory.js')
  const store = new MemoryStore()
  store.create = async () => { throw Object.assign(new Error('dup'), { code: 'UPLOAD_EXISTS' }) }
  const { app } = await buildApp(t, { store })
  const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '5' } })
  t.equal(response.statusCode, 409)
  t.equal(response.json().code, 'ERR_UPLOAD_EXISTS')
  t.notMatch(response.body, /dup/)
})
