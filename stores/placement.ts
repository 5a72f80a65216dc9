/**
 * The rule every store applies to a place a hook chose for an upload (`NewUpload.storage`): a
 * `/`-separated name relative to the store's directory or prefix that can never leave it. Each
 * store adds the names it reserves for itself.
 */
import { InvalidStorage } from './store.js'

/** The longest chosen name, and component, a store takes. */
const MAX_NAME = 1024
const MAX_COMPONENT = 255

/**
 * `value` as the components of a relative name, checked: non-empty, at most 1024 characters, no
 * NUL, control character or backslash, not absolute, and no component that is empty, longer than
 * 255 characters or starts with `.` (so no `.` or `..`). `InvalidStorage` otherwise, with the
 * reason (safe to send); `field` names the field in it.
 */
export function checkRelativePlace (value: unknown, field: string): string[] {
  if (typeof value !== 'string' || value === '') throw new InvalidStorage(`needs a non-empty ${field}`)
  if (value.length > MAX_NAME) throw new InvalidStorage(`has a ${field} longer than ${MAX_NAME} characters`)
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f\\]/.test(value)) throw new InvalidStorage(`has a ${field} with a control character or a backslash`)
  if (value.startsWith('/')) throw new InvalidStorage(`has an absolute ${field}; give it relative to the store's directory or prefix`)
  const parts = value.split('/')
  for (const part of parts) {
    if (part === '') throw new InvalidStorage(`has a ${field} with an empty component`)
    if (part.startsWith('.')) throw new InvalidStorage(`has a ${field} component starting with "." (such as "..")`)
    if (part.length > MAX_COMPONENT) throw new InvalidStorage(`has a ${field} component longer than ${MAX_COMPONENT} characters`)
  }
  return parts
}
