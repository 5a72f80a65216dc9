/** The examples in examples/ run as documented (they are type-checked by `npm run typecheck`). */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import * as tus from 'tus-js-client'
import { runExample } from './helpers/example.js'
import { startRedis, withRedis } from './helpers/redis-server.js'

t.test('examples/basic.ts stores an upload in ./uploads', async (t) => {
  const { cwd, base } = await runExample(t, 'basic.ts', { PORT: '0' })
  const created = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '2', 'Content-Type': 'application/offset+octet-stream' },
    body: 'ok'
  })
  t.equal(created.status, 201)
  t.equal(created.headers.get('upload-offset'), '2')
  const id = (created.headers.get('location') as string).split('/').pop() as string
  t.equal(await readFile(join(cwd, 'uploads', id), 'utf8'), 'ok')
})

t.test('examples/auth-hooks.ts: bearer tokens, owners, per-user limits, completed files moved', async (t) => {
  const { cwd, base } = await runExample(t, 'auth-hooks.ts', { PORT: '0' })
  const TUS = { 'Tus-Resumable': '1.0.0' }
  const ann = { ...TUS, Authorization: 'Bearer ann-secret' }
  const bob = { ...TUS, Authorization: 'Bearer bob-secret' }

  const anonymous = await fetch(`${base}/files/`, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1' } })
  t.equal(anonymous.status, 401)
  t.equal(anonymous.headers.get('www-authenticate'), 'Bearer')

  const pending = await fetch(`${base}/files/`, { method: 'POST', headers: { ...ann, 'Upload-Length': '10', 'Upload-Metadata': `owner ${Buffer.from('bob').toString('base64')}` } })
  t.equal(pending.status, 201)
  const pendingUrl = pending.headers.get('location') as string
  const head = await fetch(pendingUrl, { method: 'HEAD', headers: ann })
  t.equal(head.status, 200)
  t.equal(head.headers.get('upload-metadata'), `owner ${Buffer.from('ann').toString('base64')}`, 'the owner is the user, whatever the client claimed')
  t.equal((await fetch(pendingUrl, { method: 'HEAD', headers: bob })).status, 403, 'only the owner may touch it')
  t.equal((await fetch(pendingUrl, { method: 'DELETE', headers: bob })).status, 403)

  const part = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: { ...ann, 'Upload-Length': '2', 'Upload-Concat': 'partial', 'Content-Type': 'application/offset+octet-stream' },
    body: 'ok'
  })
  t.equal(part.status, 201)
  const partUrl = part.headers.get('location') as string
  t.equal((await fetch(partUrl, { method: 'HEAD', headers: ann })).status, 200, 'a completed partial upload stays for concatenation')
  t.equal((await fetch(`${base}/files/`, { method: 'POST', headers: { ...bob, 'Upload-Concat': `final;${partUrl}` } })).status, 403, 'bob cannot concatenate ann\'s parts')
  t.equal((await fetch(`${base}/files/`, { method: 'POST', headers: { ...ann, 'Upload-Concat': `final;${partUrl}` } })).status, 201)

  const tooLarge = await fetch(`${base}/files/`, { method: 'POST', headers: { ...bob, 'Upload-Length': String(2 * 1024 * 1024) } })
  t.equal(tooLarge.status, 413, 'bob\'s own limit')

  const data = Buffer.from('meeting notes, 3 pages')
  const url = await new Promise<string>((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: `${base}/files/`,
      headers: { Authorization: 'Bearer ann-secret' },
      metadata: { filename: '../notes.txt' },
      retryDelays: [],
      onError: reject,
      onSuccess: () => resolve(upload.url as string)
    })
    upload.start()
  })
  const id = url.split('/').pop() as string
  const target = join(cwd, 'completed', 'ann', `${id}-notes.txt`)
  let moved: Buffer | undefined
  for (let i = 0; i < 100 && moved === undefined; i++) {
    moved = await readFile(target).catch(() => undefined)
    if (moved === undefined) await new Promise((resolve) => setTimeout(resolve, 50))
  }
  t.same(moved, data, 'the completed file was moved to completed/<user>/')
  t.equal((await fetch(url, { method: 'HEAD', headers: ann })).status, 404, 'and left the upload area')
})

