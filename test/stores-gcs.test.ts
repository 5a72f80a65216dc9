/**
 * The store conformance suite on the GCS store: on the GCS fake, or on a real bucket when
 * GCS_BUCKET is set (see test/helpers/gcs.ts).
 */
import t from 'tap'
import { GcsStore } from '../stores/gcs.js'
import { storeConformance } from './conformance/store.js'
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
