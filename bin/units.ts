/**
 * Sizes and durations as people type them (`10MiB`, `2GB`, `1.5m`, `500ms`), and back for
 * display. Used by the command's flags and by the benchmarks.
 */

const SIZE = /^(\d+)\s*(b|kb|kib|mb|mib|gb|gib|tb|tib)?$/i
const UNIT_BYTES: Readonly<Record<string, number>> = {
  b: 1, kb: 1e3, kib: 1024, mb: 1e6, mib: 1024 ** 2, gb: 1e9, gib: 1024 ** 3, tb: 1e12, tib: 1024 ** 4
}

/** `1048576`, `10MiB`, `2GB` → bytes; `undefined` for anything else (or beyond a safe integer). */
export function parseSize (text: string): number | undefined {
  const match = SIZE.exec(text.trim())
  if (match === null) return undefined
  const bytes = Number(match[1]) * (UNIT_BYTES[(match[2] ?? 'b').toLowerCase()] ?? 1)
  return Number.isSafeInteger(bytes) ? bytes : undefined
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/** `60` (seconds), `60s`, `1.5m`, `500ms` → milliseconds; `undefined` for anything else. */
export function parseDuration (text: string): number | undefined {
  const match = DURATION.exec(text.trim())
  if (match === null) return undefined
  return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 's'] ?? 1000))
}

/** Milliseconds in the largest unit that shows them whole: 60000 → `1m`, 1500 → `1500ms`, 0 → `0`. */
export function formatDuration (ms: number): string {
  if (ms === 0) return '0'
  for (const unit of ['h', 'm', 's'] as const) {
    const size = UNIT_MS[unit] ?? 1
    if (ms % size === 0) return `${ms / size}${unit}`
  }
  return `${ms}ms`
}

/** Bytes in the largest binary unit that shows them whole: 8388608 → `8MiB`, 1000 → `1000`. */
export function formatSize (bytes: number): string {
  if (bytes === 0) return '0'
  for (const unit of ['TiB', 'GiB', 'MiB', 'KiB'] as const) {
    const size = UNIT_BYTES[unit.toLowerCase()] ?? 1
    if (bytes % size === 0) return `${bytes / size}${unit}`
  }
  return String(bytes)
}
