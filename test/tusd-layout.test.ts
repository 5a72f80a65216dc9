/**
 * Uploads tusd's filestore started, served as they are: fixtures written from tusd's documented
 * layout (test/helpers/tusd-fixtures.ts) are resumed with tus-js-client through the command, and
 * HEAD, PATCH, GET, DELETE, expiration and the hooks' `Storage` are checked through the plugin.
 */
import { createHash, randomBytes } from 'node:crypto'
import { lstat, readdir, readFile, utimes, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import t from 'tap'
import * as tus from 'tus-js-client'
import { FileStore } from '../stores/file.js'
import { buildApp, OCTET, TUS, tempDir } from './helpers/app.js'
import { BUILT_COMMAND, startServer } from './helpers/cli.js'
import { startHookReceiver } from './helpers/hook-receiver.js'
import { tusdId, writeTusdFileUpload } from './helpers/tusd-fixtures.js'

t.test('HEAD reports the data file\'s size (Offset in tusd\'s JSON is stale), PATCH continues, GET downloads, DELETE removes both', async (t) => {
  const dir = await tempDir(t)
  const id = tusdId(1)
  await writeTusdFileUpload(dir, { id, size: 11, bytes: Buffer.from('hello'), metadata: { filename: 'a.txt', filetype: 'text/plain' } })
  const { app } = await buildApp(t, { store: new FileStore({ directory: dir }) })
  const head = await app.inject({ method: 'HEAD', url: `/files/${id}`, headers: TUS })
  t.equal(head.statusCode, 200)
  t.equal(head.headers['upload-offset'], '5')
  t.equal(head.headers['upload-length'], '11')
  t.match(head.headers['upload-metadata'], /filename YS50eHQ=/, 'tusd\'s MetaData is the upload\'s metadata')

  const patch = await app.inject({ method: 'PATCH', url: `/files/${id}`, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '5' }, payload: ' world' })
  t.equal(patch.statusCode, 204)
  t.equal(patch.headers['upload-offset'], '11')
  t.equal(await readFile(join(dir, id), 'utf8'), 'hello world', 'appended to tusd\'s data file')
  const info = JSON.parse(await readFile(join(dir, `${id}.info`), 'utf8')) as Record<string, unknown>
  t.equal(info.ID, id, 'the info file is still tusd\'s')

  const get = await app.inject({ method: 'GET', url: `/files/${id}` })
  t.equal(get.statusCode, 200)
  t.equal(get.body, 'hello world')
  t.equal(get.headers['content-type'], 'text/plain')

  const del = await app.inject({ method: 'DELETE', url: `/files/${id}`, headers: TUS })
  t.equal(del.statusCode, 204)
  t.same(await readdir(dir), [], 'both files removed')
})

t.test('a deferred length declared here is written back in tusd\'s shape', async (t) => {
  const dir = await tempDir(t)
  const id = tusdId(2)
  await writeTusdFileUpload(dir, { id, bytes: Buffer.from('abc'), metadata: { k: 'v' } })
  const { app } = await buildApp(t, { store: new FileStore({ directory: dir }) })
  const head = await app.inject({ method: 'HEAD', url: `/files/${id}`, headers: TUS })
  t.equal(head.headers['upload-defer-length'], '1')
  t.equal(head.headers['upload-offset'], '3')
  const patch = await app.inject({ method: 'PATCH', url: `/files/${id}`, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '3', 'upload-length': '6' }, payload: 'def' })
  t.equal(patch.statusCode, 204)
  const info = JSON.parse(await readFile(join(dir, `${id}.info`), 'utf8')) as Record<string, unknown>
  t.match(info, { ID: id, Size: 6, SizeIsDeferred: false, MetaData: { k: 'v' }, Storage: { Type: 'filestore' } }, 'tusd can read it still')
  t.notOk('id' in info, 'no key of the store\'s own shape was added')
})

