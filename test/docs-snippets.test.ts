/**
 * Every TypeScript example in README.md and docs/**\/*.md type-checks against the built package.
 *
 * Each ```ts / ```typescript block becomes its own module in `.snippets/` at the repository root
 * (gitignored, removed afterwards), so `import tus from 'fastify-tus'` and
 * `'fastify-tus/stores/file'` resolve through package.json's own `exports` (self-reference, the
 * types in dist/ that `pretest` builds). One TypeScript program checks them all at once with the
 * project's compiler options (strict, NodeNext); each block gets one assertion, and a failure
 * names the page, the block and the Markdown line: `docs/hooks.md block 3 (line 120): TS2345 …`.
 *
 * A block should be a complete program. Where it cannot honestly be one, an HTML comment just before the fence
 * (blank lines between are allowed; invisible on the rendered page) gives it a hidden prelude:
 *
 *   <!-- snippet: prelude (what it stands for, free text on this first line)
 *   import Fastify from 'fastify'
 *   const app = Fastify()
 *   -->
 *
 * The body (the lines after the first) is prepended to the block. This is allowed for exactly two things: a block
 * that continues the page's running example (`app`, `store` made in an earlier block, repeating them would bury the
 * point), and the reader's own code a block calls (`processFile`, `userFromToken`), which the prelude declares with
 * `declare function`. The prelude is type-checked with the block, so it cannot claim what the package lacks, and
 * a diagnostic inside it is reported as `(prelude before line N)`. There is no way to skip a block.
 *
 * Other languages (sh, json, nginx, yaml …) are not touched. New pages are picked up by the walk.
 */
import { existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import ts from 'typescript'

const root = fileURLToPath(new URL('../', import.meta.url))
const outDir = join(root, '.snippets')

interface Block {
  /** `docs/hooks.md` */
  page: string
  /** 1-based among the page's TypeScript blocks */
  index: number
  /** the Markdown line of the opening fence */
  fence: number
  code: string
  prelude: string
}

/** README.md and every .md under docs/, sorted, as repository-relative paths. */
async function pages (): Promise<string[]> {
  const found = ['README.md']
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`
      if (entry.isDirectory()) await walk(path)
      else if (entry.name.endsWith('.md')) found.push(path)
    }
  }
  await walk('docs')
  return found.sort()
}

const PRELUDE_COMMENT = /^\s*<!--\s*snippet:\s*prelude\b([^\n]*\n)([\s\S]*?)-->\s*$/

/**
 * The hidden prelude of the block whose fence is line `fence` (0-based): the body of a
 * `<!-- snippet: prelude … -->` comment ending just before it, or '' if there is none.
 * Any other `<!-- snippet…` comment there is a mistake and throws.
 */
function preludeBefore (page: string, lines: string[], fence: number): string {
  let end = fence - 1
  while (end >= 0 && lines[end]?.trim() === '') end--
  if (end < 0 || !(lines[end] ?? '').trimEnd().endsWith('-->')) return ''
  let start = end
  while (start >= 0 && !(lines[start] ?? '').includes('<!--')) start--
  const comment = lines.slice(Math.max(start, 0), end + 1).join('\n')
  if (!/^\s*<!--\s*snippet/.test(comment)) return ''
  const match = PRELUDE_COMMENT.exec(comment)
  if (match === null) throw new Error(`${page} line ${start + 1}: only <!-- snippet: prelude … --> is known`)
  return match[2] ?? ''
}

/** The TypeScript blocks of one page. Fences may be indented (inside a list) and use ``` or ~~~. */
function tsBlocks (page: string, markdown: string): Block[] {
  const lines = markdown.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i] ?? '')
    if (open === null) continue
    const [, indent = '', fence = '```', lang = ''] = open
    let j = i + 1
    while (j < lines.length && !new RegExp(`^\\s*${fence[0]}{${fence.length},}\\s*$`).test(lines[j] ?? '')) j++
    if (lang === 'ts' || lang === 'typescript') {
      const code = lines.slice(i + 1, j).map((line) => line.startsWith(indent) ? line.slice(indent.length) : line.trimStart())
      blocks.push({
        page,
        index: blocks.length + 1,
        fence: i + 1,
        code: code.join('\n') + '\n',
        prelude: preludeBefore(page, lines, i)
      })
    }
    i = j
  }
  return blocks
}

