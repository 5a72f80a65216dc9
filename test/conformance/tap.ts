/** Runs a runner-independent conformance suite (testing/) as tap subtests. */
import type { Test } from 'tap'
import type { ConformanceSuite } from '../../testing/suite.js'

export function tapSuite (t: Test, suite: ConformanceSuite): void {
  t.test(suite.name, async (t) => {
    await suite.setup()
    t.teardown(suite.teardown)
    for (const c of suite.cases) {
      t.test(c.name, { skip: c.skip() }, async () => { await c.run() })
    }
  })
}
