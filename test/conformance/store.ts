/**
 * The tap face of the store conformance suite, which lives in testing/store.ts (shipped as
 * `fastify-tus/testing`). Each store's test file calls `storeConformance` with a factory.
 */
import type { Test } from 'tap'
import { storeSuite } from '../../testing/store.js'
import type { StoreFactory } from '../../testing/store.js'
import { tapSuite } from './tap.js'

export { bodyOf } from '../../testing/store.js'
export type { StoreFactory } from '../../testing/store.js'

export function storeConformance (t: Test, name: string, factory: StoreFactory): void {
  tapSuite(t, storeSuite(name, factory))
}
