/**
 * The `checksum` and `checksum-trailer` extensions: `Upload-Checksum: <algorithm> <base64 digest>`
 * as a header, or as a trailer of a chunked body (announced with `Trailer: Upload-Checksum`).
 * Digests are computed while the body streams, never by reading the data again; the store is
 * asked to discard the chunk when the digest does not match.
 */
import { createHash, type Hash } from 'node:crypto'
import type { IncomingMessage } from 'node:http'
import { crc32 } from 'node:zlib'
import * as errors from './errors.js'
import { header } from './headers.js'

/** Algorithms for `Tus-Checksum-Algorithm`, most preferred first. */
export const CHECKSUM_ALGORITHMS = ['sha1', 'md5', 'sha256', 'sha512', 'crc32'] as const
export type ChecksumAlgorithm = typeof CHECKSUM_ALGORITHMS[number]

interface Digester {
  update: (chunk: Buffer) => void
  digest: () => Buffer
}

function digester (algorithm: ChecksumAlgorithm): Digester {
  if (algorithm === 'crc32') {
    let value = 0
    return {
      update: (chunk) => { value = crc32(chunk, value) },
      digest: () => {
        const out = Buffer.alloc(4)
        out.writeUInt32BE(value >>> 0)
        return out
      }
    }
  }
  const hash: Hash = createHash(algorithm)
  return { update: (chunk) => hash.update(chunk), digest: () => hash.digest() }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

function parse (value: string): { algorithm: ChecksumAlgorithm, expected: Buffer } {
  const parts = value.trim().split(' ')
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '' || !BASE64.test(parts[1] ?? '')) {
    throw new errors.InvalidChecksum()
  }
  const algorithm = parts[0] as ChecksumAlgorithm
  if (!CHECKSUM_ALGORITHMS.includes(algorithm)) throw new errors.UnsupportedChecksumAlgorithm(parts[0])
  return { algorithm, expected: Buffer.from(parts[1] ?? '', 'base64') }
}

/**
 * Verification of one chunk. `onData` sees every byte passed to the store; `verify` runs before
 * the store commits and throws 460 on a mismatch (or when the body did not arrive whole).
 */
export interface ChunkVerifier {
  onData: (chunk: Buffer) => void
  verify: (bodyComplete: boolean) => void
}

/**
 * The verifier a request asks for, or `undefined` when it sends no checksum. Throws 400 for a
 * malformed header or an unknown algorithm, before anything is read.
 */
export function checksumFor (request: IncomingMessage): ChunkVerifier | undefined {
  const value = header(request.headers, 'upload-checksum')
  if (value !== undefined) {
    const { algorithm, expected } = parse(value)
    const d = digester(algorithm)
    return {
      onData: d.update,
      verify: (bodyComplete) => {
        if (!bodyComplete || !d.digest().equals(expected)) throw new errors.ChecksumMismatch()
      }
    }
  }
  const trailer = header(request.headers, 'trailer')
  if (trailer === undefined || !trailer.split(',').some((name) => name.trim().toLowerCase() === 'upload-checksum')) return undefined
  // the algorithm arrives after the body: digest with every one we offer
  const all = new Map(CHECKSUM_ALGORITHMS.map((algorithm) => [algorithm, digester(algorithm)]))
  return {
    onData: (chunk) => { for (const d of all.values()) d.update(chunk) },
    verify: (bodyComplete) => {
      const sent = request.trailers['upload-checksum']
      if (!bodyComplete) throw new errors.ChecksumMismatch()
      if (sent === undefined) throw new errors.InvalidChecksum()
      const { algorithm, expected } = parse(sent)
      if (!(all.get(algorithm)?.digest().equals(expected) ?? false)) throw new errors.ChecksumMismatch()
    }
  }
}
