import { spawnSync } from 'node:child_process'
import { lutimes, mkdtemp, readdir, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileLocker } from '../locks/file.js'
import { LockTimeout } from '../locks/locker.js'
import { MemoryLocker } from '../locks/memory.js'
import { lockerConformance } from './conformance/locker.js'

// the lockers' timers and watches do not keep a process alive (a server does): this does, while
// tests wait on them
const alive = setInterval(() => {}, 1000)
t.teardown(() => { clearInterval(alive) })

lockerConformance(t, 'MemoryLocker', async () => {
  const locker = new MemoryLocker()
  return { a: locker, b: locker }
})

lockerConformance(t, 'FileLocker (one instance)', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-locker-'))
  const locker = new FileLocker({ directory })
  return { a: locker, b: locker, cleanup: async () => { await locker.close(); await rm(directory, { recursive: true, force: true }) } }
})

lockerConformance(t, 'FileLocker (two instances)', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-locker-'))
  const a = new FileLocker({ directory })
  const b = new FileLocker({ directory })
  return {
    a,
    b,
    cleanup: async () => {
      await a.close()
      await b.close()
      await rm(directory, { recursive: true, force: true })
    }
  }
})

t.test('FileLocker breaks abandoned lock files, and only those', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-locker-'))
  const locker = new FileLocker({ directory, recheckInterval: 50 })
  t.teardown(async () => { await locker.close(); await rm(directory, { recursive: true, force: true }) })
  const noop = (): void => {}

  // an empty lock file that was just created: its owner is still filling it in
  await writeFile(join(directory, 'fresh.lock'), '')
  await t.rejects(locker.lock('fresh', { signal: AbortSignal.timeout(300), onReleaseRequested: noop }), LockTimeout)

  // an empty lock file from long ago: its owner died before writing to it
  await writeFile(join(directory, 'empty.lock'), '')
  const old = new Date(Date.now() - 60_000)
  await utimes(join(directory, 'empty.lock'), old, old)
  const first = await locker.lock('empty', { signal: AbortSignal.timeout(2000), onReleaseRequested: noop })
  t.match(await readlink(join(directory, 'empty.lock')), new RegExp(`^${process.pid}\\.`), 'the lock is a link naming its holder')
  await first.unlock()
  await t.rejects(readFile(join(directory, 'empty.lock')), { code: 'ENOENT' }, 'unlock removes the lock file')

  // a lock whose process is gone
  const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' })
  await writeFile(join(directory, 'dead.lock'), JSON.stringify({ pid: Number(dead.stdout), token: 'x' }))
  const second = await locker.lock('dead', { signal: AbortSignal.timeout(2000), onReleaseRequested: noop })
  await second.unlock()

  // a lock of a live process is respected
  await writeFile(join(directory, 'live.lock'), JSON.stringify({ pid: process.ppid, token: 'y' }))
  await t.rejects(locker.lock('live', { signal: AbortSignal.timeout(300), onReleaseRequested: noop }), LockTimeout)
  t.ok(JSON.parse(await readFile(join(directory, 'live.lock'), 'utf8')).token === 'y', 'the live lock is untouched')

  // the same with locks as this version writes them: links whose target is the holder's token
  await symlink(`${Number(dead.stdout)}.gone.1`, join(directory, 'dead-link.lock'))
  await (await locker.lock('dead-link', { signal: AbortSignal.timeout(2000), onReleaseRequested: noop })).unlock()
  await symlink(`${process.ppid}.alive.1`, join(directory, 'live-link.lock'))
  await t.rejects(locker.lock('live-link', { signal: AbortSignal.timeout(300), onReleaseRequested: noop }), LockTimeout)
  t.equal(await readlink(join(directory, 'live-link.lock')), `${process.ppid}.alive.1`, 'the live link is untouched')

  // a link that names nobody: respected while recent, broken once old
  await symlink('garbage', join(directory, 'nameless.lock'))
  await t.rejects(locker.lock('nameless', { signal: AbortSignal.timeout(300), onReleaseRequested: noop }), LockTimeout)
  await lutimes(join(directory, 'nameless.lock'), old, old)
  await (await locker.lock('nameless', { signal: AbortSignal.timeout(2000), onReleaseRequested: noop })).unlock()
  t.notOk((await readdir(directory)).includes('nameless.lock'), 'and removed on unlock')
})

t.test('FileLocker leaves a lock that is no longer its own alone on unlock', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-locker-'))
  const locker = new FileLocker({ directory })
  t.teardown(async () => { await locker.close(); await rm(directory, { recursive: true, force: true }) })
  const held = await locker.lock('taken', { signal: AbortSignal.timeout(2000), onReleaseRequested: () => {} })
  // someone broke it and took it (another host sharing the directory, say)
  await rm(join(directory, 'taken.lock'))
  await symlink('1.other.1', join(directory, 'taken.lock'))
  await held.unlock()
  t.equal(await readlink(join(directory, 'taken.lock')), '1.other.1', 'the other holder keeps its lock')
  // and a legacy lock file that is not ours either
  const again = await locker.lock('legacy', { signal: AbortSignal.timeout(2000), onReleaseRequested: () => {} })
  await rm(join(directory, 'legacy.lock'))
  await writeFile(join(directory, 'legacy.lock'), JSON.stringify({ pid: 1, token: 'other' }))
  await again.unlock()
  t.ok(JSON.parse(await readFile(join(directory, 'legacy.lock'), 'utf8')).token === 'other', 'the legacy lock stays')
})

