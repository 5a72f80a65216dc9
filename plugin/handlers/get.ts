/**
 * GET: download a completed upload, with its content type, a safe disposition, ranges and
 * validators. It does not take the upload lock: a completed upload no longer changes, so a
 * download never interrupts anyone. An unfinished upload is never served as if complete.
 */
import type { FastifyReply, FastifyRequest } from 'fastify'
import { canServe, isComplete } from '../../stores/store.js'
import { checkVersionIfPresent, uploadId } from '../checks.js'
import { DOWNLOAD_CORP, DOWNLOAD_CSP, etag, parseRange, servedAs } from '../download.js'
import * as errors from '../errors.js'
import { header } from '../headers.js'
import type { Runtime } from '../runtime.js'

export async function handleGet (tus: Runtime, request: FastifyRequest, reply: FastifyReply): Promise<void> {
  checkVersionIfPresent(request)
  const id = uploadId(request)
  const store = tus.store
  if (!canServe(store)) throw new Error('the store cannot serve downloads')
  const info = await store.get(id)
  await tus.hooks.run('authorize', request, info, 'get')
  if (!isComplete(info)) {
    tus.checkNotExpired(info)
    throw new errors.IncompleteUpload()
  }
  const size = info.size as number
  const tag = etag(info)
  const served = servedAs(info.metadata)
  reply.header('ETag', tag)
  reply.header('Last-Modified', info.updatedAt.toUTCString())
  reply.header('Accept-Ranges', 'bytes')
  reply.header('Cache-Control', 'no-cache')
  if (header(request.headers, 'if-none-match')?.split(',').some((value) => value.trim() === tag || value.trim() === '*') === true) {
    reply.code(304).send()
    return
  }
  reply.header('Content-Type', served.contentType)
  reply.header('Content-Disposition', served.contentDisposition)
  reply.header('Content-Security-Policy', DOWNLOAD_CSP)
  reply.header('Cross-Origin-Resource-Policy', DOWNLOAD_CORP)
  const ifRange = header(request.headers, 'if-range')
  const range = ifRange === undefined || ifRange === tag ? parseRange(header(request.headers, 'range'), size) : undefined
  if (range === 'unsatisfiable') {
    reply.header('Content-Range', `bytes */${size}`)
    throw new errors.RangeNotSatisfiable()
  }
  if (range === undefined) {
    reply.header('Content-Length', String(size))
    reply.code(200).send(await store.read(id))
    return
  }
  reply.header('Content-Range', `bytes ${range.start}-${range.end}/${size}`)
  reply.header('Content-Length', String(range.end - range.start + 1))
  reply.code(206).send(await store.read(id, range))
}
