/**
 * Two servers on one upload directory, each with its own FileLocker (leases on, as the command
 * runs it) and store (a FileStore on that directory, or an S3Store on one radosgw bucket): a
 * HEAD or PATCH answered from what a lease remembers must never hide what the other server
 * wrote. Each hand-over of the lock starts a new lease, so the store looks again. An expiration
 * sweep takes no locks, so a lease can outlive an upload the other server removed; the upload's
 * expiry, which both servers judge alike, keeps it from taking bytes.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { FileLocker } from '../locks/file.js'
import tus from '../plugin/index.js'
import { FileStore } from '../stores/file.js'
import { S3Store } from '../stores/s3.js'
import type { DataStore } from '../stores/store.js'
import { OCTET, TUS } from './helpers/app.js'
import { s3Server, withS3 } from './helpers/ceph-s3.js'

async function server (directory: string, store: DataStore, expiration = 0): Promise<FastifyInstance> {
  const app = Fastify({ logger: false })
  const locker = new FileLocker({ directory, leaseTime: 60_000 })
  await app.register(tus, { store, locker, expiration })
  app.addHook('onClose', async () => { await locker.close() })
  await app.ready()
  return app
}

t.test('leases never hide the other server\'s bytes: HEAD and PATCH alternate between two servers', async (t) => {
  await alternate(t, (directory) => new FileStore({ directory }))
})

t.test('an upload the other server\'s expiration sweep removed takes no bytes through a lease', async (t) => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-lease-'))
  const expiration = 600
  const a = await server(directory, new FileStore({ directory }), expiration)
  const b = await server(directory, new FileStore({ directory }), expiration)
  t.teardown(async () => {
    await a.close()
    await b.close()
    await rm(directory, { recursive: true, force: true })
  })
  const created = await a.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': '10' } })
  const path = new URL(created.headers.location as string).pathname
  const patch = await a.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: 'abc' })
  t.equal(patch.statusCode, 204)
  // A keeps its lease warm with HEADs while no byte arrives, until the upload has expired
  const head = async (): Promise<number> => (await a.inject({ method: 'HEAD', url: path, headers: TUS })).statusCode
  const until = Date.now() + expiration - 200
  while (Date.now() < until) {
    t.equal(await head(), 200)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  await new Promise((resolve) => setTimeout(resolve, 300))
  t.equal(await b.tus.removeExpired(), 1, 'B\'s sweep removes the idle upload')
  // A may still know the upload from its lease, but it knows it expired (the same rule as B's sweep)
  t.ok([404, 410].includes(await head()), 'A\'s HEAD says it is gone')
  const late = await a.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '3' }, payload: 'def' })
  t.ok([404, 410].includes(late.statusCode), `A's PATCH takes no bytes (${late.statusCode})`)
  t.same((await readdir(directory)).filter((name) => !name.endsWith('.lock')), [], 'nothing of the upload is left')
})

withS3(t, () => {
  t.test('the same with S3 stores on one bucket', async (t) => {
    const s3 = await s3Server()
    const bucket = await s3.bucket()
    const stores: S3Store[] = []
    t.teardown(() => { for (const store of stores) store.destroy() })
    await alternate(t, () => {
      const store = new S3Store({ s3: s3.config, bucket })
      stores.push(store)
      return store
    })
  })
})

async function alternate (t: Test, makeStore: (directory: string) => DataStore): Promise<void> {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-lease-'))
  const a = await server(directory, makeStore(directory))
  const b = await server(directory, makeStore(directory))
  t.teardown(async () => {
    await a.close()
    await b.close()
    await rm(directory, { recursive: true, force: true })
  })
  const rounds = 20
  const created = await a.inject({ method: 'POST', url: '/files/', headers: { ...TUS, 'upload-length': String(rounds * 2) } })
  t.equal(created.statusCode, 201)
  const path = new URL(created.headers.location as string).pathname
  const head = async (app: FastifyInstance): Promise<string | undefined> => {
    const res = await app.inject({ method: 'HEAD', url: path, headers: TUS })
    return res.headers['upload-offset'] as string | undefined
  }
  let offset = 0
  for (let round = 0; round < rounds; round++) {
    const [writer, other] = round % 2 === 0 ? [a, b] : [b, a]
    // the writer's lease is warm: a HEAD first, then its PATCH, then its own HEAD again
    t.equal(await head(writer), String(offset), `round ${round}: the writer sees the other's bytes`)
    const patch = await writer.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': String(offset) }, payload: 'ab' })
    t.equal(patch.statusCode, 204, `round ${round}: PATCH at ${offset}`)
    offset += 2
    t.equal(await head(writer), String(offset))
    t.equal(await head(other), String(offset), `round ${round}: the other server sees the new bytes`)
  }
  const download = await b.inject({ method: 'GET', url: path })
  t.equal(download.body, 'ab'.repeat(rounds))
}
