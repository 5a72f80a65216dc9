/**
 * A locker that works across processes on one host, through lock files in a directory.
 *
 * - `<id>.lock` is a symbolic link whose target is the holder's token, `<pid>.<tag>.<n>` (it
 *   points nowhere: the link is only a name with a value). Creating it is one system call that
 *   fails if the name exists, and the owner is written in the same step, so there is no moment
 *   where a lock exists without one. Releasing it is two: read the link (still ours?) and remove
 *   it. A lock whose process is gone is stale and is broken by the next waiter.
 * - Lock files written by hand or by earlier versions (a regular file holding `{ pid, token }`)
 *   are still understood; one left empty for a few seconds is abandoned.
 * - A waiter asks for release by creating `<id>.stop`. The holder notices it through a watch on
 *   the directory and gives the lock up; waiters notice the removal of `<id>.lock` the same way.
 *   A slow safety re-check (`recheckInterval`) covers file systems whose change events are lost.
 * - Inside one process the holder is told directly, without waiting for the file system.
 * - With `leaseTime`, an unlocked lock stays this process's for that long (a lease): the next
 *   request of this process for the upload takes it back without touching the file system, so
 *   a client's HEAD and PATCH chain on one server cost no lock files. Another process that wants
 *   it asks as always (`.stop`), and an idle lease gives way at once.
 *
 * Nothing in the directory is followed as a path: the lock link is only ever read with `readlink`
 * (its target is a token, not a file), `.stop` files are created with `O_EXCL` and checked with
 * `lstat`, and a legacy lock file is opened with `O_NOFOLLOW`. A directory the locker creates
 * gets `directoryMode` (0o700 by default) and `.stop` files 0o600.
 *
 * The pid check makes it a one-host locker: on storage shared between hosts use a distributed one.
 */
import { randomBytes } from 'node:crypto'
import { constants, watch, type FSWatcher } from 'node:fs'
import { chmod, lstat, mkdir, open, readdir, readlink, symlink, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LocalQueue } from './local-queue.js'
import { LockTimeout, whenAborted } from './locker.js'
import { Wakeups } from './wakeups.js'
import type { Lock, Locker, LockOptions, ReleaseReason } from './locker.js'

export interface FileLockerOptions {
  /** Where lock files live. Use the upload directory or a directory beside it. */
  directory: string
  /** Milliseconds between safety re-checks while waiting or holding. Default 1000. */
  recheckInterval?: number | undefined
  /** Mode of the directory when the locker creates it (an existing one is left as it is). Default 0o700. */
  directoryMode?: number | undefined
  /**
   * Milliseconds an unlocked lock stays this process's, taken back by its next request for the
   * upload without a file-system call; another process's request ends it at once. Default 0 (off):
   * the lock file goes at unlock.
   */
  leaseTime?: number | undefined
}

interface Lease {
  token: string
  timer: NodeJS.Timeout
  listener: () => void
}

interface Held {
  token: string
  onReleaseRequested: (reason: ReleaseReason) => void
  asked: boolean
}

const SAFE_ID = /^[A-Za-z0-9_-]+$/

/** With the pid and a counter, tells this process's locks apart from any other's (pids are reused). */
const processTag = randomBytes(6).toString('hex')
let lockCounter = 0

/** How long an empty lock file may exist before it counts as abandoned. */
const UNFILLED_LOCK_MS = 5000

export class FileLocker implements Locker {
  readonly directory: string
  readonly #recheckInterval: number
  readonly #directoryMode: number
  readonly #leaseTime: number
  readonly #held = new Map<string, Held>()
  /** Locks no request holds that stay ours for `leaseTime`. */
  readonly #leases = new Map<string, Lease>()
  /** Leases being given up (close waits for them). */
  readonly #ending = new Set<Promise<void>>()
  /** This process's waiters, per id, in arrival order. */
  readonly #queue = new LocalQueue()
  /** Callbacks to run when something happens to files of an id. */
  readonly #listeners = new Wakeups()
  #watcher: FSWatcher | undefined
  /**
   * Ids whose `.stop` file may exist: the ones seen at start and in the watch since. While the
   * watch works, an id not in here has no stale `.stop` to clear when its lock is taken.
   */
  readonly #stops = new Set<string>()
  #watching = false
  #timer: NodeJS.Timeout | undefined
  #ready: Promise<void> | undefined

  constructor (options: FileLockerOptions) {
    if (typeof options?.directory !== 'string' || options.directory === '') {
      throw new TypeError('FileLocker: "directory" must be a non-empty string')
    }
    this.directory = options.directory
    this.#recheckInterval = options.recheckInterval ?? 1000
    const mode = options.directoryMode ?? 0o700
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new TypeError('FileLocker: "directoryMode" must be a permission mode from 0 to 0o777')
    this.#directoryMode = mode
    const leaseTime = options.leaseTime ?? 0
    if (!Number.isInteger(leaseTime) || leaseTime < 0) throw new TypeError('FileLocker: "leaseTime" must be a whole number of milliseconds')
    this.#leaseTime = leaseTime
  }

