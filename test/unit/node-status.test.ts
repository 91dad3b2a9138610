/**
 * Node status (controller/node-status.ts): the three checks' verdicts and reasons from what the
 * network, the registry and /proc said; the memory of nodes whose lease lapsed; rounds saved for
 * every controller and reported to metrics by the leader only; the real connection and probe
 * against local listeners that refuse, stall or answer; and the continuous audit's metrics.
 */
import { createServer, type Server } from 'node:http'
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import { expect } from 'chai'
import { Registry } from 'prom-client'
import { silentLogger } from '../../common/logger.js'
import type { InstanceRecord } from '../../common/registry.js'
import { registerContinuousAuditMetrics, registerControllerMetrics } from '../../controller/controller-metrics.js'
import type { AuditRun } from '../../controller/continuous-audit.js'
import {
  checkNode,
  createNodeStatus,
  httpProbe,
  knownNodes,
  localPidState,
  mapBounded,
  probeCheck,
  probeTarget,
  processCheck,
  reachableCheck,
  tcpConnect,
  type KnownNode,
  type NodeProbes,
  type NodeStatus,
} from '../../controller/node-status.js'

const NOW = Date.UTC(2026, 1, 1, 12, 0, 0)
const TTL_MS = 10000
const iso = (ms: number): string => new Date(ms).toISOString()

function instance(id: string, overrides: Partial<InstanceRecord> = {}): InstanceRecord {
  return {
    id,
    role: 'worker',
    host: 'h1',
    pid: 100,
    version: '0.1.0',
    startedAt: iso(NOW - 60000),
    healthUrl: 'http://127.0.0.1:9100',
    lastHeartbeatAt: iso(NOW - 1000),
    metrics: { childPid: 101, state: 'running', restarts: 0 },
    ...overrides,
  }
}

function known(record: InstanceRecord, live = true): KnownNode {
  return { id: record.id, role: record.role, host: record.host, pid: record.pid, url: record.url, healthUrl: record.healthUrl, lastHeartbeatAt: record.lastHeartbeatAt, ...(live ? { live: record } : {}) }
}

