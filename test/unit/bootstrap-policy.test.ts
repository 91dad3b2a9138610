/**
 * Pure parts of running Ferry in production: restart backoff, when a lost lease fences the
 * child, secret references in env files, and the `ferry instances` table.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { restartDelayMs, shouldFence } from '../../bootstrap/bootstrap.js'
import { formatInstances, instanceRows, runInstancesCli } from '../../cli/instances.js'
import { loadSecretFiles, parseSecretFiles } from '../../common/secret-files.js'
import type { InstanceRecord } from '../../common/registry.js'
import { parseInstanceMetrics } from '../../common/worker-report.js'

describe('bootstrap restart backoff', () => {
  it('doubles from the minimum per failure in a row, capped at the maximum, jittered within [half, full]', () => {
    const table: Array<[number, number]> = [[1, 500], [2, 1000], [3, 2000], [4, 4000], [7, 30000], [50, 30000]]
    for (const [failures, base] of table) {
      expect(restartDelayMs(failures, 500, 30000, () => 0), `${failures} failures, no jitter`).to.equal(base / 2)
      expect(restartDelayMs(failures, 500, 30000, () => 1), `${failures} failures, full jitter`).to.equal(base)
    }
  })
})

describe('bootstrap fencing on a lost lease', () => {
  const ttlMs = 10000
  it('fences when it did not even try to renew for a whole TTL (the process was frozen)', () => {
    expect(shouldFence({ reason: 'expired', sinceRenewedMs: 12000, heartbeatGapMs: 12000 }, ttlMs)).to.equal(true)
  })
  it('fences when another process holds its id', () => {
    expect(shouldFence({ reason: 'taken_over', sinceRenewedMs: 3000, heartbeatGapMs: 3000 }, ttlMs)).to.equal(true)
  })
  it('does not fence when Redis lost the key while it kept renewing (Redis restarted empty)', () => {
    expect(shouldFence({ reason: 'expired', sinceRenewedMs: 3000, heartbeatGapMs: 3300 }, ttlMs)).to.equal(false)
  })
  it('does not fence when Redis was unreachable for longer than the TTL (the controller froze too)', () => {
    expect(shouldFence({ reason: 'expired', sinceRenewedMs: 40000, heartbeatGapMs: 3300 }, ttlMs)).to.equal(false)
  })
})

describe('secret references (FERRY_SECRET_FILES)', () => {
  let dir: string
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-secrets-'))
  })
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('sets each variable from its file, dropping one trailing newline, and keeps variables already set', async () => {
    await writeFile(join(dir, 'A'), 'pa ss\n')
    await writeFile(join(dir, 'B'), 'from-file')
    const env: NodeJS.ProcessEnv = { FERRY_SECRET_FILES: `A=${join(dir, 'A')}, B=${join(dir, 'B')}`, B: 'explicit' }
    expect(loadSecretFiles(env)).to.deep.equal(['A'])
    expect(env.A).to.equal('pa ss')
    expect(env.B).to.equal('explicit')
  })

  it('does nothing without FERRY_SECRET_FILES', () => {
    const env: NodeJS.ProcessEnv = {}
    expect(loadSecretFiles(env)).to.deep.equal([])
    expect(env).to.deep.equal({})
  })

  it('names the variable and the path of an unreadable file, never any content', () => {
    const env: NodeJS.ProcessEnv = { FERRY_SECRET_FILES: `DB_PASSWORD=${join(dir, 'missing')}` }
    expect(() => loadSecretFiles(env)).to.throw(/DB_PASSWORD: cannot read its file .*missing \(from FERRY_SECRET_FILES\)/)
    expect(env.DB_PASSWORD).to.equal(undefined)
  })

  it('refuses malformed entries, naming the entry', () => {
    expect(() => parseSecretFiles('A=/x,B')).to.throw(/entry 2 must be NAME=\/absolute\/path/)
    expect(() => parseSecretFiles('1A=/x')).to.throw(/entry 1/)
    expect(() => parseSecretFiles('A=relative/path')).to.throw(/entry 1/)
    expect(parseSecretFiles('A=/x,,B=/y')).to.deep.equal([{ name: 'A', path: '/x' }, { name: 'B', path: '/y' }])
  })
})

describe('ferry instances errors', () => {
  const capture = () => {
    const out = { stdout: '', stderr: '' }
    return { out, io: { stdout: { write: (t: string) => (out.stdout += t) }, stderr: { write: (t: string) => (out.stderr += t) } } }
  }

  it('names the unreachable Redis by host and port, never the password in its URL', async () => {
    const { out, io } = capture()
    expect(await runInstancesCli(['--redis', 'redis://:s3cret@127.0.0.1:9'], io, {})).to.equal(1)
    expect(out.stderr).to.include('cannot reach Redis at 127.0.0.1:9: connect ECONNREFUSED')
    expect(out.stderr).to.not.include('s3cret')
  })

  it('says why the controller cannot be reached', async () => {
    const { out, io } = capture()
    expect(await runInstancesCli(['--controller', 'http://127.0.0.1:9'], io, {})).to.equal(1)
    expect(out.stderr).to.match(/cannot reach the controller at http:\/\/127\.0\.0\.1:9: \w+/)
  })

  it('needs a source for the registry (exit 2)', async () => {
    const { out, io } = capture()
    expect(await runInstancesCli([], io, {})).to.equal(2)
    expect(out.stderr).to.include('needs --redis URL (or FERRY_REDIS) or --controller URL')
  })
})

describe('ferry instances table', () => {
  const now = Date.parse('2026-01-01T12:00:00.000Z')
  const record = (id: string, role: 'worker' | 'controller', beatAgoMs: number, metrics: unknown): InstanceRecord => ({
    id,
    role,
    host: 'host-a',
    pid: 100,
    version: '0.1.0',
    zone: 'secure',
    startedAt: new Date(now - 3600000).toISOString(),
    lastHeartbeatAt: new Date(now - beatAgoMs).toISOString(),
    metrics: parseInstanceMetrics(metrics),
  })
  const partition = (n: number): Record<string, unknown> => ({ group: 'g', topic: 't', partition: n, targetTopic: 't', state: 'mirroring' })

  it('computes the heartbeat age and the live metrics per instance, controllers first', () => {
    const rows = instanceRows([record('w2', 'worker', 1500, { partitions: [partition(0), partition(1)], restarts: 1, childPid: 7 }), record('c1', 'controller', 200, null)], now)
    expect(rows.map((r) => [r.id, r.heartbeatAgeMs, r.partitions, r.restarts, r.childPid])).to.deep.equal([
      ['c1', 200, null, null, null],
      ['w2', 1500, 2, 1, 7],
    ])
  })

  it('prints one aligned line per instance with the age of its heartbeat', () => {
    const text = formatInstances(instanceRows([record('w1', 'worker', 2500, { partitions: [partition(0)] }), record('c1', 'controller', 90000, null)], now), now)
    const lines = text.split('\n')
    expect(lines[0]).to.match(/^ID\s+ROLE\s+HOST\s+PID\s+VERSION\s+ZONE\s+DC\s+UP\s+HEARTBEAT\s+PARTITIONS\s+RESTARTS$/)
    expect(lines[1]).to.match(/^c1\s+controller\s+host-a\s+100\s+0\.1\.0\s+secure\s+-\s+60m\s+90s ago\s+-\s+-$/)
    expect(lines[2]).to.match(/^w1\s+worker\s+host-a .* 2\.5s ago\s+1\s+-$/)
    expect(lines[3]).to.equal('2 instances')
    expect(lines[1]?.indexOf('controller')).to.equal(lines[2]?.indexOf('worker'))
  })
})
