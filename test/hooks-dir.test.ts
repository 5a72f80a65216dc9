/**
 * tusd's file hooks: executables named after the hook in a directory, JSON on stdin and stdout,
 * TUS_ID / TUS_SIZE / TUS_OFFSET in the environment, a missing file skips the hook and a
 * non-zero exit is an error. The transport on its own, then the command with `--hooks-dir`.
 */
import { EventEmitter } from 'node:events'
import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { FileHookTransport } from '../bin/hooks/file.js'
import { emptyHookResponse, type HookRequest } from '../bin/hooks/protocol.js'
import { main } from '../bin/main.js'
import { tempDir } from './helpers/app.js'
import { BUILT_COMMAND, startServer } from './helpers/cli.js'

const NODE = `#!${process.execPath}`

async function script (dir: string, name: string, text: string, mode = 0o755): Promise<void> {
  await writeFile(join(dir, name), text)
  await chmod(join(dir, name), mode)
}

function sample (type: HookRequest['Type'], id = 'abc'): HookRequest {
  return {
    Type: type,
    Event: {
      Upload: { ID: id, Size: 42, SizeIsDeferred: false, Offset: 7, MetaData: { filename: 'a.txt' }, IsPartial: false, IsFinal: false, PartialUploads: null, Storage: null },
      HTTPRequest: { Method: 'PATCH', URI: `/files/${id}`, RemoteAddr: '127.0.0.1:5000', Header: { Host: ['localhost'] } }
    }
  }
}

t.test('the transport: stdin, environment, working directory, stdout', async (t) => {
  const dir = await tempDir(t)
  await script(dir, 'pre-create', `#!/bin/sh
cat > request.json
echo "$TUS_ID $TUS_SIZE $TUS_OFFSET $(pwd)" > env.txt
echo '{"RejectUpload": true, "HTTPResponse": {"StatusCode": 409, "Body": "taken"}}'
`)
  const hooks = new FileHookTransport({ directory: dir })
  const answer = await hooks.invoke(sample('pre-create'))
  t.equal(answer.RejectUpload, true)
  t.same(answer.HTTPResponse, { StatusCode: 409, Body: 'taken', Header: {} })
  t.same(JSON.parse(await readFile(join(dir, 'request.json'), 'utf8')), sample('pre-create'), 'the HookRequest on stdin')
  t.equal(await readFile(join(dir, 'env.txt'), 'utf8'), `abc 42 7 ${dir}\n`, 'TUS_ID, TUS_SIZE, TUS_OFFSET; run in the directory')
})

t.test('the transport: missing, silent, failing, unreadable and careless hooks', async (t) => {
  const dir = await tempDir(t)
  const hooks = new FileHookTransport({ directory: dir, stderr: 'ignore' })
  t.same(await hooks.invoke(sample('post-create')), emptyHookResponse(), 'a missing hook is skipped')

  await script(dir, 'post-finish', '#!/bin/sh\nexit 0\n')
  t.equal((await hooks.invoke(sample('post-finish'))).StopUpload, false, 'no output: an empty response')

  await script(dir, 'pre-finish', '#!/bin/sh\necho partial output\necho oops >&2\nexit 3\n')
  await t.rejects(hooks.invoke(sample('pre-finish')), /unexpected return code 3 from hook .*pre-finish: partial output/)

  await script(dir, 'pre-terminate', '#!/bin/sh\necho not json\n')
  await t.rejects(hooks.invoke(sample('pre-terminate')), /failed to parse hook response/)

  await script(dir, 'post-terminate', '#!/bin/sh\nexit 0\n', 0o644)
  await t.rejects(hooks.invoke(sample('post-terminate')), /could not be run: .*EACCES/, 'a file that is not executable is an error')

  await script(dir, 'post-receive', '#!/bin/sh\nkill -9 $$\n')
  await t.rejects(hooks.invoke(sample('post-receive')), /unexpected return code SIGKILL/)

  // never reads its stdin, which is larger than a pipe buffer
  await script(dir, 'pre-create', `${NODE}\nprocess.stdout.write('{"StopUpload": true}')\n`)
  const big = sample('pre-create')
  big.Event.HTTPRequest.Header['X-Big'] = ['x'.repeat(1024 * 1024)]
  t.equal((await hooks.invoke(big)).StopUpload, true)
})

