/**
 * `maxSize` as a function of the request (as @tus/server's): OPTIONS, creations, appends, deferred
 * lengths and concatenation all obey the answer for the request at hand, in both dialects; the
 * function is asked once per request, and a bad answer or a throw fails the request safely.
 */
import createError from '@fastify/error'
import Fastify, { type FastifyInstance, type FastifyRequest, type LightMyRequestResponse } from 'fastify'
import t, { type Test } from 'tap'
import tus from '../plugin/index.js'
import { MemoryStore } from '../stores/memory.js'
import { buildApp, OCTET, TUS } from './helpers/app.js'

const LIMITS: Record<string, number> = { big: 1000, small: 10, none: 0 }
const V8 = { 'upload-draft-interop-version': '8' }

function pathOf (location: unknown): string {
  return new URL(location as string, 'http://x').pathname
}

async function tenantApp (t: Test): Promise<{ app: FastifyInstance, calls: Array<[string, string | null]> }> {
  const calls: Array<[string, string | null]> = []
  const { app } = await buildApp(t, {
    maxSize: async (request: FastifyRequest, id: string | null) => {
      const tenant = request.headers['x-tenant'] as string
      calls.push([`${request.method}:${tenant}`, id])
      return LIMITS[tenant] ?? 1
    }
  })
  return { app, calls }
}

t.test('Tus-Max-Size on OPTIONS is the answer for the request; 0 leaves it out', async (t) => {
  const { app, calls } = await tenantApp(t)
  const big = await app.inject({ method: 'OPTIONS', url: '/files/', headers: { 'x-tenant': 'big' } })
  t.equal(big.headers['tus-max-size'], '1000')
  const small = await app.inject({ method: 'OPTIONS', url: '/files/', headers: { 'x-tenant': 'small' } })
  t.equal(small.headers['tus-max-size'], '10')
  const none = await app.inject({ method: 'OPTIONS', url: '/files/', headers: { 'x-tenant': 'none' } })
  t.equal(none.statusCode, 204)
  t.equal(none.headers['tus-max-size'], undefined, 'no limit: no header')
  t.same(calls, [['OPTIONS:big', null], ['OPTIONS:small', null], ['OPTIONS:none', null]], 'asked with a null id, once per request')
  const draft = await app.inject({ method: 'OPTIONS', url: '/files/', headers: { ...V8, 'x-tenant': 'small' } })
  t.equal(draft.headers['upload-limit'], 'min-size=0, max-size=10', 'the draft\'s Upload-Limit too')
  t.equal(draft.headers['tus-max-size'], '10')
})

t.test('creations obey the answer for the request (413), with the new id', async (t) => {
  const { app, calls } = await tenantApp(t)
  const refused = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '20', 'x-tenant': 'small' } })
  t.equal(refused.statusCode, 413)
  t.equal(refused.json().code, 'ERR_MAX_SIZE_EXCEEDED')
  t.match(refused.json().message, /10 bytes/)
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '20', 'x-tenant': 'big' } })
  t.equal(created.statusCode, 201)
  const id = pathOf(created.headers.location).split('/').pop() as string
  t.same(calls.at(-1), ['POST:big', id], 'a creation asks with the new upload\'s id')
  t.equal(calls.filter(([who]) => who === 'POST:big').length, 1, 'once per request')
  const withBody = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-defer-length': '1', 'content-type': OCTET, 'x-tenant': 'small' }, payload: 'x'.repeat(20) })
  t.equal(withBody.statusCode, 413, 'a deferred creation with a body past the limit')

  const draft = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1', 'x-tenant': 'small' }, payload: 'x'.repeat(20) })
  t.equal(draft.statusCode, 413, 'the draft dialect too')
  t.equal(draft.headers['upload-limit'], 'min-size=0, max-size=10')
  t.equal((await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?1', 'x-tenant': 'big' }, payload: 'x'.repeat(20) })).statusCode, 201)
})

