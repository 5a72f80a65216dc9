/**
 * Property-based fuzzing: random tus requests (methods, header values, metadata, concatenation
 * lists, ids with traversal attempts) never get a 5xx, never crash the server, and never create
 * or change a file outside the upload directory. Fixed seed in CI; FUZZ_RUNS and FUZZ_SEED
 * explore more.
 */
import fc from 'fast-check'
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import Fastify from 'fastify'
import tus from '../plugin/index.js'
import { FileStore } from '../stores/file.js'
import { FileLocker } from '../locks/file.js'
import { tempDir } from './helpers/app.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 300)
const SEED = Number(process.env.FUZZ_SEED ?? 20261124)

/** Every file below `root` except the upload directory, with its size and content digest. */
async function snapshot (root: string, skip: string): Promise<Map<string, string>> {
  const files = new Map<string, string>()
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir)) {
      const path = join(dir, name)
      if (path === skip) continue
      const info = await stat(path)
      if (info.isDirectory()) await walk(path)
      else files.set(path, `${info.size}:${(await readFile(path)).toString('base64')}`)
    }
  }
  await walk(root)
  return files
}

const ids = fc.oneof(
  fc.constantFrom('../secret', '..%2Fsecret', '..%2F..%2Fsentinel%2Fdata', '%2e%2e%2fsecret', 'a%00b', '.', '..', '%2F', 'x.info', 'x.lock', 'CON', ''),
  fc.stringMatching(/^[A-Za-z0-9_.%-]{1,40}$/),
  fc.constant('KNOWN')
)
const headerValue = fc.oneof(
  fc.constantFrom('0', '1', '-1', '+5', '05', '1.5', '9007199254740993', '', ' ', 'abc', '1.0.0', '0.2.2', 'partial', 'final;/files/KNOWN', 'final;../secret', 'final;http://x/files/..%2Fsecret /files/KNOWN', 'sha1 AAAA', 'md5 !!', 'sha1 qZk+NkcGgWq6PiVxeFDCbJzQ2J0='),
  fc.stringMatching(/^[\x20-\x7e]{0,60}$/)
)
const metadata = fc.array(fc.tuple(fc.stringMatching(/^[\x21-\x7e]{0,8}$/), fc.oneof(fc.base64String({ maxLength: 12 }), fc.stringMatching(/^[\x21-\x7e]{0,8}$/))), { maxLength: 4 })
  .map((pairs) => pairs.map(([k, v]) => `${k} ${v}`).join(','))
/** A header that is usually absent. */
const rarely = <T>(arbitrary: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.integer({ min: 0, max: 9 }).chain((n) => n < 8 ? fc.constant(undefined) : arbitrary)
/** Mostly well-formed values, so requests get past the first checks and reach deeper states. */
const number = (max: number): fc.Arbitrary<string> =>
  fc.integer({ min: 0, max: 9 }).chain((n) => n < 7 ? fc.integer({ min: 0, max }).map(String) : headerValue)
const request = fc.constantFrom('OPTIONS', 'POST', 'POST', 'POST', 'HEAD', 'PATCH', 'PATCH', 'PATCH', 'DELETE', 'GET', 'PUT').chain((method) => fc.record({
  method: fc.constant(method),
  target: fc.integer({ min: 0, max: 9 }).chain((n) => n < 7 ? fc.constant(method === 'POST' ? '' : 'RECENT') : ids),
  headers: fc.record({
    'tus-resumable': fc.integer({ min: 0, max: 9 }).chain((n) => n < 8 ? fc.constant('1.0.0') : headerValue),
    'upload-length': number(1100),
    'upload-offset': number(40),
    'upload-defer-length': rarely(headerValue),
    'upload-concat': rarely(headerValue),
    'upload-checksum': rarely(headerValue),
    'upload-metadata': rarely(fc.oneof(metadata, headerValue)),
    'content-type': fc.integer({ min: 0, max: 9 }).chain((n) => n < 7 ? fc.constant('application/offset+octet-stream') : fc.constantFrom('text/plain', 'application/json', '')),
    'x-http-method-override': rarely(fc.constantFrom('PATCH', 'DELETE', 'HEAD', 'GET', 'BREW')),
    range: rarely(fc.constantFrom('bytes=0-1', 'bytes=-5', 'bytes=9-3', 'bytes=abc', 'bytes=0-0,2-3'))
  }),
  body: fc.option(fc.uint8Array({ maxLength: 64 }), { nil: undefined })
}))

t.test(`${RUNS} random requests: no 5xx, no crash, nothing touched outside the upload directory`, async (t) => {
  const root = await tempDir(t, 'tus-fuzz-')
  const uploads = join(root, 'uploads')
  const sentinel = join(root, 'sentinel')
  await mkdir(sentinel)
  await writeFile(join(sentinel, 'data'), 'do not touch')
  await writeFile(join(root, 'secret'), 'top secret')
  await writeFile(join(root, 'secret.info'), '{"id":"secret","metadata":{},"createdAt":"2020-01-01T00:00:00Z"}')
  const before = await snapshot(root, uploads)

  const app = Fastify()
  t.teardown(async () => await app.close())
  await app.register(tus, {
    store: new FileStore({ directory: uploads }),
    locker: new FileLocker({ directory: uploads }),
    maxSize: 1024,
    expiration: 60_000,
    acquireLockTimeout: 1000
  })
  const known = await app.inject({ method: 'POST', url: '/files/', headers: { 'tus-resumable': '1.0.0', 'upload-length': '10', 'upload-concat': 'partial' } })
  t.equal(known.statusCode, 201, known.body)
  const knownId = (known.headers.location as string).split('/').pop() as string

  const recent: string[] = [knownId]
  let created = 0
  const statuses: Record<number, number> = {}
  await fc.assert(fc.asyncProperty(request, async ({ method, target, headers, body }) => {
    const latest = recent.at(-1) ?? knownId
    const id = target === 'KNOWN' ? knownId : target === 'RECENT' ? latest : target
    const path = `/files/${id}`
    const clean = Object.fromEntries(Object.entries(headers)
      .filter((entry): entry is [string, string] => entry[1] !== undefined)
      .map(([k, v]) => [k, v.replace(/KNOWN/g, latest)]))
    const response = await app.inject({ method: method as 'GET', url: path, headers: clean, payload: body === undefined ? undefined : Buffer.from(body) })
    statuses[response.statusCode] = (statuses[response.statusCode] ?? 0) + 1
    if (response.statusCode === 201) {
      created++
      recent.push((response.headers.location as string).split('/').pop() as string)
    }
    if (response.statusCode >= 500 && response.statusCode !== 501 && response.statusCode !== 507) {
      throw new Error(`${method} ${path} ${JSON.stringify(clean)} → ${response.statusCode} ${response.body}`)
    }
  }), { numRuns: RUNS, seed: SEED })

  t.comment(JSON.stringify(statuses))
  t.ok(created >= RUNS / 60, `${created} uploads were created along the way`)
  t.same(await snapshot(root, uploads), before, 'nothing outside the upload directory was created or changed')
  const names = await readdir(uploads)
  t.ok(names.length > 0, `${names.length} files in the upload directory`)
  for (const name of names) {
    t.match(name, /^\.?[A-Za-z0-9_-]+(\.(info|lock|stop))?(\.[0-9a-f]+\.tmp)?$/, `only upload files in the directory: ${name}`)
  }
  t.equal((await app.inject({ method: 'OPTIONS', url: '/files/' })).statusCode, 204, 'still serving')
})
