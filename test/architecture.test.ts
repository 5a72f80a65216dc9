/**
 * The import rules of docs/architecture.md, checked by scanning the source: stores and lockers never
 * import the plugin or the command, the plugin never imports the command, the IETF dialect imports
 * no tus handler, the lifecycle is the one place a chunk is received, and `app.tus` stays small.
 */
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import Fastify from 'fastify'
import t, { type Test } from 'tap'
import tus from '../plugin/index.js'
import { MemoryStore } from '../stores/memory.js'

const root = fileURLToPath(new URL('../', import.meta.url))

async function sources (dir: string): Promise<string[]> {
  const entries = await readdir(join(root, dir), { withFileTypes: true, recursive: true })
  return entries.filter((e) => e.isFile() && e.name.endsWith('.ts')).map((e) => relative(root, join(e.parentPath, e.name)))
}

/** The repository paths a file imports (relative specifiers only, resolved; `.js` read as `.ts`). */
async function importsOf (file: string): Promise<string[]> {
  const text = await readFile(join(root, file), 'utf8')
  const found: string[] = []
  for (const match of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?\bfrom\s+['"](\.{1,2}\/[^'"]+)['"]|\bimport\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g)) {
    const spec = match[1] ?? match[2]
    if (spec !== undefined) found.push(relative(root, resolve(root, dirname(file), spec)).replace(/\.js$/, '.ts'))
  }
  return found
}

async function check (t: Test, dir: string, forbidden: string[]): Promise<void> {
  const files = await sources(dir)
  t.ok(files.length > 0, `${dir} has sources`)
  for (const file of files) {
    for (const target of await importsOf(file)) {
      for (const room of forbidden) t.notOk(target.startsWith(room), `${file} → ${target}: nothing from ${room}`)
    }
  }
}

t.test('stores/ and locks/ import nothing from plugin/ or bin/', async (t) => {
  await check(t, 'stores', ['plugin/', 'bin/'])
  await check(t, 'locks', ['plugin/', 'bin/'])
})

t.test('plugin/ imports nothing from bin/', async (t) => {
  await check(t, 'plugin', ['bin/'])
})

t.test('plugin/ietf/ imports nothing from plugin/handlers/', async (t) => {
  await check(t, 'plugin/ietf', ['plugin/handlers/'])
})

t.test('the scan sees imports (a rule that matched nothing would prove nothing)', async (t) => {
  t.ok((await importsOf('plugin/ietf/handlers.ts')).includes('plugin/lifecycle.ts'))
  t.ok((await importsOf('plugin/index.ts')).includes('plugin/runtime.ts'))
})

t.test('a chunk is received only in the lifecycle', async (t) => {
  for (const file of await sources('plugin')) {
    if (file === 'plugin/lifecycle.ts' || file === 'plugin/receive.ts') continue
    t.notOk((await importsOf(file)).includes('plugin/receive.ts'), `${file} imports plugin/receive.ts`)
  }
})

t.test('app.tus is the small public face', async (t) => {
  const app = Fastify()
  t.teardown(async () => { await app.close() })
  await app.register(tus, { path: '/files/', store: new MemoryStore() })
  await app.ready()
  for (const name of ['addHook', 'completedUploads', 'stopUpload', 'removeExpired', 'expiresAt', 'location', 'storeAs', 'on']) {
    t.equal(typeof (app.tus as unknown as Record<string, unknown>)[name], 'function', `app.tus.${name}`)
  }
  t.ok(Array.isArray(app.tus.extensions))
  t.ok(app.tus.store !== undefined && app.tus.options !== undefined)
  for (const name of ['withLock', 'withSession', 'finish', 'afterResponse', 'toHttpError', 'readLocked', 'shutdown', 'authorize', 'hooks']) {
    t.equal((app.tus as unknown as Record<string, unknown>)[name], undefined, `app.tus.${name} is internal`)
  }
})
