/**
 * A consumer project outside this repository: the package as `npm pack` ships it, unpacked into
 * `<dir>/node_modules/fastify-tus`, next to links to this repository's installed dependencies (so
 * nothing is downloaded). Code in `<dir>` resolves `fastify-tus` the way an application does.
 */
import { execFile } from 'node:child_process'
import { mkdir, readdir, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { Test } from 'tap'
import { tempDir } from './app.js'

const run = promisify(execFile)
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))

/** Packs the repository (it must be built: `npm run build`) and installs the tarball into a new project. */
export async function packedConsumer (t: Test, packageJson: Record<string, unknown> = {}): Promise<string> {
  const dir = await tempDir(t, 'tus-consumer-')
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: ROOT })
  const tarball = join(dir, (JSON.parse(stdout) as Array<{ filename: string }>)[0]!.filename)
  const modules = join(dir, 'node_modules')
  const target = join(modules, 'fastify-tus')
  await mkdir(target, { recursive: true })
  await run('tar', ['-xzf', tarball, '-C', target, '--strip-components=1'])
  const installed = join(ROOT, 'node_modules')
  for (const name of await readdir(installed)) {
    if (name === 'fastify-tus' || name.startsWith('.')) continue
    if (name.startsWith('@')) {
      await mkdir(join(modules, name), { recursive: true })
      for (const inner of await readdir(join(installed, name))) {
        if (name === '@types' || inner !== 'fastify-tus') await symlink(join(installed, name, inner), join(modules, name, inner))
      }
    } else {
      await symlink(join(installed, name), join(modules, name))
    }
  }
  await writeFile(join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module', ...packageJson }, null, 2))
  return dir
}