t.test('Storage.Path: honoured inside the directory, refused outside it, the usual place when the directory moved', async (t) => {
  const dir = await tempDir(t)
  const outside = await tempDir(t)
  const inside = tusdId(3)
  await writeTusdFileUpload(dir, { id: inside, size: 4, bytes: Buffer.from('in'), path: 'tenant/x.bin' })
  const escaped = tusdId(4)
  await writeFile(join(outside, 'secret'), 'secret')
  await writeTusdFileUpload(dir, { id: escaped, size: 6, bytes: Buffer.from(''), storagePath: join(outside, 'secret') })
  const moved = tusdId(5)
  await writeTusdFileUpload(dir, { id: moved, size: 4, bytes: Buffer.from('mv'), storagePath: `/srv/old-tusd-data/${moved}` })
  const store = new FileStore({ directory: dir })
  const { app } = await buildApp(t, { store })

  const head = await app.inject({ method: 'HEAD', url: `/files/${inside}`, headers: TUS })
  t.equal(head.headers['upload-offset'], '2', 'the bytes at the hook-chosen path')
  await app.inject({ method: 'PATCH', url: `/files/${inside}`, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '2' }, payload: 'ok' })
  t.equal(await readFile(join(dir, 'tenant/x.bin'), 'utf8'), 'inok')
  t.same((await store.get(inside)).storage, { Type: 'filestore', Path: join(dir, 'tenant/x.bin'), InfoPath: join(dir, `${inside}.info`) })

  for (const method of ['HEAD', 'GET'] as const) {
    const refused = await app.inject({ method, url: `/files/${escaped}`, headers: TUS })
    t.equal(refused.statusCode, 500, `${method} of an upload whose bytes are outside the directory`)
    t.equal(refused.headers['upload-offset'], undefined)
    t.notMatch(refused.body, /secret/)
  }
  const patch = await app.inject({ method: 'PATCH', url: `/files/${escaped}`, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '6' }, payload: 'x' })
  t.equal(patch.statusCode, 500)
  t.equal(await readFile(join(outside, 'secret'), 'utf8'), 'secret', 'never written')

  const elsewhere = await app.inject({ method: 'HEAD', url: `/files/${moved}`, headers: TUS })
  t.equal(elsewhere.headers['upload-offset'], '2', 'a Path naming <id> in another directory: the bytes beside the info file')
})

t.test('a checksum verified on tusd\'s upload: a mismatch keeps the offset, and the info stays tusd\'s', async (t) => {
  const dir = await tempDir(t)
  const id = tusdId(9)
  const relativePlace = relative(process.cwd(), join(dir, 'rel/y.bin'))
  await writeTusdFileUpload(dir, { id, size: 6, bytes: Buffer.from('abc'), path: 'rel/y.bin', storagePath: relativePlace })
  const { app } = await buildApp(t, { store: new FileStore({ directory: dir }) })
  const head = await app.inject({ method: 'HEAD', url: `/files/${id}`, headers: TUS })
  t.equal(head.headers['upload-offset'], '3', 'a Storage.Path relative to the working directory (tusd run with a relative -upload-dir)')
  const sha1 = (text: string): string => `sha1 ${createHash('sha1').update(text).digest('base64')}`
  const wrong = await app.inject({ method: 'PATCH', url: `/files/${id}`, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '3', 'upload-checksum': sha1('xyz') }, payload: 'def' })
  t.equal(wrong.statusCode, 460)
  t.equal(await readFile(join(dir, 'rel/y.bin'), 'utf8'), 'abc', 'the refused chunk is cut off')
  const right = await app.inject({ method: 'PATCH', url: `/files/${id}`, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '3', 'upload-checksum': sha1('def') }, payload: 'def' })
  t.equal(right.statusCode, 204)
  t.equal(await readFile(join(dir, 'rel/y.bin'), 'utf8'), 'abcdef')
  const info = JSON.parse(await readFile(join(dir, `${id}.info`), 'utf8')) as Record<string, unknown>
  t.match(info, { ID: id, Size: 6, Storage: { Path: relativePlace } }, 'tusd\'s JSON, as tusd wrote it')
  t.notOk('pending' in info, 'no chunk left pending')
})

