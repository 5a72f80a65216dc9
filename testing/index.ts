/**
 * `fastify-tus/testing`: the store and locker conformance suites, for a store or locker written
 * outside this package. No test runner is assumed; see docs/writing-a-store.md.
 */
export { storeSuite, bodyOf } from './store.js'
export type { StoreFactory } from './store.js'
export { lockerSuite } from './locker.js'
export type { LockerFactory } from './locker.js'
export type { ConformanceCase, ConformanceSuite } from './suite.js'
