/** Runs a runner-independent conformance suite (testing/) as tap subtests. */
import type { Test } from 'tap'
import type { ConformanceSuite } from '../../testing/suite.js'

export function tapSuite (t: Test, suite: ConformanceSuite): void {
  t.test(suite.name, async (t) => {
    await suite.setup()
    t.teardown(suite.teardown)
    for (const c of suite.cases) {
      // a capability the store or locker does not offer has nothing to check: said, not skipped
      const missing = c.skip()
      if (missing !== false) t.comment(`${c.name}: not applicable (${missing})`)
      else t.test(c.name, async () => { await c.run() })
    }
  })
}
