/** The examples in examples/ run as documented (they are type-checked by `npm run typecheck`). */
import { spawn } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { tempDir } from './helpers/app.js'
import { childEnv } from './helpers/env.js'

const root = fileURLToPath(new URL('../', import.meta.url))
const tsx = import.meta.resolve('tsx')

t.test('examples/basic.ts stores an upload in ./uploads', async (t) => {
  const cwd = await tempDir(t)
  const child = spawn(process.execPath, ['--import', tsx, join(root, 'examples/basic.ts')], {
    cwd,
    env: childEnv({ PORT: '0' }),
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { child.kill('SIGKILL') })
  let output = ''
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(output)), 20_000)
    const onData = (chunk: Buffer): void => {
      output += String(chunk)
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match?.[1] !== undefined) {
        clearTimeout(timer)
        resolve(match[1])
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
  })
  const created = await fetch(`${base}/files/`, {
    method: 'POST',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '2', 'Content-Type': 'application/offset+octet-stream' },
    body: 'ok'
  })
  t.equal(created.status, 201)
  t.equal(created.headers.get('upload-offset'), '2')
  const id = (created.headers.get('location') as string).split('/').pop() as string
  t.equal(await readFile(join(cwd, 'uploads', id), 'utf8'), 'ok')
})