  get leases (): boolean {
    return this.#leaseTime > 0
  }

  async lock (id: string, options: LockOptions): Promise<Lock> {
    if (!SAFE_ID.test(id)) throw new TypeError(`FileLocker: unsafe lock id ${JSON.stringify(id)}`)
    let token = `${process.pid}.${processTag}.${++lockCounter}`
    const aborted = whenAborted(id, options.signal)
    // waiters of this process queue in order; only the first in line contends for the file,
    // so a crowd of requests for one upload never stampedes the file system
    const place = this.#queue.join(id)
    const leave = place.leave
    const previous = place.ahead
    let wake: () => void = () => {}
    const listener = (): void => wake()
    this.#listeners.add(id, listener)
    let acquired = false
    try {
      if (previous !== undefined) {
        const local = this.#held.get(id)
        if (local !== undefined) askOnce(local)
        await Promise.race([previous, aborted.promise])
      }
      await this.#start()
      // a lease of ours: the lock file is already there, with our token
      const lease = this.#takeLease(id)
      if (lease !== undefined) {
        token = lease
        acquired = true
      }
      while (!acquired) {
        if (options.signal.aborted) throw new LockTimeout(id, { cause: options.signal.reason })
        const changed = new Promise<void>((resolve) => { wake = resolve })
        acquired = await this.#tryAcquire(id, token)
        if (acquired) break
        await this.#askToRelease(id)
        await Promise.race([changed, aborted.promise])
      }
    } catch (err) {
      leave()
      throw err
    } finally {
      aborted.dispose()
      this.#listeners.remove(id, listener)
    }
    const held: Held = { token, onReleaseRequested: options.onReleaseRequested, asked: false }
    this.#held.set(id, held)
    const onStop = (): void => { this.#checkStop(id, held).catch(() => {}) }
    let done = false
    // a .stop left for the previous holder is not meant for us: it goes while the caller already
    // works, and release requests are watched for once it is gone
    const cleared = this.#clearStop(id).then(() => {
      if (!done) this.#listeners.add(id, onStop)
    })
    // someone of this process queued behind us meanwhile: they asked for the lock too
    if (place.followed()) askOnce(held)
    return {
      // the token stays ours while the lock file does: one lease across requests
      lease: this.#leaseTime > 0 ? token : undefined,
      unlock: async () => {
        if (done) return
        done = true
        await cleared
        this.#listeners.remove(id, onStop)
        if (this.#held.get(id) === held) this.#held.delete(id)
        // nobody asked for it: keep it as a lease (a stop seen meanwhile ends the lease at once)
        if (!held.asked && this.#leaseTime > 0 && this.#watching) {
          this.#lease(id, token)
          leave()
          this.#notify(id)
          return
        }
        try {
          // still our lock (our token)? then remove it, and a release request if one came
          if ((await readOwner(this.#path(id, 'lock')))?.token === token) {
            await Promise.all([
              held.asked ? unlinkIfPresent(this.#path(id, 'stop')) : undefined,
              unlinkIfPresent(this.#path(id, 'lock'))
            ])
          }
        } finally {
          leave()
          this.#notify(id)
        }
      }
    }
  }

  /** Keeps an unlocked lock for `leaseTime`; a `.stop` from another process ends it at once. */
  #lease (id: string, token: string): void {
    const listener = (): void => {
      if (this.#stops.has(id) || !this.#watching) this.#endLease(id, token).catch(() => {})
    }
    const timer = setTimeout(() => { this.#endLease(id, token).catch(() => {}) }, this.#leaseTime)
    timer.unref()
    this.#leases.set(id, { token, timer, listener })
    this.#listeners.add(id, listener)
    // a stop that came while the lock was held but was not seen as a request (it raced the unlock)
    if (this.#stops.has(id)) listener()
  }

  /** The token of a lease on `id`, now held again by the caller; `undefined` when there is none. */
  #takeLease (id: string): string | undefined {
    const lease = this.#leases.get(id)
    if (lease === undefined) return undefined
    this.#leases.delete(id)
    clearTimeout(lease.timer)
    this.#listeners.remove(id, lease.listener)
    return lease.token
  }

  /** Gives a lease up: the lock file goes (if it is still ours), and a release request with it. */
  async #endLease (id: string, token: string): Promise<void> {
    if (this.#leases.get(id)?.token !== token) return
    this.#takeLease(id)
    const ending = (async () => {
      try {
        if ((await readOwner(this.#path(id, 'lock')))?.token === token) {
          await Promise.all([
            this.#stops.has(id) ? unlinkIfPresent(this.#path(id, 'stop')) : undefined,
            unlinkIfPresent(this.#path(id, 'lock'))
          ])
        }
      } finally {
        this.#notify(id)
      }
    })()
    this.#ending.add(ending)
    try {
      await ending
    } finally {
      this.#ending.delete(ending)
    }
  }

  /**
   * Gives up every lease, then stops watching the directory. Locks still held keep working but
   * are no longer told to release.
   */
  async close (): Promise<void> {
    await Promise.all([...this.#leases].map(async ([id, { token }]) => await this.#endLease(id, token).catch(() => {})))
    await Promise.allSettled([...this.#ending])
    this.#watching = false
    this.#watcher?.close()
    this.#watcher = undefined
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    this.#ready = undefined
  }

  #path (id: string, kind: 'lock' | 'stop'): string {
    return join(this.directory, `${id}.${kind}`)
  }

  /**
   * Creates the lock (a symbolic link holding our token: it exists or it doesn't, atomically);
   * `false` while someone else holds it.
   */
  async #tryAcquire (id: string, token: string): Promise<boolean> {
    try {
      await symlink(token, this.#path(id, 'lock'))
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      await this.#breakIfStale(id)
      return false
    }
  }

  /**
   * Breaks a lock whose process is gone, or one that names no owner (a regular lock file left
   * empty: its owner died between creating and filling it in) for longer than any owner needs
   * to write a few bytes.
   */
  async #breakIfStale (id: string): Promise<void> {
    const path = this.#path(id, 'lock')
    const owner = await readOwner(path)
    if (owner !== undefined) {
      if (isAlive(owner.pid)) return
      const again = await readOwner(path)
      if (again?.token === owner.token) await unlinkIfPresent(path)
      return
    }
    // no owner to ask about: a regular file still empty, or a link that names nobody
    const found = await lstat(path).catch(() => undefined)
    if (found === undefined || (found.isFile() && found.size > 0) || Date.now() - found.mtimeMs < UNFILLED_LOCK_MS) return
    const again = await lstat(path).catch(() => undefined)
    if (again?.ino === found.ino && again.size === found.size) await unlinkIfPresent(path)
  }

  async #askToRelease (id: string): Promise<void> {
    const local = this.#held.get(id)
    if (local !== undefined) {
      askOnce(local)
      return
    }
    // `wx`: a new file or none (one there already asks the same); never through a planted link
    await writeFile(this.#path(id, 'stop'), String(process.pid), { flag: 'wx', mode: 0o600 }).catch(() => {})
  }

  async #checkStop (id: string, held: Held): Promise<void> {
    if (held.asked) return
    try {
      await lstat(this.#path(id, 'stop'))
    } catch {
      return
    }
    askOnce(held)
  }

  #notify (id: string | undefined): void {
    if (id === undefined) {
      this.#listeners.wakeAll()
    } else {
      this.#listeners.wake(id)
    }
  }

  /** Removes a `.stop` left for an earlier holder (without asking the file system when the watch says there is none). */
  async #clearStop (id: string): Promise<void> {
    if (this.#watching && !this.#stops.has(id)) return
    this.#stops.delete(id)
    await unlinkIfPresent(this.#path(id, 'stop')).catch(() => {})
  }

  async #start (): Promise<void> {
    this.#ready ??= (async () => {
      const created = await mkdir(this.directory, { recursive: true, mode: this.#directoryMode })
      if (created !== undefined) await chmod(this.directory, this.#directoryMode)
      this.#watcher = watch(this.directory, { persistent: false }, (_event, filename) => {
        if (filename === null) {
          this.#notify(undefined)
          return
        }
        const match = /^(.+)\.(lock|stop)$/.exec(filename)
        if (match === null) return
        const id = match[1] as string
        if (match[2] === 'stop') this.#stops.add(id)
        this.#notify(id)
      })
      this.#watching = true
      this.#watcher.on('error', () => { this.#watching = false })
      for (const name of await readdir(this.directory)) {
        if (name.endsWith('.stop')) this.#stops.add(name.slice(0, -'.stop'.length))
      }
      this.#timer = setInterval(() => this.#notify(undefined), this.#recheckInterval)
      this.#timer.unref()
    })()
    await this.#ready
  }
}

/** Who holds a lock (the link's target, whose first part is the pid), or `undefined` when nobody can be named. */
async function readOwner (path: string): Promise<{ pid: number, token: string } | undefined> {
  let token: string
  try {
    token = await readlink(path)
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EINVAL' ? await readLegacyOwner(path) : undefined
  }
  const pid = Number(token.slice(0, token.indexOf('.')))
  return Number.isInteger(pid) && pid > 0 ? { pid, token } : undefined
}

/** A regular lock file holding `{ pid, token }`. */
async function readLegacyOwner (path: string): Promise<{ pid: number, token: string } | undefined> {
  try {
    const handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW)
    let text: string
    try {
      text = await handle.readFile('utf8')
    } finally {
      await handle.close()
    }
    const value: unknown = JSON.parse(text)
    if (typeof value === 'object' && value !== null && typeof (value as { pid: unknown }).pid === 'number' &&
      typeof (value as { token: unknown }).token === 'string') {
      return value as { pid: number, token: string }
    }
  } catch {}
  return undefined
}

/** One `unlink` (where `rm` would stat first); a missing file is fine. */
async function unlinkIfPresent (path: string): Promise<void> {
  try {
    await unlink(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
}

function askOnce (held: Held): void {
  if (held.asked) return
  held.asked = true
  held.onReleaseRequested('requested')
}

function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
