/**
 * HEAD answers keep Node clients' connections: `http.Agent` (what tus-js-client uses in Node)
 * closes a kept-alive connection after a 200 to a HEAD without `Content-Length` or chunked
 * framing (nodejs/node#28438), so every resume cost a new connection. Checked on a real socket
 * with the tus dialect and every IETF draft version, and with tus-js-client's resume.
 */
import { Agent, request } from 'node:http'
import t from 'tap'
import * as tus from 'tus-js-client'
import { buildApp } from './helpers/app.js'

interface Answer { status: number, length: string | undefined, reused: boolean }

function head (agent: Agent, url: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'HEAD', agent, headers }, (res) => {
      res.resume()
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, length: res.headers['content-length'], reused: req.reusedSocket }) })
    })
    req.on('error', reject)
    req.end()
  })
}

/** Creates an upload of 10 bytes with 3 stored and returns its URL. */
async function upload (base: string): Promise<string> {
  const created = await fetch(`${base}/files/`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '10' } })
  const url = new URL(created.headers.get('location') ?? '', base).href
  await fetch(url, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: 'abc'
  })
  return url
}

t.test('HEADs on one kept-alive connection: tus and every draft version', async (t) => {
  const { app } = await buildApp(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const url = await upload(base)
  const dialects: Array<[string, Record<string, string>]> = [
    ['tus', { 'Tus-Resumable': '1.0.0' }],
    ...[3, 4, 5, 6, 7, 8].map((version): [string, Record<string, string>] => [`draft ${version}`, { 'Upload-Draft-Interop-Version': String(version) }])
  ]
  for (const [name, headers] of dialects) {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    t.teardown(() => agent.destroy())
    const answers: Answer[] = []
    for (let i = 0; i < 4; i++) answers.push(await head(agent, url, headers))
    t.ok(answers.every((answer) => answer.status === 200 || answer.status === 204), `${name}: ${answers.map((a) => a.status).join(', ')}`)
    t.same(answers.map((answer) => answer.reused), [false, true, true, true], `${name}: one connection for four HEADs`)
    if (answers[0]?.status === 200) t.equal(answers[0].length, '0', `${name}: Content-Length: 0`)
  }
  // an unknown upload's HEAD (an error with its length) keeps the connection too
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const missing = [await head(agent, `${base}/files/nope`, { 'Tus-Resumable': '1.0.0' }), await head(agent, `${base}/files/nope`, { 'Tus-Resumable': '1.0.0' })]
  t.same(missing.map((answer) => [answer.status, answer.reused]), [[404, false], [404, true]])
})

t.test('tus-js-client resuming in Node asks its HEAD on the connection it already has', async (t) => {
  const { app } = await buildApp(t)
  const connections: number[] = []
  app.server.on('connection', (socket) => connections.push(socket.remotePort ?? 0))
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
  const url = await upload(base)
  const before = connections.length
  // the same origin through Node's global agent (kept alive by default since Node 19)
  await new Promise<void>((resolve, reject) => {
    const resumed = new tus.Upload(Buffer.from('abcdefghij'), { uploadUrl: url, onError: reject, onSuccess: () => { resolve() } })
    resumed.start()
  })
  t.equal(connections.length - before, 1, 'the HEAD and the PATCH after it share one connection')
  const done = await fetch(url, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } })
  t.equal(done.headers.get('upload-offset'), '10')
})
