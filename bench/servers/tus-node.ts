/**
 * The peer: @tus/server with @tus/file-store on plain `node:http`, set up as its README shows.
 */
import { FileStore } from '@tus/file-store'
import { Server } from '@tus/server'
import { createServer } from 'node:http'

const [dir = './bench-tus-node', portText = '0'] = process.argv.slice(2)
const tusServer = new Server({ path: '/files', datastore: new FileStore({ directory: dir }) })
const server = createServer((req, res) => { tusServer.handle(req, res).catch(() => { res.destroy() }) })
server.requestTimeout = 0
server.keepAliveTimeout = 60_000
server.listen(Number(portText), '127.0.0.1', () => {
  const address = server.address()
  process.stdout.write(`listening on http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/files/\n`)
})
