/**
 * The machinery behind the command's flag table (`bin/flags.ts`): what a flag declares, the
 * readers that turn its text into a value, and what is derived from the table (the options of
 * `node:util`'s `parseArgs`, the configuration object and its type, `--help`).
 */
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { formatDuration, formatSize, parseDuration, parseSize } from './units.js'

export class FlagError extends Error {
  override name = 'FlagError'
}

/** Turns what the user typed (or nothing) into the flag's value, or throws a `FlagError`. */
export interface Reader<T> {
  read: (text: string | undefined, flag: string) => T
  /** The value the flag has when not given, as a user would type it (shown in `--help` and docs). */
  shown?: string
  /** A switch: no value. */
  switch?: true
}

export interface Flag<T = unknown, To extends string = string> {
  /** Where the value goes in the configuration: `key`, or `group.key` for a group's object. */
  to: To
  /** The `--help` section. */
  section: string
  /** The value's placeholder in `--help`, e.g. `BYTES`; none for a switch. */
  arg?: string
  /** One line, or lines separated by `\n`. */
  help: string
  read: Reader<T>
  /** A default applied by another module (the store, the locker choice): shown, never applied here. */
  shown?: string
  short?: string
}

/** Declares a flag, keeping its `to` and value type for the derived configuration type. */
export function flag<T, const To extends string> (spec: Flag<T, To>): Flag<T, To> {
  return spec
}

type ValueOf<F> = F extends Flag<infer T, string> ? T : never
type Table = Record<string, Flag<any, string>>

/** The configuration a table produces: top-level values, and one object per group (`s3.bucket`). */
export type ConfigOf<F extends Table> = {
  [N in keyof F as F[N]['to'] extends `${string}.${string}` ? never : F[N]['to']]: ValueOf<F[N]>
} & {
  [G in GroupsOf<F>]: { [N in keyof F as F[N]['to'] extends `${G}.${infer K}` ? K : never]: ValueOf<F[N]> }
}
type GroupsOf<F extends Table> = { [N in keyof F]: F[N]['to'] extends `${infer G}.${string}` ? G : never }[keyof F]

/** Reads `argv` against the table; every flag gets a value (its default when not given). */
export function readFlags<F extends Table> (table: F, argv: string[]): ConfigOf<F> {
  const options: NonNullable<ParseArgsConfig['options']> = {}
  for (const [name, spec] of Object.entries(table)) {
    options[name] = spec.read.switch === true
      ? { type: 'boolean', ...(spec.short === undefined ? {} : { short: spec.short }) }
      : { type: 'string', ...(spec.short === undefined ? {} : { short: spec.short }) }
  }
  let values: Record<string, string | boolean | undefined>
  try {
    // no flag is `multiple`, so no value is a list
    values = parseArgs({ args: argv, strict: true, allowPositionals: false, options }).values as Record<string, string | boolean | undefined>
  } catch (err) {
    throw new FlagError((err as Error).message)
  }
  const config: Record<string, unknown> = {}
  for (const [name, spec] of Object.entries(table)) {
    const given = values[name]
    const value: unknown = spec.read.read(given === true ? 'true' : given === false ? undefined : given, `--${name}`)
    const [group, key] = spec.to.includes('.') ? spec.to.split('.', 2) as [string, string] : [undefined, spec.to]
    if (group === undefined) {
      config[key] = value
    } else {
      const object = (config[group] ??= {}) as Record<string, unknown>
      object[key] = value
    }
  }
  return config as ConfigOf<F>
}

/** The default a flag shows in `--help` and docs/cli.md, as a user would type it. */
export function defaultOf (spec: Flag): string | undefined {
  return spec.shown ?? spec.read.shown
}

/** `--help`: a usage line, then each section's flags, two columns. */
export function formatHelp (table: Table, intro: string, sections: Readonly<Record<string, string>>, outro: string): string {
  const width = 30
  const out: string[] = [intro]
  for (const [section, heading] of Object.entries(sections)) {
    out.push('', ...(heading === '' ? [] : [heading]))
    for (const [name, spec] of Object.entries(table)) {
      if (spec.section !== section) continue
      const left = `  ${spec.short === undefined ? '' : `-${spec.short}, `}--${name}${spec.arg === undefined ? '' : ` ${spec.arg}`}`
      const shown = defaultOf(spec)
      const lines = spec.help.split('\n')
      if (shown !== undefined && spec.read.switch !== true) lines[lines.length - 1] += ` (default ${shown === '' ? 'none' : shown})`
      const [first, ...rest] = lines
      if (left.length < width - 1) {
        out.push(`${left.padEnd(width)}${first ?? ''}`)
      } else {
        out.push(left, `${' '.repeat(width)}${first ?? ''}`)
      }
      for (const line of rest) out.push(`${' '.repeat(width)}${line}`)
    }
  }
  out.push('', outro)
  return out.join('\n')
}

// Readers

export const toggle: Reader<boolean> = { read: (text) => text !== undefined, switch: true }

