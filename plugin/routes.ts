/**
 * The route table, in an encapsulated scope under the collection path. Request bodies are not
 * parsed here: a catch-all content-type parser hands the raw stream through to the handlers,
 * which stream it into the store. `X-HTTP-Method-Override` picks the handler on every route.
 */
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { hasBody } from './checks.js'
import { applyCors } from './cors.js'
import { handleDelete } from './handlers/delete.js'
import { handleGet } from './handlers/get.js'
import { handleHead } from './handlers/head.js'
import { handleOptions } from './handlers/options.js'
import { handlePatch } from './handlers/patch.js'
import { handlePost } from './handlers/post.js'
import { header, TUS_VERSION } from './headers.js'
import { toHttpError } from './http-errors.js'
import { methodNotAllowed } from './methods.js'
import { draftAppend, draftCreate, draftDelete, draftHead, draftOptions, type DraftHandler } from './ietf/handlers.js'
import { sendProblem } from './ietf/problem.js'
import { detectDraft, draftRules } from './ietf/versions.js'
import { logUpload, stateOf } from './request-state.js'
import { UPLOAD_ID } from '../stores/ids.js'
import { collectionSchemas, describeOnly, uploadSchemas, type RouteSchema, type TusRequestHeaders } from './schemas.js'
import type { Runtime } from './runtime.js'

type Handler = (tus: Runtime, request: FastifyRequest, reply: FastifyReply) => Promise<void>
type Table = Partial<Record<string, Handler>>
type DraftTable = Partial<Record<string, DraftHandler>>

export interface RoutesOptions {
  runtime: Runtime
}

