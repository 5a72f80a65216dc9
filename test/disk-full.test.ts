/**
 * A full disk: the upload directory is a 2 MiB tmpfs. A PATCH that runs out of space gets a
 * clear 507 with a stable code, the offset stays consistent with the bytes on disk, the server
 * keeps serving, and the upload completes once space is freed.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import t from 'tap'
import { buildApp, createUpload, OCTET, TUS } from './helpers/app.js'
import { FileStore } from '../stores/file.js'

function mountTmpfs (dir: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir], { stdio: 'pipe' })
    return undefined
  } catch (err) {
    return String((err as { stderr?: Buffer }).stderr ?? err).trim()
  }
}

t.test('a full disk is a 507, the offset stays true, and the upload recovers', async (t) => {
  const root = join('/tmp', `tus-disk-full-${process.pid}-${Date.now()}`)
  await mkdir(root, { recursive: true })
  const problem = mountTmpfs(root)
  if (problem !== undefined) {
    await rm(root, { recursive: true, force: true })
    const message = `cannot mount a tmpfs here (${problem}): the disk-full test needs root`
    if (process.env.CI === 'true') {
      t.fail(message)
    } else {
      process.stderr.write(`\n*** SKIPPED: ${message} ***\n`)
      t.plan(0, `SKIPPED: ${message}`)
    }
    return
  }
  t.teardown(async () => {
    execFileSync('umount', [root])
    await rm(root, { recursive: true, force: true })
  })
  const dir = join(root, 'uploads')
  const ballast = join(root, 'ballast')
  await writeFile(ballast, Buffer.alloc(1024 * 1024))
  const { app } = await buildApp(t, { store: new FileStore({ directory: dir }) })
  const data = randomBytes(1536 * 1024)
  const path = await createUpload(app, { 'upload-length': String(data.length) })
  const full = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': '0' }, payload: data })
  t.equal(full.statusCode, 507)
  t.equal(full.json().code, 'ERR_STORAGE_FULL')
  t.notMatch(full.body, /ENOSPC/, 'no internal detail')
  const head = await app.inject({ method: 'HEAD', url: path, headers: TUS })
  const offset = Number(head.headers['upload-offset'])
  const stored = await readFile(join(dir, path.split('/').pop() as string))
  t.equal(offset, stored.length, `the offset (${offset}) is what is on disk`)
  t.ok(offset < data.length)
  t.ok(stored.equals(data.subarray(0, offset)), 'and those bytes are right')
  t.equal((await app.inject({ method: 'OPTIONS', url: '/files/' })).statusCode, 204, 'the server stays up')

  await rm(ballast)
  const rest = await app.inject({ method: 'PATCH', url: path, headers: { ...TUS, 'content-type': OCTET, 'upload-offset': String(offset) }, payload: data.subarray(offset) })
  t.equal(rest.statusCode, 204, 'it resumes once there is space again')
  t.equal(rest.headers['upload-offset'], String(data.length))
  t.ok((await readFile(join(dir, path.split('/').pop() as string))).equals(data))
})
