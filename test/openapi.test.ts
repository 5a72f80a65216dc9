/**
 * The typed route schemas (plugin/schemas.ts): with @fastify/swagger registered, the tus routes
 * appear in the OpenAPI document with their headers, statuses and descriptions, and
 * @fastify/swagger-ui serves them; the schemas never change what a request gets (no generic
 * validation 400, bodies serialized as without them).
 */
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import Fastify, { type FastifyInstance } from 'fastify'
import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import tus from '../plugin/index.js'
import type { TusRequestHeaders } from '../plugin/schemas.js'
import { MemoryStore } from '../stores/memory.js'
import { buildApp, createUpload, OCTET, TUS } from './helpers/app.js'

interface Parameter { in: string, name: string, description?: string, required?: boolean, schema?: Record<string, unknown> }
interface Response { description: string, headers?: Record<string, { description?: string }>, content?: Record<string, unknown> }
interface Operation { summary?: string, description?: string, tags?: string[], parameters?: Parameter[], responses: Record<string, Response> }
interface Document { openapi: string, paths: Record<string, Record<string, Operation>> }

async function documented (t: Test, ui = false): Promise<{ app: FastifyInstance, doc: Document }> {
  const app = Fastify({ logger: false })
  t.teardown(async () => await app.close())
  await app.register(swagger, { openapi: { info: { title: 'uploads', version: '1.0.0' } } })
  if (ui) await app.register(swaggerUi, { routePrefix: '/documentation' })
  await app.register(tus, { path: '/files/', store: new MemoryStore() })
  await app.ready()
  return { app, doc: app.swagger() as unknown as Document }
}

const headerNames = (operation: Operation | undefined): string[] =>
  (operation?.parameters ?? []).filter((parameter) => parameter.in === 'header').map((parameter) => parameter.name.toLowerCase())

t.test('the OpenAPI document lists the tus routes with their headers, statuses and descriptions', async (t) => {
  const { doc } = await documented(t)
  t.match(doc.openapi, /^3\./)
  const collection = doc.paths['/files/']
  const upload = doc.paths['/files/{id}']
  t.ok(collection !== undefined && upload !== undefined, 'both URLs are there')
  if (collection === undefined || upload === undefined) return
  t.same(Object.keys(collection).sort(), ['options', 'patch', 'post', 'put'], 'the collection: OPTIONS, POST, and the draft\'s PUT and PATCH')
  t.same(Object.keys(upload).sort(), ['delete', 'get', 'head', 'options', 'patch', 'post'], 'an upload: HEAD (a real route) included')

  const post = collection.post
  t.equal(post?.summary, 'Create an upload')
  t.match(post?.description, /creation/)
  t.same(post?.tags, ['tus'])
  for (const name of ['tus-resumable', 'upload-length', 'upload-defer-length', 'upload-metadata', 'upload-concat', 'upload-checksum', 'content-type', 'upload-draft-interop-version', 'x-http-method-override']) {
    t.ok(headerNames(post).includes(name), `POST documents ${name}`)
  }
  t.notOk(post?.parameters?.some((parameter) => parameter.required === true), 'no header is required by the schema: the checks decide')
  t.match(post?.responses['201'], { description: /Created/, headers: { Location: { description: /URL/ }, 'Upload-Offset': {}, 'Upload-Expires': {}, 'Tus-Resumable': {} } })
  t.match(post?.responses['412'], { description: /Tus-Resumable/, headers: { 'Tus-Version': {} }, content: { 'application/json': {}, 'application/problem+json': {} } })
  for (const status of ['400', '413', '415', '460']) t.ok(post?.responses[status] !== undefined, `POST documents ${status}`)

  const patch = upload.patch
  for (const name of ['tus-resumable', 'upload-offset', 'upload-length', 'upload-checksum', 'content-type', 'upload-complete']) {
    t.ok(headerNames(patch).includes(name), `PATCH documents ${name}`)
  }
  t.match(patch?.parameters?.find((parameter) => parameter.in === 'path'), { name: 'id', required: true, description: /upload id/ })
  t.match(patch?.parameters?.find((parameter) => parameter.name === 'upload-offset'), { description: /offset/, schema: { type: 'string', pattern: '^(?:0|[1-9][0-9]{0,15})$' } })
  t.match(patch?.responses['204'], { description: 'Appended.', headers: { 'Upload-Offset': { description: /bytes/ } } })
  t.equal(patch?.responses['204']?.content, undefined, 'an empty answer has no content')
  t.match(patch?.responses['409'], { description: /ERR_MISMATCHED_OFFSET/ })
  t.match(patch?.responses['415'], { description: /application\/offset\+octet-stream/ })
  t.match(patch?.responses['460'], { description: /Upload-Checksum/ })

  t.match(upload.head?.responses['200'], { headers: { 'Upload-Offset': {}, 'Upload-Length': {}, 'Upload-Metadata': {}, 'Cache-Control': {} } })
  t.match(upload.delete?.responses['204'], { description: 'Removed.' })
  t.match(upload.get?.responses['206'], { headers: { 'Content-Range': {} } })
  t.ok(headerNames(upload.get).includes('range'), 'GET documents Range')
  t.match(collection.options?.responses['204'], { headers: { 'Tus-Version': {}, 'Tus-Extension': {}, 'Tus-Max-Size': {}, 'Tus-Checksum-Algorithm': {} } })
  t.match(upload.post?.description, /X-HTTP-Method-Override/)
})

