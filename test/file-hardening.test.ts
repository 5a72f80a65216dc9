/**
 * Files on disk: symbolic links planted in the upload directory under an upload's data, info or
 * `.stop` name are never followed (a sentinel file outside stays untouched, requests get a coded
 * error that names no path), and files and directories get their modes whatever the umask.
 */
import { lstat, mkdir, readFile, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { FlagError, parseFlags, type CliConfig } from '../bin/flags.js'
import { createStore } from '../bin/store.js'
import { FileLocker } from '../locks/file.js'
import { FileStore } from '../stores/file.js'
import { buildApp, createUpload, OCTET, tempDir, TUS } from './helpers/app.js'

async function sentinel (t: Parameters<typeof tempDir>[0], content: string): Promise<string> {
  const outside = await tempDir(t, 'tus-outside-')
  const path = join(outside, 'sentinel')
  await writeFile(path, content)
  return path
}

function idOf (path: string): string {
  return path.split('/').pop() as string
}

t.test('a data file planted as a link is never written through nor read', async (t) => {
  const { app, dir } = await buildApp(t, { fileStore: true })
  const target = await sentinel(t, '')
  const path = await createUpload(app, { 'upload-length': '5' })
  await symlink(target, join(dir as string, idOf(path)))
  const patch = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'hello' })
  t.equal(patch.statusCode, 500)
  t.equal(patch.json().code, 'ERR_UNSAFE_UPLOAD_FILE', 'a coded error')
  t.notMatch(patch.body, /sentinel|tus-outside|ELOOP/, 'no path or system error text')
  t.equal(await readFile(target, 'utf8'), '', 'the sentinel is untouched')
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  t.equal(head.statusCode, 500, 'HEAD does not report the link target\'s size')
  t.equal(head.headers['upload-offset'], undefined)

  // a dangling link: O_CREAT must not create its target outside the directory
  const dangling = await createUpload(app, { 'upload-length': '5' })
  const nowhere = join(await tempDir(t, 'tus-outside-'), 'created')
  await symlink(nowhere, join(dir as string, idOf(dangling)))
  const write = await app.inject({ method: 'PATCH', url: dangling, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'hello' })
  t.equal(write.json().code, 'ERR_UNSAFE_UPLOAD_FILE')
  await t.rejects(stat(nowhere), { code: 'ENOENT' }, 'nothing was created outside')
})

t.test('a completed upload whose data file is a link: no download, no concatenation of it', async (t) => {
  const { app, dir } = await buildApp(t, { fileStore: true })
  const target = await sentinel(t, 'SECRET!!')
  const part = await createUpload(app, { 'upload-length': '8', 'upload-concat': 'partial' })
  await symlink(target, join(dir as string, idOf(part)))
  const download = await app.inject({ method: 'GET', url: part })
  t.not(download.statusCode, 200)
  t.notMatch(download.body, /SECRET/, 'the link target is not served')
  const final = await app.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-concat': `final;${part}` } })
  t.not(final.statusCode, 201, 'the final upload is refused')
  t.notMatch(final.body, /SECRET|sentinel/)
  t.equal(await readFile(target, 'utf8'), 'SECRET!!')
})

t.test('an info file planted as a link names no upload', async (t) => {
  const { app, dir } = await buildApp(t, { fileStore: true })
  const fake = JSON.stringify({ id: 'planted', metadata: { secret: 'from outside' }, createdAt: new Date().toISOString(), size: 3 })
  const target = await sentinel(t, fake)
  await symlink(target, join(dir as string, 'planted.info'))
  const head = await app.inject({ method: 'HEAD', url: '/files/planted', headers: TUS })
  t.equal(head.statusCode, 404)
  t.equal(head.headers['upload-metadata'], undefined, 'nothing read through the link')
  const patch = await app.inject({ method: 'PATCH', url: '/files/planted', headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'abc' })
  t.equal(patch.statusCode, 404)
  t.equal(await readFile(target, 'utf8'), fake)
  await t.rejects(lstat(join(dir as string, 'planted')), { code: 'ENOENT' }, 'no data file made for it')
})

