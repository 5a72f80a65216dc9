/**
 * Looking into a bucket from the tests: its objects, multipart uploads and parts, and which
 * S3 commands a client sent.
 */
import {
  GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command, ListPartsCommand,
  type S3Client
} from '@aws-sdk/client-s3'
import { createHash } from 'node:crypto'
import { Readable } from 'node:stream'

/** Records the name of every command `client` sends. */
export function recordCommands (client: S3Client): string[] {
  const names: string[] = []
  client.middlewareStack.add((next, context) => async (args) => {
    names.push(String(context.commandName))
    return await next(args)
  }, { step: 'initialize', name: 'recordCommandNames' })
  return names
}

/** Every object in the bucket, key → size. */
export async function objects (client: S3Client, bucket: string): Promise<Record<string, number>> {
  const found: Record<string, number> = {}
  let token: string | undefined
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }))
    for (const object of page.Contents ?? []) found[object.Key ?? ''] = object.Size ?? 0
    token = page.IsTruncated === true ? page.NextContinuationToken : undefined
  } while (token !== undefined)
  return found
}

/** Multipart uploads in progress in the bucket. */
export async function multipartUploads (client: S3Client, bucket: string): Promise<Array<{ key: string, uploadId: string }>> {
  const page = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }))
  return (page.Uploads ?? []).map((upload) => ({ key: upload.Key ?? '', uploadId: upload.UploadId ?? '' }))
}

/** Part number → size of a multipart upload. */
export async function parts (client: S3Client, bucket: string, key: string, uploadId: string): Promise<Record<number, number>> {
  const page = await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId }))
  return Object.fromEntries((page.Parts ?? []).map((part) => [part.PartNumber ?? 0, part.Size ?? 0]))
}

export async function getText (client: S3Client, bucket: string, key: string): Promise<string> {
  const result = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }))
  return await (result.Body as { transformToString: () => Promise<string> }).transformToString()
}

export async function head (client: S3Client, bucket: string, key: string): Promise<{ size: number, contentType: string | undefined, contentDisposition: string | undefined, metadata: Record<string, string> }> {
  const result = await client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }))
  return { size: result.ContentLength ?? 0, contentType: result.ContentType, contentDisposition: result.ContentDisposition, metadata: result.Metadata ?? {} }
}

export async function collect (stream: Readable): Promise<Buffer> {
  const pieces: Buffer[] = []
  for await (const piece of stream) pieces.push(piece as Buffer)
  return Buffer.concat(pieces)
}

export function sha256 (data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}

/** A body that yields `data` in pieces and then fails like a reset connection. */
export function failingBody (data: Buffer, piece = 256 * 1024): Readable {
  return Readable.from((async function * () {
    for (let i = 0; i < data.length; i += piece) yield data.subarray(i, i + piece)
    throw new Error('connection reset')
  })(), { objectMode: false })
}

/** A body of `length` pseudo-random bytes made on the fly (never held whole), with its SHA-256. */
export function generatedBody (length: number, seed = 1): { body: Readable, digest: Promise<string> } {
  const hash = createHash('sha256')
  let resolveDigest!: (digest: string) => void
  const digest = new Promise<string>((resolve) => { resolveDigest = resolve })
  const block = Buffer.alloc(64 * 1024)
  let state = seed
  const body = Readable.from((function * () {
    for (let sent = 0; sent < length; sent += block.length) {
      for (let i = 0; i < block.length; i += 4) {
        state = (state * 1103515245 + 12345) >>> 0
        block.writeUInt32LE(state, i)
      }
      const piece = Buffer.from(block.subarray(0, Math.min(block.length, length - sent)))
      hash.update(piece)
      yield piece
    }
    resolveDigest(hash.digest('hex'))
  })(), { objectMode: false })
  return { body, digest }
}