t.test('methods switched off are left out of the document (they still answer 405)', async (t) => {
  const app = Fastify({ logger: false })
  t.teardown(async () => await app.close())
  await app.register(swagger, { openapi: { info: { title: 'uploads', version: '1.0.0' } } })
  await app.register(tus, { path: '/files/', store: new MemoryStore(), disableTermination: true, disableDownload: true, ietfDraft: false })
  await app.ready()
  const doc = app.swagger() as unknown as Document
  t.same(Object.keys(doc.paths['/files/{id}'] ?? {}).sort(), ['head', 'options', 'patch', 'post'])
  t.same(Object.keys(doc.paths['/files/'] ?? {}).sort(), ['options', 'post'], 'no draft creations without ietfDraft')
  const path = await createUpload(app)
  const del = await app.inject({ method: 'DELETE', url: path, headers: TUS })
  t.equal(del.statusCode, 405)
  t.equal(del.headers.allow, 'OPTIONS, HEAD, PATCH')
})

t.test('@fastify/swagger-ui serves the page and the document with the tus routes', async (t) => {
  const { app } = await documented(t, true)
  const json = await app.inject({ method: 'GET', url: '/documentation/json' })
  t.equal(json.statusCode, 200)
  const doc = json.json<Document>()
  t.ok(doc.paths['/files/{id}']?.patch !== undefined, 'PATCH on an upload is in the served document')
  t.ok(headerNames(doc.paths['/files/']?.post).includes('upload-length'))
  const page = await app.inject({ method: 'GET', url: '/documentation/' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /text\/html/)
  t.match(page.body, /swagger-ui/i)
})

t.test('the plugin runs without @fastify/swagger: nothing of it (or of the type provider) is loaded at run time', async (t) => {
  const dir = join(import.meta.dirname, '..', 'dist', 'plugin')
  const files = (await readdir(dir, { recursive: true })).filter((name) => name.endsWith('.js'))
  t.ok(files.length > 10)
  for (const file of files) {
    const source = await readFile(join(dir, file), 'utf8')
    t.notMatch(source, /(?:from|import\()\s*['"]@fastify\/(?:swagger|type-provider-typebox)/, `${file} does not import them`)
  }
  // and without it registered, the routes answer as always
  const { app } = await buildApp(t)
  t.equal((await app.inject({ method: 'OPTIONS', url: '/files/' })).statusCode, 204)
})

t.test('a request the schemas would not describe still gets the tus answer, never a generic validation 400', async (t) => {
  const { app } = await buildApp(t)
  const path = await createUpload(app, { 'upload-length': '3' })
  const patch = async (headers: Record<string, string>, url = path) =>
    app.inject({ method: 'PATCH', url, headers: { 'content-type': OCTET, 'upload-offset': '0', ...headers }, payload: 'a' })

  const version = await patch({ 'tus-resumable': '0.2.2', 'upload-offset': 'x', 'content-type': 'text/plain' })
  t.equal(version.statusCode, 412, 'Tus-Resumable first, as before')
  t.equal(version.headers['tus-version'], '1.0.0')
  t.equal(version.json().code, 'ERR_UNSUPPORTED_VERSION')

  const type = await patch({ ...TUS, 'content-type': 'text/plain', 'upload-offset': 'x' })
  t.equal(type.statusCode, 415)
  t.equal(type.json().code, 'ERR_INVALID_CONTENT_TYPE')

  for (const offset of ['x', '-1', '01', ' 1']) {
    const bad = await patch({ ...TUS, 'upload-offset': offset })
    t.equal(bad.statusCode, 400, `Upload-Offset ${JSON.stringify(offset)}`)
    t.same(bad.json(), { statusCode: 400, code: 'ERR_INVALID_OFFSET', error: 'Bad Request', message: 'Upload-Offset must be a non-negative integer' }, 'the error body as without schemas')
  }
  const length = await patch({ ...TUS, 'upload-length': 'ten' })
  t.equal(length.json().code, 'ERR_INVALID_UPLOAD_LENGTH')

  const defer = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-defer-length': '2' } })
  t.equal(defer.statusCode, 400)
  t.equal(defer.json().code, 'ERR_INVALID_UPLOAD_LENGTH_DEFER')

  const unknownId = await app.inject({ method: 'HEAD', url: '/files/not*an*id', headers: TUS })
  t.equal(unknownId.statusCode, 404, 'an id outside the id rule is not found, not a params validation error')

  const draft = await app.inject({
    method: 'PATCH',
    url: path,
    headers: { 'upload-draft-interop-version': '8', 'upload-offset': 'x', 'upload-complete': 'yes', 'content-type': 'application/partial-upload' },
    payload: 'a'
  })
  t.equal(draft.statusCode, 400)
  t.match(draft.headers['content-type'], /^application\/problem\+json/)
  t.equal(draft.json().code, 'ERR_INVALID_OFFSET', 'the draft\'s own checks, in their order, as problem+json')
})

t.test('bodies are serialized as without response schemas', async (t) => {
  const { app } = await buildApp(t, { hooks: { preFinish: () => ({ body: { stored: true, extra: [1, 2] } }) } }, (app) => {
    app.setErrorHandler(async (error: Error & { statusCode?: number, code?: string }, _request, reply) => {
      await reply.code(error.statusCode ?? 500).send({ custom: true, why: error.code })
    })
  })
  const path = await createUpload(app, { 'upload-length': '1' })
  const done = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'a' })
  t.equal(done.statusCode, 200)
  t.same(done.json(), { stored: true, extra: [1, 2] }, 'a preFinish body is sent whole')
  const refused = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '7' }, payload: 'a' })
  t.equal(refused.statusCode, 409)
  t.same(refused.json(), { custom: true, why: 'ERR_MISMATCHED_OFFSET' }, 'the application\'s error handler shapes the body, not a response schema')
})

t.test('the route schemas type the headers the handlers read (checked by tsc)', async (t) => {
  const headers: TusRequestHeaders = { 'upload-offset': '0', 'tus-resumable': '1.0.0' }
  // @ts-expect-error a header value is a string, never a number
  const wrong: TusRequestHeaders = { 'upload-offset': 0 }
  t.equal(headers['upload-offset'], '0')
  t.ok(wrong !== undefined)
})
