/**
 * Real-socket requests, for what `inject` cannot do: bodies that stall, stop or never end.
 */
import { connect, type Socket } from 'node:net'

export interface RawResponse {
  status: number
  headers: Record<string, string>
  body: string
}

export interface RawRequest {
  socket: Socket
  /** Resolves with the parsed response once the server sent one (or the socket closed). */
  response: Promise<RawResponse | undefined>
  write: (data: string | Buffer) => void
}

/** Opens a connection and sends the request head; write the body with `write`. */
export function rawRequest (port: number, method: string, path: string, headers: Record<string, string>): RawRequest {
  const socket = connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  const lines = [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
  socket.write(`${lines.join('\r\n')}\r\n\r\n`)
  const response = new Promise<RawResponse | undefined>((resolve) => {
    let data = ''
    const tryParse = (): boolean => {
      const end = data.indexOf('\r\n\r\n')
      if (end === -1) return false
      const [statusLine, ...headerLines] = data.slice(0, end).split('\r\n')
      const parsed: Record<string, string> = {}
      for (const line of headerLines) {
        const colon = line.indexOf(':')
        parsed[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      const length = Number(parsed['content-length'] ?? 0)
      const body = data.slice(end + 4)
      if (Buffer.byteLength(body) < length) return false
      resolve({ status: Number(statusLine?.split(' ')[1]), headers: parsed, body })
      return true
    }
    socket.on('data', (chunk) => {
      data += chunk.toString('latin1')
      tryParse()
    })
    socket.on('close', () => { if (!tryParse()) resolve(undefined) })
    socket.on('error', () => {})
  })
  return { socket, response, write: (chunk) => { socket.write(chunk) } }
}
