/**
 * What single file-system calls cost on this machine: each one made synchronously (the system
 * call alone) and through `fs.promises` (plus the hand-over to libuv's thread pool and back),
 * as CPU microseconds per call of the whole process. The file store's figures in
 * docs/performance.md come from here.
 *
 *   npx tsx bench/fs-costs.ts [directory] [calls]
 */
import * as fs from 'node:fs'
import * as fsp from 'node:fs/promises'
import { join } from 'node:path'

const [base = '.bench', callsText = '2000'] = process.argv.slice(2)
const calls = Number(callsText)
await fsp.mkdir(base, { recursive: true })
const dir = await fsp.mkdtemp(join(base, 'fs-costs-'))
const block = Buffer.alloc(4096, 0x61)

async function measure (name: string, run: (i: number) => unknown): Promise<void> {
  const cpu = process.cpuUsage()
  for (let i = 0; i < calls; i++) await run(i)
  const used = process.cpuUsage(cpu)
  process.stdout.write(`${name.padEnd(34)} ${((used.user + used.system) / calls).toFixed(1).padStart(7)} µs CPU per call\n`)
}

try {
  fs.writeFileSync(join(dir, 'data'), '')
  const fd = fs.openSync(join(dir, 'data'), 'r+')
  const handle = await fsp.open(join(dir, 'data'), 'r+')
  await measure('create (open O_EXCL + close), sync', (i) => { fs.closeSync(fs.openSync(join(dir, `s${i}`), 'wx')) })
  await measure('create (open O_EXCL + close), async', async (i) => { await (await fsp.open(join(dir, `a${i}`), 'wx')).close() })
  await measure('stat, sync', (i) => fs.statSync(join(dir, `s${i}`)))
  await measure('stat, async', async (i) => await fsp.stat(join(dir, `a${i}`)))
  await measure('pwrite 4 KiB, sync', (i) => fs.writeSync(fd, block, 0, block.length, i * block.length))
  await measure('pwrite 4 KiB, async', async (i) => await handle.write(block, 0, block.length, i * block.length))
  await measure('symlink, async', async (i) => { await fsp.symlink(`${i}`, join(dir, `l${i}`)) })
  await measure('unlink, async', async (i) => { await fsp.unlink(join(dir, `l${i}`)) })
  fs.closeSync(fd)
  await handle.close()
} finally {
  await fsp.rm(dir, { recursive: true, force: true })
}
