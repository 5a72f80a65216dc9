/** The command's `--gcs-*` flags and the store they build (on the GCS fake). */
import t from 'tap'
import { FlagError, HELP, parseFlags, type CliConfig } from '../bin/flags.js'
import { main, type CommandIo } from '../bin/main.js'
import { createStore } from '../bin/store.js'
import { GcsStore } from '../stores/gcs.js'
import { tempDir } from './helpers/app.js'
import { GcsFake } from './helpers/gcs-fake.js'

function config (argv: string[]): CliConfig {
  const parsed = parseFlags(argv)
  if (typeof parsed === 'string') throw new Error(`unexpected ${parsed}`)
  return parsed
}

t.test('flags', async (t) => {
  t.equal(config([]).gcs, undefined, 'files by default')
  t.same(config(['--gcs-bucket', 'uploads']).gcs, { bucket: 'uploads', objectPrefix: '', endpoint: undefined })
  t.same(config(['--gcs-bucket', 'my.bucket_1', '--gcs-object-prefix', 'tus/', '--gcs-endpoint', 'http://127.0.0.1:4443/']).gcs,
    { bucket: 'my.bucket_1', objectPrefix: 'tus/', endpoint: 'http://127.0.0.1:4443' })
  t.equal(config(['--gcs-bucket', 'b12']).s3, undefined, '--gcs-bucket selects GCS, not S3')
  const bad: Array<[string[], RegExp]> = [
    [['--gcs-object-prefix', 'x/'], /--gcs-object-prefix needs --gcs-bucket/],
    [['--gcs-endpoint', 'http://127.0.0.1:1'], /--gcs-endpoint needs --gcs-bucket/],
    [['--gcs-bucket', 'b12', '--s3-bucket', 'b12'], /--gcs-bucket and --s3-bucket cannot both be given/],
    [['--gcs-bucket', ''], /--gcs-bucket must be a bucket name/],
    [['--gcs-bucket', 'ab'], /--gcs-bucket must be a bucket name/],
    [['--gcs-bucket', 'Upper'], /--gcs-bucket must be a bucket name/],
    [['--gcs-bucket', 'a/b'], /--gcs-bucket must be a bucket name/],
    [['--gcs-bucket', 'x'.repeat(64)], /--gcs-bucket must be a bucket name/],
    [['--gcs-bucket', 'b12', '--gcs-endpoint', '127.0.0.1:4443'], /--gcs-endpoint must be an http:\/\/ or https:\/\/ URL/],
    [['--gcs-bucket', 'b12', '--gcs-endpoint', 'ftp://x'], /--gcs-endpoint must be an http:\/\/ or https:\/\/ URL/]
  ]
  for (const [argv, message] of bad) t.throws(() => parseFlags(argv), { name: 'FlagError', message }, argv.join(' '))
  t.ok(config(['--gcs-bucket', `${'x'.repeat(70)}.example.com`]).gcs, 'names with dots may be longer')
  t.match(HELP, /--gcs-bucket NAME/)
  t.match(HELP, /--gcs-endpoint URL/)
  t.match(HELP, /GOOGLE_APPLICATION_CREDENTIALS/)
})

t.test('the store the flags build', async (t) => {
  const fake = await GcsFake.start()
  t.teardown(async () => { await fake.close() })
  fake.buckets.bucket('b12')
  const built = await createStore(undefined, '/tmp/uploads', config(['--gcs-bucket', 'b12', '--gcs-object-prefix', 'p/', '--gcs-endpoint', fake.url]).gcs)
  t.ok(built.store instanceof GcsStore)
  const store = built.store as GcsStore
  t.equal(store.bucket, 'b12')
  t.equal(store.objectPrefix, 'p/')
  t.equal(built.maxSize, undefined)
  t.same(built.storage('abc'), { Type: 'gcsstore', Bucket: 'b12', Key: 'p/abc' })
  // the client talks to the endpoint without looking for credentials
  await store.create({ id: 'abc', size: 2, metadata: {} })
  t.same(fake.objects('b12').map((object) => object.name), ['p/abc.info'])
  t.notOk(fake.requests.some((request) => request.headers.authorization !== undefined), 'no credentials are sent to an emulator')
  await built.close()

  await t.rejects(createStore(config(['--s3-bucket', 'b12']).s3, '/tmp/uploads', { bucket: 'b12', objectPrefix: '', endpoint: undefined }),
    FlagError, 'never both stores')
})

t.test('the command on GCS, in-process', async (t) => {
  const fake = await GcsFake.start()
  t.teardown(async () => { await fake.close() })
  let out = ''
  let err = ''
  const codes: number[] = []
  const io: CommandIo = {
    stdout: (text) => { out += text },
    stderr: (text) => { err += text },
    exit: (code) => { codes.push(code) },
    signals: new (await import('node:events')).EventEmitter()
  }
  const dir = await tempDir(t)
  t.equal(await main(['--upload-dir', dir, '--gcs-bucket', 'b12', '--s3-bucket', 'b12'], io), undefined)
  t.same(codes, [2], 'both stores: a usage error')
  t.match(err, /--gcs-bucket and --s3-bucket cannot both be given/)

  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', dir, '--log-level', 'silent',
    '--gcs-bucket', 'b12', '--gcs-object-prefix', 'tus/', '--gcs-endpoint', fake.url], io)
  if (app === undefined) throw new Error(`no server: ${err}`)
  t.teardown(async () => { await app.close() })
  t.match(out, /\(uploads in gs:\/\/b12\/tus\/\)/)
  const url = /listening on (\S+)/.exec(out)?.[1] as string
  const created = await fetch(url, {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '5', 'Content-Type': 'application/offset+octet-stream' },
    body: 'hello'
  })
  t.equal(created.status, 201)
  t.equal(created.headers.get('upload-offset'), '5')
  const id = (created.headers.get('location') as string).split('/').pop() as string
  t.same(fake.objects('b12').map((object) => object.name), [`tus/${id}`, `tus/${id}.info`])
  const [stored] = await fake.storage().bucket('b12').file(`tus/${id}`).download()
  t.equal(stored.toString(), 'hello')
})
