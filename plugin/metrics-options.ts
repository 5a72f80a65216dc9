/**
 * The `metrics` option, checked without loading prom-client: the metrics themselves
 * (`./metrics.js`, on prom-client) are loaded at register time, only when the option is on.
 */
import type { Registry } from 'prom-client'
import { InvalidOption } from './errors.js'

/** What the `metrics` option accepts besides `true`. */
export interface MetricsOptions {
  /** Where the metrics are registered. Default: a new `Registry`, as `app.tus.metrics.registry`. */
  registry?: Registry | undefined
  /** Prefix of every metric name. Default `tus_`. */
  prefix?: string | undefined
  /** Buckets (seconds) of the latency histograms. Default prom-client's (0.005 … 10). */
  buckets?: number[] | undefined
}

export interface ResolvedMetrics {
  /** `undefined`: a new one, made when the metrics are (prom-client is loaded only then). */
  registry: Registry | undefined
  prefix: string
  buckets: number[] | undefined
}

/** The operations of the store contract whose latency is measured. */
export const STORE_OPERATIONS = ['create', 'get', 'write', 'remove', 'concat', 'declareLength', 'read', 'removeExpired'] as const

const PREFIX = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/

/** Checks the `metrics` option; `undefined` when metrics are off. */
export function resolveMetrics (value: unknown): ResolvedMetrics | undefined {
  if (value === undefined || value === false) return undefined
  if (value === true) return { registry: undefined, prefix: 'tus_', buckets: undefined }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InvalidOption('metrics', 'must be true, false or { registry, prefix, buckets }')
  }
  const given = value as Record<string, unknown>
  for (const key of Object.keys(given)) {
    if (key !== 'registry' && key !== 'prefix' && key !== 'buckets') throw new InvalidOption(`metrics.${key}`, 'is not an option of metrics')
  }
  const { registry, prefix, buckets } = given
  if (registry !== undefined && !isRegistry(registry)) throw new InvalidOption('metrics.registry', 'must be a prom-client Registry')
  if (prefix !== undefined && (typeof prefix !== 'string' || (prefix !== '' && !PREFIX.test(prefix)))) {
    throw new InvalidOption('metrics.prefix', `must be a Prometheus metric name prefix such as "tus_" (got ${JSON.stringify(prefix)})`)
  }
  if (buckets !== undefined) {
    const ok = Array.isArray(buckets) && buckets.length > 0 &&
      buckets.every((bucket, i) => typeof bucket === 'number' && Number.isFinite(bucket) && bucket > 0 && (i === 0 || bucket > (buckets[i - 1] as number)))
    if (!ok) throw new InvalidOption('metrics.buckets', 'must be a non-empty list of increasing positive numbers (seconds)')
  }
  return {
    registry: registry as Registry | undefined,
    prefix: (prefix as string | undefined) ?? 'tus_',
    buckets: buckets === undefined ? undefined : [...(buckets as number[])]
  }
}

/** A prom-client `Registry`, of any copy of prom-client, by its shape. */
function isRegistry (value: unknown): value is Registry {
  const candidate = value as Partial<Registry> | null
  return typeof candidate === 'object' && candidate !== null &&
    typeof candidate.getSingleMetric === 'function' && typeof candidate.registerMetric === 'function' && typeof candidate.metrics === 'function'
}
