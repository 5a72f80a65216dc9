/**
 * A locker that works across processes on one host, through lock files in a directory.
 *
 * - `<id>.lock` holds `{ pid, token }`. It appears atomically: the content is written to a
 *   private temporary file first, which is then hard-linked to the lock name (link fails if the
 *   name exists). A lock whose process is gone is stale and is broken by the next waiter.
 * - A waiter asks for release by creating `<id>.stop`. The holder notices it through a watch on
 *   the directory and gives the lock up; waiters notice the removal of `<id>.lock` the same way.
 *   A slow safety re-check (`recheckInterval`) covers file systems whose change events are lost.
 * - Inside one process the holder is told directly, without waiting for the file system.
 *
 * The pid check makes it a one-host locker: on storage shared between hosts use a distributed one.
 */
import { randomBytes } from 'node:crypto'
import { watch, type FSWatcher } from 'node:fs'
import { link, mkdir, open, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { LocalQueue } from './local-queue.js'
import { LockTimeout, whenAborted } from './locker.js'
import { Wakeups } from './wakeups.js'
import type { Lock, Locker, LockOptions, ReleaseReason } from './locker.js'

export interface FileLockerOptions {
  /** Where lock files live. Use the upload directory or a directory beside it. */
  directory: string
  /** Milliseconds between safety re-checks while waiting or holding. Default 1000. */
  recheckInterval?: number
}

interface Held {
  token: string
  onReleaseRequested: (reason: ReleaseReason) => void
  asked: boolean
}

const SAFE_ID = /^[A-Za-z0-9_-]+$/

export class FileLocker implements Locker {
  readonly directory: string
  readonly #recheckInterval: number
  readonly #held = new Map<string, Held>()
  /** This process's waiters, per id, in arrival order. */
  readonly #queue = new LocalQueue()
  /** Callbacks to run when something happens to files of an id. */
  readonly #listeners = new Wakeups()
  #watcher: FSWatcher | undefined
  #timer: NodeJS.Timeout | undefined
  #ready: Promise<void> | undefined

  constructor (options: FileLockerOptions) {
    if (typeof options?.directory !== 'string' || options.directory === '') {
      throw new TypeError('FileLocker: "directory" must be a non-empty string')
    }
    this.directory = options.directory
    this.#recheckInterval = options.recheckInterval ?? 1000
  }

  async lock (id: string, options: LockOptions): Promise<Lock> {
    if (!SAFE_ID.test(id)) throw new TypeError(`FileLocker: unsafe lock id ${JSON.stringify(id)}`)
    const token = `${process.pid}.${randomBytes(8).toString('hex')}`
    const aborted = whenAborted(id, options.signal)
    // waiters of this process queue in order; only the first in line contends for the file,
    // so a crowd of requests for one upload never stampedes the file system
    const place = this.#queue.join(id)
    const leave = place.leave
    const previous = place.ahead
    let wake: () => void = () => {}
    const listener = (): void => wake()
    this.#listeners.add(id, listener)
    let inode: number | undefined
    try {
      if (previous !== undefined) {
        const local = this.#held.get(id)
        if (local !== undefined) askOnce(local)
        await Promise.race([previous, aborted.promise])
      }
      await this.#start()
      for (;;) {
        if (options.signal.aborted) throw new LockTimeout(id, { cause: options.signal.reason })
        const changed = new Promise<void>((resolve) => { wake = resolve })
        inode = await this.#tryAcquire(id, token)
        if (inode !== undefined) break
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
    // a .stop left for the previous holder is not meant for us
    await rm(this.#path(id, 'stop'), { force: true })
    const held: Held = { token, onReleaseRequested: options.onReleaseRequested, asked: false }
    this.#held.set(id, held)
    const onStop = (): void => { this.#checkStop(id, held).catch(() => {}) }
    this.#listeners.add(id, onStop)
    // someone of this process queued behind us meanwhile: they asked for the lock too
    if (place.followed()) askOnce(held)
    let done = false
    return {
      unlock: async () => {
        if (done) return
        done = true
        this.#listeners.remove(id, onStop)
        if (this.#held.get(id) === held) this.#held.delete(id)
        try {
          // still our lock file (the same inode)? then remove it, and a release request if one came
          const current = await stat(this.#path(id, 'lock')).catch(() => undefined)
          if (current?.ino === inode) {
            if (held.asked) await rm(this.#path(id, 'stop'), { force: true })
            await rm(this.#path(id, 'lock'), { force: true })
          }
        } finally {
          leave()
          this.#notify(id)
        }
      }
    }
  }

  /** Stops watching the directory. Locks still held keep working but are no longer told to release. */
  async close (): Promise<void> {
    this.#watcher?.close()
    this.#watcher = undefined
    if (this.#timer !== undefined) clearInterval(this.#timer)
    this.#timer = undefined
    this.#ready = undefined
  }

  #path (id: string, kind: 'lock' | 'stop'): string {
    return join(this.directory, `${id}.${kind}`)
  }

  /** Creates the lock file; resolves with its inode (which identifies our lock), or `undefined` if held. */
  async #tryAcquire (id: string, token: string): Promise<number | undefined> {
    const tmp = join(this.directory, `.${id}.${token}.tmp`)
    const handle = await open(tmp, 'wx')
    let inode: number
    try {
      await handle.writeFile(JSON.stringify({ pid: process.pid, token }))
      inode = (await handle.stat()).ino
    } finally {
      await handle.close()
    }
    try {
      await link(tmp, this.#path(id, 'lock'))
      return inode
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    } finally {
      await unlink(tmp).catch(() => {})
    }
    // held: break it if its process is gone
    const owner = await this.#readOwner(id)
    if (owner !== undefined && !isAlive(owner.pid)) {
      const again = await this.#readOwner(id)
      if (again?.token === owner.token) await rm(this.#path(id, 'lock'), { force: true })
    }
    return undefined
  }

  async #askToRelease (id: string): Promise<void> {
    const local = this.#held.get(id)
    if (local !== undefined) {
      askOnce(local)
      return
    }
    await writeFile(this.#path(id, 'stop'), String(process.pid)).catch(() => {})
  }

  async #checkStop (id: string, held: Held): Promise<void> {
    if (held.asked) return
    try {
      await readFile(this.#path(id, 'stop'))
    } catch {
      return
    }
    askOnce(held)
  }

  async #readOwner (id: string): Promise<{ pid: number, token: string } | undefined> {
    try {
      const value: unknown = JSON.parse(await readFile(this.#path(id, 'lock'), 'utf8'))
      if (typeof value === 'object' && value !== null && typeof (value as { pid: unknown }).pid === 'number' &&
        typeof (value as { token: unknown }).token === 'string') {
        return value as { pid: number, token: string }
      }
    } catch {}
    return undefined
  }

  #notify (id: string | undefined): void {
    if (id === undefined) {
      this.#listeners.wakeAll()
    } else {
      this.#listeners.wake(id)
    }
  }

  async #start (): Promise<void> {
    this.#ready ??= (async () => {
      await mkdir(this.directory, { recursive: true })
      this.#watcher = watch(this.directory, { persistent: false }, (_event, filename) => {
        if (filename === null) {
          this.#notify(undefined)
          return
        }
        const match = /^(.+)\.(lock|stop)$/.exec(filename)
        if (match !== null) this.#notify(match[1])
      })
      this.#watcher.on('error', () => {})
      this.#timer = setInterval(() => this.#notify(undefined), this.#recheckInterval)
      this.#timer.unref()
    })()
    await this.#ready
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
