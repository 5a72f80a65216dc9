/**
 * Emulators that come from npm devDependencies (Azurite, dynalite): where their command script
 * is, and the gate every suite that needs one goes through (a loud skip locally, a failure in CI).
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import type { Test } from 'tap'

/**
 * A memo of `pkg`'s script at `path` (relative to its package.json), or undefined when the
 * package (or one of `alsoNeeds`, such as a native module it loads) is not installed.
 */
export function packageScript (pkg: string, path: string[], alsoNeeds: string[] = []): () => string | undefined {
  let found: string | null | undefined
  return () => {
    if (found === undefined) {
      try {
        const require = createRequire(import.meta.url)
        found = join(dirname(require.resolve(`${pkg}/package.json`)), ...path)
        for (const name of alsoNeeds) require.resolve(name)
      } catch {
        found = null
      }
    }
    return found ?? undefined
  }
}

/** Runs `body` when the emulator is installed; otherwise fails under CI=true and skips loudly elsewhere. */
export function withEmulator (t: Test, pkg: string, suites: string, installed: boolean, body: () => void): void {
  if (installed) {
    body()
    return
  }
  const why = `${pkg} is not installed (npm ci installs it as a devDependency)`
  if (process.env.CI === 'true') {
    t.fail(`${why}: the ${suites} tests must run in CI`)
    return
  }
  process.stderr.write(`\n*** SKIPPING the ${suites} tests: ${why} ***\n\n`)
  t.test(`${suites} tests`, { skip: why }, async () => {})
}
