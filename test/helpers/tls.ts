/**
 * Test certificates made with the openssl command (Node's crypto cannot make X.509), and a small
 * HTTP/2 client for raw streams.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders, type SecureClientSessionOptions } from 'node:http2'
import { join } from 'node:path'

export interface TestCertificate {
  certPath: string
  keyPath: string
  cert: Buffer
  key: Buffer
}

/** Whether the openssl command is there. */
export function hasOpenssl (): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** A self-signed certificate for localhost and 127.0.0.1, written to `dir` as `<name>.pem` and `<name>-key.pem`. */
export function makeCertificate (dir: string, name: string, commonName = 'localhost'): TestCertificate {
  const certPath = join(dir, `${name}.pem`)
  const keyPath = join(dir, `${name}-key.pem`)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', keyPath, '-out', certPath,
    '-days', '1', '-subj', `/CN=${commonName}`, '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], { stdio: 'ignore' })
  return { certPath, keyPath, cert: readFileSync(certPath), key: readFileSync(keyPath) }
}

export interface Http2Answer {
  status: number
  headers: IncomingHttpHeaders
  body: string
}

/** An HTTP/2 session to `origin` (h2c with http://, TLS with https://). */
export async function http2Session (origin: string, options: SecureClientSessionOptions = {}): Promise<ClientHttp2Session> {
  return await new Promise((resolve, reject) => {
    const session = connect(origin, options)
    session.once('connect', () => resolve(session))
    session.once('error', reject)
  })
}

/** One request on `session`; the body, if any, is sent whole. */
export async function http2Request (session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: Buffer | string): Promise<Http2Answer> {
  return await new Promise((resolve, reject) => {
    const stream = session.request(headers, { endStream: body === undefined })
    let answer: Omit<Http2Answer, 'body'> | undefined
    let text = ''
    stream.setEncoding('utf8')
    stream.on('response', (received) => { answer = { status: Number(received[':status']), headers: received } })
    stream.on('data', (chunk: string) => { text += chunk })
    stream.once('end', () => { if (answer !== undefined) resolve({ ...answer, body: text }) })
    stream.once('error', reject)
    if (body !== undefined) stream.end(body)
  })
}
