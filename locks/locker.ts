/**
 * The locking contract. Every request on an upload holds that upload's lock. When a newer
 * request wants a held lock, the locker asks the holder to give it up (`onReleaseRequested`),
 * the holder stops reading its body, persists what arrived and unlocks; the newer request then
 * gets the lock. This is what lets a client resume at once after its previous connection died.
 */

/** Why a holder is asked to stop. */
export type ReleaseReason =
  /** Another request wants this upload. */
  | 'requested'
  /** The lock cannot be guaranteed any more (for instance a distributed lease could not be renewed). */
  | 'lost'

export interface LockOptions {
  /** Aborting it gives up waiting: `lock` then rejects with `LockTimeout` (or the signal's reason). */
  signal: AbortSignal
  /** Called (at most once per reason) on the holder when it should finish up and unlock. */
  onReleaseRequested: (reason: ReleaseReason) => void
}

export interface Lock {
  /** Releases the lock. Safe to call twice; never releases a lock someone else holds now. */
  unlock (): Promise<void>
  /**
   * The same value for every lock on this upload that this process takes while it keeps the lock
   * as a lease between requests (`FileLocker`'s `leaseTime`), a new one after anyone else could
   * have held it. While it is unchanged, nothing but this process touched the upload: stores may
   * answer from memory (`LeaseOptions.lease`). Lockers without leases leave it undefined.
   */
  readonly lease?: string | undefined
}

export interface Locker {
  lock (id: string, options: LockOptions): Promise<Lock>
  /**
   * True when this locker's locks outlive their requests as leases (`Lock.lease` is set): the
   * plugin then takes a new upload's lock at creation too, so the upload's next request takes
   * it back, and reads the upload, without a file-system call.
   */
  readonly leases?: boolean
}

export function isLocker (value: unknown): value is Locker {
  return typeof value === 'object' && value !== null && typeof (value as Locker).lock === 'function'
}

/**
 * Raised when the lock could not be acquired before the signal fired. The one class for this
 * code: the plugin sends it (`errors.LockTimeout`, 423).
 */
export class LockTimeout extends Error {
  readonly code = 'ERR_LOCK_TIMEOUT'
  readonly statusCode = 423
  constructor (readonly id?: string, options?: { cause?: unknown }) {
    super('The upload is locked by another request; retry later', options)
    this.name = 'LockTimeout'
  }
}

/**
 * Raised when a distributed locker cannot reach its backend (for instance Redis is down), so
 * whether the lock is free is unknown. The request should fail and be retried later.
 */
export class LockUnavailable extends Error {
  readonly code = 'LOCK_UNAVAILABLE'
  constructor (readonly id: string, options?: { cause?: unknown }) {
    super(`the locker could not be reached for upload ${id}`, options)
    this.name = 'LockUnavailable'
  }
}

/**
 * Rejects with `LockTimeout` when `signal` aborts. Lockers race their wait against it.
 * Returns the promise and a function that detaches the listener.
 */
export function whenAborted (id: string, signal: AbortSignal): { promise: Promise<never>, dispose: () => void } {
  let dispose = (): void => {}
  const promise = new Promise<never>((_resolve, reject) => {
    const onAbort = (): void => reject(new LockTimeout(id, { cause: signal.reason }))
    if (signal.aborted) {
      onAbort()
      return
    }
    signal.addEventListener('abort', onAbort, { once: true })
    dispose = () => signal.removeEventListener('abort', onAbort)
  })
  promise.catch(() => {})
  return { promise, dispose }
}