describe('node status: the checks and their reasons', () => {
  it('says which port refused or did not accept, and leaves an instance without a probe port unknown', () => {
    const target = probeTarget({ host: 'h1', healthUrl: 'http://127.0.0.1:1234' })
    expect(reachableCheck(target, { ok: false, code: 'ECONNREFUSED' }, 1000)).to.deep.equal({ check: 'reachable', ok: false, reason: 'health port 127.0.0.1:1234 refused the connection' })
    expect(reachableCheck(target, { ok: false, code: 'TIMEOUT' }, 1000).reason).to.equal('health port 127.0.0.1:1234 did not accept a connection within 1 s')
    expect(reachableCheck(target, { ok: true, ms: 2.4 }, 1000)).to.include({ ok: true, reason: 'health port 127.0.0.1:1234 accepted a connection in 2 ms' })
    const none = reachableCheck(probeTarget({ host: 'h1' }), null, 1000)
    expect(none.ok).to.equal(null)
    expect(none.reason).to.match(/no probe port registered.*--health-port/)
    // A controller without a health listener is probed on its API.
    expect(probeTarget({ host: 'h1', url: 'https://10.0.0.5:8443' })?.what).to.equal('API port 10.0.0.5:8443')
  })

  it('probes a listener bound to every address on the node host, not on this one', () => {
    expect(probeTarget({ host: 'worker-3.ferry', healthUrl: 'http://0.0.0.0:9090' })?.url.host).to.equal('worker-3.ferry:9090')
    expect(probeTarget({ host: 'worker-3.ferry', healthUrl: 'http://[::]:9090' })?.url.host).to.equal('worker-3.ferry:9090')
  })

  it('reports a probe that timed out, one answered 503 with what bootstrap said, and one answered as expected', () => {
    const reachable = { check: 'reachable' as const, ok: true, reason: '' }
    expect(probeCheck(reachable, { kind: 'timeout' }, 2000)).to.deep.equal({ check: 'probe', ok: false, reason: 'probe /readyz timed out after 2 s' })
    expect(probeCheck(reachable, { kind: 'answered', status: 503, body: { status: 'unavailable', state: 'restarting', childReady: false, registered: true, id: 'w1' }, ms: 3 }, 2000).reason).to.equal('probe /readyz answered 503 (bootstrap restarting; child not ready)')
    expect(probeCheck(reachable, { kind: 'answered', status: 200, body: { status: 'ok', state: 'running' }, ms: 3.2 }, 2000)).to.deep.equal({ check: 'probe', ok: true, reason: 'probe /readyz answered 200 in 3 ms' })
    expect(probeCheck(reachable, { kind: 'answered', status: 200, body: { ready: true }, ms: 1 }, 2000).ok, "a controller's /readyz").to.equal(true)
    expect(probeCheck(reachable, { kind: 'answered', status: 200, body: '<html>', ms: 1 }, 2000)).to.include({ ok: false, reason: 'probe /readyz answered 200 with an unexpected body (neither status "ok" nor ready true)' })
    expect(probeCheck({ ...reachable, ok: false }, null, 2000)).to.include({ ok: false, reason: 'not sent: the node is not reachable' })
  })

  it("quotes only the names of a controller's failing checks, never their messages", () => {
    const body = { ready: false, checks: { zookeeper: 'ok', redis: 'unreachable: redis://:hunter2@redis:6379 refused' } }
    const check = probeCheck({ check: 'reachable', ok: true, reason: '' }, { kind: 'answered', status: 503, body, ms: 1 }, 2000)
    expect(check.reason).to.equal('probe /readyz answered 503 (failing: redis)')
    expect(check.reason).to.not.include('hunter2')
  })

  it('reports a lapsed lease with how long ago it expired', () => {
    const gone = known(instance('w1', { lastHeartbeatAt: iso(NOW - 22000) }), false)
    expect(processCheck(gone, NOW, TTL_MS)).to.deep.equal({ check: 'process', ok: false, reason: 'lease expired 12 s ago (last heartbeat 22 s ago; not renewed by its bootstrap)' })
    const early = known(instance('w1', { lastHeartbeatAt: iso(NOW - 4000) }), false)
    expect(processCheck(early, NOW, TTL_MS).reason).to.equal('lease gone from Redis before its 10 s ran out (last heartbeat 4 s ago): removed, or Redis lost it')
  })

  it('on this host, a dead or stopped pid fails the check before the lease lapses', () => {
    const node = known(instance('w1'))
    expect(processCheck(node, NOW, TTL_MS, (pid) => (pid === 101 ? 'gone' : 'running')).reason).to.equal('worker process 101 is not running on this host (lease still held until it lapses)')
    expect(processCheck(node, NOW, TTL_MS, (pid) => (pid === 100 ? 'stopped' : 'running')).reason).to.equal('bootstrap process 100 is stopped (SIGSTOP or a debugger)')
    expect(processCheck(node, NOW, TTL_MS, () => 'running')).to.deep.equal({ check: 'process', ok: true, reason: 'lease renewed 1 s ago; worker process 101 running, checked on this host' })
    // Elsewhere only the lease and bootstrap's report count.
    expect(processCheck(node, NOW, TTL_MS).ok).to.equal(true)
  })

  it('fails the check while bootstrap restarts its child or has none', () => {
    const restarting = known(instance('w1', { metrics: { childPid: null, state: 'restarting', restarts: 3 } }))
    expect(processCheck(restarting, NOW, TTL_MS).reason).to.equal('bootstrap is restarting (3 restarts): the worker process is not serving')
    const childless = known(instance('w1', { metrics: { childPid: null, state: 'running' } }))
    expect(processCheck(childless, NOW, TTL_MS).reason).to.equal('bootstrap reports no worker process')
  })

  it('tells a stopped and a dead pid of this host apart from a running one (/proc)', () => {
    expect(localPidState(process.pid)).to.equal('running')
    // Pids are below 2^22 on Linux.
    expect(localPidState(2 ** 22 + 7)).to.equal('gone')
  })
})