t.test('appends and deferred lengths obey the answer for the request', async (t) => {
  const { app, calls } = await tenantApp(t)
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '20', 'x-tenant': 'big' } })
  const path = pathOf(created.headers.location)
  const patch = async (tenant: string, offset: number, body: string, headers: Record<string, string> = {}): Promise<LightMyRequestResponse> =>
    await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': String(offset), 'x-tenant': tenant, ...headers }, payload: body })
  const refused = await patch('small', 0, 'abcde')
  t.equal(refused.statusCode, 413, 'an upload longer than this request\'s limit takes no more bytes')
  t.equal(refused.json().code, 'ERR_MAX_SIZE_EXCEEDED')
  t.equal((await patch('big', 0, 'abcde')).statusCode, 204)
  t.same(calls.at(-1), ['PATCH:big', path.split('/').pop()], 'an append asks with the upload\'s id')

  const deferred = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-defer-length': '1', 'x-tenant': 'big' } })
  const deferredPath = pathOf(deferred.headers.location)
  const declare = await app.inject({ method: 'PATCH', url: deferredPath, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'upload-length': '20', 'x-tenant': 'small' }, payload: 'ab' })
  t.equal(declare.statusCode, 413, 'a deferred length above the limit')
  t.equal(declare.json().code, 'ERR_MAX_SIZE_EXCEEDED')
  const tooMuch = await app.inject({ method: 'PATCH', url: deferredPath, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'x-tenant': 'small' }, payload: 'x'.repeat(11) })
  t.equal(tooMuch.statusCode, 413, 'a body past the limit of a deferred upload')
  const fine = await app.inject({ method: 'PATCH', url: deferredPath, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0', 'upload-length': '20', 'x-tenant': 'big' }, payload: 'ab' })
  t.equal(fine.statusCode, 204)

  const draft = await app.inject({ method: 'POST', url: '/files/', headers: { ...V8, 'upload-complete': '?0', 'x-tenant': 'big' }, payload: 'ab' })
  const draftPath = pathOf(draft.headers.location)
  const draftAppend = await app.inject({ method: 'PATCH', url: draftPath, headers: { ...V8, 'content-type': 'application/partial-upload', 'upload-complete': '?1', 'upload-offset': '2', 'x-tenant': 'small' }, payload: 'x'.repeat(18) })
  t.equal(draftAppend.statusCode, 413, 'a draft append that would take a deferred upload past the limit')
  const head = await app.inject({ method: 'HEAD', url: draftPath, headers: { ...V8, 'x-tenant': 'small' } })
  t.match(head.headers['upload-limit'], /max-size=10/, 'the draft HEAD\'s Upload-Limit is the request\'s')
})

t.test('concatenation: the final upload\'s sum obeys the answer for the request', async (t) => {
  const { app } = await tenantApp(t)
  const part = async (): Promise<string> => {
    const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '8', 'upload-concat': 'partial', 'content-type': OCTET, 'x-tenant': 'small' }, payload: '12345678' })
    t.equal(created.statusCode, 201)
    return created.headers.location as string
  }
  const parts = [await part(), await part()]
  const final = async (tenant: string): Promise<LightMyRequestResponse> =>
    await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${parts.join(' ')}`, 'x-tenant': tenant } })
  const refused = await final('small')
  t.equal(refused.statusCode, 413)
  t.equal(refused.json().code, 'ERR_MAX_SIZE_EXCEEDED')
  t.equal((await final('big')).statusCode, 201)
})

t.test('a throwing function or a bad answer fails the request safely', async (t) => {
  const Quota = createError('APP_QUOTA', 'quota service says no', 403)
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } })
  await app.register(tus, {
    store: new MemoryStore(),
    maxSize: (request) => {
      const how = request.headers['x-how']
      if (how === 'throw') throw new Error('database password is hunter2')
      if (how === 'coded') throw new Quota()
      if (how === 'negative') return -1
      if (how === 'fraction') return 1.5
      if (how === 'text') return '10' as unknown as number
      return 10
    }
  })
  t.teardown(async () => await app.close())
  for (const how of ['throw', 'negative', 'fraction', 'text']) {
    for (const request of [
      { method: 'OPTIONS' as const, url: '/files/', headers: { 'x-how': how } },
      { method: 'POST' as const, url: '/files/', headers: { ...TUS, 'upload-length': '1', 'x-how': how } }
    ]) {
      const response = await app.inject(request)
      t.equal(response.statusCode, 500, `${how}: ${request.method}`)
      t.equal(response.json().code, 'ERR_INTERNAL_SERVER_ERROR')
      t.notMatch(response.body, /hunter2|maxSize/, 'no internal text')
    }
  }
  t.ok(lines.some((line) => line.includes('hunter2')), 'the detail is logged')
  const coded = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '1', 'x-how': 'coded' } })
  t.equal(coded.statusCode, 403, 'a coded error is sent as a hook\'s would be')
  t.equal(coded.json().code, 'APP_QUOTA')
})
