/**
 * The tap face of the locker conformance suite, which lives in testing/locker.ts (shipped as
 * `fastify-tus/testing`). Each locker's test file calls `lockerConformance` with a factory.
 */
import type { Test } from 'tap'
import { lockerSuite } from '../../testing/locker.js'
import type { LockerFactory } from '../../testing/locker.js'
import { tapSuite } from './tap.js'

export type { LockerFactory } from '../../testing/locker.js'

export function lockerConformance (t: Test, name: string, factory: LockerFactory): void {
  tapSuite(t, lockerSuite(name, factory))
}
