/**
 * tusd's HTTP hooks (`-hooks-http`): every event is POSTed as JSON to one endpoint, whose JSON
 * answer is the hook response. As in tusd:
 *
 * - headers listed in `forwardHeaders` are copied from the client request (`Authorization`, `Cookie` …);
 * - a network error or a 5xx is tried again, up to `retries` attempts in all (tusd's pester
 *   client counts attempts, so the default 3 means one call and two retries), `backoff` ms apart;
 * - `timeout` bounds the whole invocation, attempts and waits included;
 * - the answer must be 2xx, at most `sizeLimit` bytes, with `Content-Type: application/json`.
 *
 * Anything else rejects with an error whose message is for the log, never for the client.
 */
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { setTimeout as sleep } from 'node:timers/promises'
import { canonicalHeaderKey } from './event.js'
import { HookResponseError, parseHookResponse, type HookRequest, type HookResponse, type HookTransport } from './protocol.js'

export interface HttpHookOptions {
  endpoint: string
  /** Attempts per invocation (tusd's `-hooks-http-retry`); 0 counts as 1. Default 3. */
  retries?: number
  /** Milliseconds between attempts. Default 1000. */
  backoff?: number
  /** Milliseconds for the whole invocation. Default 15 000. */
  timeout?: number
  /** Largest response body in bytes. Default 5120. */
  sizeLimit?: number
  /** Client request headers to copy onto the hook request. */
  forwardHeaders?: readonly string[]
  /** Do not verify the endpoint's TLS certificate. */
  skipVerify?: boolean
}

interface Answer {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
}

export class HttpHookTransport implements HookTransport {
  readonly endpoint: URL
  readonly #attempts: number
  readonly #backoff: number
  readonly #timeout: number
  readonly #sizeLimit: number
  readonly #forward: readonly string[]
  readonly #agent: HttpAgent

  constructor (options: HttpHookOptions) {
    this.endpoint = new URL(options.endpoint)
    if (this.endpoint.protocol !== 'http:' && this.endpoint.protocol !== 'https:') {
      throw new TypeError(`hook endpoint must be an http: or https: URL, got ${options.endpoint}`)
    }
    this.#attempts = Math.max(1, options.retries ?? 3)
    this.#backoff = options.backoff ?? 1000
    this.#timeout = options.timeout ?? 15_000
    this.#sizeLimit = options.sizeLimit ?? 5120
    this.#forward = (options.forwardHeaders ?? []).map((name) => name.trim()).filter((name) => name !== '')
    this.#agent = this.endpoint.protocol === 'https:'
      ? new HttpsAgent({ keepAlive: true, rejectUnauthorized: options.skipVerify !== true })
      : new HttpAgent({ keepAlive: true })
  }

  async invoke (hook: HookRequest): Promise<HookResponse> {
    const body = Buffer.from(JSON.stringify(hook))
    const headers: OutgoingHttpHeaders = {}
    for (const name of this.#forward) {
      const values = hook.Event.HTTPRequest.Header[canonicalHeaderKey(name)]
      if (values !== undefined) headers[name] = values
    }
    headers['content-type'] = 'application/json'
    headers['content-length'] = body.length

    const signal = AbortSignal.timeout(this.#timeout)
    const answer = await this.#send(body, headers, signal)
    const text = answer.body.toString('utf8')
    if (answer.status < 200 || answer.status >= 300) {
      throw new Error(`unexpected response code from hook endpoint (${answer.status}): ${text.slice(0, this.#sizeLimit)}`)
    }
    if (answer.body.length > this.#sizeLimit) throw new HookResponseError(`hook response exceeded maximum size of ${this.#sizeLimit} bytes`)
    const type = answer.headers['content-type']
    if (type === undefined || type === '') throw new HookResponseError('hook response does not contain the \'Content-Type: application/json\' header')
    if (type.split(';')[0]?.trim().toLowerCase() !== 'application/json') {
      throw new HookResponseError(`expected hook response Content-Type to be application/json, but got '${type}'`)
    }
    return parseHookResponse(text)
  }

  /** POSTs until an answer that is not a 5xx, the last attempt, or the timeout. */
  async #send (body: Buffer, headers: OutgoingHttpHeaders, signal: AbortSignal): Promise<Answer> {
    for (let attempt = 1; ; attempt++) {
      let answer: Answer | undefined
      let failure: unknown
      try {
        answer = await this.#post(body, headers, signal)
      } catch (err) {
        failure = err
      }
      if (signal.aborted) throw new Error(`hook endpoint did not answer within ${this.#timeout} ms`, { cause: failure })
      if (answer !== undefined && (answer.status < 500 || attempt >= this.#attempts)) return answer
      if (answer === undefined && attempt >= this.#attempts) {
        throw new Error(`hook endpoint unreachable after ${attempt} attempt(s): ${(failure as Error).message}`, { cause: failure })
      }
      try {
        await sleep(this.#backoff, undefined, { signal })
      } catch {
        throw new Error(`hook endpoint did not answer within ${this.#timeout} ms`, { cause: failure })
      }
    }
  }

  /**
   * One POST. A kept-alive connection the endpoint closed just as it was reused fails before
   * the endpoint saw anything: that is tried again on a new connection, as Go's client does.
   */
  async #post (body: Buffer, headers: OutgoingHttpHeaders, signal: AbortSignal): Promise<Answer> {
    try {
      return await this.#postOnce(body, headers, signal)
    } catch (err) {
      if (!(err as { reusedSocket?: boolean }).reusedSocket || signal.aborted) throw err
      return await this.#postOnce(body, headers, signal)
    }
  }

  /** Reads at most `sizeLimit + 1` bytes of the answer. */
  async #postOnce (body: Buffer, headers: OutgoingHttpHeaders, signal: AbortSignal): Promise<Answer> {
    const send = this.endpoint.protocol === 'https:' ? httpsRequest : httpRequest
    return await new Promise<Answer>((resolve, reject) => {
      const request = send(this.endpoint, { method: 'POST', headers, agent: this.#agent, signal }, (response) => {
        const chunks: Buffer[] = []
        let size = 0
        const done = (): void => {
          response.off('data', onData)
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks) })
        }
        const onData = (chunk: Buffer): void => {
          chunks.push(chunk)
          size += chunk.length
          // enough to know it is too large: stop reading
          if (size > this.#sizeLimit) {
            done()
            response.destroy()
          }
        }
        response.on('data', onData)
        response.once('end', done)
        response.once('error', reject)
        response.once('aborted', () => reject(new Error('hook response aborted')))
      })
      request.once('error', (err: NodeJS.ErrnoException) => {
        const stale = request.reusedSocket && (err.code === 'ECONNRESET' || err.code === 'EPIPE')
        reject(stale ? Object.assign(err, { reusedSocket: true }) : err)
      })
      request.end(body)
    })
  }

  close (): void {
    this.#agent.destroy()
  }
}
