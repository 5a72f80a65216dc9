// Bundles the command's demo page (bin/demo/) into dist/demo/: app.js with Uppy, demo.css with
// Uppy's styles, and index.html. Run by `npm run build`; the command serves what it finds there.
import { build } from 'esbuild'
import { copyFile, mkdir } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../', import.meta.url))
const out = `${root}dist/demo`

await mkdir(out, { recursive: true })
await build({
  absWorkingDir: root,
  entryPoints: ['bin/demo/app.ts', 'bin/demo/demo.css'],
  outdir: out,
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2020', 'chrome100', 'firefox100', 'safari15'],
  // Uppy's CSS may inline small images and fonts; the page's CSP allows data: for them
  loader: { '.svg': 'dataurl', '.png': 'dataurl', '.woff': 'dataurl', '.woff2': 'dataurl' },
  legalComments: 'eof',
  logLevel: 'warning'
})
await copyFile(`${root}bin/demo/index.html`, `${out}/index.html`)