export async function routes (instance: FastifyInstance, { runtime: tus }: RoutesOptions): Promise<void> {
  tus.basePath = `${instance.prefix}/`
  // the plugin's per-request state (plugin/request-state.ts), made when a step first needs it
  instance.decorateRequest('tusState', null)

  instance.removeAllContentTypeParsers()
  instance.addContentTypeParser('*', (_request, payload, done) => { done(null, payload) })

  const cors = tus.options.cors
  instance.addHook('onSend', async (request, reply, payload) => {
    // tus v1 requests answered as if the route did not exist: no headers of ours, as before
    if (request.tusState?.notRouted === true) return payload
    if (cors !== undefined) await applyCors(cors, request, reply)
    const rules = draftRules(request)
    if (rules === undefined) {
      reply.header('Tus-Resumable', TUS_VERSION)
    } else {
      reply.header('Upload-Draft-Interop-Version', String(rules.version))
    }
    reply.header('X-Content-Type-Options', 'nosniff')
    if (reply.statusCode === 412) reply.header('Tus-Version', TUS_VERSION)
    // a body we did not read to the end must not be mistaken for the next request; HTTP/2
    // forbids the header: the stream is reset with NO_ERROR once the response is out (RFC 9113 §8.1)
    if (hasBody(request) && !request.raw.readableEnded) {
      if (request.raw.httpVersionMajor === 1) reply.header('Connection', 'close')
      else endStreamAfterResponse(reply)
    }
    return payload
  })

  instance.addHook('onResponse', async (request) => { await tus.afterResponse(request) })

  const metrics = tus.metrics
  if (metrics !== undefined) {
    instance.addHook('onError', async (request, _reply, error) => {
      const code = (error as { code?: unknown }).code
      if (typeof code === 'string') stateOf(request).errorCode = code
    })
    instance.addHook('onResponse', async (request, reply) => { metrics.observeResponse(request, reply, request.tusState?.errorCode) })
  }

  const collection: Table = { OPTIONS: handleOptions, POST: handlePost }
  const upload: Table = { OPTIONS: handleOptions, HEAD: handleHead, PATCH: handlePatch }
  if (tus.canTerminate) upload.DELETE = handleDelete
  if (tus.canServe) upload.GET = handleGet

  // the IETF draft: creation by POST, PUT or PATCH on the collection (the draft lets any method
  // that carries content create an upload), appends by PATCH on the upload
  const draftCollection: DraftTable = { OPTIONS: draftOptions, POST: draftCreate, PUT: draftCreate, PATCH: draftCreate }
  const draftUpload: DraftTable = { OPTIONS: draftOptions, HEAD: draftHead, PATCH: draftAppend }
  if (tus.canTerminate) draftUpload.DELETE = draftDelete
  if (tus.canServe) draftUpload.GET = async (tus, request, reply) => { await handleGet(tus, request, reply) }
  const enabled = tus.options.ietfDraft

  const dispatch = (table: Table, draftTable: DraftTable) => async (request: FastifyRequest<{ Headers: TusRequestHeaders }>, reply: FastifyReply) => {
    if (table === upload) {
      const id = (request.params as { id?: string }).id
      if (id !== undefined && UPLOAD_ID.test(id)) logUpload(request, reply, id)
    }
    return await route(table, draftTable, request, reply)
  }

  const route = async (table: Table, draftTable: DraftTable, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
    const override = header(request.headers, 'x-http-method-override')?.trim().toUpperCase()
    const method = override ?? request.method
    const rules = detectDraft(request, enabled)
    if (rules === undefined) {
      // PUT and PATCH on the collection exist for the draft only; tus v1 sees what it saw
      // before: no PUT route, and a PATCH on the upload route with an empty id
      if (table === collection && request.method === 'PUT') {
        stateOf(request).notRouted = true
        reply.callNotFound()
        return reply
      }
      const tusTable = table === collection && request.method === 'PATCH' ? upload : table
      const handler = tusTable[method]
      try {
        if (handler === undefined) {
          reply.header('Allow', Object.keys(tusTable).join(', '))
          throw methodNotAllowed(tus.options, method, override !== undefined)
        }
        await handler(tus, request, reply)
      } catch (err) {
        throw toHttpError(err, request.log)
      }
      return reply
    }
    const handler = draftTable[method]
    try {
      if (handler === undefined) {
        reply.header('Allow', Object.keys(draftTable).join(', '))
        throw methodNotAllowed(tus.options, method, override !== undefined)
      }
      await handler(tus, request, reply, rules)
    } catch (err) {
      sendProblem(request, reply, rules, toHttpError(err, request.log))
    }
    return reply
  }

  // one route per method, each with its schema (plugin/schemas.ts: typed headers, OpenAPI); every
  // method of a URL runs the same dispatch, so X-HTTP-Method-Override still reaches any handler
  const typed = instance.withTypeProvider<TypeBoxTypeProvider>()
  const register = (url: string, methods: string[], schemas: Record<string, RouteSchema>, handle: ReturnType<typeof dispatch>, off: string[] = []): void => {
    for (const method of methods) {
      typed.route({
        method,
        url,
        // a method switched off still answers (405 with Allow), but is not in the OpenAPI document
        schema: off.includes(method) ? { ...schemas[method] as RouteSchema, hide: true } : schemas[method],
        // a schema never refuses a request: the checks answer as the protocol asks
        attachValidation: true,
        serializerCompiler: describeOnly,
        exposeHeadRoute: false,
        // @fastify/swagger leaves HEAD routes out unless asked; ours is a real one (tus status)
        config: method === 'HEAD' ? { swagger: { exposeHeadRoute: true } } : {},
        handler: handle
      })
    }
  }
  register('/', enabled ? ['OPTIONS', 'POST', 'PUT', 'PATCH'] : ['OPTIONS', 'POST'], collectionSchemas, dispatch(collection, draftCollection))
  register('/:id', ['OPTIONS', 'HEAD', 'PATCH', 'POST', 'DELETE', 'GET'], uploadSchemas, dispatch(upload, draftUpload), ['DELETE', 'GET'].filter((method) => upload[method] === undefined))
}

/**
 * HTTP/2: asks the client to stop sending a body we will not read, once the response is out
 * (the stream's writable side finished; the reset then follows the response's frames).
 */
function endStreamAfterResponse (reply: FastifyReply): void {
  const stream = (reply.raw as { stream?: { once: (event: 'finish', listener: () => void) => void, close: () => void } }).stream
  stream?.once('finish', () => stream.close())
}
