/**
 * The demo page's script, bundled with Uppy by scripts/build-demo.mjs: an Uppy Dashboard uploading
 * to the command's tus endpoint, and the list of uploads the server has completed.
 *
 * Query parameters (for trying things out, and for the browser test): `chunkSize` in bytes sends
 * the file in PATCH requests of that size instead of one.
 */
import Uppy from '@uppy/core'
import Dashboard from '@uppy/dashboard'
import Tus from '@uppy/tus'

interface CompletedUpload {
  id: string
  name: string
  size: number
  url: string
  completedAt: string
}

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

uppy.on('upload-success', () => { refresh().catch(() => {}) })
refresh().catch(() => {})

/** Fetches the server's list of completed uploads and shows it. */
async function refresh (): Promise<void> {
  let uploads: CompletedUpload[]
  try {
    const response = await fetch('/demo/uploads.json', { cache: 'no-store' })
    if (!response.ok) return
    uploads = (await response.json() as { uploads: CompletedUpload[] }).uploads
  } catch {
    return
  }
  const table = document.getElementById('completed') as HTMLTableElement
  const empty = document.getElementById('completed-empty') as HTMLElement
  const body = table.tBodies[0] as HTMLTableSectionElement
  body.replaceChildren(...uploads.map(row))
  table.hidden = uploads.length === 0
  empty.hidden = uploads.length > 0
}

function row (upload: CompletedUpload): HTMLTableRowElement {
  const tr = document.createElement('tr')
  tr.dataset.id = upload.id
  const name = document.createElement('td')
  if (download) {
    const link = document.createElement('a')
    link.href = upload.url
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
