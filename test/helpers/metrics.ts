/** Reads metric values from a prom-client registry (or from Prometheus text) in tests. */
import type { Registry } from 'prom-client'

type Labels = Record<string, string>

function matches (labels: Record<string, unknown>, wanted: Labels): boolean {
  return Object.entries(wanted).every(([key, value]) => String(labels[key]) === value)
}

/** Sum of a counter's or gauge's values whose labels include `labels` (0 when none). */
export async function metricValue (registry: Registry, name: string, labels: Labels = {}): Promise<number> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) throw new Error(`no metric ${name}`)
  const { values } = await metric.get()
  return values.filter((value) => matches(value.labels, labels)).reduce((sum, value) => sum + value.value, 0)
}

/** How many observations a histogram has whose labels include `labels`. */
export async function histogramCount (registry: Registry, name: string, labels: Labels = {}): Promise<number> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) throw new Error(`no metric ${name}`)
  const { values } = await metric.get() as { values: Array<{ value: number, labels: Record<string, unknown>, metricName?: string }> }
  return values
    .filter((value) => value.metricName === `${name}_count` && matches(value.labels, labels))
    .reduce((sum, value) => sum + value.value, 0)
}

/** The value of one sample in Prometheus text format, e.g. `tus_uploads_created_total` or `tus_errors_total{code="X",status="404"}`. */
export function sample (text: string, name: string, labels: Labels = {}): number {
  let sum = 0
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (match === null || match[1] !== name) continue
    const found: Labels = {}
    for (const pair of (match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) found[pair[1] as string] = pair[2] as string
    if (matches(found, labels)) sum += Number(match[3])
  }
  return sum
}
