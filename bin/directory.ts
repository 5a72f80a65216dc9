/**
 * `--upload-dir` made before a store or locker uses it: each missing directory on the way is made
 * in turn. Node's recursive `mkdir` never settles on a path where the system refuses to make a
 * directory under an existing one with `ENOENT` (anywhere under `/proc`, say); made one by one,
 * that is an error at start instead of a hang.
 */
import { chmod, mkdir, stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'

/** Makes `directory` and any missing parents; a directory made here gets exactly `mode`. */
export async function makeDirectory (directory: string, mode: number): Promise<void> {
  const missing: string[] = []
  for (let current = resolve(directory); ; current = dirname(current)) {
    try {
      await stat(current)
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
      missing.unshift(current)
      if (dirname(current) === current) break
    }
  }
  for (const path of missing) {
    try {
      await mkdir(path, { mode })
    } catch (err) {
      // made meanwhile by someone else: theirs, as it is
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') continue
      throw err
    }
    // whatever the umask took off
    await chmod(path, mode)
  }
}