/** Any text; `undefined` when not given and there is no default. */
export function text (): Reader<string | undefined>
export function text (fallback: string, check?: (value: string, flag: string) => void): Reader<string>
export function text (fallback?: string, check?: (value: string, flag: string) => void): Reader<string | undefined> {
  return {
    read: (value, flag) => {
      const result = value ?? fallback
      if (result !== undefined) check?.(result, flag)
      return result
    },
    ...(fallback === undefined ? {} : { shown: fallback })
  }
}

/** Text that must not be empty when given. */
export function nonEmpty (): Reader<string | undefined> {
  return {
    read: (value, flag) => {
      if (value === '') throw new FlagError(`${flag} must not be empty`)
      return value
    }
  }
}

export function oneOf<const V extends string> (values: readonly V[], fallback: V): Reader<V>
export function oneOf<const V extends string> (values: readonly V[]): Reader<V | undefined>
export function oneOf<const V extends string> (values: readonly V[], fallback?: V): Reader<V | undefined> {
  return {
    read: (value, flag) => {
      const result = value ?? fallback
      if (result !== undefined && !(values as readonly string[]).includes(result)) {
        throw new FlagError(`${flag} must be one of ${values.join(', ')}, got "${result}"`)
      }
      return result as V | undefined
    },
    ...(fallback === undefined ? {} : { shown: fallback })
  }
}

export function size (fallback: number, min?: number): Reader<number>
export function size (fallback?: undefined, min?: number): Reader<number | undefined>
export function size (fallback?: number, min = 0): Reader<number | undefined> {
  return {
    read: (value, flag) => {
      if (value === undefined) return fallback
      const bytes = parseSize(value)
      if (bytes === undefined) throw new FlagError(`${flag} must be a size such as 1048576, 10MiB or 2GB, got "${value}"`)
      if (bytes < min) throw new FlagError(`${flag} must be at least ${min} byte${min === 1 ? '' : 's'}, got "${value}"`)
      return bytes
    },
    ...(fallback === undefined ? {} : { shown: formatSize(fallback) })
  }
}

/** A duration in milliseconds, at least `min`. */
export function duration (fallback: number, min: number): Reader<number> {
  return {
    read: (value, flag) => {
      if (value === undefined) return fallback
      const ms = parseDuration(value)
      if (ms === undefined) throw new FlagError(`${flag} must be a duration such as 60, 60s, 2m or 500ms, got "${value}"`)
      if (ms < min) throw new FlagError(`${flag} must be at least ${min} ms, got "${value}"`)
      return ms
    },
    shown: formatDuration(fallback)
  }
}

/** A whole number from `min` to `max`. */
export function count (fallback: number, min?: number, max?: number): Reader<number>
export function count (fallback?: undefined, min?: number, max?: number): Reader<number | undefined>
export function count (fallback?: number, min = 0, max = Number.MAX_SAFE_INTEGER): Reader<number | undefined> {
  return {
    read: (value, flag) => {
      if (value === undefined) return fallback
      if (!/^\d+$/.test(value.trim())) throw new FlagError(`${flag} must be a whole number, got "${value}"`)
      const number = Number(value.trim())
      if (number < min || number > max) {
        throw new FlagError(max === Number.MAX_SAFE_INTEGER ? `${flag} must be at least ${min}, got "${value}"` : `${flag} must be between ${min} and ${max}, got "${value}"`)
      }
      return number
    },
    ...(fallback === undefined ? {} : { shown: String(fallback) })
  }
}

/** An octal permission mode, as tusd takes it: `0700`, `700` or `0o700`. */
export function mode (fallback: number): Reader<number> {
  return {
    read: (value, flag) => {
      if (value === undefined) return fallback
      const match = /^(?:0o?)?([0-7]{1,3})$/.exec(value.trim())
      if (match === null) throw new FlagError(`${flag} must be an octal mode such as 0700, got "${value}"`)
      return parseInt(match[1] ?? '', 8)
    },
    shown: `0${fallback.toString(8)}`
  }
}

/** A comma-separated list; empty items dropped. */
export function list (fallback: readonly string[]): Reader<string[]> {
  return {
    read: (value) => (value ?? fallback.join(',')).split(',').map((item) => item.trim()).filter((item) => item !== ''),
    shown: fallback.join(',')
  }
}

/** An `http:` or `https:` URL (`https?:\/\/` and at least a host character). */
export function httpUrl (): Reader<string | undefined> {
  return {
    read: (value, flag) => {
      if (value === undefined) return undefined
      let url: URL | undefined
      try {
        url = new URL(value)
      } catch {}
      if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.host === '') {
        throw new FlagError(`${flag} must be an http:// or https:// URL, got "${value}"`)
      }
      return value
    }
  }
}

export function regex (): Reader<RegExp | undefined> {
  return {
    read: (value, flag) => {
      if (value === undefined) return undefined
      try {
        return new RegExp(value)
      } catch {
        throw new FlagError(`${flag} must be a regular expression, got "${value}"`)
      }
    }
  }
}
