/**
 * A tusd-style HTTP hook receiver for tests: a `node:http` server on loopback that records every
 * hook request (type, JSON payload, headers) and answers with what the test's handler returns.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { Test } from 'tap'
import type { HookRequest } from '../../bin/hooks/protocol.js'

export interface ReceivedHook {
  type: string
  payload: HookRequest
  headers: IncomingHttpHeaders
  /** Milliseconds since the receiver started. */
  at: number
}

/** What a handler answers: a JSON value (sent as application/json), or full control. */
export type HookAnswer =
  | { json: unknown, status?: number, headers?: Record<string, string> }
  | { raw: string | Buffer, status?: number, headers?: Record<string, string> }
  | { hang: true }
  | { destroy: true }

export type HookHandler = (hook: ReceivedHook, attempt: number) => HookAnswer | Promise<HookAnswer>

export interface HookReceiver {
  url: string
  hooks: ReceivedHook[]
  /** Resolves once a hook matching `predicate` arrived (rejects after `ms`). */
  waitFor: (predicate: (hook: ReceivedHook) => boolean, ms?: number) => Promise<ReceivedHook>
  types: () => string[]
}

export async function startHookReceiver (t: Test, handler: HookHandler = () => ({ json: {} }), tls?: { key: string, cert: string }): Promise<HookReceiver> {
  const hooks: ReceivedHook[] = []
  const started = performance.now()
  const waiters: Array<() => void> = []
  let attempts = 0
  const listener = (request: import('node:http').IncomingMessage, response: ServerResponse): void => {
    let body = ''
    request.setEncoding('utf8')
    request.on('data', (chunk: string) => { body += chunk })
    request.on('end', () => {
      attempts++
      const payload = JSON.parse(body) as HookRequest
      const hook: ReceivedHook = { type: payload.Type, payload, headers: request.headers, at: performance.now() - started }
      hooks.push(hook)
      for (const wake of waiters.splice(0)) wake()
      Promise.resolve(handler(hook, attempts)).then((answer) => { respond(response, answer) }, (err: unknown) => {
        response.statusCode = 599
        response.end(String(err))
      })
    })
  }
  const server = tls === undefined ? createServer(listener) : createHttpsServer(tls, listener)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(async () => {
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const port = (server.address() as { port: number }).port
  const waitFor = async (predicate: (hook: ReceivedHook) => boolean, ms = 10_000): Promise<ReceivedHook> => {
    const deadline = Date.now() + ms
    for (;;) {
      const found = hooks.find(predicate)
      if (found !== undefined) return found
      if (Date.now() > deadline) throw new Error(`no matching hook; received ${hooks.map((hook) => hook.type).join(', ')}`)
      await new Promise<void>((resolve) => {
        waiters.push(resolve)
        setTimeout(resolve, 50)
      })
    }
  }
  return {
    url: `${tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}/hooks`,
    hooks,
    waitFor,
    types: () => hooks.map((hook) => hook.type)
  }
}

function respond (response: ServerResponse, answer: HookAnswer): void {
  if ('hang' in answer) return
  if ('destroy' in answer) {
    response.socket?.destroy()
    return
  }
  response.statusCode = answer.status ?? 200
  for (const [name, value] of Object.entries(answer.headers ?? {})) response.setHeader(name, value)
  if ('json' in answer) {
    if (!response.hasHeader('content-type')) response.setHeader('content-type', 'application/json')
    response.end(JSON.stringify(answer.json))
  } else {
    response.end(answer.raw)
  }
}
