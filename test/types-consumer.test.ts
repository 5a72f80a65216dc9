/**
 * The emitted declarations work for a TypeScript consumer: the packed package, installed into a
 * separate project, compiles with `strict` and `skipLibCheck: false` under moduleResolution
 * NodeNext, node16 and bundler, and with `exactOptionalPropertyTypes`.
 */
import { execFile } from 'node:child_process'
import { copyFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { packedConsumer, ROOT } from './helpers/consumer.js'

const run = promisify(execFile)
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')

const VARIANTS: Record<string, Record<string, unknown>> = {
  NodeNext: { module: 'NodeNext', moduleResolution: 'NodeNext' },
  node16: { module: 'node16', moduleResolution: 'node16' },
  bundler: { module: 'ESNext', moduleResolution: 'bundler' },
  'NodeNext with exactOptionalPropertyTypes': { module: 'NodeNext', moduleResolution: 'NodeNext', exactOptionalPropertyTypes: true }
}

t.test('a consumer compiles against the packed package', async (t) => {
  const dir = await packedConsumer(t)
  await copyFile(join(ROOT, 'test', 'fixtures', 'consumer', 'app.ts'), join(dir, 'app.ts'))
  // the variants compile side by side; each is its own assertion
  const results = await Promise.all(Object.entries(VARIANTS).map(async ([name, options]) => {
    const config = `tsconfig.${name.replace(/\W+/g, '-')}.json`
    await writeFile(join(dir, config), JSON.stringify({
      compilerOptions: { target: 'ES2022', strict: true, noEmit: true, skipLibCheck: false, types: ['node'], ...options },
      files: ['app.ts']
    }))
    const output = await run(process.execPath, [TSC, '-p', config], { cwd: dir, maxBuffer: 16 * 1024 * 1024 })
      .then(() => '', (err: { stdout?: string }) => err.stdout ?? String(err))
    return { name, output }
  }))
  for (const { name, output } of results) t.equal(output, '', `moduleResolution ${name}, skipLibCheck false: no diagnostics`)
})
