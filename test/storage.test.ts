/**
 * Per-upload storage: a `preCreate` hook chooses where the file store keeps an upload's bytes
 * (tusd's `Storage.Path`), every request honours it, and anything that could leave the directory
 * or take another upload's place is refused with a coded 4xx before anything is created.
 */
import { lstat, mkdir, readdir, readFile, stat, symlink, writeFile, rm, rename } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import type { UploadInfo } from '../stores/store.js'
import { FileStore } from '../stores/file.js'
import { MemoryStore } from '../stores/memory.js'
import { buildApp, OCTET, TUS, tempDir } from './helpers/app.js'

function placing (path: string | (() => string)): { preCreate: () => { storage: Record<string, string> } } {
  return { preCreate: () => ({ storage: { Path: typeof path === 'string' ? path : path() } }) }
}

t.test('a preCreate hook places the bytes; HEAD, PATCH, GET, DELETE and the hooks follow them', async (t) => {
  const dir = await tempDir(t)
  const seen: UploadInfo[] = []
  const store = new FileStore({ directory: dir, directoryMode: 0o750 })
  const { app } = await buildApp(t, {
    store,
    hooks: { ...placing('tenant-a/2026/photo.jpg'), postCreate: (_request, upload) => { seen.push(upload) } }
  })
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '11' } })
  t.equal(created.statusCode, 201)
  const url = new URL(created.headers.location as string, 'http://x').pathname
  const id = url.split('/').pop() as string
  t.same(seen[0]?.storage, { Type: 'filestore', Path: join(dir, 'tenant-a/2026/photo.jpg'), InfoPath: join(dir, `${id}.info`) }, 'hooks see where the bytes are, as tusd reports Storage')
  t.equal((await stat(join(dir, 'tenant-a'))).mode & 0o777, 0o750, 'directories get directoryMode')
  t.equal((await stat(join(dir, 'tenant-a/2026'))).mode & 0o777, 0o750)

  const patch = await app.inject({ method: 'PATCH', url, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'hello' })
  t.equal(patch.statusCode, 204)
  t.equal((await readFile(join(dir, 'tenant-a/2026/photo.jpg'))).toString(), 'hello', 'the bytes are at the chosen path')
  await t.rejects(lstat(join(dir, id)), { code: 'ENOENT' }, 'and not at <id>')
  const head = await app.inject({ method: 'HEAD', url, headers: TUS })
  t.equal(head.headers['upload-offset'], '5')
  await app.inject({ method: 'PATCH', url, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '5' }, payload: ' world' })
  const get = await app.inject({ method: 'GET', url })
  t.equal(get.statusCode, 200)
  t.equal(get.body, 'hello world', 'GET downloads the placed bytes')
  t.equal((await store.get(id)).storage?.Path, join(dir, 'tenant-a/2026/photo.jpg'), 'persisted with the upload (a fresh get reports it)')

  const del = await app.inject({ method: 'DELETE', url, headers: TUS })
  t.equal(del.statusCode, 204)
  t.same(await readdir(dir), [], 'DELETE removes the bytes, the info file and the directories it left empty')
})

t.test('paths that could leave the directory or take a store name: 400 ERR_INVALID_STORAGE, nothing created', async (t) => {
  const bad = ['../escape', '/etc/passwd', 'a/../../b', 'a/./b', 'a//b', 'a/', '.hidden', 'a/.b', 'x\u0000y', 'a\\b', 'line\nbreak', 'other.info', 'other.lock/x', 'x.stop', 'x'.repeat(300)]
  for (const path of bad) {
    const dir = await tempDir(t)
    const { app } = await buildApp(t, { store: new FileStore({ directory: dir }), hooks: placing(path) })
    const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3' } })
    t.equal(response.statusCode, 400, JSON.stringify(path))
    t.equal(response.json().code, 'ERR_INVALID_STORAGE', JSON.stringify(path))
    t.same(await readdir(dir), [], `nothing created for ${JSON.stringify(path)}`)
  }
})

t.test('a path through a symbolic link is refused and nothing is written where it points', async (t) => {
  const dir = await tempDir(t)
  const outside = await tempDir(t)
  await symlink(outside, join(dir, 'linked'))
  const { app } = await buildApp(t, { store: new FileStore({ directory: dir }), hooks: placing('linked/x.bin') })
  const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3' } })
  t.equal(response.statusCode, 400)
  t.equal(response.json().code, 'ERR_INVALID_STORAGE')
  t.same(await readdir(outside), [], 'the link was not followed')

  await symlink(join(outside, 'target'), join(dir, 'file-link'))
  const { app: app2 } = await buildApp(t, { store: new FileStore({ directory: dir }), hooks: placing('file-link') })
  const second = await app2.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3' } })
  t.equal(second.statusCode, 409, 'a link under the chosen name is taken, never followed')
  t.equal(second.json().code, 'ERR_STORAGE_TAKEN')
  t.same(await readdir(outside), [])
})

