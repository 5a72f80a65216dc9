/**
 * The store conformance suite on the GCS store: on the GCS fake, or on a real bucket when
 * GCS_BUCKET is set (see test/helpers/gcs.ts).
 */
import t from 'tap'
import { GcsStore } from '../stores/gcs.js'
import { bodyOf, storeConformance } from './conformance/store.js'
import { gcsTarget } from './helpers/gcs.js'

const target = await gcsTarget()
t.teardown(target.close)
t.comment(target.fake === undefined ? `on the real bucket gs://${target.bucket} (GCS_BUCKET)` : `on the GCS fake at ${target.fake.url} (set GCS_BUCKET for a real bucket)`)

storeConformance(t, 'GcsStore', async () => ({
  store: new GcsStore({ storage: target.storage, bucket: target.bucket, objectPrefix: target.prefix() })
}))

storeConformance(t, 'GcsStore with 64 KiB pieces, composed every 3', async () => ({
  store: new GcsStore({ storage: target.storage, bucket: target.bucket, objectPrefix: target.prefix(), pieceSize: 64 * 1024, maxPieces: 3 })
}))

t.test('finished objects carry the Content-Type and Content-Disposition downloads get: no active content', async (t) => {
  const prefix = target.prefix()
  const store = new GcsStore({ storage: target.storage, bucket: target.bucket, objectPrefix: prefix, pieceSize: 64 * 1024 })
  const cases: Array<{ id: string, metadata: Record<string, string>, size: number, type: string, disposition: string }> = [
    { id: 'page', metadata: { filetype: 'text/html', filename: 'päge.html' }, size: 5, type: 'application/octet-stream', disposition: 'attachment; filename="p_ge.html"; filename*=UTF-8\'\'p%C3%A4ge.html' },
    { id: 'vector', metadata: { filetype: 'image/svg+xml', filename: 'x.svg' }, size: 200 * 1024, type: 'application/octet-stream', disposition: 'attachment; filename="x.svg"; filename*=UTF-8\'\'x.svg' },
    { id: 'picture', metadata: { filetype: 'image/png', filename: '../cat.png' }, size: 3, type: 'image/png', disposition: 'inline; filename="cat.png"; filename*=UTF-8\'\'cat.png' },
    { id: 'empty', metadata: { filetype: 'application/xhtml+xml' }, size: 0, type: 'application/octet-stream', disposition: 'attachment' }
  ]
  for (const { id, metadata, size, type, disposition } of cases) {
    await store.create({ id, size, metadata })
    if (size > 0) await store.write(id, { offset: 0, body: bodyOf(Buffer.alloc(size, 60)) })
    const [stored] = await target.storage.bucket(target.bucket).file(`${prefix}${id}`).getMetadata()
    t.equal(stored.contentType, type, `${id}: Content-Type`)
    t.equal(stored.contentDisposition, disposition, `${id}: Content-Disposition`)
  }
})
