/** The command's `--s3-*` flags and the store they build (no S3 server needed). */
import t from 'tap'
import { FlagError, HELP, parseFlags, type CliConfig } from '../bin/flags.js'
import { createStore } from '../bin/store.js'
import { FileStore } from '../stores/file.js'
import { S3Store } from '../stores/s3.js'

const MiB = 1024 * 1024
delete process.env.AWS_REGION

function config (argv: string[]): CliConfig {
  const parsed = parseFlags(argv)
  if (typeof parsed === 'string') throw new Error(`unexpected ${parsed}`)
  return parsed
}

t.test('flags', async (t) => {
  t.equal(config([]).s3, undefined, 'files by default')
  t.same(config(['--s3-bucket', 'uploads']).s3, {
    bucket: 'uploads',
    endpoint: undefined,
    forcePathStyle: false,
    objectPrefix: '',
    partSize: undefined,
    minPartSize: undefined,
    maxConcurrentPartUploads: undefined,
    bufferDir: undefined
  })
  t.same(config(['--s3-bucket', 'b', '--s3-endpoint', 'http://127.0.0.1:9000', '--s3-force-path-style', '--s3-object-prefix', 'tus/',
    '--s3-part-size', '16MiB', '--s3-min-part-size', '16MiB', '--s3-max-concurrent-part-uploads', '3', '--s3-buffer-dir', '/tmp/parts']).s3, {
    bucket: 'b',
    endpoint: 'http://127.0.0.1:9000',
    forcePathStyle: true,
    objectPrefix: 'tus/',
    partSize: 16 * MiB,
    minPartSize: 16 * MiB,
    maxConcurrentPartUploads: 3,
    bufferDir: '/tmp/parts'
  })
  t.match(config(['--s3-bucket', 'b', '--s3-part-size', '1MiB', '--s3-min-part-size', '512KiB']).s3, { partSize: MiB, minPartSize: 512 * 1024 })
  for (const bad of [
    ['--s3-endpoint', 'http://s3'],
    ['--s3-object-prefix', 'x/'],
    ['--s3-force-path-style'],
    ['--s3-bucket', ''],
    ['--s3-bucket', 'a/b'],
    ['--s3-bucket', 'b', '--s3-endpoint', 's3.example'],
    ['--s3-bucket', 'b', '--s3-part-size', '0'],
    ['--s3-bucket', 'b', '--s3-part-size', 'big'],
    ['--s3-bucket', 'b', '--s3-max-concurrent-part-uploads', '0'],
    ['--s3-bucket', 'b', '--s3-max-concurrent-part-uploads', 'many'],
    ['--s3-bucket', 'b', '--s3-buffer-dir', '']
  ]) {
    t.throws(() => parseFlags(bad), FlagError, bad.join(' '))
  }
  t.match(HELP, /--s3-bucket NAME/)
  t.match(HELP, /AWS_ACCESS_KEY_ID/)
})

t.test('the store the flags build', async (t) => {
  const files = await createStore(undefined, '/tmp/uploads')
  t.ok(files.store instanceof FileStore)
  t.equal(files.maxSize, undefined)
  t.same(files.storage('abc'), { Type: 'filestore', Path: '/tmp/uploads/abc', InfoPath: '/tmp/uploads/abc.info' })
  await files.close()

  const s3 = await createStore(config(['--s3-bucket', 'b', '--s3-endpoint', 'http://127.0.0.1:9', '--s3-object-prefix', 'p/',
    '--s3-part-size', '6MiB', '--s3-max-concurrent-part-uploads', '2']).s3, '/tmp/uploads')
  t.ok(s3.store instanceof S3Store)
  const store = s3.store as S3Store
  t.equal(store.bucket, 'b')
  t.equal(store.objectPrefix, 'p/')
  t.equal(await store.client.config.region(), 'us-east-1', 'a custom endpoint without AWS_REGION gets a region')
  t.equal(s3.maxSize, store.maxUploadSize)
  t.same(s3.storage('abc'), { Type: 's3store', Bucket: 'b', Key: 'p/abc' })
  await s3.close()

  // the part-size rules are the store's; the command reports them as usage errors naming the flags
  for (const bad of [
    ['--s3-bucket', 'b', '--s3-part-size', '1MiB'],
    ['--s3-bucket', 'b', '--s3-min-part-size', '9MiB'],
    ['--s3-bucket', 'b', '--s3-part-size', '6MiB', '--s3-min-part-size', '7MiB']
  ]) {
    await t.rejects(createStore(config(bad).s3, '/tmp/uploads'), { name: 'FlagError', message: /--s3-part-size/ }, bad.join(' '))
  }
})
