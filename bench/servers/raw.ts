/**
 * The Node limit: a bare `node:http` server that pipes request bodies into files with no
 * protocol logic at all (no validation, no locks, no metadata). It answers just enough of tus
 * (Location, Upload-Offset) for the load client to drive it like the real servers.
 *
 *   node --import tsx bench/servers/raw.ts <dir> <port> [--same-files]
 *
 * `--same-files` makes it do the file-system work the command's file store and file locker do
 * for an upload, and nothing else: a POST takes a lock link, creates the info file exclusively,
 * checks that no data file has the name and writes the info; a PATCH opens the data file, writes
 * and closes it (the size is known from memory, as under a lease); a HEAD answers from memory
 * for an upload this process created. So the gap between `raw --same-files` and fastify-tus is
 * the framework and the protocol, and the gap between `raw` and `raw --same-files` is the files.
 * Its HEAD answers say `Content-Length: 0`, as fastify-tus's do, so the load client (Node's
 * `http.Agent`) keeps its connections with both (nodejs/node#28438).
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { lstat, mkdir, open, stat, symlink } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'

const [dir = './bench-raw', portText = '0', ...flags] = process.argv.slice(2)
const sameFiles = flags.includes('--same-files')
await mkdir(join(dir, '.locks'), { recursive: true })

/**
 * `RAW_BALLAST=n` keeps n small live objects (about 180 bytes each with their parts) for the
 * server's lifetime: a heap the size of a framework's, to see what V8's collector makes of it.
 */
const ballast = Array.from({ length: Number(process.env.RAW_BALLAST ?? 0) }, (_, i) => ({ i, text: `x${i}`, pair: [i, i + 1], inner: { i } }))

/** With `--same-files`: the size of every upload this process created or wrote (what a lease remembers). */
const sizes = new Map<string, number>()

async function createUpload (name: string): Promise<void> {
  if (!sameFiles) {
    await (await open(join(dir, name), 'w')).close()
    return
  }
  await symlink(`${process.pid}.${name}`, join(dir, '.locks', `${name}.lock`))
  const info = await open(join(dir, `${name}.info`), 'wx', 0o600)
  try {
    if (await lstat(join(dir, name)).then(() => true, () => false)) throw new Error('taken')
    await info.writeFile(JSON.stringify({ id: name, metadata: {}, createdAt: new Date().toISOString() }))
  } finally {
    await info.close()
  }
  sizes.set(name, 0)
}

function answer (res: import('node:http').ServerResponse, status: number, headers: Record<string, string>): void {
  res.writeHead(status, headers)
  res.end()
}

const server = createServer((req, res) => {
  const id = req.url?.split('/').pop() ?? ''
  if (req.method === 'POST') {
    const name = randomBytes(16).toString('hex')
    createUpload(name).then(() => {
      // the file store makes no data file for a creation without a body
      if (sameFiles && (req.headers['content-length'] ?? '0') === '0' && req.headers['transfer-encoding'] === undefined) {
        req.resume()
        answer(res, 201, { Location: `/files/${name}`, 'Upload-Offset': '0' })
        return
      }
      const file = createWriteStream(join(dir, name), { flags: 'a' })
      req.pipe(file)
      file.on('finish', () => {
        if (sameFiles) sizes.set(name, file.bytesWritten)
        answer(res, 201, { Location: `/files/${name}`, 'Upload-Offset': String(file.bytesWritten) })
      })
    }, () => { res.writeHead(500).end() })
    return
  }
  if (req.method === 'PATCH') {
    const file = createWriteStream(join(dir, id), { flags: 'a' })
    req.pipe(file)
    file.on('finish', () => {
      const known = sizes.get(id)
      if (known !== undefined) {
        sizes.set(id, known + file.bytesWritten)
        answer(res, 204, { 'Upload-Offset': String(known + file.bytesWritten) })
        return
      }
      stat(join(dir, id)).then((s) => {
        answer(res, 204, { 'Upload-Offset': String(s.size) })
      }, () => res.writeHead(500).end())
    })
    return
  }
  if (req.method === 'HEAD') {
    const known = sizes.get(id)
    if (known !== undefined) {
      answer(res, 200, { 'Upload-Offset': String(known), 'Cache-Control': 'no-store', 'Content-Length': '0' })
      return
    }
    stat(join(dir, id)).then((s) => {
      answer(res, 200, { 'Upload-Offset': String(s.size), 'Cache-Control': 'no-store', 'Content-Length': '0' })
    }, () => res.writeHead(404).end())
    return
  }
  res.writeHead(204).end()
})
server.requestTimeout = 0
server.keepAliveTimeout = 60_000
server.listen(Number(portText), '127.0.0.1', () => {
  if (ballast.length > 0) process.stderr.write(`raw: ${ballast.length} ballast objects\n`)
  const address = server.address()
  process.stdout.write(`listening on http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/files/\n`)
})
