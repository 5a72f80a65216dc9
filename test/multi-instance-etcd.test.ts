/**
 * Two `fastify-tus` processes on one etcd and one upload directory: a resume that lands on the
 * other instance takes the upload over at once.
 */
import { randomBytes } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { tempDir } from './helpers/app.js'
import { startServer } from './helpers/cli.js'
import { startEtcd, withEtcd } from './helpers/etcd-server.js'
import { rawRequest } from './helpers/http.js'

const TUS = { 'Tus-Resumable': '1.0.0' }
const OCTET = 'application/offset+octet-stream'

withEtcd(t, () => {
  t.test('a HEAD on B takes a stalled upload over from A within 2 s, and B completes it', async (t) => {
    const etcd = await startEtcd(t)
    const dir = await tempDir(t)
    const args = ['--port', '0', '--upload-dir', dir, '--locker', 'etcd', '--etcd-url', etcd.url, '--log-level', 'warn']
    const [a, b] = await Promise.all([startServer(t, args), startServer(t, args)])
    const created = await fetch(a.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': '1000' } })
    const path = new URL(created.headers.get('location') as string).pathname
    const first = randomBytes(400)
    const stalled = rawRequest(a.port, 'PATCH', path, { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '0', 'Content-Length': '1000' })
    stalled.write(first)
    await sleep(300)
    const started = Date.now()
    const head = await fetch(`http://127.0.0.1:${b.port}${path}`, { method: 'HEAD', headers: TUS })
    const waited = Date.now() - started
    t.equal(head.status, 200)
    t.equal(head.headers.get('upload-offset'), '400')
    t.ok(waited < 2000, `B got the lock from A in ${waited} ms`)
    const old = await stalled.response
    t.equal(old?.status, 400)
    t.match(old?.body, /ERR_UPLOAD_INTERRUPTED/)
    const rest = randomBytes(600)
    const done = await fetch(`http://127.0.0.1:${b.port}${path}`, {
      method: 'PATCH', headers: { ...TUS, 'Content-Type': OCTET, 'Upload-Offset': '400' }, body: rest
    })
    t.equal(done.status, 204)
    t.same(await readFile(join(dir, path.split('/').pop() as string)), Buffer.concat([first, rest]), 'bytes identical')
  })
})
