/**
 * Raw HTTP/1.x exchanges for the IETF draft tests: every response on the socket is parsed,
 * the informational ones (100, 104) included, which `inject` and `fetch` cannot show.
 */
import { connect, type Socket } from 'node:net'

export interface Parsed {
  status: number
  headers: Record<string, string>
  body: string
}

export interface Exchange {
  socket: Socket
  /** Every response so far, 1xx first. */
  responses: Parsed[]
  /** Resolves once a final (non-1xx) response arrived, or the socket closed. */
  done: Promise<Parsed[]>
  /** Resolves once `count` responses arrived. */
  waitFor: (count: number) => Promise<Parsed[]>
  write: (data: string | Buffer) => void
  end: () => void
}

export interface ExchangeOptions {
  httpVersion?: '1.0' | '1.1'
  /** The body; omit to write it later with `write`. */
  body?: string | Buffer
  /** The request has no response body to read (HEAD). */
  head?: boolean
}

export function exchange (port: number, method: string, path: string, headers: Record<string, string>, options: ExchangeOptions = {}): Exchange {
  const socket = connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  const lines = [`${method} ${path} HTTP/${options.httpVersion ?? '1.1'}`, `Host: 127.0.0.1:${port}`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)]
  socket.write(`${lines.join('\r\n')}\r\n\r\n`)
  if (options.body !== undefined) socket.write(options.body)
  const responses: Parsed[] = []
  const waiters: Array<{ count: number, resolve: (list: Parsed[]) => void }> = []
  let data = Buffer.alloc(0)
  let finished = false
  let resolveDone!: (list: Parsed[]) => void
  const done = new Promise<Parsed[]>((resolve) => { resolveDone = resolve })
  const settle = (): void => {
    for (const waiter of [...waiters]) {
      if (responses.length >= waiter.count || finished) {
        waiters.splice(waiters.indexOf(waiter), 1)
        waiter.resolve(responses)
      }
    }
    if (finished) resolveDone(responses)
  }
  const parse = (): void => {
    while (!finished) {
      const end = data.indexOf('\r\n\r\n')
      if (end === -1) return
      const [statusLine, ...headerLines] = data.subarray(0, end).toString('latin1').split('\r\n')
      const parsed: Record<string, string> = {}
      for (const line of headerLines) {
        const colon = line.indexOf(':')
        parsed[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
      }
      const status = Number(statusLine?.split(' ')[1])
      const interim = status >= 100 && status < 200
      const length = interim || options.head === true || status === 204 || status === 304 ? 0 : Number(parsed['content-length'] ?? 0)
      if (data.length < end + 4 + length) return
      responses.push({ status, headers: parsed, body: data.subarray(end + 4, end + 4 + length).toString('utf8') })
      data = data.subarray(end + 4 + length)
      if (!interim) finished = true
    }
  }
  socket.on('data', (chunk: Buffer) => {
    data = Buffer.concat([data, chunk])
    parse()
    settle()
  })
  socket.on('close', () => {
    finished = true
    settle()
  })
  socket.on('error', () => {})
  return {
    socket,
    responses,
    done: done.then((list) => { socket.destroy(); return list }),
    waitFor: async (count) => await new Promise((resolve) => {
      waiters.push({ count, resolve })
      settle()
    }),
    write: (chunk) => { socket.write(chunk) },
    end: () => { socket.end() }
  }
}

/** Headers that make a creation or append complete (`done`) or not, in the version's spelling. */
export function completion (version: number, done: boolean): Record<string, string> {
  if (version === 3) return { 'Upload-Incomplete': done ? '?0' : '?1' }
  return { 'Upload-Complete': done ? '?1' : '?0' }
}

/** The completion header name and value a response carries for an upload's state. */
export function stateOf (version: number, complete: boolean): [string, string] {
  if (version === 3) return ['upload-incomplete', complete ? '?0' : '?1']
  return ['upload-complete', complete ? '?1' : '?0']
}
