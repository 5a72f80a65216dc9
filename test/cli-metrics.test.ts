/**
 * The command's observability flags: `--expose-metrics` / `--metrics-path` serve Prometheus text
 * that counts a tus-js-client upload exactly, and `--log-format` json or pretty.
 */
import { randomBytes } from 'node:crypto'
import t from 'tap'
import * as tusClient from 'tus-js-client'
import { FlagError, parseFlags } from '../bin/flags.js'
import { tempDir } from './helpers/app.js'
import { startServer } from './helpers/cli.js'
import { sample } from './helpers/metrics.js'

const MiB = 1024 * 1024

t.test('flags', async (t) => {
  t.match(parseFlags([]), { logFormat: 'json', exposeMetrics: false, metricsPath: '/metrics' })
  t.match(parseFlags(['--log-format', 'pretty', '--expose-metrics', '--metrics-path', '/internal/metrics']), {
    logFormat: 'pretty', exposeMetrics: true, metricsPath: '/internal/metrics'
  })
  t.match(parseFlags(['--base-path', '/', '--metrics-path', '/metrics']), { basePath: '/', metricsPath: '/metrics' })
  t.match(parseFlags(['--base-path', '/files', '--metrics-path', '/filesmetrics']), { metricsPath: '/filesmetrics' })
  for (const bad of [['--log-format', 'xml'], ['--metrics-path', 'metrics'], ['--metrics-path', '/a b'],
    ['--metrics-path', '/files/metrics'], ['--metrics-path', '/files'], ['--base-path', '/up', '--metrics-path', '/up/m']]) {
    t.throws(() => parseFlags(bad), FlagError, bad.join(' '))
  }
})

interface LogLine { level: number, reqId?: string, event?: string, [key: string]: unknown }

function jsonLines (output: string): LogLine[] {
  const lines: LogLine[] = []
  for (const text of output.split('\n')) {
    if (!text.startsWith('{')) continue
    lines.push(JSON.parse(text) as LogLine)
  }
  return lines
}

t.test('--expose-metrics counts a tus-js-client upload exactly; JSON logs carry the events', async (t) => {
  const dir = await tempDir(t)
  const server = await startServer(t, ['--port', '0', '--upload-dir', dir, '--log-level', 'debug', '--expose-metrics', '--metrics-path', '/prom'])
  const origin = new URL(server.url).origin
  t.match(server.output(), /Prometheus metrics at http:\/\/127\.0\.0\.1:\d+\/prom/)
  t.equal((await fetch(`${origin}/metrics`)).status, 404, 'only at --metrics-path')

  const data = randomBytes(3 * MiB + 17)
  const url = await new Promise<string>((resolve, reject) => {
    const upload = new tusClient.Upload(data, {
      endpoint: server.url,
      chunkSize: MiB,
      metadata: { filename: 'private-name.bin' },
      onError: reject,
      onSuccess: () => resolve(upload.url as string)
    })
    upload.start()
  })
  const id = url.split('/').pop() as string
  // a request with a wrong offset: a 409 counted by its code
  const conflict = await fetch(url, { method: 'PATCH', headers: { 'Tus-Resumable': '1.0.0', 'Content-Type': 'application/offset+octet-stream', 'Upload-Offset': '0' }, body: 'x' })
  t.equal(conflict.status, 409)

  const response = await fetch(`${origin}/prom`)
  t.equal(response.status, 200)
  t.match(response.headers.get('content-type'), /^text\/plain; version=0\.0\.4/)
  const text = await response.text()
  t.equal(sample(text, 'tus_bytes_received_total'), data.length, 'bytes received equal bytes sent')
  t.equal(sample(text, 'tus_uploads_created_total'), 1)
  t.equal(sample(text, 'tus_uploads_finished_total'), 1)
  t.equal(sample(text, 'tus_uploads_terminated_total'), 0)
  t.equal(sample(text, 'tus_requests_total', { method: 'POST', route: 'collection' }), 1)
  t.equal(sample(text, 'tus_requests_total', { method: 'PATCH', route: 'upload' }), 5, 'four chunks and the conflict')
  t.equal(sample(text, 'tus_errors_total'), 1)
  t.equal(sample(text, 'tus_errors_total', { status: '409', code: 'ERR_MISMATCHED_OFFSET' }), 1)
  t.equal(sample(text, 'tus_store_operation_seconds_count', { operation: 'write', outcome: 'ok' }), 4)
  t.equal(sample(text, 'tus_lock_timeouts_total'), 0)
  t.equal(sample(text, 'tus_uploads_active'), 0)
  t.match(text, /# TYPE nodejs_heap_size_used_bytes gauge/, 'process metrics too')

  const events = jsonLines(server.output()).filter((line) => line.event !== undefined && line.uploadId === id)
  const created = events.find((line) => line.event === 'tus.upload.created')
  t.match(created, { level: 30, size: data.length, metadataKeys: ['filename'] })
  t.notMatch(server.output(), /private-name/, 'metadata values are not logged')
  const chunks = events.filter((line) => line.event === 'tus.chunk.written')
  t.equal(chunks.length, 4)
  t.equal(chunks.reduce((sum, line) => sum + (line.bytes as number), 0), data.length)
  t.ok(chunks.every((line) => line.level === 20), 'chunks at debug')
  const finished = events.find((line) => line.event === 'tus.upload.finished')
  t.equal(finished?.reqId, chunks.at(-1)?.reqId, 'the last chunk and the finish share a request id')
})

t.test('--log-format pretty writes human-readable lines', async (t) => {
  const dir = await tempDir(t)
  const server = await startServer(t, ['--port', '0', '--upload-dir', dir, '--log-format', 'pretty'])
  const created = await fetch(server.url, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '5' } })
  t.equal(created.status, 201)
  const deadline = Date.now() + 10_000
  while (!/tus upload created/.test(server.output()) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20))
  const line = server.output().split('\n').find((text) => text.includes('tus upload created')) ?? ''
  t.match(line, /INFO.*tus upload created/)
  t.notOk(line.trimStart().startsWith('{'), 'not JSON')
  t.match(server.output(), /event: "tus\.upload\.created"/)
  t.equal((await fetch(`${new URL(server.url).origin}/metrics`)).status, 404, 'no metrics without --expose-metrics')
})
