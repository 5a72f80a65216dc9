/**
 * `104 Upload Resumption Supported` on Node 20, which has no public API for 1xx other than 100
 * (`writeContinue`) and 103 (`writeEarlyHints`). Why writing the raw bytes to the socket is sound:
 *
 * - Node writes nothing for a response until its head is sent (`headersSent`), so before that
 *   the socket carries only what came before: the 100 Continue and earlier 104s, in order.
 * - A pipelined request's response gets the socket only once the responses before it are done
 *   (until then `res.socket` is null), so a 104 never lands inside another response.
 * - 1xx are never sent to HTTP/1.0 clients (RFC 9110 §15.2), and HTTP/2 (the compat API has
 *   no socket of its own; the stream would need `additionalHeaders`) is left out: such clients
 *   simply get no 104, which the draft allows.
 * - `Expect: 100-continue`: Node sends the 100 before the request reaches us unless the app
 *   listens to `checkContinue`; if the 100 has not gone out, we send it first, because the draft
 *   (-10) says a 104 must not replace it.
 * - Header values come from our own code and the request's `Host`; any control character makes
 *   us skip the 104 instead of risking a broken response.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { ServerResponse } from 'node:http'
import { header } from '../headers.js'

const SAFE_VALUE = /^[\x20-\x7E]*$/

/** Whether a 104 may be written for this request now. */
export function canSendInformational (request: FastifyRequest, reply: FastifyReply): boolean {
  const req = request.raw
  if (req.httpVersionMajor !== 1 || req.httpVersionMinor < 1) return false
  const res = reply.raw
  if (res.headersSent || res.writableEnded || res.destroyed) return false
  const socket = res.socket
  return socket !== null && !socket.destroyed && socket.writable
}

/**
 * Writes one informational response (e.g. 104 with `Location`) ahead of the final one.
 * Returns whether it was written.
 */
export function sendInformational (request: FastifyRequest, reply: FastifyReply, status: number, reason: string, headers: Record<string, string>): boolean {
  if (!canSendInformational(request, reply)) return false
  const lines = [`HTTP/1.1 ${status} ${reason}`]
  for (const [name, value] of Object.entries(headers)) {
    if (!SAFE_VALUE.test(value)) return false
    lines.push(`${name}: ${value}`)
  }
  const res = reply.raw as ServerResponse & { _sent100?: boolean }
  if (header(request.headers, 'expect')?.toLowerCase() === '100-continue' && res._sent100 !== true) res.writeContinue()
  res.socket?.write(`${lines.join('\r\n')}\r\n\r\n`, 'latin1')
  return true
}
