/** How the package meets an app: Fastify is the app's own copy, heavy modules load only when used. */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { childEnv } from './helpers/env.js'

const root = fileURLToPath(new URL('..', import.meta.url))
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
  dependencies: Record<string, string>
  peerDependencies: Record<string, string>
  peerDependenciesMeta: Record<string, { optional?: boolean }>
}

t.test('fastify is a peer: an app never gets a second copy', async (t) => {
  t.equal(pkg.dependencies.fastify, undefined, 'not a dependency')
  t.match(pkg.peerDependencies.fastify, /^\^5\./, 'a peer range over Fastify 5')
  t.notOk(pkg.peerDependenciesMeta.fastify?.optional, 'a required peer: npm installs it with the package, so the command runs')
  for (const [name, range] of Object.entries(pkg.dependencies)) t.match(range, /^\^/, `${name} is a range, never an exact pin`)
  t.equal(pkg.dependencies['pino-pretty'], undefined, 'pino-pretty is only for the command\'s pretty logs')
  t.equal(pkg.peerDependenciesMeta['pino-pretty']?.optional, true)
})

/** Runs a script in a child whose package imports are recorded; returns the specifiers it resolved. */
function resolvedBy (script: string): string[] {
  const hooks = 'export async function resolve (specifier, context, next) {\n' +
    '  if (!/^(\\.|node:|file:|data:)/.test(specifier)) process.stderr.write("resolve " + specifier + "\\n")\n' +
    '  return await next(specifier, context)\n}\n'
  const register = `import { register } from 'node:module'\nregister(${JSON.stringify(`data:text/javascript,${encodeURIComponent(hooks)}`)})\n`
  // the hooks run on the loader's thread, whose stderr reaches the process asynchronously: the
  // script waits a little before it ends, so no line is lost on a busy machine
  const settled = `${script}\nawait new Promise((resolve) => setTimeout(resolve, 500))\n`
  const run = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(register)}`, '--input-type=module', '-e', settled], {
    cwd: root, env: childEnv(), encoding: 'utf8'
  })
  if (run.status !== 0) throw new Error(`child failed: ${run.stderr}`)
  return run.stderr.split('\n').filter((line) => line.startsWith('resolve ')).map((line) => line.slice('resolve '.length))
}

t.test('prom-client loads only when metrics are on', async (t) => {
  const app = (metrics: boolean): string => `
    import Fastify from 'fastify'
    import tus from './dist/plugin/index.js'
    import { MemoryStore } from './dist/stores/memory.js'
    const app = Fastify()
    await app.register(tus, { store: new MemoryStore(), metrics: ${String(metrics)} })
    await app.ready()
    await app.close()`
  const off = resolvedBy(app(false))
  t.ok(off.includes('fastify'), 'the recorder sees package imports')
  t.notOk(off.includes('prom-client'), 'metrics off: prom-client is never loaded')
  t.ok(resolvedBy(app(true)).includes('prom-client'), 'metrics on: it is')
})

t.test('@grpc/grpc-js and @grpc/proto-loader load only with --hooks-grpc, and the proto ships', async (t) => {
  t.equal(pkg.peerDependenciesMeta['@grpc/grpc-js']?.optional, true)
  t.equal(pkg.peerDependenciesMeta['@grpc/proto-loader']?.optional, true)
  const command = (flags: string[]): string => `
    import { mkdtempSync } from 'node:fs'
    import { tmpdir } from 'node:os'
    import { join } from 'node:path'
    import { parseFlags } from './dist/bin/flags.js'
    import { buildServer } from './dist/bin/server.js'
    const dir = mkdtempSync(join(tmpdir(), 'tus-pack-'))
    const app = await buildServer(parseFlags(['--upload-dir', dir, '--log-level', 'silent', '--disable-demo', ...${JSON.stringify(flags)}]))
    await app.close()`
  const plain = resolvedBy(command([]))
  t.notOk(plain.some((name) => name.startsWith('@grpc/')), 'no gRPC without --hooks-grpc')
  const grpc = resolvedBy(command(['--hooks-grpc', '127.0.0.1:1']))
  t.ok(grpc.includes('@grpc/grpc-js') && grpc.includes('@grpc/proto-loader'), 'both with it, the proto found from dist/')
})
