/** How a HEAD answer ends, in both dialects. */
import type { FastifyReply } from 'fastify'

/**
 * Sends a HEAD answer with `Content-Length: 0` (a 204 needs none). Node's HTTP client
 * (tus-js-client in Node, Uppy's Companion, anything on `http.Agent`) closes a kept-alive
 * connection after a HEAD answer that has neither a length nor chunked framing
 * (nodejs/node#28438), so without it every resume would cost such a client a new connection.
 * The upload's length is in `Upload-Length`; as with tusd, this header does not describe a GET.
 */
export function sendHead (reply: FastifyReply, status: number): void {
  reply.code(status)
  if (status !== 204) reply.header('Content-Length', '0')
  reply.send()
}
