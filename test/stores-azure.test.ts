/**
 * The store conformance suite on the Azure store against Azurite (test/helpers/azurite.ts), and
 * what only this store has: block blobs committed per block, the ETag condition between two
 * writers, growing block sizes, the container made on demand, credentials from the environment.
 */
import { randomBytes } from 'node:crypto'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { AzureStore } from '../stores/azure.js'
import { blockSizeAt } from '../stores/azure-blocks.js'
import { OffsetMismatch } from '../stores/store.js'
import { bodyOf, storeConformance } from './conformance/store.js'
import { ACCOUNT, ACCOUNT_KEY, startAzurite, withAzurite, type AzuriteServer } from './helpers/azurite.js'

async function collect (stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = []
  for await (const part of stream) parts.push(part as Buffer)
  return Buffer.concat(parts)
}

let counter = 0
const newId = (): string => `a${process.pid}x${(counter++).toString(36)}`

withAzurite(t, () => {
  let azurite: AzuriteServer
  t.before(async () => { azurite = await startAzurite(t) })

  storeConformance(t, 'AzureStore (a ContainerClient passed in)', async () => ({
    store: new AzureStore({ containerClient: await azurite.container() })
  }))

  storeConformance(t, 'AzureStore (account and key, a prefix, 64 KiB blocks, container created)', async () => ({
    store: new AzureStore({
      container: `made${counter++}`,
      account: ACCOUNT,
      accountKey: ACCOUNT_KEY,
      endpoint: azurite.endpoint,
      createContainer: true,
      objectPrefix: 'up/loads/',
      blockSize: 64 * 1024,
      maxBlockSize: 256 * 1024
    })
  }))

  t.test('each block is committed as it is staged: the blob holds the bytes, in blocks of growing size', async (t) => {
    const container = await azurite.container()
    const store = new AzureStore({ containerClient: container, blockSize: 1024, maxBlockSize: 4096, accessTier: 'Cool' })
    const id = newId()
    await store.create({ id, size: 20_000, metadata: { filetype: 'text/plain' } })
    const data = randomBytes(20_000)
    const blob = container.getBlockBlobClient(id)
    let seen = -1
    const body = Readable.from((async function * () {
      yield data.subarray(0, 5000)
      // the blocks of the first 5000 bytes are committed while the body is still open
      await sleep(500)
      seen = (await blob.getProperties()).contentLength ?? -1
      yield data.subarray(5000)
    })())
    t.equal(await store.write(id, { offset: 0, body }), 20_000)
    t.equal(seen, 5000 - (5000 % 1024), 'committed block by block while the body streams')
    const list = await blob.getBlockList('committed')
    t.equal(list.committedBlocks?.length, 20, '20 blocks of 1 KiB')
    t.same(await collect(await store.read(id)), data)
    const properties = await blob.getProperties()
    t.equal(properties.contentType, 'text/plain', 'the filetype is the blob\'s Content-Type')
    t.equal(properties.accessTier, 'Cool')
    t.equal(blockSizeAt(0, 1024, 4096), 1024)
    t.equal(blockSizeAt(5000, 1024, 4096), 2048, 'doubles after 5,000 blocks')
    t.equal(blockSizeAt(49_999, 1024, 4096), 4096, 'up to the largest')
    t.equal(blockSizeAt(49_999, 8 * 1024 * 1024, 100 * 1024 * 1024) * 30_000 > 2 * 1024 ** 4, true, 'the defaults reach terabytes within 50,000 blocks')
  })

  t.test('metadata lives in the .info blob, never in blob metadata headers', async (t) => {
    const container = await azurite.container()
    const store = new AzureStore({ containerClient: container })
    const id = newId()
    await store.create({ id, size: 3, metadata: { name: 'größe\r\nx-ms-meta-evil: 1.bin', empty: '' } })
    const data = await container.getBlockBlobClient(id).getProperties()
    const info = await container.getBlockBlobClient(`${id}.info`).getProperties()
    t.same(data.metadata, {}, 'no metadata on the data blob')
    t.same(info.metadata, {}, 'none on the .info blob either')
    t.same((await store.get(id)).metadata, { name: 'größe\r\nx-ms-meta-evil: 1.bin', empty: '' })
  })

  t.test('two writers at one offset: the second commit fails on the ETag, nothing mixes', async (t) => {
    const container = await azurite.container()
    const a = new AzureStore({ containerClient: container })
    const b = new AzureStore({ containerClient: container })
    const id = newId()
    await a.create({ id, size: 10, metadata: {} })
    let release: () => void = () => {}
    const gate = new Promise<void>((resolve) => { release = resolve })
    const slow = Readable.from((async function * () {
      await gate
      yield Buffer.from('AAAA')
    })())
    const first = a.write(id, { offset: 0, body: slow })
    await new Promise((resolve) => setTimeout(resolve, 100))
    t.equal(await b.write(id, { offset: 0, body: bodyOf(Buffer.from('BBBB')) }), 4)
    release()
    await t.rejects(first, OffsetMismatch)
    t.equal((await a.get(id)).offset, 4)
    await b.write(id, { offset: 4, body: bodyOf(Buffer.from('cccccc')) })
    t.same(await collect(await a.read(id)), Buffer.from('BBBBcccccc'))
  })

  t.test('credentials from AZURE_STORAGE_ACCOUNT / AZURE_STORAGE_KEY; options are checked', async (t) => {
    const container = await azurite.container()
    const saved = { account: process.env.AZURE_STORAGE_ACCOUNT, key: process.env.AZURE_STORAGE_KEY }
    t.teardown(() => {
      if (saved.account === undefined) delete process.env.AZURE_STORAGE_ACCOUNT
      else process.env.AZURE_STORAGE_ACCOUNT = saved.account
      if (saved.key === undefined) delete process.env.AZURE_STORAGE_KEY
      else process.env.AZURE_STORAGE_KEY = saved.key
    })
    process.env.AZURE_STORAGE_ACCOUNT = ACCOUNT
    process.env.AZURE_STORAGE_KEY = ACCOUNT_KEY
    const store = new AzureStore({ container: container.containerName, endpoint: azurite.endpoint })
    const id = newId()
    await store.create({ id, size: 2, metadata: {} })
    await store.write(id, { offset: 0, body: bodyOf(Buffer.from('ok')) })
    t.same(await azurite.names(container), [id, `${id}.info`])
    delete process.env.AZURE_STORAGE_KEY
    t.throws(() => new AzureStore({ container: 'x', endpoint: azurite.endpoint }), TypeError, 'no key')
    t.throws(() => new AzureStore({ container: '' } as never), TypeError)
    t.throws(() => new AzureStore({ containerClient: container, endpoint: 'http://x' }), TypeError)
    t.throws(() => new AzureStore({ containerClient: container, accessTier: 'Warm' as never }), TypeError)
    t.throws(() => new AzureStore({ containerClient: container, createContainer: 'public' as never }), TypeError)
    t.throws(() => new AzureStore({ containerClient: container, blockSize: 0 }), RangeError)
    t.throws(() => new AzureStore({ containerClient: container, blockSize: 2048, maxBlockSize: 1024 }), RangeError)
  })

  t.test('createContainer with public blob access makes the container once', async (t) => {
    const name = `pub${counter++}`
    const store = new AzureStore({ container: name, account: ACCOUNT, accountKey: ACCOUNT_KEY, endpoint: azurite.endpoint, createContainer: 'blob' })
    await Promise.all([store.ready(), store.ready()])
    const properties = await azurite.service.getContainerClient(name).getProperties()
    t.equal(properties.blobPublicAccess, 'blob')
  })
  t.test('expiration settles uploads whose names share a beginning, and deletes bytes left without a description', async (t) => {
    const container = await azurite.container()
    const store = new AzureStore({ containerClient: container, objectPrefix: 'p/' })
    for (const id of ['ab', 'ab-c', 'ab_c', 'abc']) {
      await store.create({ id, size: 4, metadata: {} })
      await store.write(id, { offset: 0, body: bodyOf(Buffer.from(id === 'ab_c' ? 'full' : 'x')) })
    }
    await container.getBlockBlobClient('p/orphan').upload('left', 4)
    await container.getBlockBlobClient('p/not.an-upload').upload('keep', 4)
    t.equal(await store.removeExpired(new Date(Date.now() + 60_000)), 3, 'the three unfinished uploads')
    t.same(await azurite.names(container), ['p/ab_c', 'p/ab_c.info', 'p/not.an-upload'], 'the finished upload and a foreign blob stay')
  })
})
