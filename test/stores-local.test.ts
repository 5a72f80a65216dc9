import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import { FileStore } from '../stores/file.js'
import { MemoryStore } from '../stores/memory.js'
import { UploadExists, UploadNotFound } from '../stores/store.js'
import { storeConformance } from './conformance/store.js'

storeConformance(t, 'MemoryStore', async () => ({ store: new MemoryStore() }))

storeConformance(t, 'FileStore', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-store-'))
  return { store: new FileStore({ directory }), cleanup: async () => await rm(directory, { recursive: true, force: true }) }
})

storeConformance(t, 'FileStore with fsync', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-store-'))
  return { store: new FileStore({ directory, fsync: true }), cleanup: async () => await rm(directory, { recursive: true, force: true }) }
})

t.test('FileStore: files on disk across crashes', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-store-'))
  t.teardown(() => rm(directory, { recursive: true, force: true }))
  const store = new FileStore({ directory })

  // the data file appears with the first byte
  await store.create({ id: 'fresh', size: 3, metadata: {} })
  t.same(await readdir(directory), ['fresh.info'])
  t.equal((await store.get('fresh')).offset, 0)
  t.equal(Buffer.concat(await (await store.read('fresh')).toArray()).length, 0, 'an upload without bytes reads empty')
  await store.write('fresh', { offset: 0, body: Readable.from([Buffer.from('abc')]) })
  t.same((await readdir(directory)).sort(), ['fresh', 'fresh.info'])

  // removal takes the bytes first, then the info that claims the id
  await store.create({ id: 'reused', size: 5, metadata: {} })
  await store.write('reused', { offset: 0, body: Readable.from([Buffer.from('ab')]) })
  await store.remove('reused')
  t.equal((await store.create({ id: 'reused', size: 5, metadata: {} })).offset, 0)
  t.equal((await store.get('reused')).offset, 0, 'a new upload of a removed id starts empty')

  // an info file a crash left empty names no upload, and the expiration sweep removes it
  await writeFile(join(directory, 'torn.info'), '')
  await t.rejects(store.get('torn'), UploadNotFound)
  await t.rejects(store.create({ id: 'torn', size: 1, metadata: {} }), UploadExists, 'the id stays claimed')
  t.equal(await store.removeExpired(new Date(Date.now() - 60_000)), 0, 'not while it is recent')
  t.equal(await store.removeExpired(new Date(Date.now() + 60_000)), 2, 'the torn one and the unfinished "reused"')
  t.same((await readdir(directory)).sort(), ['fresh', 'fresh.info'])
  t.ok((await readdir(directory)).includes('fresh.info'), 'complete uploads are kept')

  // ids that could name a path elsewhere are refused before anything is written
  await t.rejects(store.create({ id: '../x', size: 1, metadata: {} }), TypeError)
})

t.test('FileStore: under the same lock lease, get answers from memory; any other lease (or none) asks the files', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-store-'))
  t.teardown(() => rm(directory, { recursive: true, force: true }))
  const store = new FileStore({ directory })
  const body = (text: string): Readable => Readable.from([Buffer.from(text)])

  await store.create({ id: 'leased', size: 9, metadata: {} })
  t.equal((await store.get('leased', { lease: 'L1' })).offset, 0, 'the first get under a lease checks the files')
  t.equal(await store.write('leased', { offset: 0, body: body('abc') }), 3)
  const written = await store.get('leased', { lease: 'L1' })
  t.equal(written.offset, 3, 'a write under the lease is remembered')
  // bytes nobody holding the lock may write: only a get under another lease (or none) sees them,
  // which shows the leased get made no file-system call
  await appendFile(join(directory, 'leased'), 'de')
  t.equal((await store.get('leased', { lease: 'L1' })).offset, 3, 'same lease: from memory')
  t.equal((await store.get('leased', { lease: 'L2' })).offset, 5, 'a new lease: the files are asked')
  await appendFile(join(directory, 'leased'), 'f')
  t.equal((await store.get('leased')).offset, 6, 'no lease: the files are asked')
  t.equal((await store.get('leased', { lease: 'L2' })).offset, 6, 'a get without a lease ends what the lease remembered')

  // a body that fails keeps what arrived (nothing here), and the lease still knows the size
  const broken = new Readable({ read () { this.destroy(new Error('client went away')) } })
  await store.get('leased', { lease: 'L3' })
  t.equal(await store.write('leased', { offset: 6, body: broken }), 0)
  t.equal((await store.get('leased', { lease: 'L3' })).offset, 6)

  // created under a lease: the next get under it needs no file-system call either
  await store.create({ id: 'fresh', size: 4, metadata: {} }, { lease: 'C' })
  await appendFile(join(directory, 'fresh'), 'zz')
  t.equal((await store.get('fresh', { lease: 'C' })).offset, 0, 'the creation\'s lease: from memory')
  t.equal((await store.get('fresh', { lease: 'D' })).offset, 2, 'another lease: the files are asked')
  // the info file too (a leased creation keeps no stamp of it, so it is read again, not trusted)
  const edited = JSON.parse(await readFile(join(directory, 'fresh.info'), 'utf8')) as { metadata: Record<string, string> }
  edited.metadata = { by: 'another process' }
  await writeFile(join(directory, 'fresh.info'), JSON.stringify(edited))
  t.same((await store.get('fresh', { lease: 'E' })).metadata, { by: 'another process' }, 'another lease: the info file is read again')

  // removed by this process: gone, whatever the lease
  await store.remove('leased')
  await t.rejects(store.get('leased', { lease: 'L3' }), { name: 'UploadNotFound' })
})

t.test('FileStore: a write trusts the size its get saw, and asks the file when they disagree', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-store-'))
  t.teardown(() => rm(directory, { recursive: true, force: true }))
  const store = new FileStore({ directory })
  const body = (text: string): Readable => Readable.from([Buffer.from(text)])

  await store.create({ id: 'sized', size: 9, metadata: {} })
  t.equal(await store.write('sized', { offset: 0, body: body('abc') }), 3, 'after create: no data file, size 0')
  t.equal(await store.write('sized', { offset: 3, body: body('def') }), 3, 'after a write: its own end')
  await t.rejects(store.write('sized', { offset: 2, body: body('x') }), { name: 'OffsetMismatch' }, 'a wrong offset is refused')

  // a get that raced with a write remembered too small a size: the file is asked, the write goes on
  t.equal((await store.get('sized')).offset, 6)
  await appendFile(join(directory, 'sized'), 'gh')
  t.equal(await store.write('sized', { offset: 8, body: body('i') }), 1)
  t.equal(Buffer.concat(await (await store.read('sized')).toArray()).toString(), 'abcdefghi')

  // a size forgotten by a failed write is asked again
  await store.create({ id: 'failing', size: 4, metadata: {} })
  const broken = new Readable({ read () { this.destroy(new Error('client went away')) } })
  await store.write('failing', { offset: 0, body: broken }).catch(() => {})
  t.equal(await store.write('failing', { offset: 0, body: body('wxyz') }), 4)
  t.equal((await store.get('failing')).offset, 4)
})
