/**
 * Starts Azurite's blob service (an npm devDependency) for a test, as a child process on a free
 * loopback port, in memory, and stops it by pid (SIGKILL) at teardown. Gives a container client
 * for the well-known development account and fresh container names.
 *
 * When Azurite cannot be run the tests are skipped loudly, except under `CI=true`, where that is
 * a failure: `npm ci` installs it.
 */
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import { BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob'
import type { Test } from 'tap'
import { tempDir } from './app.js'
import { freePort } from './cli.js'
import { packageScript, withEmulator } from './npm-emulator.js'

/** Azurite's development account and key (public, documented by Microsoft). */
export const ACCOUNT = 'devstoreaccount1'
export const ACCOUNT_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='

export interface AzuriteServer {
  /** The account's blob endpoint: `http://127.0.0.1:<port>/devstoreaccount1`. */
  endpoint: string
  service: BlobServiceClient
  /** Creates a fresh container and answers its client. */
  container: () => Promise<ContainerClient>
  /** Names of every blob in a container. */
  names: (container: ContainerClient, prefix?: string) => Promise<string[]>
}

/** Azurite's blob service script, or undefined when it is not installed. */
export const azuriteCli = packageScript('azurite', ['dist', 'src', 'blob', 'main.js'])

export function withAzurite (t: Test, body: () => void): void {
  withEmulator(t, 'azurite', 'Azure', azuriteCli() !== undefined, body)
}

let counter = 0

export async function startAzurite (t: Test): Promise<AzuriteServer> {
  const cli = azuriteCli()
  if (cli === undefined) throw new Error('azurite is not installed')
  const port = await freePort()
  const child = spawn(process.execPath, [
    cli, '--blobHost', '127.0.0.1', '--blobPort', String(port), '--inMemoryPersistence', '--silent',
    '--skipApiVersionCheck', '--disableTelemetry'
  ], { cwd: await tempDir(t, 'tus-azurite-'), stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AZURITE_ACCOUNTS: undefined } })
  let output = ''
  child.stdout.on('data', (chunk) => { output += String(chunk) })
  child.stderr.on('data', (chunk) => { output += String(chunk) })
  let gone = false
  const killOnExit = (): void => { if (!gone && child.pid !== undefined) process.kill(child.pid, 'SIGKILL') }
  process.once('exit', killOnExit)
  const exited = new Promise<void>((resolve) => child.once('exit', () => {
    gone = true
    process.off('exit', killOnExit)
    resolve()
  }))
  const stop = async (): Promise<void> => {
    if (!gone && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    await exited
  }
  t.teardown(stop)
  const endpoint = `http://127.0.0.1:${port}/${ACCOUNT}`
  const service = new BlobServiceClient(endpoint, new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY))
  const deadline = Date.now() + 20_000
  for (;;) {
    if (gone) throw new Error(`azurite exited:\n${output}`)
    try {
      await service.getProperties()
      break
    } catch {}
    if (Date.now() > deadline) {
      await stop()
      throw new Error(`azurite did not get ready:\n${output}`)
    }
    await sleep(100)
  }
  return {
    endpoint,
    service,
    container: async () => {
      const client = service.getContainerClient(`c${process.pid}x${(counter++).toString(36)}`)
      await client.create()
      return client
    },
    names: async (container, prefix) => {
      const names: string[] = []
      for await (const blob of container.listBlobsFlat(prefix === undefined ? {} : { prefix })) names.push(blob.name)
      return names
    }
  }
}
