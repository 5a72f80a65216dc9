/**
 * The demo page in a real headless Chromium: upload a generated file through Uppy's Dashboard in
 * small chunks, reload the page half-way, add the same file again and watch it resume where the
 * server stopped (no new upload, first PATCH at a non-zero offset), then check the stored bytes
 * and the completed list. PATCH requests are held back a little by the test (request
 * interception), so the reload always lands mid-upload. Screenshots go to test-artifacts/.
 */
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, statSync } from 'node:fs'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Page } from 'playwright-core'
import { tempDir } from './helpers/app.js'
import { launchChromium, withChromium } from './helpers/chromium.js'
import { freePort, startServer } from './helpers/cli.js'

const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url))
const CHUNK = 256 * 1024
const SIZE = 6 * 1024 * 1024 + 12_345
const NAME = 'demo-upload.bin'

withChromium(t, () => {
  t.test('upload, reload mid-way, resume, complete', async (t) => {
    const uploads = await tempDir(t)
    const files = await tempDir(t, 'tus-demo-file-')
    const file = join(files, NAME)
    const bytes = randomBytes(SIZE)
    await writeFile(file, bytes)
    await mkdir(ARTIFACTS, { recursive: true })

    const server = await startServer(t, ['--port', String(await freePort()), '--upload-dir', uploads, '--log-level', 'warn'])
    const origin = new URL(server.url).origin

    const context = await launchChromium(t)
    const page = context.pages()[0] ?? await context.newPage()
    const problems: string[] = []
    page.on('console', (message) => { if (message.type() === 'error') problems.push(message.text()) })
    page.on('pageerror', (err) => { problems.push(err.message) })

    // every tus request the page sends, and PATCHes held back so the upload takes a few seconds
    const requests: Array<{ method: string, offset: number | undefined }> = []
    let uploadUrl: string | undefined
    page.on('request', (request) => {
      if (!request.url().startsWith(server.url)) return
      const offset = request.headers()['upload-offset']
      requests.push({ method: request.method(), offset: offset === undefined ? undefined : Number(offset) })
    })
    // what the server acknowledged: a HEAD from the test would interrupt the page's PATCH (lock exchange)
    let acknowledged = 0
    page.on('response', (response) => {
      const method = response.request().method()
      if (method === 'POST' && response.status() === 201) uploadUrl = response.headers().location
      if (method === 'PATCH' && response.status() === 204) acknowledged = Number(response.headers()['upload-offset'])
    })
    await page.route(`${server.url}**`, async (route) => {
      if (route.request().method() === 'PATCH') await sleep(250)
      await route.continue().catch(() => {})
    })

    const response = await page.goto(`${origin}/?chunkSize=${CHUNK}`)
    t.equal(response?.status(), 200, 'the demo page')
    t.equal(response?.headers()['x-content-type-options'], 'nosniff')
    t.match(response?.headers()['content-security-policy'], /default-src 'none'/)
    await page.locator('.uppy-Dashboard').waitFor()
    t.ok(await page.locator('#completed-empty').isVisible(), 'nothing completed yet')

    // first session: upload until the server holds a few chunks, then reload
    await addFile(page, file)
    const offset = async (): Promise<number> => await serverOffset(uploadUrl)
    await until(async () => acknowledged >= 3 * CHUNK, 'the server to receive some chunks').catch(async (err: Error) => {
      await page.screenshot({ path: join(ARTIFACTS, 'demo-failed.png'), fullPage: true })
      throw new Error(`${err.message}\nrequests: ${JSON.stringify(requests)}\nbrowser: ${problems.join('\n')}\nserver: ${server.output()}`)
    })
    await page.screenshot({ path: join(ARTIFACTS, 'demo-mid-upload.png'), fullPage: true })
    await page.reload()
    await page.locator('.uppy-Dashboard').waitFor()
    // the interrupted PATCH settles on the server (stored or not)
    await sleep(500)
    const before = await offset()
    t.ok(before >= acknowledged, 'the server kept what it acknowledged')
    t.ok(before > 0 && before < SIZE, `the reload interrupted the upload at ${before} of ${SIZE} bytes`)
    const firstSession = requests.length
    t.equal(requests.filter((request) => request.method === 'POST').length, 1, 'one upload created')

    // second session: the same file again resumes it
    await addFile(page, file)

    // pause: no more PATCH requests until resumed
    const patches = (): number => requests.slice(firstSession).filter((request) => request.method === 'PATCH').length
    await until(async () => patches() >= 2, 'the resumed upload to send PATCH requests')
    const toggle = page.locator('button.uppy-Dashboard-Item-progressIndicator')
    t.equal(await toggle.getAttribute('title'), 'Pause upload', 'a pause button')
    await toggle.click()
    await page.locator('button.uppy-Dashboard-Item-progressIndicator[title="Resume upload"]').waitFor()
    await sleep(300)
    const paused = patches()
    await sleep(1000)
    t.equal(patches(), paused, 'paused: no PATCH for a second')
    t.notOk(await page.locator('#completed tbody tr').filter({ hasText: NAME }).count(), 'not complete while paused')
    await toggle.click()
    await page.locator('button.uppy-Dashboard-Item-progressIndicator[title="Pause upload"]').waitFor()
    await page.locator('#completed tbody tr').filter({ hasText: NAME }).waitFor({ timeout: 120_000 })
    await page.screenshot({ path: join(ARTIFACTS, 'demo-final.png'), fullPage: true })

    const second = requests.slice(firstSession)
    t.equal(second.filter((request) => request.method === 'POST').length, 0, 'no new upload after the reload')
    t.ok(second.some((request) => request.method === 'HEAD'), 'the page asked the server for the offset')
    const firstPatch = second.find((request) => request.method === 'PATCH')
    t.ok(firstPatch?.offset !== undefined && firstPatch.offset > 0, `the first PATCH after the reload starts at ${firstPatch?.offset}, not 0`)
    t.equal(firstPatch?.offset, before, 'where the server stopped')
    t.equal(await offset(), SIZE, 'complete')

    // the stored bytes are the file's
    const id = new URL(uploadUrl as string).pathname.split('/').pop() as string
    const entries = (await readdir(uploads)).filter((name) => !name.startsWith('.') && !name.endsWith('.info') && !name.endsWith('.lock'))
    t.same(entries, [id], 'one upload on the server')
    t.equal(sha256(await readFile(join(uploads, id))), sha256(bytes), 'sha256 of the stored upload')

    // the completed list: name, size, a download link that returns the file
    const row = page.locator('#completed tbody tr').filter({ hasText: NAME })
    t.match(await row.innerText(), /6\.0 MiB/, 'the size')
    const href = await row.locator('a').getAttribute('href')
    t.equal(href, `/files/${id}`, 'a link to the upload URL')
    const downloaded = await page.evaluate(async (url) => {
      const body = new Uint8Array(await (await fetch(url)).arrayBuffer())
      const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', body))
      return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('')
    }, href as string)
    t.equal(downloaded, sha256(bytes), 'the download link serves the same bytes')
    t.notOk(await page.locator('#completed-empty').isVisible(), 'no "nothing uploaded" line')

    // the list is this browser's: it survives a reload, and another browser (another user) sees none of it
    await page.reload()
    await page.locator('#completed tbody tr').filter({ hasText: NAME }).waitFor()
    const stranger = await launchChromium(t)
    const other = stranger.pages()[0] ?? await stranger.newPage()
    await other.goto(`${origin}/`)
    await other.locator('.uppy-Dashboard').waitFor()
    t.ok(await other.locator('#completed-empty').isVisible(), 'another browser lists nothing')
    t.notMatch(await other.content(), id, 'and never sees the upload id')

    for (const name of ['demo-mid-upload.png', 'demo-final.png']) {
      const path = join(ARTIFACTS, name)
      t.ok(existsSync(path) && statSync(path).size > 1000, `screenshot ${name}`)
    }
    // a reload or a pause aborts a PATCH in flight; anything else (a 4xx, a CSP violation, an exception) is a bug
    t.same(problems.filter((text) => !text.includes('net::ERR_ABORTED')), [],
      'no script errors or Content-Security-Policy violations')
  })
})

async function addFile (page: Page, file: string): Promise<void> {
  await page.locator('input.uppy-Dashboard-input[type=file]').first().setInputFiles(file)
}

async function serverOffset (url: string | undefined): Promise<number> {
  if (url === undefined) return -1
  const response = await fetch(url, { method: 'HEAD', headers: { 'tus-resumable': '1.0.0' } })
  return Number(response.headers.get('upload-offset') ?? -1)
}

async function until (check: () => Promise<boolean>, what: string, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(50)
  }
}

function sha256 (data: Buffer): string {
  return createHash('sha256').update(data).digest('hex')
}
