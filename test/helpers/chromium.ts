/**
 * Headless Chromium for browser tests: Debian's `chromium` driven by playwright-core (never a
 * downloaded browser), in a fresh profile that is removed at teardown.
 *
 * When the binary is missing the tests are skipped loudly, except under `CI=true`, where that is
 * a failure: CI must install Debian's `chromium` package.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium, type BrowserContext } from 'playwright-core'
import type { Test } from 'tap'

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync'
]

/** Runs `body` when Chromium exists. Otherwise: under CI=true a failure, locally a loud skip. */
export function withChromium (t: Test, body: () => void): void {
  if (existsSync(CHROMIUM)) {
    body()
    return
  }
  const why = `${CHROMIUM} is not installed (apt-get install -y --no-install-recommends chromium)`
  if (process.env.CI === 'true') {
    t.fail(`${why}: the browser tests must run in CI`)
    return
  }
  process.stderr.write(`\n*** SKIPPING the browser tests: ${why} ***\n\n`)
  t.test('browser tests', { skip: why }, async () => {})
}

/** A browser context in a fresh temporary profile, closed and removed at teardown. */
export async function launchChromium (t: Test): Promise<BrowserContext> {
  const profile = await mkdtemp(join(tmpdir(), 'tus-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    viewport: { width: 1000, height: 900 }
  })
  t.teardown(async () => {
    await context.close()
    await rm(profile, { recursive: true, force: true })
  })
  return context
}
