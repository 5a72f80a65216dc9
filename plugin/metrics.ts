/**
 * Prometheus metrics (the `metrics` option), on `prom-client`. Everything is fed from one place:
 * the runtime's events (`upload-created`, `chunk-written`, `lock-wait` …), an `onResponse` hook
 * of the routes scope, and a wrapper around the store that times each operation. With `metrics`
 * off none of this exists and the request path does no extra work.
 *
 * Metrics live in their own `Registry` (prom-client's global one is never touched unless it is
 * passed in). Two plugin instances on one registry share the metrics: the second one finds them
 * registered and adds to them.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { DataStore } from '../stores/store.js'
import { InvalidOption } from './errors.js'
import { STORE_OPERATIONS, type ResolvedMetrics } from './metrics-options.js'

const METHODS = new Set(['OPTIONS', 'HEAD', 'GET', 'POST', 'PATCH', 'DELETE'])
const CODE = /^[A-Z][A-Z0-9_]{0,63}$/

type Metric = Counter<string> | Gauge<string> | Histogram<string>

/** The plugin's metrics, as `app.tus.metrics`. */
export class TusMetrics {
  readonly registry: Registry
  readonly prefix: string
  /** Requests answered, by method and route (`collection` or `upload`). */
  readonly requests: Counter<'method' | 'route'>
  /** Error responses, by status and error code. */
  readonly errors: Counter<'status' | 'code'>
  /** Bytes written to the store from request bodies. */
  readonly bytesReceived: Counter
  readonly uploadsCreated: Counter
  readonly uploadsFinished: Counter
  readonly uploadsTerminated: Counter
  /** Request bodies being written to the store right now. */
  readonly uploadsActive: Gauge
  /** Upload locks this process holds right now. */
  readonly locksHeld: Gauge
  /** Seconds spent waiting for upload locks, by outcome. */
  readonly lockWait: Histogram<'outcome'>
  readonly lockTimeouts: Counter
  /** Seconds per store operation, by operation and outcome. */
  readonly storeDuration: Histogram<'operation' | 'outcome'>

  constructor ({ registry, prefix, buckets }: ResolvedMetrics) {
    this.registry = registry ?? new Registry()
    this.prefix = prefix
    const histogramBuckets = buckets === undefined ? {} : { buckets }
    this.requests = this.#metric(Counter, 'requests_total', 'tus requests answered, by method and route (collection or upload)', ['method', 'route'])
    this.errors = this.#metric(Counter, 'errors_total', 'tus error responses, by HTTP status and error code', ['status', 'code'])
    this.bytesReceived = this.#metric(Counter, 'bytes_received_total', 'Bytes of upload bodies written to the store', [])
    this.uploadsCreated = this.#metric(Counter, 'uploads_created_total', 'Uploads created', [])
    this.uploadsFinished = this.#metric(Counter, 'uploads_finished_total', 'Uploads that received their last byte', [])
    this.uploadsTerminated = this.#metric(Counter, 'uploads_terminated_total', 'Uploads terminated (DELETE, or stopped by a hook)', [])
    this.uploadsActive = this.#metric(Gauge, 'uploads_active', 'Request bodies being written to the store now', [])
    this.locksHeld = this.#metric(Gauge, 'locks_held', 'Upload locks held by this process now', [])
    this.lockWait = this.#metric(Histogram, 'lock_wait_seconds', 'Time spent waiting for an upload lock, by outcome (acquired, timeout, failed)', ['outcome'], histogramBuckets)
    this.lockTimeouts = this.#metric(Counter, 'lock_timeouts_total', 'Lock waits that hit acquireLockTimeout (answered 423)', [])
    this.storeDuration = this.#metric(Histogram, 'store_operation_seconds', 'Latency of store operations, by operation and outcome (ok, error)', ['operation', 'outcome'], histogramBuckets)
  }

  /** Registers a metric, or takes the one another plugin instance registered on the same registry. */
  #metric<M extends Metric> (
    Type: new (config: { name: string, help: string, labelNames: string[], registers: Registry[], buckets?: number[] }) => M,
    suffix: string, help: string, labelNames: string[], extra: { buckets?: number[] } = {}
  ): M {
    const name = `${this.prefix}${suffix}`
    const existing = this.registry.getSingleMetric(name)
    if (existing !== undefined) {
      if (!(existing instanceof Type)) throw new InvalidOption('metrics.registry', `already has a metric "${name}" of another type`)
      return existing
    }
    return new Type({ name, help, labelNames, registers: [this.registry], ...extra })
  }

  /** Counts a response of the routes scope (its `onResponse` hook). */
  observeResponse (request: FastifyRequest, reply: FastifyReply, code: string | undefined): void {
    const override = request.headers['x-http-method-override']
    const wanted = typeof override === 'string' ? override.trim().toUpperCase() : request.method
    const method = METHODS.has(wanted) ? wanted : 'other'
    const route = request.routeOptions.url?.endsWith('/:id') === true ? 'upload' : 'collection'
    this.requests.inc({ method, route })
    const status = reply.statusCode
    if (status >= 400) {
      this.errors.inc({ status: String(status), code: code !== undefined && CODE.test(code) ? code : status >= 500 ? 'ERR_INTERNAL_SERVER_ERROR' : 'other' })
    }
  }

  /** A lock wait ended. */
  observeLockWait (ms: number, outcome: 'acquired' | 'timeout' | 'failed'): void {
    this.lockWait.observe({ outcome }, ms / 1000)
    if (outcome === 'timeout') this.lockTimeouts.inc()
  }

  /**
   * The store, with each operation of the contract timed. Methods the store lacks stay absent, so
   * capability checks (`canTerminate` …) see the same store.
   */
  instrument<S extends DataStore> (store: S): S {
    const histogram = this.storeDuration
    const wrapped = new Map<PropertyKey, unknown>()
    for (const operation of STORE_OPERATIONS) {
      const fn = (store as unknown as Record<string, unknown>)[operation]
      if (typeof fn !== 'function') continue
      wrapped.set(operation, async function (this: unknown, ...args: unknown[]): Promise<unknown> {
        const end = histogram.startTimer({ operation })
        try {
          const result: unknown = await (fn as (...a: unknown[]) => Promise<unknown>).apply(store, args)
          end({ outcome: 'ok' })
          return result
        } catch (err) {
          end({ outcome: 'error' })
          throw err
        }
      })
    }
    return new Proxy(store, {
      get (target, property) {
        if (wrapped.has(property)) return wrapped.get(property)
        const value: unknown = Reflect.get(target, property)
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
      }
    })
  }
}
