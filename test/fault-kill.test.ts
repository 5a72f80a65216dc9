/**
 * SIGKILL at random moments of a PATCH, round after round: after each restart the offset is
 * never ahead of the bytes stored, the stored bytes are exactly what was sent, and the upload
 * completes identical. A chunk with a checksum that was cut by the kill never counts.
 */
import { createHash, randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { OCTET } from './helpers/app.js'
import { tempDir } from './helpers/app.js'
import { freePort, startServer } from './helpers/cli.js'
import { rawRequest } from './helpers/http.js'

const TUS = { 'Tus-Resumable': '1.0.0' }
const ROUNDS = Number(process.env.KILL_ROUNDS ?? 5)

t.test(`${ROUNDS} SIGKILLs at random points, then resume`, async (t) => {
  const dir = await tempDir(t)
  const port = await freePort()
  const args = ['--port', String(port), '--upload-dir', dir, '--log-level', 'silent']
  let server = await startServer(t, args)
  const data = randomBytes(4 * 1024 * 1024)
  const created = await fetch(server.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(data.length) } })
  const path = new URL(created.headers.get('location') as string).pathname
  const file = join(dir, path.split('/').pop() as string)
  let offset = 0
  for (let round = 0; round < ROUNDS && offset < data.length; round++) {
    const request = rawRequest(port, 'PATCH', path, { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': String(offset), 'Content-Length': String(data.length - offset) })
    const killAfter = 20 + Math.floor(Math.random() * 150)
    const started = Date.now()
    let sent = offset
    while (Date.now() - started < killAfter && sent < data.length) {
      const piece = data.subarray(sent, Math.min(sent + 32 * 1024, data.length))
      request.write(piece)
      sent += piece.length
      await sleep(2)
    }
    await server.kill('SIGKILL')
    request.socket.destroy()
    server = await startServer(t, args)
    const head = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'HEAD', headers: TUS })
    const reported = Number(head.headers.get('upload-offset'))
    const stored = await readFile(file)
    t.ok(reported <= stored.length, `round ${round}: offset ${reported} is not ahead of the ${stored.length} bytes stored`)
    t.ok(reported <= sent, `round ${round}: nor of what was sent (${sent})`)
    t.ok(stored.subarray(0, reported).equals(data.subarray(0, reported)), `round ${round}: the acknowledged bytes are right`)
    t.ok(reported >= offset, `round ${round}: the offset never goes back`)
    offset = reported
  }
  const rest = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'PATCH',
    headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': String(offset) },
    body: data.subarray(offset)
  })
  t.equal(rest.status, 204)
  const final = await readFile(file)
  t.equal(createHash('sha256').update(final).digest('hex'), createHash('sha256').update(data).digest('hex'), 'identical after every kill')
})

t.test('a checksummed chunk cut by SIGKILL does not count after the restart', async (t) => {
  const dir = await tempDir(t)
  const port = await freePort()
  const args = ['--port', String(port), '--upload-dir', dir, '--log-level', 'silent']
  let server = await startServer(t, args)
  const data = randomBytes(1024 * 1024)
  const created = await fetch(server.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(data.length) } })
  const path = new URL(created.headers.get('location') as string).pathname
  const first = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'PATCH', headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '0' }, body: data.subarray(0, 1000) })
  t.equal(first.status, 204)
  const digest = createHash('sha1').update(data.subarray(1000)).digest('base64')
  const request = rawRequest(port, 'PATCH', path, {
    ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '1000', 'Content-Length': String(data.length - 1000), 'Upload-Checksum': `sha1 ${digest}`
  })
  request.write(data.subarray(1000, 300_000))
  await sleep(300)
  await server.kill('SIGKILL')
  request.socket.destroy()
  const onDisk = (await readFile(join(dir, path.split('/').pop() as string))).length
  t.ok(onDisk > 1000, `unverified bytes reached the disk (${onDisk})`)
  server = await startServer(t, args)
  const head = await fetch(`http://127.0.0.1:${port}${path}`, { method: 'HEAD', headers: TUS })
  t.equal(head.headers.get('upload-offset'), '1000', 'the offset stays at the start of the unverified chunk')
  const again = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'PATCH', headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '1000', 'Upload-Checksum': `sha1 ${digest}` }, body: data.subarray(1000)
  })
  t.equal(again.status, 204)
  t.ok((await readFile(join(dir, path.split('/').pop() as string))).equals(data), 'the retried chunk replaced the unverified bytes')
})
