/**
 * The `concatenation` extension: `Upload-Concat: partial` marks an upload as a part;
 * `Upload-Concat: final;<url> <url> …` creates an upload made of finished parts, in order.
 * The parts stay locked while they are read, so nobody changes or deletes them meanwhile.
 * (`concatenation-unfinished` is not offered: a final over unfinished parts is a 400.)
 */
import type { FastifyRequest } from 'fastify'
import { isComplete, type Concat, type UploadInfo } from '../stores/store.js'
import * as errors from './errors.js'
import { header } from './headers.js'
import { UPLOAD_ID } from '../stores/ids.js'
import type { Runtime } from './runtime.js'
import { uploadPath } from './urls.js'

/** Parses `Upload-Concat`; `undefined` when absent. Part URLs become upload ids. */
export function parseConcat (tus: Runtime, request: FastifyRequest): Concat | undefined {
  const value = header(request.headers, 'upload-concat')?.trim()
  if (value === undefined) return undefined
  if (!tus.extensions.includes('concatenation')) throw new errors.InvalidConcat('is not supported by this server')
  if (value === 'partial') return { kind: 'partial' }
  if (!value.startsWith('final;')) throw new errors.InvalidConcat('must be "partial" or "final;<url> <url> …"')
  const urls = value.slice('final;'.length).trim().split(/ +/).filter((url) => url !== '')
  if (urls.length === 0) throw new errors.InvalidConcat('names no partial uploads')
  // HEAD echoes the value: keep it within the header size proxies commonly allow
  if (Buffer.byteLength(value) > MAX_CONCAT_HEADER) throw new errors.InvalidConcat(`is longer than ${MAX_CONCAT_HEADER} bytes`)
  if (urls.length > tus.options.maxConcatParts) throw new errors.ConcatTooManyParts(tus.options.maxConcatParts)
  const parts = urls.map((url) => idFromUrl(tus, url))
  const seen = new Set<string>()
  for (const id of parts) {
    if (seen.has(id)) throw new errors.ConcatDuplicatePart(id)
    seen.add(id)
  }
  return { kind: 'final', parts, value }
}

/** The longest `Upload-Concat` value accepted (and so echoed on HEAD). */
export const MAX_CONCAT_HEADER = 8192

function idFromUrl (tus: Runtime, url: string): string {
  const path = uploadPath(tus.options, url)
  if (path === undefined) throw new errors.InvalidConcat(`names an invalid URL ${JSON.stringify(url)}`)
  const id = path.startsWith(tus.basePath) ? path.slice(tus.basePath.length).replace(/\/$/, '') : ''
  if (!UPLOAD_ID.test(id)) throw new errors.UploadNotFound()
  return id
}

/**
 * Takes the locks of every part (each once, in a fixed order so two finals never deadlock),
 * checks them, and runs `work` with the parts while they are held.
 */
export async function withParts<T> (tus: Runtime, request: FastifyRequest, parts: string[], work: (uploads: UploadInfo[]) => Promise<T>): Promise<T> {
  const unique = [...new Set(parts)].sort()
  const loaded = new Map<string, UploadInfo>()
  const lockNext = async (index: number): Promise<T> => {
    const id = unique[index]
    if (id === undefined) return await work(parts.map((part) => loaded.get(part) as UploadInfo))
    return await tus.withLock(request, id, async () => {
      const upload = await tus.store.get(id)
      if (upload.concat?.kind !== 'partial') throw new errors.InvalidConcat(`names ${id}, which is not a partial upload`)
      if (!isComplete(upload)) throw new errors.UploadNotFinished()
      loaded.set(id, upload)
      return await lockNext(index + 1)
    })
  }
  return await lockNext(0)
}

/** `Upload-Concat` as HEAD echoes it: as received (older infos: the parts' URLs). */
export function concatHeader (tus: Runtime, request: FastifyRequest, concat: Concat): string {
  if (concat.kind === 'partial') return 'partial'
  if (concat.value !== undefined) return concat.value
  return `final;${concat.parts.map((id) => tus.location(request, id)).join(' ')}`
}