t.test('the block finder', async (t) => {
  const markdown = [
    '# Page', // 1
    '```ts', // 2
    'const a: number = 1', // 3
    '```', // 4
    '```sh', // 5
    'echo no', // 6
    '```', // 7
    '<!-- snippet: prelude', // 8
    'declare const app: unknown', // 9
    '-->', // 10
    '', // 11
    '  ```typescript', // 12
    '  void app', // 13
    '  ```', // 14
    '```ts', // 15
    '```' // 16
  ].join('\n')
  const blocks = tsBlocks('x.md', markdown)
  t.same(blocks.map(({ index, fence, code, prelude }) => ({ index, fence, code, prelude })), [
    { index: 1, fence: 2, code: 'const a: number = 1\n', prelude: '' },
    { index: 2, fence: 12, code: 'void app\n', prelude: 'declare const app: unknown\n' },
    { index: 3, fence: 15, code: '\n', prelude: '' }
  ])
  t.throws(() => tsBlocks('y.md', '<!-- snippet: skip -->\n```ts\nx\n```'), /y\.md line 1: only <!-- snippet: prelude/,
    'an unknown snippet comment is an error, not silently ignored')
  t.same(tsBlocks('z.md', '<!-- a plain comment -->\n```ts\nx\n```')[0]?.prelude, '', 'other comments are no prelude')
})

t.test('every TypeScript block in the docs type-checks', async (t) => {
  if (!existsSync(join(root, 'dist/plugin/index.d.ts'))) {
    t.fail('dist/ is missing: run `npm run build` first (npm test does it in pretest)')
    return
  }
  const blocks: Block[] = []
  for (const page of await pages()) blocks.push(...tsBlocks(page, await readFile(join(root, page), 'utf8')))
  t.ok(blocks.length >= 20, `found ${blocks.length} TypeScript blocks in README.md and docs/`)

  await rm(outDir, { recursive: true, force: true })
  await mkdir(outDir, { recursive: true })
  t.teardown(async () => { await rm(outDir, { recursive: true, force: true }) })

  /** file → its block and how many hidden prelude lines precede the block's first line */
  const files = new Map<string, { block: Block, preludeLines: number }>()
  for (const block of blocks) {
    const name = `${block.page.replace(/\.md$/, '').replace(/[^A-Za-z0-9]+/g, '-')}-${block.index}.ts`
    const file = resolve(outDir, name)
    const preludeLines = block.prelude === '' ? 0 : block.prelude.split('\n').length - 1
    await writeFile(file, block.prelude + block.code)
    files.set(file, { block, preludeLines })
  }
  await writeFile(join(outDir, 'tsconfig.json'), JSON.stringify({
    extends: '../tsconfig.json',
    compilerOptions: {
      rootDir: '.',
      noEmit: true,
      declaration: false,
      declarationMap: false,
      sourceMap: false,
      types: ['node'],
      // every block is a module of its own, even one without import or export
      moduleDetection: 'force'
    },
    include: ['*.ts']
  }, null, 2))

  const configPath = join(outDir, 'tsconfig.json')
  const config = ts.getParsedCommandLineOfConfigFile(configPath, {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (diagnostic) => { throw new Error(ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')) }
  })
  if (config === undefined) throw new Error('no tsconfig')
  t.same(config.errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n')), [], 'the generated tsconfig is valid')
  const program = ts.createProgram({ rootNames: config.fileNames, options: config.options })
  const diagnostics = ts.getPreEmitDiagnostics(program)

  const byFile = new Map<string, string[]>()
  const elsewhere: string[] = []
  for (const diagnostic of diagnostics) {
    const message = `TS${diagnostic.code} ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`
    const file = diagnostic.file === undefined ? undefined : resolve(diagnostic.file.fileName)
    const entry = file === undefined ? undefined : files.get(file)
    if (entry === undefined || diagnostic.file === undefined) {
      elsewhere.push(`${diagnostic.file === undefined ? '(global)' : relative(root, diagnostic.file.fileName)}: ${message}`)
      continue
    }
    const { block, preludeLines } = entry
    const line = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0).line // 0-based in the file
    const where = line < preludeLines
      ? `${block.page} block ${block.index} (prelude before line ${block.fence})`
      : `${block.page} block ${block.index} (line ${block.fence + 1 + line - preludeLines})`
    const list = byFile.get(file as string) ?? []
    list.push(`${where}: ${message}`)
    byFile.set(file as string, list)
  }

  for (const block of blocks) {
    const name = `${block.page} block ${block.index} (line ${block.fence})`
    const file = [...files].find(([, entry]) => entry.block === block)?.[0] as string
    const problems = byFile.get(file) ?? []
    if (problems.length === 0) t.pass(`${name} type-checks`)
    else t.fail(problems.join('\n'))
  }
  t.same(elsewhere, [], 'no diagnostics outside the blocks')
})