t.test('expiration sees tusd\'s uploads by the data file\'s time', async (t) => {
  const dir = await tempDir(t)
  const stale = tusdId(6)
  const fresh = tusdId(7)
  await writeTusdFileUpload(dir, { id: stale, size: 10, bytes: Buffer.from('old') })
  await writeTusdFileUpload(dir, { id: fresh, size: 10, bytes: Buffer.from('new') })
  const old = new Date(Date.now() - 3_600_000)
  await utimes(join(dir, stale), old, old)
  await utimes(join(dir, `${stale}.info`), old, old)
  const store = new FileStore({ directory: dir })
  t.equal(await store.removeExpired(new Date(Date.now() - 60_000)), 1)
  await t.rejects(lstat(join(dir, stale)), { code: 'ENOENT' })
  await t.rejects(lstat(join(dir, `${stale}.info`)), { code: 'ENOENT' })
  t.equal((await store.get(fresh)).offset, 3)
})

t.test('the command: tus-js-client resumes tusd\'s upload; hooks see tusd\'s Storage', async (t) => {
  const dir = await tempDir(t)
  const receiver = await startHookReceiver(t)
  const data = randomBytes(3 * 1024 * 1024 + 5)
  const id = tusdId(8)
  const had = 1024 * 1024 + 3
  await writeTusdFileUpload(dir, { id, size: data.length, bytes: data.subarray(0, had), metadata: { filename: 'big.bin' } })
  const server = await startServer(t, ['--port', '0', '--upload-dir', dir, '--log-level', 'warn', '--hooks-http', receiver.url, '--hooks-enabled-events', 'post-receive,post-finish'], BUILT_COMMAND)
  const uploadUrl = `${server.url}${id}`
  const patchOffsets: string[] = []
  await new Promise<void>((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: server.url,
      uploadUrl,
      chunkSize: 1024 * 1024,
      onBeforeRequest: (request) => { if (request.getMethod() === 'PATCH') patchOffsets.push(request.getHeader('Upload-Offset') ?? '') },
      onError: reject,
      onSuccess: () => { resolve() }
    })
    upload.start()
  })
  t.equal(patchOffsets[0], String(had), 'the client went on from tusd\'s offset (the size of its data file)')
  t.same(await readFile(join(dir, id)), data, 'every byte, in tusd\'s data file')
  const finished = await receiver.waitFor((hook) => hook.type === 'post-finish')
  t.same(finished.payload.Event.Upload.Storage, { Type: 'filestore', Path: join(dir, id), InfoPath: join(dir, `${id}.info`) })
  t.equal(finished.payload.Event.Upload.ID, id)
  t.equal(finished.payload.Event.Upload.Offset, data.length)
  t.equal(relative(dir, join(dir, id)), id)
})

t.test('the command: a pre-create hook\'s ChangeFileInfo.Storage places the upload; events report it', async (t) => {
  const dir = await tempDir(t)
  const receiver = await startHookReceiver(t, (hook) => hook.type === 'pre-create'
    ? { json: { ChangeFileInfo: { Storage: { Type: 'filestore', Path: `by-name/${hook.payload.Event.Upload.MetaData.filename ?? 'x'}` } } } }
    : { json: {} })
  const server = await startServer(t, ['--port', '0', '--upload-dir', dir, '--log-level', 'warn', '--hooks-http', receiver.url, '--hooks-enabled-events', 'pre-create,post-finish'], BUILT_COMMAND)
  const data = randomBytes(1000)
  const url = await new Promise<string>((resolve, reject) => {
    const upload = new tus.Upload(data, {
      endpoint: server.url,
      metadata: { filename: 'report.pdf' },
      onError: reject,
      onSuccess: () => { resolve(upload.url as string) }
    })
    upload.start()
  })
  t.same(await readFile(join(dir, 'by-name/report.pdf')), data)
  const id = url.split('/').pop() as string
  const finished = await receiver.waitFor((hook) => hook.type === 'post-finish')
  t.same(finished.payload.Event.Upload.Storage, { Type: 'filestore', Path: join(dir, 'by-name/report.pdf'), InfoPath: join(dir, `${id}.info`) })

  const again = await fetch(server.url, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '3', 'Upload-Metadata': `filename ${Buffer.from('report.pdf').toString('base64')}` } })
  t.equal(again.status, 409, 'the same place twice')
  t.equal(((await again.json()) as { code: string }).code, 'ERR_STORAGE_TAKEN')
  const escape = await fetch(server.url, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '3', 'Upload-Metadata': `filename ${Buffer.from('../../etc/x').toString('base64')}` } })
  t.equal(escape.status, 400)
  t.equal(((await escape.json()) as { code: string }).code, 'ERR_INVALID_STORAGE')
})