async function writeHooks (dir: string): Promise<void> {
  await script(dir, 'pre-create', `${NODE}
let input = ''
process.stdin.on('data', (chunk) => { input += chunk })
process.stdin.on('end', () => {
  const { Upload } = JSON.parse(input).Event
  if (Upload.MetaData.filename === 'forbidden.txt') {
    console.log(JSON.stringify({ RejectUpload: true, HTTPResponse: { StatusCode: 451, Body: 'not here', Header: { 'X-Script': 'pre-create' } } }))
  } else {
    console.log(JSON.stringify({ ChangeFileInfo: { ID: 'script-' + Upload.Size, MetaData: { name: Upload.MetaData.filename } } }))
  }
})
`)
  await script(dir, 'post-finish', `#!/bin/sh
cat > "finished-$TUS_ID.json"
echo "$TUS_ID $TUS_SIZE $TUS_OFFSET" > "finished-$TUS_ID.env"
`)
  await script(dir, 'pre-terminate', '#!/bin/sh\necho "refusing $TUS_ID" >&2\nexit 1\n')
  await script(dir, 'pre-finish', '#!/bin/sh\necho \'{"HTTPResponse": {"StatusCode": 200, "Body": "stored", "Header": {"X-Script": "pre-finish"}}}\'\n')
}

async function exercise (t: Test, url: string, hooksDir: string, uploadDir: string): Promise<void> {
  const metadata = (name: string): string => `filename ${Buffer.from(name).toString('base64')}`
  const rejected = await fetch(url, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '3', 'Upload-Metadata': metadata('forbidden.txt') } })
  t.equal(rejected.status, 451)
  t.equal(await rejected.text(), 'not here')
  t.equal(rejected.headers.get('x-script'), 'pre-create')

  const created = await fetch(url, {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '3', 'Upload-Metadata': metadata('ok.txt'), 'Content-Type': 'application/offset+octet-stream' },
    body: 'abc'
  })
  t.equal(created.status, 200, 'the pre-finish hook\'s status for the creation that completed the upload')
  t.equal(await created.text(), 'stored')
  t.equal(created.headers.get('x-script'), 'pre-finish')
  t.equal(new URL(created.headers.get('location') as string).pathname.split('/').pop(), 'script-3')
  t.same(JSON.parse(await readFile(join(uploadDir, 'script-3.info'), 'utf8')).metadata, { name: 'ok.txt' })

  let env = ''
  for (let i = 0; i < 100 && env === ''; i++) {
    env = await readFile(join(hooksDir, 'finished-script-3.env'), 'utf8').catch(() => '')
    if (env === '') await sleep(50)
  }
  t.equal(env, 'script-3 3 3\n', 'post-finish ran (asynchronously) with the environment')
  t.match(JSON.parse(await readFile(join(hooksDir, 'finished-script-3.json'), 'utf8')), { Type: 'post-finish', Event: { Upload: { ID: 'script-3', Offset: 3 } } })

  const refused = await fetch(`${url}script-3`, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } })
  t.equal(refused.status, 500, 'a failing pre-terminate hook is a 500')
  t.notMatch(await refused.text(), /refusing|return code/)
  t.equal((await fetch(`${url}script-3`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })).status, 200)
}

t.test('the command with --hooks-dir (the built command, as a child process)', async (t) => {
  const hooksDir = await tempDir(t)
  const uploadDir = await tempDir(t)
  await writeHooks(hooksDir)
  const server = await startServer(t, ['--port', '0', '--upload-dir', uploadDir, '--log-level', 'warn', '--hooks-dir', hooksDir,
    '--hooks-enabled-events', 'pre-create,post-finish,pre-terminate,pre-finish'], BUILT_COMMAND)
  await exercise(t, server.url, hooksDir, uploadDir)
  t.match(server.output(), /refusing script-3/, 'the script\'s stderr goes to the server\'s stderr')
})

t.test('the command with --hooks-dir (in-process)', async (t) => {
  const hooksDir = await tempDir(t)
  const uploadDir = await tempDir(t)
  await writeHooks(hooksDir)
  let out = ''
  const app = await main(['--host', '127.0.0.1', '--port', '0', '--upload-dir', uploadDir, '--log-level', 'silent', '--hooks-dir', hooksDir,
    '--hooks-enabled-events', 'pre-create, post-finish ,pre-terminate,pre-finish'], {
    stdout: (text) => { out += text },
    stderr: () => {},
    exit: () => {},
    signals: new EventEmitter()
  })
  t.teardown(async () => await app?.close())
  await exercise(t, /listening on (\S+)/.exec(out)?.[1] as string, hooksDir, uploadDir)
})
