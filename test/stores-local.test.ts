import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { FileStore } from '../stores/file.js'
import { MemoryStore } from '../stores/memory.js'
import { storeConformance } from './conformance/store.js'

storeConformance(t, 'MemoryStore', async () => ({ store: new MemoryStore() }))

storeConformance(t, 'FileStore', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-store-'))
  return { store: new FileStore({ directory }), cleanup: async () => await rm(directory, { recursive: true, force: true }) }
})

storeConformance(t, 'FileStore with fsync', async () => {
  const directory = await mkdtemp(join(tmpdir(), 'tus-file-store-'))
  return { store: new FileStore({ directory, fsync: true }), cleanup: async () => await rm(directory, { recursive: true, force: true }) }
})