withRedis(t, () => {
  t.test('examples/multi-instance-redis.ts: an upload started on instance A is resumed on instance B', async (t) => {
    const redis = await startRedis(t)
    const { cwd, found } = await runExample(t, 'multi-instance-redis.ts', { REDIS_URL: redis.url, PORT_A: '0', PORT_B: '0' }, [
      /instance A: (http:\/\/127\.0\.0\.1:\d+\/files\/)/,
      /instance B: (http:\/\/127\.0\.0\.1:\d+\/files\/)/
    ])
    const [a = '', b = ''] = found
    t.not(a, b, 'two instances on two ports')

    // tus-js-client on A: the first chunk, then the client goes away
    const data = randomBytes(3 * 1024 * 1024 + 17)
    const chunkSize = 1024 * 1024
    const urlOnA = await new Promise<string>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        endpoint: a,
        chunkSize,
        retryDelays: [],
        onError: reject,
        onChunkComplete: () => { upload.abort().then(() => resolve(upload.url as string), reject) }
      })
      upload.start()
    })
    t.ok(urlOnA.startsWith(a), 'created on A')
    const id = urlOnA.slice(a.length)
    const urlOnB = `${b}${id}`
    const head = await fetch(urlOnB, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
    t.equal(head.headers.get('upload-offset'), String(chunkSize), 'B sees what A stored')

    // a new client resumes the same upload on B
    const accepted: number[] = []
    await new Promise<void>((resolve, reject) => {
      const upload = new tus.Upload(data, {
        uploadUrl: urlOnB,
        chunkSize,
        retryDelays: [],
        onError: reject,
        onChunkComplete: (_chunk, bytes) => { accepted.push(bytes) },
        onSuccess: () => resolve()
      })
      upload.start()
    })
    t.equal(accepted[0], 2 * chunkSize, 'B continued after the chunk A stored')
    t.same(await readFile(join(cwd, 'uploads', id)), data, 'the stored file is the whole upload')
    t.equal((await fetch(urlOnA, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).headers.get('upload-offset'), String(data.length), 'A sees it complete')
    const keys = await redis.command('KEYS', 'tus:lock:*')
    t.match(keys, /^\*0\r\n/, 'no lock left behind in Redis')
  })
})

t.test('examples/quota.ts: per-client unfinished uploads, bytes and creation rate', async (t) => {
  const { base } = await runExample(t, 'quota.ts', { PORT: '0', QUOTA_UPLOADS: '2', QUOTA_BYTES: '100', QUOTA_RATE: '6' })
  const create = async (key: string, length: string | undefined): Promise<Response> => await fetch(`${base}/files/`, {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'X-Api-Key': key, ...(length === undefined ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': length }) }
  })
  const first = await create('ann', '10')
  t.equal(first.status, 201)
  t.equal((await create('ann', '10')).status, 201)
  const third = await create('ann', '10')
  t.equal(third.status, 429, 'a third unfinished upload is refused')
  t.equal((await third.json() as { code: string }).code, 'APP_QUOTA_EXCEEDED')
  t.equal((await create('bob', '10')).status, 201, 'quotas are per client')
  t.equal((await create('cat', '101')).status, 429, 'more bytes than the quota')
  const deferred = await create('cat', undefined)
  t.equal(deferred.status, 201)
  const declare = await fetch(deferred.headers.get('location') as string, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', 'X-Api-Key': 'cat', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Upload-Length': '101' }
  })
  t.equal(declare.status, 413, 'a deferred length is held to what is left')

  // finishing an upload gives its slot back
  const finish = await fetch(first.headers.get('location') as string, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', 'X-Api-Key': 'ann', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' },
    body: '0123456789'
  })
  t.equal(finish.status, 204)
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal((await create('ann', '10')).status, 201, 'a slot is free again')

  // the creation rate: empty uploads complete at once, so only the rate stops them
  for (let i = 0; i < 6; i++) t.equal((await create('dan', '0')).status, 201)
  const limited = await create('dan', '0')
  t.equal(limited.status, 429)
  t.equal((await limited.json() as { code: string }).code, 'APP_TOO_MANY_CREATIONS')
  t.match(limited.headers.get('retry-after'), /^\d+$/)
})

t.test('examples/openapi.ts documents the tus routes and still takes uploads', async (t) => {
  const { base } = await runExample(t, 'openapi.ts', { PORT: '0' })
  const doc = await (await fetch(`${base}/documentation/json`)).json() as { paths: Record<string, Record<string, { parameters?: Array<{ name: string }>, responses: Record<string, unknown> }>> }
  t.same(Object.keys(doc.paths['/files/{id}'] ?? {}).sort(), ['delete', 'get', 'head', 'options', 'patch', 'post'])
  t.ok(doc.paths['/files/{id}']?.patch?.parameters?.some((parameter) => parameter.name === 'upload-offset'), 'PATCH documents Upload-Offset')
  t.ok(doc.paths['/files/']?.post?.responses['201'] !== undefined, 'POST documents its 201')
  const page = await fetch(`${base}/documentation/`)
  t.equal(page.status, 200)
  t.match(await page.text(), /swagger-ui/i)
  const created = await fetch(`${base}/files/`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '2', 'Content-Type': 'application/offset+octet-stream' }, body: 'ok' })
  t.equal(created.status, 201)
  t.equal(created.headers.get('upload-offset'), '2')
})