t.test('collisions: another upload\'s place, its info file or id, an existing file → 409 ERR_STORAGE_TAKEN', async (t) => {
  const dir = await tempDir(t)
  let path = 'shared/a.bin'
  const { app } = await buildApp(t, { store: new FileStore({ directory: dir }), hooks: placing(() => path) })
  const post = async (): Promise<{ statusCode: number, code?: string, location?: string }> => {
    const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3' } })
    return { statusCode: response.statusCode, code: response.statusCode === 201 ? undefined : response.json().code, location: response.headers.location as string | undefined }
  }
  t.equal((await post()).statusCode, 201)
  t.same(await post(), { statusCode: 409, code: 'ERR_STORAGE_TAKEN', location: undefined }, 'the same path twice')
  await writeFile(join(dir, 'existing.txt'), 'keep me')
  path = 'existing.txt'
  t.equal((await post()).code, 'ERR_STORAGE_TAKEN', 'an existing file')
  t.equal(await readFile(join(dir, 'existing.txt'), 'utf8'), 'keep me', 'and it is left as it was')
  path = 'fresh.bin'
  const placed = await post()
  const other = placed.location?.split('/').pop() as string
  path = other
  t.equal((await post()).code, 'ERR_STORAGE_TAKEN', 'another upload\'s id (its data file name)')
  path = `${other}/inside.bin`
  t.equal((await post()).code, 'ERR_STORAGE_TAKEN', 'a directory that would hide another upload\'s data file')
  path = 'fresh.bin/below'
  t.equal((await post()).code, 'ERR_INVALID_STORAGE', 'a path through another upload\'s data file')
})

t.test('an upload whose id names a placed file or directory is refused, not mixed with it', async (t) => {
  const dir = await tempDir(t)
  await mkdir(join(dir, 'taken'))
  const { app } = await buildApp(t, { store: new FileStore({ directory: dir }), hooks: { preCreate: () => ({ id: 'taken' }) } })
  const response = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3' } })
  t.equal(response.statusCode, 409)
  t.equal(response.json().code, 'ERR_STORAGE_TAKEN')
  t.same(await readdir(dir), ['taken'], 'no info file is left behind')
})

t.test('a store that cannot place uploads, or a field it does not take: 400 ERR_STORAGE_UNSUPPORTED', async (t) => {
  const { app } = await buildApp(t, { store: new MemoryStore(), hooks: placing('a.bin') })
  const memory = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3' } })
  t.equal(memory.statusCode, 400)
  t.equal(memory.json().code, 'ERR_STORAGE_UNSUPPORTED')
  const dir = await tempDir(t)
  const { app: fileApp } = await buildApp(t, { store: new FileStore({ directory: dir }), hooks: { preCreate: () => ({ storage: { Key: 'a.bin' } }) } })
  const key = await fileApp.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3' } })
  t.equal(key.statusCode, 400)
  t.equal(key.json().code, 'ERR_STORAGE_UNSUPPORTED')
  t.same(await readdir(dir), [])
})

t.test('concatenation and expiration honour placed uploads', async (t) => {
  const dir = await tempDir(t)
  let n = 0
  const store = new FileStore({ directory: dir })
  const { app } = await buildApp(t, { store, hooks: placing(() => `parts/p${++n}.bin`) })
  const urls: string[] = []
  for (const text of ['abc', 'def']) {
    const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3', 'upload-concat': 'partial', 'content-type': OCTET }, payload: text })
    t.equal(created.statusCode, 201)
    urls.push(new URL(created.headers.location as string, 'http://x').pathname)
  }
  const final = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${urls.join(' ')}` } })
  t.equal(final.statusCode, 201)
  t.equal(await readFile(join(dir, 'parts/p3.bin'), 'utf8'), 'abcdef', 'the final upload\'s bytes at its own path')
  const get = await app.inject({ method: 'GET', url: new URL(final.headers.location as string, 'http://x').pathname })
  t.equal(get.body, 'abcdef')

  const open = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '10', 'content-type': OCTET }, payload: 'abc' })
  t.equal(open.statusCode, 201)
  t.ok(await stat(join(dir, 'parts/p4.bin')))
  t.equal(await store.removeExpired(new Date(Date.now() + 1000)), 1, 'the unfinished placed upload expires')
  await t.rejects(lstat(join(dir, 'parts/p4.bin')), { code: 'ENOENT' }, 'its bytes are gone')
})

t.test('a parent directory swapped for a link after creation is never followed', async (t) => {
  const dir = await tempDir(t)
  const outside = await tempDir(t)
  const { app } = await buildApp(t, { store: new FileStore({ directory: dir }), hooks: placing('box/data.bin') })
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '5' } })
  const url = new URL(created.headers.location as string, 'http://x').pathname
  await rename(join(dir, 'box'), join(outside, 'moved'))
  await symlink(join(outside, 'moved'), join(dir, 'box'))
  const patch = await app.inject({ method: 'PATCH', url, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'hello' })
  t.equal(patch.statusCode, 500)
  t.equal(patch.json().code, 'ERR_UNSAFE_UPLOAD_FILE')
  t.equal((await stat(join(outside, 'moved/data.bin'))).size, 0, 'nothing was written through the link')
  await rm(join(dir, 'box'))
})

t.test('removing an id that names a placed upload\'s file removes nothing of it', async (t) => {
  const dir = await tempDir(t)
  const store = new FileStore({ directory: dir })
  const { app } = await buildApp(t, { store, hooks: placing('shared') })
  const created = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '3', 'content-type': OCTET }, payload: 'abc' })
  t.equal(created.statusCode, 201)
  await store.remove('shared')
  t.equal(await readFile(join(dir, 'shared'), 'utf8'), 'abc', 'the placed upload\'s bytes are still there')
  t.equal((await app.inject({ method: 'DELETE', url: '/files/shared', headers: TUS })).statusCode, 404)
  t.equal(await readFile(join(dir, 'shared'), 'utf8'), 'abc')
})
