/**
 * The docs stay true to the code: docs/cli.md lists every flag of bin/flags.ts with its default,
 * and every relative link in README.md, docs/ and examples/README.md points at a file that exists.
 */
import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { defaultOf } from '../bin/flag-kit.js'
import { FLAGS, HELP, parseFlags } from '../bin/flags.js'

const root = fileURLToPath(new URL('../', import.meta.url))

/**
 * Pages that other branches of issue #11 are writing at the same time. Links to them are allowed
 * before they land; remove a line here once its page exists.
 */
const PAGES_IN_PROGRESS: readonly string[] = []

/** Rows of the flag table in docs/cli.md: `--name` → the default cell. */
function flagRows (markdown: string): Map<string, string> {
  const rows = new Map<string, string>()
  for (const line of markdown.split('\n')) {
    const cells = line.split('|').map((cell) => cell.trim())
    // | `--flag ARG` | default | meaning |
    const flag = /`(--[a-z0-9-]+)[ `]/.exec(cells[1] ?? '')?.[1]
    if (flag !== undefined && !rows.has(flag)) rows.set(flag, cells[2] ?? '')
  }
  return rows
}

t.test('docs/cli.md lists every flag of bin/flags.ts with its default', async (t) => {
  const rows = flagRows(await readFile(join(root, 'docs/cli.md'), 'utf8'))
  const names = Object.keys(FLAGS)
  t.ok(names.length > 30, 'the flag definitions were found')
  for (const [name, spec] of Object.entries(FLAGS)) {
    const flag = `--${name}`
    const cell = rows.get(flag)
    if (cell === undefined) {
      t.fail(`${flag} is not in the flag table of docs/cli.md`)
      continue
    }
    t.match(HELP, new RegExp(`${flag}\\b`), `${flag} is in --help`)
    if (name === 'help' || name === 'version') continue
    const shown = defaultOf(spec)
    if (spec.read.switch === true) {
      t.equal(cell, 'off', `${flag}: a switch, off by default`)
    } else if (shown === '' || shown === 'none') {
      t.equal(cell, 'none', `${flag}: empty by default`)
    } else if (shown !== undefined) {
      t.ok(cell.startsWith(`\`${shown}\``), `${flag}: docs/cli.md gives the default \`${shown}\` (found "${cell}")`)
      t.match(HELP, new RegExp(`${flag}[^\\n]*(\\n {20,}[^\\n]*)*\\(default ${shown.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\)`), `--help gives ${flag}'s default`)
    } else {
      // no default: the flag is off unless given; the cell says what that means (or nothing)
      t.notMatch(cell, /^`\d/, `${flag}: no number as a default it does not have (found "${cell}")`)
    }
  }
  for (const documented of rows.keys()) {
    t.ok(names.includes(documented.slice(2)), `docs/cli.md documents ${documented}, which bin/flags.ts defines`)
  }
})

t.test('the defaults shown for flags applied elsewhere are the ones the command applies', async (t) => {
  const config = parseFlags([])
  if (typeof config === 'string') throw new Error('no config')
  t.equal(config.locker, defaultOf(FLAGS.locker))
  t.equal(config.redisUrl, defaultOf(FLAGS['redis-url']))
  t.same(config.etcdUrls, [defaultOf(FLAGS['etcd-url'])])
})

/** Markdown files whose links are checked. */
async function markdownFiles (): Promise<string[]> {
  const files = ['README.md', 'examples/README.md']
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(join(root, dir), { withFileTypes: true })) {
      const path = `${dir}/${entry.name}`
      if (entry.isDirectory()) await walk(path)
      else if (entry.name.endsWith('.md')) files.push(path)
    }
  }
  await walk('docs')
  return files
}

/** Relative link targets outside code: `[text](target)` and `[text]: target`. */
function relativeLinks (markdown: string): string[] {
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '``')
  const targets = [
    ...[...prose.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((match) => match[1] as string),
    ...[...prose.matchAll(/^\s*\[[^\]]+\]:\s*(\S+)/gm)].map((match) => match[1] as string)
  ]
  return targets.filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target))
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces to dashes, repeats numbered. */
function anchors (markdown: string): Set<string> {
  const found = new Set<string>()
  const prose = markdown.replace(/^```[\s\S]*?^```/gm, '')
  for (const match of prose.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = (match[1] as string).toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-')
    let slug = base
    for (let n = 1; found.has(slug); n++) slug = `${base}-${n}`
    found.add(slug)
  }
  return found
}

t.test('relativeLinks finds prose links and skips code and URLs; anchors are as GitHub makes them', async (t) => {
  t.same(relativeLinks([
    'See [cli](docs/cli.md#flags), [site](https://tus.io), [top](#top) and [ref].',
    '`[not](a-link.md)`',
    '```md',
    '[not](either.md)',
    '```',
    '[ref]: ./other.md'
  ].join('\n')), ['docs/cli.md#flags', '#top', './other.md'])
  t.same([...anchors('# A `b()` c\n## The command\'s hooks\n```\n# not a heading\n```\n## A `b()` c\n')],
    ['a-b-c', 'the-commands-hooks', 'a-b-c-1'])
})

t.test('every relative link in README.md, docs/ and examples/README.md resolves to a file (and heading)', async (t) => {
  const allowed = new Set(PAGES_IN_PROGRESS.map((page) => resolve(root, page)))
  let checked = 0
  for (const file of await markdownFiles()) {
    const markdown = await readFile(join(root, file), 'utf8')
    for (const link of relativeLinks(markdown)) {
      const [path = '', anchor] = link.split('#', 2)
      const target = path === '' ? resolve(root, file) : resolve(root, dirname(file), decodeURIComponent(path.replace(/\?.*$/, '')))
      checked++
      if (allowed.has(target)) continue
      if (!existsSync(target)) {
        t.fail(`${file}: ${link} → ${relative(root, target)} does not exist`)
        continue
      }
      if (anchor !== undefined && anchor !== '' && target.endsWith('.md')) {
        t.ok(anchors(await readFile(target, 'utf8')).has(anchor), `${file}: ${link} names a heading of ${relative(root, target)}`)
      }
    }
  }
  t.ok(checked > 40, `${checked} links checked`)
})

t.test('README.md links the documentation front page', async (t) => {
  const readme = await readFile(join(root, 'README.md'), 'utf8')
  t.match(readme, '](docs/index.md)')
  t.match(readme, 'npm install && npm start')
  t.match(readme, 'npm test ')
})
