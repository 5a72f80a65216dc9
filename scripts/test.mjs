#!/usr/bin/env node
/**
 * `npm test`: tap, with the coverage gate fitted to the servers this machine has.
 *
 * The suites that need a server (Redis, etcd, Ceph radosgw) skip loudly when it is not
 * installed, and their skip would drop line coverage under the gate. Outside CI the modules
 * only those suites exercise are then left out of the coverage count, so the gate still
 * holds for everything that did run. Under `CI=true` nothing is left out: every suite must
 * run (a missing server is a test failure there) and the gate covers the whole project.
 * Arguments are passed on to tap (`npm test -- test/protocol.test.ts`).
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const onPath = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0

/** Each server the tests start, how to tell it is here, and the modules only its suites cover. */
const services = [
  { name: 'redis-server', present: () => onPath('redis-server'), covers: ['locks/redis.ts'], apt: 'redis-server' },
  { name: 'etcd', present: () => onPath('etcd') && onPath('etcdctl'), covers: ['locks/etcd.ts'], apt: 'etcd-server etcd-client' },
  {
    name: 'radosgw',
    present: () => ['radosgw', 'ceph-mon', 'ceph-osd', 'monmaptool', 'radosgw-admin', 'ceph', 'curl'].every(onPath),
    covers: ['stores/s3.ts', 'stores/s3-*.ts'],
    apt: 'radosgw ceph-mon ceph-osd'
  }
]

const args = process.argv.slice(2)
const missing = services.filter((service) => !service.present())
if (missing.length > 0) {
  const ci = process.env.CI === 'true'
  const packages = missing.map((service) => service.apt).join(' ')
  const lines = [
    `Missing on this machine: ${missing.map((service) => service.name).join(', ')}.`,
    ci
      ? 'CI=true: their suites will FAIL. Install them first.'
      : `Their suites are SKIPPED, and ${missing.flatMap((service) => service.covers).join(', ')} left out of the coverage gate.`,
    `For the full run: sudo apt-get install -y --no-install-recommends ${packages}`
  ]
  const width = Math.max(...lines.map((line) => line.length))
  const bar = '!'.repeat(width + 4)
  process.stderr.write(`${bar}\n${lines.map((line) => `! ${line.padEnd(width)} !`).join('\n')}\n${bar}\n`)
  if (!ci) {
    // given on the command line, the list replaces the one in package.json: repeat that one
    const configured = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).tap['coverage-exclude']
    for (const glob of [...configured, ...missing.flatMap((service) => service.covers)]) args.push(`--coverage-exclude=${glob}`)
  }
}

const bin = fileURLToPath(new URL('../node_modules/.bin/tap', import.meta.url))
const tap = spawnSync(bin, args, { stdio: 'inherit' })
if (tap.error !== undefined) throw tap.error
process.exit(tap.status ?? 1)
