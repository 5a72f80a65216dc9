/**
 * The Node limit: a bare `node:http` server that pipes request bodies into files with no
 * protocol logic at all (no validation, no locks, no metadata). It answers just enough of tus
 * (Location, Upload-Offset) for the load client to drive it like the real servers.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { mkdir, open, stat } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'

const [dir = './bench-raw', portText = '0'] = process.argv.slice(2)
await mkdir(dir, { recursive: true })

/**
 * `RAW_BALLAST=n` keeps n small live objects (about 180 bytes each with their parts) for the
 * server's lifetime: a heap the size of a framework's, to see what V8's collector makes of it.
 */
const ballast = Array.from({ length: Number(process.env.RAW_BALLAST ?? 0) }, (_, i) => ({ i, text: `x${i}`, pair: [i, i + 1], inner: { i } }))

const server = createServer((req, res) => {
  const id = req.url?.split('/').pop() ?? ''
  if (req.method === 'POST') {
    const name = randomBytes(16).toString('hex')
    open(join(dir, name), 'w').then(async (handle) => {
      await handle.close()
      const file = createWriteStream(join(dir, name), { flags: 'a' })
      req.pipe(file)
      file.on('finish', () => {
        res.writeHead(201, { Location: `/files/${name}`, 'Upload-Offset': String(file.bytesWritten) })
        res.end()
      })
    }, () => { res.writeHead(500).end() })
    return
  }
  if (req.method === 'PATCH') {
    const file = createWriteStream(join(dir, id), { flags: 'a' })
    req.pipe(file)
    file.on('finish', () => {
      stat(join(dir, id)).then((s) => {
        res.writeHead(204, { 'Upload-Offset': String(s.size) })
        res.end()
      }, () => res.writeHead(500).end())
    })
    return
  }
  if (req.method === 'HEAD') {
    stat(join(dir, id)).then((s) => {
      res.writeHead(200, { 'Upload-Offset': String(s.size), 'Cache-Control': 'no-store' })
      res.end()
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
