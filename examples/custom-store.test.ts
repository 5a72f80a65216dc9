/**
 * The conformance suite run against examples/custom-store.ts with node:test, as a store's own
 * repository would: `node --import tsx --test custom-store.test.ts`.
 */
import { after, before, describe, it } from 'node:test'
import { storeSuite } from 'fastify-tus/testing'
import { MapStore } from './custom-store.js'

const suite = storeSuite('MapStore', async () => ({ store: new MapStore() }))

describe(suite.name, () => {
  before(suite.setup)
  after(suite.teardown)
  for (const c of suite.cases) {
    it(c.name, async (t) => {
      const skip = c.skip()
      if (skip !== false) return t.skip(skip)
      await c.run()
    })
  }
})