describe('node status: rounds', () => {
  it('remembers a node whose lease lapsed, drops one that deregistered, and forgets after forgetAfterMs', () => {
    const previous = [instance('w1'), instance('w2'), instance('w3', { lastHeartbeatAt: iso(NOW - 7200000) })].map(
      (i): NodeStatus => ({ id: i.id, role: i.role, host: i.host, pid: i.pid, healthUrl: i.healthUrl as string, lastHeartbeatAt: i.lastHeartbeatAt, registered: true, status: 'ok', checks: [] }),
    )
    const nodes = knownNodes([instance('c1', { role: 'controller' })], previous, new Set(['w2']), NOW, 3600000)
    expect(nodes.map((n) => [n.id, n.live !== undefined])).to.deep.equal([
      ['c1', true],
      ['w1', false],
    ])
  })

  it('runs the three checks of a node with the probe only after a connection', async () => {
    const calls: string[] = []
    const probes: NodeProbes = {
      connect: async (url) => (calls.push(`connect ${url.host}`), { ok: false, code: 'ECONNREFUSED' }),
      probe: async (url) => (calls.push(`probe ${url.host}`), { kind: 'timeout' }),
      pidState: () => undefined,
    }
    const status = await checkNode(known(instance('w1')), probes, NOW, TTL_MS)
    expect(calls).to.deep.equal(['connect 127.0.0.1:9100'])
    expect(status.status).to.equal('failing')
    expect(status.checks.map((c) => [c.check, c.ok])).to.deep.equal([
      ['reachable', false],
      ['process', true],
      ['probe', false],
    ])
  })

  it('saves each round for every controller, serves it while fresh, and reports it to metrics on the leader only', async () => {
    const store = new Map<string, string>()
    const redis = { get: async (key: string) => store.get(key) ?? null, set: async (key: string, value: string) => (store.set(key, value), 'OK' as const) }
    let live = [instance('w1'), instance('w2', { healthUrl: 'http://127.0.0.1:9200' })]
    let now = NOW
    let leader = true
    const answers = new Map<string, 'ok' | 'refused' | 'stalled'>([
      ['127.0.0.1:9100', 'ok'],
      ['127.0.0.1:9200', 'ok'],
    ])
    const probes: NodeProbes = {
      connect: async (url) => (answers.get(url.host) === 'refused' ? { ok: false, code: 'ECONNREFUSED' } : { ok: true, ms: 1 }),
      probe: async (url) => (answers.get(url.host) === 'stalled' ? { kind: 'timeout' } : { kind: 'answered', status: 200, body: { status: 'ok' }, ms: 1 }),
      pidState: () => undefined,
    }
    let rounds = 0
    const service = createNodeStatus({
      instances: async () => (rounds++, live),
      departed: async () => [],
      redis: redis as never,
      keys: { nodes: 'ferry:t:nodes' },
      isLeader: () => leader,
      id: 'c1',
      leaseTtlMs: TTL_MS,
      logger: silentLogger(),
      probes,
      now: () => now,
      intervalMs: 10000,
    })
    const first = await service.view()
    expect(first.nodes.map((n) => n.status)).to.deep.equal(['ok', 'ok'])
    expect(first.checkedBy).to.equal('c1')
    expect(JSON.parse(store.get('ferry:t:nodes') as string).nodes).to.have.length(2)

    // w1 stops answering; w2 dies and its lease lapses.
    answers.set('127.0.0.1:9100', 'stalled')
    answers.set('127.0.0.1:9200', 'refused')
    live = [instance('w1')]
    now += 15000
    expect((await service.view()).nodes.map((n) => n.status), 'the saved round while fresh').to.deep.equal(['ok', 'ok'])
    expect(rounds).to.equal(1)
    const second = await service.view({ fresh: true })
    const byId = new Map(second.nodes.map((n) => [n.id, n]))
    expect(byId.get('w1')?.checks.find((c) => c.check === 'probe')?.reason).to.equal('probe /readyz timed out after 2 s')
    expect(byId.get('w2')?.registered).to.equal(false)
    expect(byId.get('w2')?.checks.map((c) => c.reason)).to.deep.equal(['health port 127.0.0.1:9200 refused the connection', 'lease expired 6 s ago (last heartbeat 16 s ago; not renewed by its bootstrap)', 'not sent: the node is not reachable'])

    const registry = new Registry()
    registerControllerMetrics({ registry, redis: {} as never, keys: {} as never, isLeader: () => leader, drift: async () => ({ serving: 0, not_reported: 0, reported_by_other: 0, no_progress: 0 }), nodes: () => service.latest() })
    const text = await registry.getSingleMetricAsString('ferry_controller_node_check')
    expect(text).to.include('ferry_controller_node_check{node="w1",node_role="worker",check="reachable"} 1')
    expect(text).to.include('ferry_controller_node_check{node="w1",node_role="worker",check="probe"} 0')
    expect(text).to.include('ferry_controller_node_check{node="w2",node_role="worker",check="process"} 0')
    leader = false
    expect(await registry.getSingleMetricAsString('ferry_controller_node_check'), 'a follower reports no node sample').to.not.include('node="w1"')

    // A round older than two intervals (no leader refreshes it) is run again by whoever is asked.
    now += 20001
    await service.view()
    expect(rounds).to.equal(3)
  })

  it('probes at most `limit` nodes at once, answers in input order', async () => {
    let running = 0
    let most = 0
    const out = await mapBounded([5, 1, 4, 2, 3, 0, 6], 3, async (n) => {
      running++
      most = Math.max(most, running)
      await new Promise((resolve) => setTimeout(resolve, n))
      running--
      return n * 10
    })
    expect(out).to.deep.equal([50, 10, 40, 20, 30, 0, 60])
    expect(most).to.equal(3)
  })
})

