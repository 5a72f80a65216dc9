/**
 * The command's demo page at `/`: an Uppy Dashboard (bundled at build time into dist/demo/ by
 * scripts/build-demo.mjs) uploading to the tus endpoint. The list of completed uploads lives in
 * the browser that made them (its localStorage): the server never lists uploads, since an upload's
 * id is all that protects it.
 *
 * Only a fixed list of files is served, read once at start, each with its own content type,
 * `nosniff` and a Content-Security-Policy that allows nothing but this origin (plus `data:`/`blob:`
 * images for Uppy's icons and thumbnails). Upload ids never contain a dot, so the asset paths
 * cannot shadow an upload, whatever the base path.
 */
import type { FastifyInstance, FastifyReply } from 'fastify'
import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

export interface DemoOptions {
  /** The tus collection path, e.g. `/files/`. */
  basePath: string
  /** Whether uploads can be downloaded (GET), so the page links them. */
  download: boolean
  /** Where the built assets are; by default dist/demo/ of this package. */
  assets?: string
}

export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'"
].join('; ')

/** URL path → built file and its content type: the only files served. */
const FILES: ReadonlyArray<{ url: string, file: string, type: string }> = [
  { url: '/', file: 'index.html', type: 'text/html; charset=utf-8' },
  { url: '/demo/app.js', file: 'app.js', type: 'text/javascript; charset=utf-8' },
  { url: '/demo/demo.css', file: 'demo.css', type: 'text/css; charset=utf-8' }
]

/** dist/demo/ seen from bin/ (sources through tsx) or from dist/bin/ (the build). */
export function defaultAssets (): string | undefined {
  for (const relative of ['../dist/demo/', '../demo/']) {
    const dir = fileURLToPath(new URL(relative, import.meta.url))
    if (existsSync(`${dir}index.html`)) return dir
  }
  return undefined
}

/** Adds the demo routes; resolves with whether the page is served. */
export async function registerDemo (app: FastifyInstance, options: DemoOptions): Promise<boolean> {
  if (options.basePath === '/') {
    app.log.info('demo page off: --base-path / gives the root path to the upload collection')
    return false
  }
  const assets = options.assets ?? defaultAssets()
  if (assets === undefined || !existsSync(`${assets}/index.html`)) {
    app.log.warn('demo page off: its files are not built (run npm run build)')
    return false
  }
  const dir = assets.endsWith('/') ? assets : `${assets}/`
  const contents = await Promise.all(FILES.map(async ({ file }) => await readFile(`${dir}${file}`)))
  const page = contents[0]?.toString('utf8')
    .replaceAll('{{endpoint}}', escapeHtml(options.basePath))
    .replaceAll('{{download}}', String(options.download))

  FILES.forEach(({ url, type }, index) => {
    const body = index === 0 ? page : contents[index]
    app.get(url, async (_request, reply) => {
      secure(reply)
      return await reply.type(type).header('Cache-Control', 'no-cache').send(body)
    })
  })

  return true
}

function secure (reply: FastifyReply): void {
  reply.header('X-Content-Type-Options', 'nosniff')
  reply.header('Content-Security-Policy', CONTENT_SECURITY_POLICY)
  reply.header('Referrer-Policy', 'no-referrer')
  reply.header('X-Frame-Options', 'DENY')
}

function escapeHtml (text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`)
}
