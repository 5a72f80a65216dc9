/**
 * Upload ids, the one definition the plugin and every store share: 1-100 characters of
 * `[A-Za-z0-9_-]`, so an id is always a safe file or object name and never a path.
 */
export const UPLOAD_ID = /^[A-Za-z0-9_-]{1,100}$/

export function isUploadId (id: string): boolean {
  return UPLOAD_ID.test(id)
}
