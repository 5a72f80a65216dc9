/**
 * Uploads as tusd v2's stores leave them. The filestore, written from its documented layout (facts, not its
 * code): `<dir>/<id>` holds the bytes received so far (created empty at creation, appended to),
 * `<dir>/<id>.info` is `json.Marshal(handler.FileInfo)`, written at creation and on
 * DeclareLength only, so its `Offset` is stale (0). `Storage` is a Go map, marshalled with sorted
 * keys: `{"InfoPath","Path","Type":"filestore"}`. Files get mode 0664, as tusd makes them.
 */
import { CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'

export interface TusdFileUpload {
  /** 32 hex characters, as tusd's `uid.Uid()`. */
  id: string
  /** The bytes tusd had received. */
  bytes: Buffer
  /** Omitted for a deferred length. */
  size?: number
  metadata?: Record<string, string>
  isPartial?: boolean
  isFinal?: boolean
  partialUploads?: string[]
  /** Where the bytes are, as a pre-create hook's `Storage.Path` made tusd keep them (relative to `dir`, or absolute). */
  path?: string
  /** `Storage.Path` exactly as written (defaults to the absolute path of the bytes). */
  storagePath?: string
}

/** Writes one upload in tusd's filestore layout under `dir`; resolves with the info file's JSON. */
export async function writeTusdFileUpload (dir: string, upload: TusdFileUpload): Promise<Record<string, unknown>> {
  const dataPath = upload.path === undefined ? join(dir, upload.id) : join(dir, upload.path)
  const infoPath = join(dir, `${upload.id}.info`)
  const info = {
    ID: upload.id,
    Size: upload.size ?? 0,
    SizeIsDeferred: upload.size === undefined,
    Offset: 0,
    MetaData: upload.metadata ?? {},
    IsPartial: upload.isPartial ?? false,
    IsFinal: upload.isFinal ?? false,
    PartialUploads: upload.partialUploads ?? null,
    Storage: { InfoPath: infoPath, Path: upload.storagePath ?? dataPath, Type: 'filestore' }
  }
  await mkdir(dirname(dataPath), { recursive: true })
  await writeFile(dataPath, upload.bytes)
  await writeFile(infoPath, JSON.stringify(info))
  await chmod(dataPath, 0o664)
  await chmod(infoPath, 0o664)
  return info
}

/** A tusd-style id: 32 lowercase hex characters. */
export function tusdId (seed: number): string {
  return seed.toString(16).padStart(32, 'a')
}

/**
 * An unfinished upload as tusd v2's s3store leaves it: `<prefix><objectId>.info` (its `FileInfo`
 * JSON, `ID` = `<objectId>+<multipart upload id>`), a multipart upload on `<prefix><objectId>`
 * with one part, and `<prefix><objectId>.part` with leftover bytes. Resolves with the URL id.
 */
export async function writeTusdS3Upload (client: S3Client, bucket: string, prefix: string, objectId: string, size: number, part: Buffer, leftover: Buffer): Promise<string> {
  const key = `${prefix}${objectId}`
  const created = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))
  const id = `${objectId}+${created.UploadId ?? ''}`
  await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: created.UploadId, PartNumber: 1, Body: part }))
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${key}.part`, Body: leftover }))
  const info = {
    ID: id,
    Size: size,
    SizeIsDeferred: false,
    Offset: 0,
    MetaData: { filename: 'a.bin' },
    IsPartial: false,
    IsFinal: false,
    PartialUploads: null,
    Storage: { Bucket: bucket, Key: key, Type: 's3store' }
  }
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: `${key}.info`, Body: JSON.stringify(info), ContentType: 'application/json' }))
  return id
}
