/**
 * How the command listens, as tusd does: plain HTTP/1.1; HTTPS with HTTP/2 by ALPN and HTTP/1.1
 * (`--tls-certificate`, `--tls-key`, `--tls-mode`); cleartext HTTP/2 with prior knowledge next
 * to HTTP/1.1 on one port (`--enable-h2c`); or a unix socket instead of TCP (`--unix-sock`).
 *
 * Node's HTTP/2 server serves HTTP/1.1 too only over TLS, so for h2c each new connection's first
 * bytes are looked at: the HTTP/2 preface (`PRI * HTTP/2.0`) hands the socket to an HTTP/2
 * server, anything else to the HTTP/1.1 server Fastify listens with.
 *
 * HTTP/2 sessions are closed gracefully (GOAWAY after their streams end) when the app closes,
 * so a stop does not wait for idle sessions to time out.
 */
import type { FastifyInstance, FastifyServerOptions } from 'fastify'
import { readFileSync, statSync, unlinkSync } from 'node:fs'
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { createServer as createHttp2Server, type Http2Server, type Http2Session } from 'node:http2'
import { connect, type Socket } from 'node:net'
import type { SecureContextOptions } from 'node:tls'
import { FlagError, type CliConfig, type TlsMode } from './flags.js'

/** What an HTTP/2 client sends first (RFC 9113 §3.4). */
const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')
/** How long a new h2c connection may stay silent before its first bytes tell which protocol it speaks. */
const SNIFF_TIMEOUT = 10_000
/** Fastify's default for idle HTTP/2 sessions. */
const SESSION_TIMEOUT = 72_000

/** tusd's TLS modes (`cmd/tusd/cli/serve.go`), in Node's terms. */
const TLS_MODES: Record<TlsMode, Pick<SecureContextOptions, 'minVersion' | 'maxVersion' | 'ciphers'>> = {
  tls13: { minVersion: 'TLSv1.3' },
  tls12: {
    minVersion: 'TLSv1.2',
    ciphers: [
      'TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256',
      'ECDHE-ECDSA-AES128-GCM-SHA256', 'ECDHE-RSA-AES128-GCM-SHA256', 'ECDHE-ECDSA-AES256-GCM-SHA384',
      'ECDHE-RSA-AES256-GCM-SHA384', 'ECDHE-ECDSA-CHACHA20-POLY1305', 'ECDHE-RSA-CHACHA20-POLY1305'
    ].join(':')
  },
  'tls12-strong': { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384' }
}

type Listening = Pick<CliConfig, 'tls' | 'enableH2c'>

/** The Fastify options that choose the server: HTTPS + HTTP/2, h2c + HTTP/1.1, or none (HTTP/1.1). */
export function serverOptions (config: Listening): Partial<FastifyServerOptions> & { http2?: true, https?: object } {
  const { certificate, key, mode } = config.tls
  if (certificate !== undefined && key !== undefined) {
    return {
      http2: true,
      https: { allowHTTP1: true, cert: readPem(certificate, '--tls-certificate'), key: readPem(key, '--tls-key'), honorCipherOrder: true, ...TLS_MODES[mode] }
    }
  }
  if (config.enableH2c) return { serverFactory: h2cServer }
  return {}
}

/**
 * What Fastify leaves to us on the servers it did not make for HTTP/1.1: no request time limit
 * (uploads are long; `networkTimeout` bounds silence), and the app's HTTP/2 sessions closed
 * gracefully when it closes (Node 20's server.close() leaves them open).
 */
export function prepareServer (app: FastifyInstance): void {
  const server = app.server as unknown as Http2Server & { requestTimeout?: number }
  if (typeof server.requestTimeout === 'number') server.requestTimeout = 0
  const sessions = (server as { [SESSIONS]?: Set<Http2Session> })[SESSIONS] ?? trackSessions(server)
  app.addHook('preClose', (done) => {
    for (const session of sessions) session.close()
    done()
  })
}

const SESSIONS = Symbol('fastify-tus.sessions')

function trackSessions (server: Http2Server): Set<Http2Session> {
  const sessions = new Set<Http2Session>()
  ;(server as { [SESSIONS]?: Set<Http2Session> })[SESSIONS] = sessions
  server.on('session', (session: Http2Session) => {
    sessions.add(session)
    session.once('close', () => sessions.delete(session))
  })
  return sessions
}

type Handler = (request: IncomingMessage, response: ServerResponse) => void

/**
 * An HTTP/1.1 server (the one Fastify listens with and closes) whose connections starting with
 * the HTTP/2 preface go to an HTTP/2 server sharing the same handler.
 */
function h2cServer (handler: Handler): Server {
  const http1 = createHttpServer(handler)
  const http2 = createHttp2Server(handler as unknown as Parameters<typeof createHttp2Server>[0])
  ;(http1 as { [SESSIONS]?: Set<Http2Session> })[SESSIONS] = trackSessions(http2)
  http2.on('session', (session: Http2Session) => session.setTimeout(SESSION_TIMEOUT, () => session.close()))
  const serveHttp1 = http1.listeners('connection') as Array<(socket: Socket) => void>
  http1.removeAllListeners('connection')
  http1.on('connection', (socket: Socket) => {
    let seen = Buffer.alloc(0)
    // until a server has the socket, its errors and its silence are ours
    const drop = (): void => { socket.destroy() }
    socket.on('error', drop)
    socket.setTimeout(SNIFF_TIMEOUT, drop)
    const sniff = (chunk: Buffer): void => {
      seen = Buffer.concat([seen, chunk])
      const length = Math.min(seen.length, PREFACE.length)
      const isHttp2 = seen.subarray(0, length).equals(PREFACE.subarray(0, length))
      if (isHttp2 && seen.length < PREFACE.length) return
      socket.off('data', sniff)
      socket.off('error', drop)
      socket.setTimeout(0)
      socket.removeListener('timeout', drop)
      socket.pause()
      // the servers read what was already read from the socket's buffer first
      socket.unshift(seen)
      if (isHttp2) {
        http2.emit('connection', socket)
      } else {
        for (const listener of serveHttp1) listener.call(http1, socket)
        socket.resume()
      }
    }
    socket.on('data', sniff)
  })
  return http1
}

function readPem (path: string, flag: string): Buffer {
  try {
    return readFileSync(path)
  } catch (err) {
    throw new FlagError(`${flag} ${path} cannot be read: ${(err as Error).message}`)
  }
}

/**
 * Readies `path` for a unix socket, as tusd does: a socket file left by a server that is gone
 * is removed; a live socket or any other file is refused.
 */
export async function prepareUnixSocket (path: string): Promise<void> {
  let isSocket: boolean
  try {
    isSocket = statSync(path).isSocket()
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw new FlagError(`--unix-sock ${path}: ${(err as Error).message}`)
  }
  if (!isSocket) throw new FlagError(`--unix-sock ${path} exists and is not a socket`)
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path)
    probe.once('connect', () => { probe.destroy(); resolve(true) })
    probe.once('error', () => resolve(false))
  })
  if (live) throw new FlagError(`--unix-sock ${path}: another server is listening there`)
  unlinkSync(path)
}
