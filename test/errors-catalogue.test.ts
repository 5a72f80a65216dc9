/**
 * The error catalogue: every class in plugin/errors.ts has its own code, and docs/protocol.md documents each
 * code with the class's status; every code the docs name exists.
 */
import { readFile } from 'node:fs/promises'
import t from 'tap'
import * as errors from '../plugin/errors.js'

interface Coded { code: string, statusCode: number }

const doc = await readFile(new URL('../docs/protocol.md', import.meta.url), 'utf8')
const classes = Object.entries(errors).map(([name, ErrorClass]) => {
  const err = new (ErrorClass as new (...args: string[]) => Coded)('a', 'b')
  return { name, code: err.code, status: err.statusCode }
})

t.test('one class per code', async (t) => {
  const seen = new Map<string, string>()
  for (const { name, code } of classes) {
    t.notOk(seen.has(code), `${code} is used by ${name} and ${seen.get(code) ?? ''}`)
    seen.set(code, name)
  }
})

t.test('each class is in the catalogue of docs/protocol.md with its code and status', async (t) => {
  const table = doc.slice(doc.indexOf('## Error codes'))
  t.ok(table.length > 0 && doc.includes('## Error codes'))
  for (const { name, code, status } of classes) {
    t.match(table, `| \`${code}\` | ${status} | \`errors.${name}\` |`, `errors.${name}`)
  }
  for (const row of table.matchAll(/^\| `(ERR_[A-Z_]+)` \| (\d+) \| `errors\.(\w+)` \|$/gm)) {
    const entry = classes.find((c) => c.name === row[3])
    t.ok(entry !== undefined, `the catalogue names errors.${row[3] ?? ''}, which exists`)
    t.equal(entry?.code, row[1], `errors.${row[3] ?? ''} has code ${row[1] ?? ''}`)
    t.equal(String(entry?.status), row[2], `errors.${row[3] ?? ''} has status ${row[2] ?? ''}`)
  }
})

t.test('every code docs/protocol.md names exists', async (t) => {
  const known = new Set(classes.map((c) => c.code))
  for (const [code] of doc.matchAll(/`(ERR_[A-Z_]+)`/g)) t.ok(known.has(code.slice(1, -1)), `${code} is a code of plugin/errors.ts`)
})
