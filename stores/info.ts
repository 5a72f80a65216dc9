/** What the stores share about an upload's stored description and their options. */
import type { Concat, Metadata, UploadInfo } from './store.js'

/** The fields every store keeps in its info file or object. */
export interface StoredInfo {
  id: string
  size?: number
  metadata: Metadata
  binaryMetadata?: Metadata
  concat?: Concat
  maxSize?: number
  createdAt: string
}

/** The `UploadInfo` of a stored description; optional fields are copied only when present. */
export function toUploadInfo (info: StoredInfo, offset: number, updatedAt: Date): UploadInfo {
  const upload: UploadInfo = { id: info.id, offset, metadata: info.metadata, createdAt: new Date(info.createdAt), updatedAt }
  if (info.size !== undefined) upload.size = info.size
  if (info.binaryMetadata !== undefined) upload.binaryMetadata = info.binaryMetadata
  if (info.concat !== undefined) upload.concat = info.concat
  if (info.maxSize !== undefined) upload.maxSize = info.maxSize
  return upload
}

/** A store option that must be a positive safe integer; `store` names the class in the error. */
export function positive (store: string, name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${store}: "${name}" must be a positive integer`)
  return value
}
