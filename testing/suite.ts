/**
 * The shape of a conformance suite, independent of any test runner: set it up once, run each
 * case (it throws on failure, through `node:assert`), tear it down. A case whose capability the
 * store or locker lacks says so through `skip()`, asked after `setup()`.
 */
export interface ConformanceCase {
  name: string
  /** A reason to skip this case (the capability is missing), or `false`. Valid after `setup()`. */
  skip: () => string | false
  run: () => Promise<void>
}

export interface ConformanceSuite {
  name: string
  setup: () => Promise<void>
  teardown: () => Promise<void>
  cases: ConformanceCase[]
}

/** A check for `assert.rejects`: the error carries this stable `code` (a store may throw its own copy of the class). */
export function isCoded (...codes: string[]): (err: unknown) => boolean {
  return (err: unknown) => err instanceof Error && codes.includes((err as { code?: unknown }).code as string)
}