t.test('FileLocker asks another process\'s holder to release through a .stop file', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-locker-'))
  const a = new FileLocker({ directory })
  const b = new FileLocker({ directory })
  t.teardown(async () => { await a.close(); await b.close(); await rm(directory, { recursive: true, force: true }) })
  let asked = 0
  const held = await a.lock('up', { signal: AbortSignal.timeout(2000), onReleaseRequested: () => { asked++; held.unlock().catch(() => {}) } })
  const next = await b.lock('up', { signal: AbortSignal.timeout(5000), onReleaseRequested: () => {} })
  t.equal(asked, 1)
  await next.unlock()
  t.same((await readdir(directory)).sort(), [], 'no lock or stop files are left behind')
})

t.test('FileLocker clears .stop files left for earlier holders, so a new holder is not asked to release', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-locker-'))
  await writeFile(join(directory, 'before.stop'), '1')
  const locker = new FileLocker({ directory, recheckInterval: 50 })
  t.teardown(async () => { await locker.close(); await rm(directory, { recursive: true, force: true }) })
  const asked: string[] = []
  const first = await locker.lock('before', { signal: AbortSignal.timeout(2000), onReleaseRequested: () => asked.push('before') })
  // a release request left while nobody held the lock
  await writeFile(join(directory, 'during.stop'), '1')
  await new Promise((resolve) => setTimeout(resolve, 100))
  const second = await locker.lock('during', { signal: AbortSignal.timeout(2000), onReleaseRequested: () => asked.push('during') })
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.same(asked, [], 'neither holder was asked to release')
  t.same((await readdir(directory)).filter((name) => name.endsWith('.stop')), [], 'the stale .stop files are gone')
  await first.unlock()
  await second.unlock()
})

lockerConformance(t, 'FileLocker (two instances, with leases)', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-locker-'))
  const a = new FileLocker({ directory, leaseTime: 60_000 })
  const b = new FileLocker({ directory, leaseTime: 60_000 })
  return {
    a,
    b,
    cleanup: async () => {
      await a.close()
      await b.close()
      await rm(directory, { recursive: true, force: true })
    }
  }
})

t.test('FileLocker leases: the next request of this process takes the lock back without the file system', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-locker-'))
  const locker = new FileLocker({ directory, leaseTime: 300 })
  t.teardown(async () => { await locker.close(); await rm(directory, { recursive: true, force: true }) })
  const noop = (): void => {}
  const first = await locker.lock('up', { signal: AbortSignal.timeout(2000), onReleaseRequested: noop })
  const token = await readlink(join(directory, 'up.lock'))
  await first.unlock()
  t.equal(await readlink(join(directory, 'up.lock')), token, 'unlocked, the lock file stays (a lease)')
  // the same link, not a new one: had the locker removed and re-created it, the target would differ
  const second = await locker.lock('up', { signal: AbortSignal.timeout(2000), onReleaseRequested: noop })
  t.equal(await readlink(join(directory, 'up.lock')), token, 'taken back as it was')
  await second.unlock()
  await new Promise((resolve) => setTimeout(resolve, 600))
  t.same(await readdir(directory), [], 'after leaseTime the lease ends and the file goes')

  const third = await locker.lock('down', { signal: AbortSignal.timeout(2000), onReleaseRequested: noop })
  await third.unlock()
  t.same(await readdir(directory), ['down.lock'])
  await locker.close()
  t.same(await readdir(directory), [], 'close gives every lease up')
})

t.test('FileLocker leases: another process asking ends an idle lease at once; a held one is asked as before', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-locker-'))
  const a = new FileLocker({ directory, leaseTime: 60_000 })
  const b = new FileLocker({ directory, leaseTime: 60_000 })
  t.teardown(async () => { await a.close(); await b.close(); await rm(directory, { recursive: true, force: true }) })
  let asked = 0
  const held = await a.lock('up', { signal: AbortSignal.timeout(2000), onReleaseRequested: () => { asked++ } })
  await held.unlock()
  const started = Date.now()
  const other = await b.lock('up', { signal: AbortSignal.timeout(5000), onReleaseRequested: () => {} })
  t.ok(Date.now() - started < 1000, `the idle lease gave way in ${Date.now() - started} ms`)
  t.equal(asked, 0, 'nobody held it: nobody was asked')
  t.match(await readlink(join(directory, 'up.lock')), new RegExp(`^${process.pid}\\.`), 'b holds it now')
  // now b holds it (and then leases it): a asks through the file system like any other process
  let bAsked = 0
  await other.unlock()
  const again = await b.lock('up', { signal: AbortSignal.timeout(2000), onReleaseRequested: () => { bAsked++; again.unlock().catch(() => {}) } })
  const back = await a.lock('up', { signal: AbortSignal.timeout(5000), onReleaseRequested: () => {} })
  t.equal(bAsked, 1, 'a holder (not a lease) is asked to release')
  await back.unlock()
  await a.close()
  await b.close()
  t.same((await readdir(directory)).sort(), [], 'no lock or stop files are left behind')
})

t.test('MemoryLocker: a request whose signal is already aborted is refused without asking the holder to release', async (t) => {
  const locker = new MemoryLocker()
  const asked: string[] = []
  const held = await locker.lock('x', { signal: new AbortController().signal, onReleaseRequested: (reason) => asked.push(reason) })
  const controller = new AbortController()
  controller.abort(new Error('client went away'))
  await t.rejects(locker.lock('x', { signal: controller.signal, onReleaseRequested: () => {} }), LockTimeout)
  t.same(asked, [], 'the holder was not asked')
  await held.unlock()
  const again = await locker.lock('x', { signal: new AbortController().signal, onReleaseRequested: () => {} })
  await again.unlock()
})
