import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileLocker } from '../locks/file.js'
import { MemoryLocker } from '../locks/memory.js'
import { lockerConformance } from './conformance/locker.js'

lockerConformance(t, 'MemoryLocker', async () => {
  const locker = new MemoryLocker()
  return { a: locker, b: locker }
})

lockerConformance(t, 'FileLocker (one instance)', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-locker-'))
  const locker = new FileLocker({ directory })
  return { a: locker, b: locker, cleanup: async () => { await locker.close(); await rm(directory, { recursive: true, force: true }) } }
})

lockerConformance(t, 'FileLocker (two instances)', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-locker-'))
  const a = new FileLocker({ directory })
  const b = new FileLocker({ directory })
  return {
    a,
    b,
    cleanup: async () => {
      await a.close()
      await b.close()
      await rm(directory, { recursive: true, force: true })
    }
  }
})
