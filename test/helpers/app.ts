/**
 * Builds a Fastify app with the plugin for a test, on a MemoryStore or a FileStore in a fresh
 * temporary directory, and closes it (and removes the directory) at teardown.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Test } from 'tap'
import tus from '../../plugin/index.js'
import type { TusPluginOptions } from '../../plugin/options.js'
import { FileStore } from '../../stores/file.js'
import { MemoryStore } from '../../stores/memory.js'

export const TUS = { 'tus-resumable': '1.0.0' }
export const OCTET = 'application/offset+octet-stream'

export async function tempDir (t: Test, prefix = 'tus-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix))
  t.teardown(async () => await rm(dir, { recursive: true, force: true }))
  return dir
}

export interface TestApp {
  app: FastifyInstance
  dir: string | undefined
}

export async function buildApp (
  t: Test,
  options: Partial<TusPluginOptions> & { fileStore?: boolean } = {},
  configure?: (app: FastifyInstance) => void | Promise<void>
): Promise<TestApp> {
  const { fileStore, ...rest } = options
  let dir: string | undefined
  let store = rest.store
  if (store === undefined) {
    if (fileStore === true) {
      dir = await tempDir(t)
      store = new FileStore({ directory: dir })
    } else {
      store = new MemoryStore()
    }
  }
  const app = Fastify({ logger: false })
  await configure?.(app)
  await app.register(tus, { ...rest, store })
  t.teardown(async () => await app.close())
  await app.ready()
  return { app, dir }
}

/** Creates an upload through the API and returns its path (e.g. `/files/abc`). */
export async function createUpload (app: FastifyInstance, headers: Record<string, string> = { 'upload-length': '11' }, base = '/files/'): Promise<string> {
  const response = await app.inject({ method: 'POST', url: base, headers: { ...TUS, ...headers } })
  if (response.statusCode !== 201) throw new Error(`create failed: ${response.statusCode} ${response.body}`)
  return new URL(response.headers.location as string, 'http://localhost').pathname
}
