/**
 * Expiration sweeps are bounded: never two at once (a second call joins the running one), the
 * file store streams its directory with `opendir` and checks a few uploads at a time, and the
 * GCS store settles uploads while it lists instead of gathering the whole bucket first.
 */
import * as fsPromises from 'node:fs/promises'
import { utimes } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import t from 'tap'
import { GcsObjects } from '../stores/gcs-objects.js'
import { GcsStore } from '../stores/gcs.js'
import type { FileStore as FileStoreType } from '../stores/file.js'
import { MemoryStore } from '../stores/memory.js'
import { buildApp, tempDir } from './helpers/app.js'
import { gcsTarget } from './helpers/gcs.js'

t.test('a sweep never starts while one runs: a second call joins it', async (t) => {
  let calls = 0
  class SlowStore extends MemoryStore {
    override async removeExpired (before: Date): Promise<number> {
      calls++
      await new Promise((resolve) => setTimeout(resolve, 100))
      return await super.removeExpired(before) + 7
    }
  }
  const { app } = await buildApp(t, { store: new SlowStore(), expiration: 60_000 })
  const [first, second] = await Promise.all([app.tus.removeExpired(), app.tus.removeExpired()])
  t.equal(calls, 1, 'one sweep for two calls')
  t.equal(first, 7)
  t.equal(second, 7, 'the joining call gets the running sweep\'s count')
  await app.tus.removeExpired()
  t.equal(calls, 2, 'once it has ended, the next call sweeps again')
})

t.test('FileStore: the directory is streamed (no readdir) and at most a few uploads are checked at once', async (t) => {
  let inFlight = 0
  let most = 0
  const { FileStore } = await t.mockImport<typeof import('../stores/file.js')>('../stores/file.js', {
    'node:fs/promises': {
      ...fsPromises,
      readdir: async () => { throw new Error('readdir lists the whole directory at once') },
      lstat: async (...args: Parameters<typeof fsPromises.lstat>) => {
        inFlight++
        most = Math.max(most, inFlight)
        try {
          return await fsPromises.lstat(...args)
        } finally {
          inFlight--
        }
      }
    }
  })
  const directory = await tempDir(t)
  const store: FileStoreType = new FileStore({ directory })
  const old = new Date(Date.now() - 3_600_000)
  for (let i = 0; i < 60; i++) {
    const id = `u${i}`
    await store.create({ id, size: 10, metadata: {} })
    await store.write(id, { offset: 0, body: Readable.from([Buffer.from('abc')]) })
    await utimes(join(directory, id), old, old)
  }
  await store.create({ id: 'done', size: 1, metadata: {} })
  await store.write('done', { offset: 0, body: Readable.from([Buffer.from('x')]) })
  most = 0
  t.equal(await store.removeExpired(new Date(Date.now() - 60_000)), 60, 'every expired upload removed')
  t.ok(most <= 16, `at most 8 uploads (2 lstat each) at once, saw ${most} lstat calls in flight`)
  t.equal((await store.get('done')).offset, 1, 'a completed upload stays')
})

t.test('GcsStore: uploads are settled while the bucket is listed, not after the whole listing', async (t) => {
  const target = await gcsTarget()
  t.teardown(target.close)
  const store = new GcsStore({ storage: target.storage, bucket: target.bucket, objectPrefix: target.prefix() })
  for (let i = 0; i < 6; i++) {
    const id = `g${i}`
    await store.create({ id, size: 10, metadata: {} })
    await store.write(id, { offset: 0, body: Readable.from([Buffer.from('abc')]) })
  }
  // pages of two objects, and a note of how many were handed out when each upload is looked at
  const pages = GcsObjects.prototype.pages
  let handed = 0
  let finished = false
  t.teardown(() => { GcsObjects.prototype.pages = pages })
  GcsObjects.prototype.pages = async function * (this: GcsObjects, prefix: string) {
    for await (const page of pages.call(this, prefix)) {
      for (let i = 0; i < page.length; i += 2) {
        handed++
        yield page.slice(i, i + 2)
      }
    }
    finished = true
  }
  const seen: boolean[] = []
  const get = store.get.bind(store)
  store.get = async (id: string) => {
    seen.push(finished)
    return await get(id)
  }
  t.equal(await store.removeExpired(new Date(Date.now() + 60_000)), 6)
  t.ok(handed > 1, 'the listing came in several pages')
  t.equal(seen[0], false, 'the first upload was settled before the listing ended')
})