t.test('FileLocker: a .stop planted as a link is not written through', async (t) => {
  const dir = await tempDir(t)
  const target = await sentinel(t, 'untouched')
  const holder = new FileLocker({ directory: dir, recheckInterval: 50 })
  const waiter = new FileLocker({ directory: dir, recheckInterval: 50 })
  t.teardown(async () => { await holder.close(); await waiter.close() })
  // the locker's timers and watch do not keep the process alive: this does, while the test waits
  const alive = setInterval(() => {}, 1000)
  t.teardown(() => { clearInterval(alive) })
  // the holder does not give way, so the waiter keeps asking through `.stop` until it times out
  const lock = await holder.lock('abc', { signal: AbortSignal.timeout(2000), onReleaseRequested: () => {} })
  await new Promise((resolve) => setTimeout(resolve, 50))
  await symlink(target, join(dir, 'abc.stop'))
  await t.rejects(waiter.lock('abc', { signal: AbortSignal.timeout(400), onReleaseRequested: () => {} }), { name: 'LockTimeout' })
  await lock.unlock()
  t.ok((await lstat(join(dir, 'abc.stop')).catch(() => undefined)) === undefined || (await lstat(join(dir, 'abc.stop'))).isSymbolicLink(), 'the link itself is at most removed')
  t.equal(await readFile(target, 'utf8'), 'untouched', 'the sentinel is untouched')
})

t.test('modes: 0o700 directories and 0o600 files by default, options exactly whatever the umask', async (t) => {
  const base = await tempDir(t)
  const directory = join(base, 'new', 'uploads')
  const store = new FileStore({ directory })
  await store.create({ id: 'a', size: 3, metadata: {} })
  await store.write('a', { offset: 0, body: (await import('node:stream')).Readable.from([Buffer.from('abc')]) })
  await store.create({ id: 'b', metadata: {} })
  await store.declareLength('b', 4)
  t.equal((await stat(directory)).mode & 0o777, 0o700, 'directory')
  t.equal((await stat(join(directory, 'a'))).mode & 0o777, 0o600, 'data file')
  t.equal((await stat(join(directory, 'a.info'))).mode & 0o777, 0o600, 'info file')
  t.equal((await stat(join(directory, 'b.info'))).mode & 0o777, 0o600, 'a rewritten info file')

  const previous = process.umask(0o077)
  t.teardown(() => { process.umask(previous) })
  const custom = join(base, 'custom')
  const open = new FileStore({ directory: custom, directoryMode: 0o750, fileMode: 0o640 })
  await open.create({ id: 'c', size: 1, metadata: {} })
  await open.write('c', { offset: 0, body: (await import('node:stream')).Readable.from([Buffer.from('x')]) })
  await open.create({ id: 'd', metadata: {} })
  await open.declareLength('d', 1)
  t.equal((await stat(custom)).mode & 0o777, 0o750, 'directoryMode despite the umask')
  t.equal((await stat(join(custom, 'c'))).mode & 0o777, 0o640, 'fileMode on data despite the umask')
  t.equal((await stat(join(custom, 'c.info'))).mode & 0o777, 0o640, 'fileMode on info despite the umask')
  t.equal((await stat(join(custom, 'd.info'))).mode & 0o777, 0o640, 'fileMode on a rewritten info')
  process.umask(previous)

  const existing = join(base, 'existing')
  await mkdir(existing, { mode: 0o755 })
  await new FileStore({ directory: existing }).create({ id: 'e', metadata: {} })
  t.equal((await stat(existing)).mode & 0o777, 0o755, 'an existing directory keeps its mode')
  t.throws(() => new FileStore({ directory: base, fileMode: 0o1777 }), TypeError)

  const lockDir = join(base, 'locks')
  const locker = new FileLocker({ directory: lockDir })
  t.teardown(async () => await locker.close())
  const held = await locker.lock('x', { signal: AbortSignal.timeout(1000), onReleaseRequested: () => {} })
  await held.unlock()
  t.equal((await stat(lockDir)).mode & 0o777, 0o700, 'the locker directory')
})

t.test('--dir-perms and --file-perms (tusd names), octal', async (t) => {
  const parsed = parseFlags(['--dir-perms', '0750', '--file-perms', '640']) as CliConfig
  t.equal(parsed.dirPerms, 0o750)
  t.equal(parsed.filePerms, 0o640)
  const defaults = parseFlags([]) as CliConfig
  t.equal(defaults.dirPerms, 0o700)
  t.equal(defaults.filePerms, 0o600)
  t.throws(() => parseFlags(['--file-perms', '0800']), FlagError)
  t.throws(() => parseFlags(['--dir-perms', 'rwx']), FlagError)

  // the command hands them to its file store
  const directory = join(await tempDir(t), 'uploads')
  const { store } = await createStore(undefined, directory, undefined, { directoryMode: parsed.dirPerms, fileMode: parsed.filePerms })
  await store.create({ id: 'a', metadata: {} })
  t.equal((await stat(directory)).mode & 0o777, 0o750)
  t.equal((await stat(join(directory, 'a.info'))).mode & 0o777, 0o640)
})
