/**
 * `--workers`: the command on several processes sharing one port and one upload directory. An
 * upload stalled on one worker is resumed through the other (lock exchange through the file
 * locker), `/metrics` sums every worker, a crashed worker is replaced, SIGTERM stops them all.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { tempDir } from './helpers/app.js'
import { BUILT_COMMAND, startServer } from './helpers/cli.js'
import { rawRequest } from './helpers/http.js'
import { sample } from './helpers/metrics.js'

const CHUNK = 256 * 1024
const TUS = { 'Tus-Resumable': '1.0.0' }

interface LogLine { pid?: number, msg?: string, req?: { method?: string, url?: string } }

/** The pids that logged an incoming request of `method` (on the tus routes). */
function servedBy (output: string, method: string): number[] {
  const pids: number[] = []
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue
    let parsed: LogLine
    try {
      parsed = JSON.parse(line) as LogLine
    } catch {
      continue
    }
    if (parsed.msg === 'incoming request' && parsed.req?.method === method && parsed.pid !== undefined) pids.push(parsed.pid)
  }
  return pids
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('--workers 2: one port, one directory, lock exchange between workers, summed metrics, replacement, graceful stop', async (t) => {
  const dir = await tempDir(t)
  // the built command, as users run it (and quicker to start three processes than through tsx)
  const server = await startServer(t, ['--port', '0', '--upload-dir', dir, '--workers', '2', '--expose-metrics', '--disable-demo'], BUILT_COMMAND)
  t.match(server.output(), /listening on http:\/\/127\.0\.0\.1:\d+\/files\/ \(uploads in .*, 2 workers\)/)
  const origin = new URL(server.url).origin
  const data = randomBytes(2 * CHUNK)

  let heads = 0
  let crossed = 0
  for (let round = 0; round < 4; round++) {
    const created = await fetch(server.url, { method: 'POST', headers: { ...TUS, 'Upload-Length': String(data.length) } })
    t.equal(created.status, 201)
    const path = new URL(created.headers.get('location') as string).pathname

    // a PATCH that stalls half-way, on its own connection (so, round robin, on one worker)
    const patchesBefore = servedBy(server.output(), 'PATCH').length
    const stalled = rawRequest(server.port, 'PATCH', path, {
      ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0', 'Content-Length': String(data.length)
    })
    stalled.write(data.subarray(0, CHUNK))
    for (let i = 0; i < 100 && servedBy(server.output(), 'PATCH').length === patchesBefore; i++) await sleep(20)
    await sleep(200)
    const patchPid = servedBy(server.output(), 'PATCH').at(-1)

    // the client resumes: HEAD on a new connection takes the upload over from the stalled PATCH
    const headsBefore = servedBy(server.output(), 'HEAD').length
    const head = await rawRequest(server.port, 'HEAD', path, TUS).response
    heads++
    t.equal(head?.status, 200, `round ${round}: HEAD answered while the PATCH stalls`)
    const offset = Number(head?.headers['upload-offset'])
    t.equal(offset, CHUNK, `round ${round}: every byte the stalled PATCH delivered is kept`)
    for (let i = 0; i < 100 && servedBy(server.output(), 'HEAD').length === headsBefore; i++) await sleep(20)
    const headPid = servedBy(server.output(), 'HEAD').at(-1)
    if (patchPid !== undefined && headPid !== undefined && patchPid !== headPid) crossed++
    t.ok((await stalled.response)?.status !== undefined || stalled.socket.destroyed, 'the stalled PATCH was answered or closed')
    stalled.socket.destroy()

    // and sends the rest from there, on yet another connection
    const rest = rawRequest(server.port, 'PATCH', path, {
      ...TUS, 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': String(offset), 'Content-Length': String(data.length - offset)
    })
    rest.write(data.subarray(offset))
    const done = await rest.response
    rest.socket.destroy()
    t.equal(done?.status, 204, `round ${round}: the resume completes the upload`)
    const stored = Buffer.from(await (await fetch(`${origin}${path}`)).arrayBuffer())
    t.ok(stored.equals(data), `round ${round}: the stored bytes are the client's`)
  }
  t.ok(crossed >= 1, `an upload stalled on one worker was taken over by the other (${crossed} of 4 rounds)`)

  const pids = new Set(servedBy(server.output(), 'HEAD').concat(servedBy(server.output(), 'PATCH')))
  t.equal(pids.size, 2, 'both workers served requests')

  // one scrape counts every worker
  const metrics = await (await fetch(`${origin}/metrics`)).text()
  t.equal(sample(metrics, 'tus_requests_total', { method: 'HEAD' }), heads, 'HEADs of both workers summed')
  t.equal(sample(metrics, 'tus_uploads_created_total'), 4)
  t.equal(sample(metrics, 'tus_uploads_finished_total'), 4)

  // a worker that dies is replaced, and the server keeps serving
  const victim = [...pids][0] as number
  process.kill(victim, 'SIGKILL')
  for (let i = 0; i < 100 && !/died \(SIGKILL\); starting another/.test(server.output()); i++) await sleep(50)
  t.match(server.output(), new RegExp(`worker ${victim} died \\(SIGKILL\\); starting another`))
  let served = 0
  for (let i = 0; i < 6; i++) {
    const response = await rawRequest(server.port, 'OPTIONS', '/files/', TUS).response
    if (response?.status === 204) served++
  }
  t.equal(served, 6, 'every request answered after the crash')

  // SIGTERM: every worker stops gracefully and the command exits 0
  const workers = new Set(servedBy(server.output(), 'OPTIONS').concat([...pids]))
  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0, 'exit code 0')
  for (let i = 0; i < 50 && [...workers].some(alive); i++) await sleep(50)
  t.notOk([...workers].some(alive), 'no worker is left running')
})

t.test('--workers: flag rules', async (t) => {
  const { parseFlags, FlagError } = await import('../bin/flags.js')
  const auto = parseFlags(['--workers', 'auto'])
  t.ok(typeof auto === 'object' && auto.workers >= 1, 'auto: one per core')
  t.match(parseFlags([]), { workers: 1 })
  for (const bad of [['--workers', '0'], ['--workers', 'many'], ['--workers', '2', '--locker', 'memory']]) {
    t.throws(() => parseFlags(bad), FlagError, bad.join(' '))
  }
})
