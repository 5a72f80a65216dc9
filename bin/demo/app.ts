/**
 * The demo page's script, bundled with Uppy by scripts/build-demo.mjs: an Uppy Dashboard uploading
 * to the command's tus endpoint, and the list of uploads this browser completed. The list is kept
 * in localStorage: the server lists no uploads, to anyone.
 *
 * Query parameters (for trying things out, and for the browser test): `chunkSize` in bytes sends
 * the file in PATCH requests of that size instead of one.
 */
import Uppy from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import Tus from '@uppy/tus'

interface CompletedUpload {
  name: string
  size: number
  url: string
  completedAt: string
}

/** How many completed uploads the list keeps (newest first). */
const KEEP = 100

const endpoint = document.body.dataset.endpoint ?? '/files/'
const download = document.body.dataset.download === 'true'
const chunkSize = Number(new URLSearchParams(location.search).get('chunkSize'))

const uppy = new Uppy({ autoProceed: true })
  .use(Dashboard, {
    inline: true,
    target: '#uppy',
    width: '100%',
    height: 360,
    proudlyDisplayPoweredByUppy: false
  })
  .use(Tus, {
    endpoint,
    chunkSize: Number.isSafeInteger(chunkSize) && chunkSize > 0 ? chunkSize : Infinity,
    retryDelays: [0, 1000, 3000, 5000],
    removeFingerprintOnSuccess: true
  })

const storageKey = `fastify-tus-demo:completed:${endpoint}`

uppy.on('upload-success', (file, response) => {
  const url = response.uploadURL
  if (file === undefined || url === undefined) return
  const entry: CompletedUpload = { name: file.name ?? url, size: file.size ?? 0, url, completedAt: new Date().toISOString() }
  save([entry, ...load().filter((upload) => upload.url !== url)].slice(0, KEEP))
  show(load())
})
show(load())

/** The uploads this browser completed, as saved by `save` (anything else in storage is ignored). */
function load (): CompletedUpload[] {
  try {
    const saved: unknown = JSON.parse(localStorage.getItem(storageKey) ?? '[]')
    return Array.isArray(saved) ? saved.filter(isCompleted) : []
  } catch {
    return []
  }
}

function save (uploads: CompletedUpload[]): void {
  try {
    localStorage.setItem(storageKey, JSON.stringify(uploads))
  } catch {}
}

function isCompleted (value: unknown): value is CompletedUpload {
  const entry = value as Partial<CompletedUpload> | null
  return typeof entry === 'object' && entry !== null && typeof entry.name === 'string' && typeof entry.size === 'number' &&
    typeof entry.url === 'string' && typeof entry.completedAt === 'string'
}

/** Shows the list. */
function show (uploads: CompletedUpload[]): void {
  const table = document.getElementById('completed') as HTMLTableElement
  const empty = document.getElementById('completed-empty') as HTMLElement
  const body = table.tBodies[0] as HTMLTableSectionElement
  body.replaceChildren(...uploads.map(row))
  table.hidden = uploads.length === 0
  empty.hidden = uploads.length > 0
}

function row (upload: CompletedUpload): HTMLTableRowElement {
  const tr = document.createElement('tr')
  const name = document.createElement('td')
  if (download) {
    const link = document.createElement('a')
    // only a link to this server's uploads, whatever the storage holds
    const target = new URL(upload.url, location.href)
    if (target.origin === location.origin) link.href = target.pathname
    link.textContent = upload.name
    name.append(link)
  } else {
    name.textContent = upload.name
  }
  const size = document.createElement('td')
  size.className = 'size'
  size.textContent = formatSize(upload.size)
  size.title = `${upload.size} bytes`
  const finished = document.createElement('td')
  const time = document.createElement('time')
  time.dateTime = upload.completedAt
  time.textContent = new Date(upload.completedAt).toLocaleTimeString()
  finished.append(time)
  tr.append(name, size, finished)
  return tr
}

function formatSize (bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB']
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit] ?? ''}`
}
