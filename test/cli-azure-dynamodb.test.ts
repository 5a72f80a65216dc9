/** The command with `--azure-*` (Azurite) and `--locker dynamodb` (dynalite), as tusd's flags name them. */
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { FlagError, parseFlags } from '../bin/flags.js'
import { createLockTable } from '../locks/dynamodb.js'
import { tempDir } from './helpers/app.js'
import { ACCOUNT, ACCOUNT_KEY, startAzurite, withAzurite } from './helpers/azurite.js'
import { BUILT_COMMAND, startServer } from './helpers/cli.js'
import { CREDENTIALS, startDynalite, withDynalite } from './helpers/dynalite.js'
import { rawRequest } from './helpers/http.js'

const TUS = { 'Tus-Resumable': '1.0.0' }
const OCTET = 'application/offset+octet-stream'

t.test('flag rules', async (t) => {
  t.match(parseFlags(['--azure-storage', 'uploads', '--azure-blob-access-tier', 'cool']), { azure: { container: 'uploads', accessTier: 'cool', containerAccessType: 'private', objectPrefix: '' } })
  t.match(parseFlags(['--locker', 'dynamodb', '--dynamodb-table', 'locks']), { locker: 'dynamodb', dynamodbTable: 'locks' })
  for (const bad of [['--azure-object-prefix', 'x/'], ['--azure-storage', 'Bad_Name'], ['--azure-storage', 'ok-name', '--s3-bucket', 'b'],
    ['--azure-storage', 'ok-name', '--azure-blob-access-tier', 'warm'], ['--azure-endpoint', 'ftp://x', '--azure-storage', 'ok-name'], ['--locker', 'dynamo']]) {
    t.throws(() => parseFlags(bad), FlagError, bad.join(' '))
  }
})

withAzurite(t, () => {
  t.test('--azure-storage: uploads in a container of Azurite, created by the command, nothing left after DELETE', async (t) => {
    const azurite = await startAzurite(t)
    process.env.AZURE_STORAGE_ACCOUNT = ACCOUNT
    process.env.AZURE_STORAGE_KEY = ACCOUNT_KEY
    t.teardown(() => { delete process.env.AZURE_STORAGE_ACCOUNT; delete process.env.AZURE_STORAGE_KEY })
    const name = `cmd${Date.now().toString(36)}`
    const server = await startServer(t, ['--port', '0', '--upload-dir', await tempDir(t), '--disable-demo', '--azure-storage', name,
      '--azure-endpoint', azurite.endpoint, '--azure-object-prefix', 'tus/', '--azure-blob-access-tier', 'cool'], BUILT_COMMAND)
    t.match(server.output(), new RegExp(`uploads in azure container ${name}/tus/`))
    const created = await fetch(server.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10', 'Content-Type': OCTET }, body: 'hello' })
    t.equal(created.status, 201)
    t.equal(created.headers.get('upload-offset'), '5')
    const location = created.headers.get('location') as string
    const patched = await fetch(location, { method: 'PATCH', headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '5' }, body: 'world' })
    t.equal(patched.status, 204)
    t.equal(await (await fetch(location)).text(), 'helloworld')
    const id = new URL(location).pathname.split('/').pop() as string
    const container = azurite.service.getContainerClient(name)
    t.ok((await azurite.names(container)).some((blob) => blob === `tus/${id}`), 'the blob is under the prefix')
    t.equal((await fetch(location, { method: 'DELETE', headers: TUS })).status, 204)
    t.same((await azurite.names(container)).filter((blob) => blob.includes(id)), [], 'DELETE leaves no blob of the upload')
  })
})

withDynalite(t, () => {
  t.test('--locker dynamodb: two commands share one table and one directory; a HEAD on B takes a stalled PATCH over from A', async (t) => {
    const dynalite = await startDynalite(t)
    await createLockTable(dynalite.client(t), 'cmd-locks')
    process.env.AWS_ACCESS_KEY_ID = CREDENTIALS.accessKeyId
    process.env.AWS_SECRET_ACCESS_KEY = CREDENTIALS.secretAccessKey
    t.teardown(() => { delete process.env.AWS_ACCESS_KEY_ID; delete process.env.AWS_SECRET_ACCESS_KEY })
    const dir = await tempDir(t)
    const flags = ['--port', '0', '--upload-dir', dir, '--disable-demo', '--locker', 'dynamodb', '--dynamodb-table', 'cmd-locks', '--dynamodb-endpoint', dynalite.endpoint]
    const a = await startServer(t, flags, BUILT_COMMAND)
    const b = await startServer(t, flags, BUILT_COMMAND)
    const created = await fetch(a.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '10' } })
    const path = new URL(created.headers.get('location') as string).pathname
    const stalled = rawRequest(a.port, 'PATCH', path, { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '10' })
    stalled.write('hello')
    await sleep(500)
    const started = Date.now()
    const head = await fetch(`${new URL(b.url).origin}${path}`, { method: 'HEAD', headers: TUS })
    t.equal(head.status, 200)
    t.ok(Date.now() - started < 2000, `B answered in ${Date.now() - started} ms while A's PATCH stalled`)
    t.equal(head.headers.get('upload-offset'), '5', 'A kept the bytes it received')
    stalled.socket.destroy()
    const rest = await fetch(`${new URL(b.url).origin}${path}`, { method: 'PATCH', headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '5' }, body: 'world' })
    t.equal(rest.status, 204, 'B resumes it')
    t.equal(await (await fetch(`${new URL(a.url).origin}${path}`)).text(), 'helloworld')
  })
})