describe('node status: the connection and the probe on real sockets', function () {
  this.timeout(10000)
  const servers: Array<Server | TcpServer> = []
  const sockets: Socket[] = []
  after(async () => {
    for (const s of sockets) s.destroy()
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  })
  const listening = async <S extends Server | TcpServer>(server: S): Promise<URL> => {
    servers.push(server)
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)
  }

  it('connects to a listener, and is refused by a closed port', async () => {
    const url = await listening(createTcpServer((s) => sockets.push(s)))
    expect(await tcpConnect(url, 1000)).to.include({ ok: true })
    const closed = createTcpServer()
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise((resolve) => closed.close(resolve))
    expect(await tcpConnect(new URL(`http://127.0.0.1:${port}`), 1000)).to.deep.equal({ ok: false, code: 'ECONNREFUSED' })
  })

  it('times out on a listener that accepts and never answers, within the timeout', async () => {
    const url = await listening(createTcpServer((s) => sockets.push(s)))
    const started = Date.now()
    expect(await httpProbe(url, 300)).to.deep.equal({ kind: 'timeout' })
    expect(Date.now() - started).to.be.within(250, 1500)
  })

  it('reads the status and JSON body of /readyz', async () => {
    const paths: string[] = []
    const url = await listening(
      createServer((req, res) => {
        paths.push(req.url ?? '')
        res.writeHead(503, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ status: 'unavailable', state: 'starting' }))
      }),
    )
    const outcome = await httpProbe(url, 1000)
    expect(outcome).to.include({ kind: 'answered', status: 503 })
    expect((outcome as { body: unknown }).body).to.deep.equal({ status: 'unavailable', state: 'starting' })
    expect(paths).to.deep.equal(['/readyz'])
  })
})

describe('continuous audit metrics', () => {
  const run = (lastRunMs: number, minutes: Array<{ missing: number; duplicates: number; final: boolean }>): AuditRun =>
    ({
      state: { lastRunMs },
      minutes: new Map([['', minutes.map((m, i) => ({ minuteMs: i * 60000, source: 10, target: 10, deadLettered: 0, late: 0, ...m }))]]),
      late: new Map(),
      recordsRead: 40,
      bytesRead: 4000,
    }) as unknown as AuditRun

  it("reports the missing and duplicated records of the minutes a run made final, the run's time, and totals; gauges on the leader only", async () => {
    const registry = new Registry()
    let leader = true
    const onRun = registerContinuousAuditMetrics(registry, () => leader)
    // An open minute's missing records may still be in flight: not counted.
    onRun('g1', run(NOW, [{ missing: 2, duplicates: 1, final: true }, { missing: 5, duplicates: 0, final: true }, { missing: 9, duplicates: 9, final: false }]))
    onRun('g1', run(NOW + 600000, [{ missing: 1, duplicates: 0, final: true }]))
    const text = await registry.metrics()
    expect(text).to.include('ferry_audit_continuous_missing_records{group="g1"} 1\n')
    expect(text).to.include('ferry_audit_continuous_duplicate_records{group="g1"} 0\n')
    expect(text).to.include(`ferry_audit_continuous_last_run_timestamp_seconds{group="g1"} ${(NOW + 600000) / 1000}\n`)
    expect(text).to.include('ferry_audit_continuous_missing_records_total{group="g1"} 8\n')
    expect(text).to.include('ferry_audit_continuous_duplicate_records_total{group="g1"} 1\n')
    expect(text).to.include('ferry_audit_continuous_read_bytes_total{group="g1"} 8000\n')
    leader = false
    expect(await registry.metrics(), 'a deposed leader reports no stale result').to.not.include('ferry_audit_continuous_missing_records{group="g1"}')
  })
})
