/**
 * Per-upload object keys on a real radosgw: a `preCreate` hook's `storage.Key` places an upload's
 * object below the prefix; every request, concatenation and the expiration sweep follow it, and
 * keys that could leave the prefix or take another upload's objects are refused.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3'
import t, { type Test } from 'tap'
import { S3Store } from '../stores/s3.js'
import type { UploadInfo } from '../stores/store.js'
import { buildApp, OCTET, TUS } from './helpers/app.js'
import { s3Server, withS3 } from './helpers/ceph-s3.js'
import { getText, multipartUploads, objects } from './helpers/s3-inspect.js'
import { writeTusdS3Upload } from './helpers/tusd-fixtures.js'

async function setup (t: Test, key: () => string, seen: UploadInfo[] = []): Promise<{ app: Awaited<ReturnType<typeof buildApp>>['app'], store: S3Store, bucket: string, client: ReturnType<Awaited<ReturnType<typeof s3Server>>['client']> }> {
  const server = await s3Server()
  const bucket = await server.bucket()
  const client = server.client()
  const store = new S3Store({ client: server.client(), bucket, objectPrefix: 'up/' })
  t.teardown(() => { store.client.destroy(); client.destroy() })
  const { app } = await buildApp(t, {
    store,
    hooks: { preCreate: () => ({ storage: { Key: key() } }), postCreate: (_request, upload) => { seen.push(upload) } }
  })
  return { app, store, bucket, client }
}

withS3(t, () => {
  t.test('a placed upload: its object at the chosen key; HEAD, PATCH, GET, DELETE and hooks follow it', async (t) => {
    const seen: UploadInfo[] = []
    const { app, bucket, client } = await setup(t, () => 'tenant-a/report.pdf', seen)
    const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '11' } })
    t.equal(created.statusCode, 201)
    const url = new URL(created.headers.location as string, 'http://x').pathname
    const id = url.split('/').pop() as string
    t.same(seen[0]?.storage, { Type: 's3store', Bucket: bucket, Key: 'up/tenant-a/report.pdf' }, 'as tusd reports Storage')
    t.same((await multipartUploads(client, bucket)).map((upload) => upload.key), ['up/tenant-a/report.pdf'])
    await app.inject({ method: 'PATCH', url, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'hello' })
    const head = await app.inject({ method: 'HEAD', url, headers: TUS })
    t.equal(head.headers['upload-offset'], '5')
    const done = await app.inject({ method: 'PATCH', url, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '5' }, payload: ' world' })
    t.equal(done.statusCode, 204)
    t.equal(await getText(client, bucket, 'up/tenant-a/report.pdf'), 'hello world', 'the finished object is at the chosen key')
    t.notOk(`up/${id}` in await objects(client, bucket), 'and not at the id\'s key')
    t.equal((await app.inject({ method: 'GET', url })).body, 'hello world')
    t.equal((await app.inject({ method: 'DELETE', url, headers: TUS })).statusCode, 204)
    t.same(await objects(client, bucket), {}, 'DELETE removes the object, its claim and the info')
  })

  t.test('keys that could leave the prefix or take another upload\'s objects are refused before anything is created', async (t) => {
    let key = '../escape'
    const { app, store, bucket, client } = await setup(t, () => key)
    const post = async (): Promise<{ status: number, code: string | undefined }> => {
      const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3' } })
      return { status: response.statusCode, code: response.statusCode === 201 ? undefined : response.json().code }
    }
    for (const bad of ['../escape', '/abs', 'a//b', 'a/./b', 'x\u0000', 'name.info', 'name.part']) {
      key = bad
      t.same(await post(), { status: 400, code: 'ERR_INVALID_STORAGE' }, JSON.stringify(bad))
    }
    t.same(await objects(client, bucket), {}, 'nothing created')
    t.same(await multipartUploads(client, bucket), [])
    key = 'one.bin'
    t.equal((await post()).status, 201)
    t.same(await post(), { status: 409, code: 'ERR_STORAGE_TAKEN' }, 'the same key twice')
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'up/existing.bin', Body: 'keep' }))
    key = 'existing.bin'
    t.same(await post(), { status: 409, code: 'ERR_STORAGE_TAKEN' }, 'an existing object')
    t.equal(await getText(client, bucket, 'up/existing.bin'), 'keep')

    key = 'plainid'
    const placed = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3' } })
    t.equal(placed.statusCode, 201)
    const before = await multipartUploads(client, bucket)
    await store.remove('plainid')
    t.same(await multipartUploads(client, bucket), before, 'removing the id whose key a placed upload took aborts nothing of it')
    t.equal((await app.inject({ method: 'HEAD', url: '/files/plainid', headers: TUS })).statusCode, 404, 'the claim is no upload of that id')
    t.equal((await app.inject({ method: 'HEAD', url: new URL(placed.headers.location as string, 'http://x').pathname, headers: TUS })).statusCode, 200)
  })

  t.test('concatenation and expiration follow placed keys; a fresh placed upload is not taken for debris', async (t) => {
    let n = 0
    const { app, store, bucket, client } = await setup(t, () => `parts/p${++n}`)
    const urls: string[] = []
    for (const text of ['abc', 'def']) {
      const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3', 'upload-concat': 'partial', 'content-type': OCTET }, payload: text })
      t.equal(created.statusCode, 201)
      urls.push(new URL(created.headers.location as string, 'http://x').pathname)
    }
    const final = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${urls.join(' ')}` } })
    t.equal(final.statusCode, 201)
    t.equal(await getText(client, bucket, 'up/parts/p3'), 'abcdef')

    const open = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '10', 'content-type': OCTET }, payload: 'abc' })
    t.equal(open.statusCode, 201)
    t.equal(await store.removeExpired(new Date(Date.now() - 3_600_000)), 0, 'not expired yet')
    t.same((await multipartUploads(client, bucket)).map((upload) => upload.key), ['up/parts/p4'], 'and not aborted as a crashed create')
    t.equal((await app.inject({ method: 'HEAD', url: new URL(open.headers.location as string, 'http://x').pathname, headers: TUS })).headers['upload-offset'], '3')
    t.equal(await store.removeExpired(new Date(Date.now() + 60_000)), 1, 'expired: removed')
    t.same(await multipartUploads(client, bucket), [])
    t.notOk(Object.keys(await objects(client, bucket)).some((name) => name.startsWith('up/parts/p4')), 'nothing of it is left')
  })

  t.test('tusd\'s s3store uploads are not carried over, and are left alone (never aborted or deleted)', async (t) => {
    const { app, store, bucket, client } = await setup(t, () => 'unused')
    const id = await writeTusdS3Upload(client, bucket, 'up/', 'f'.repeat(32), 20, Buffer.from('0123456789'), Buffer.from('abc'))
    const before = await objects(client, bucket)
    const head = await app.inject({ method: 'HEAD', url: `/files/${encodeURIComponent(id)}`, headers: TUS })
    t.equal(head.statusCode, 404, 'tusd\'s URL id (<object>+<multipart id>) is not an id here')
    t.equal(await store.removeExpired(new Date(Date.now() + 3_600_000)), 0, 'the sweep does not take tusd\'s upload for its own')
    t.equal((await multipartUploads(client, bucket)).length, 1, 'tusd\'s multipart upload is still there')
    t.same(await objects(client, bucket), before, 'and its .info and .part')
  })
})
