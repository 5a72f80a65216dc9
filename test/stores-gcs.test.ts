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

storeConformance(t, 'GcsStore', async () => ({
  store: new GcsStore({ storage: target.storage, bucket: target.bucket, objectPrefix: target.prefix() })
}))

storeConformance(t, 'GcsStore with 64 KiB pieces, composed every 3', async () => ({
  store: new GcsStore({ storage: target.storage, bucket: target.bucket, objectPrefix: target.prefix(), pieceSize: 64 * 1024, maxPieces: 3 })
}))
