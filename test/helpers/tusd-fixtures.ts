/**
 * Uploads as tusd v2's filestore leaves them, written from its documented layout (facts, not its
 * code): `<dir>/<id>` holds the bytes received so far (created empty at creation, appended to),
 * `<dir>/<id>.info` is `json.Marshal(handler.FileInfo)`, written at creation and on
 * DeclareLength only, so its `Offset` is stale (0). `Storage` is a Go map, marshalled with sorted
 * keys: `{"InfoPath","Path","Type":"filestore"}`. Files get mode 0664, as tusd makes them.
 */
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
