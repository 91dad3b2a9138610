/**
 * Prometheus metrics on the real stack: a controller and a worker, each under bootstrap, mirror
 * a topic; then the controller's /metrics, the worker's --metrics-port and both bootstraps'
 * health listeners are scraped. The metrics the operator dashboard needs carry real samples
 * (lag per partition, records in/out, produce latency, checkpoint age, live workers, leader,
 * restarts after a SIGKILL of the worker), and every metric name in deploy/grafana/ferry.json
 * and in the Prometheus rules (deploy/prometheus/ferry-rules.yml) is one the processes export.
 */
import { expect } from 'chai'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { parse } from 'yaml'
import type { LocalStack } from '../../deploy/local-stack.js'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import { FerryProcess, sharedStack, uniqueName, waitFor } from './harness.js'
import { createSampleProducer, createTopic, readAll } from './kafka-helpers.js'
import { request } from './api-client.js'

const DASHBOARD = fileURLToPath(new URL('../../../deploy/grafana/ferry.json', import.meta.url))
const RULES = fileURLToPath(new URL('../../../deploy/prometheus/ferry-rules.yml', import.meta.url))

interface Exposition {
  /** Metric family → type, from `# TYPE` lines. */
  families: Map<string, string>
  /** Sample lines: `name{labels} value`. */
  samples: Array<{ name: string; labels: string; value: number }>
}

function parseExposition(text: string): Exposition {
  const families = new Map<string, string>()
  const samples: Exposition['samples'] = []
  for (const line of text.split('\n')) {
    const type = /^# TYPE (\S+) (\S+)/.exec(line)
    if (type) families.set(type[1] as string, type[2] as string)
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)/.exec(line)
    if (sample) samples.push({ name: sample[1] as string, labels: sample[2] ?? '', value: Number(sample[3]) })
  }
  return { families, samples }
}

/** Every `ferry_*` name in the dashboard's PromQL. */
function dashboardMetricNames(): Set<string> {
  const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Array<{ targets?: Array<{ expr: string }> }>; templating: { list: Array<{ definition?: string }> } }
  const exprs = [...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...dashboard.templating.list.map((v) => v.definition ?? '')]
  return new Set(exprs.flatMap((e) => e.match(/\bferry_[a-z0-9_]+/g) ?? []))
}

/** Every `ferry_*` metric name in the rules' PromQL (recording rule names, `level:metric:op`, excluded). */
function ruleMetricNames(): Set<string> {
  const rules = parse(readFileSync(RULES, 'utf8')) as { groups: Array<{ rules: Array<{ expr: string }> }> }
  return new Set(rules.groups.flatMap((g) => g.rules.flatMap((r) => r.expr.match(/(?<![a-z0-9_:])ferry_[a-z0-9_]+(?![a-z0-9_:])/g) ?? [])))
}

describe('Prometheus metrics and the Grafana dashboard (real stack)', function () {
  this.timeout(240000)
  let stack: LocalStack
  let redis: Redis
  const deployment = uniqueName('metrics')
  const keys = createKeys(deployment)
  const procs: FerryProcess[] = []
  const topic = uniqueName('metrics-topic')
  const group = uniqueName('metrics-g')
  let controllerUrl = ''
  let controllerProc: FerryProcess
  let workerProc: FerryProcess

  const lastUrl = (proc: FerryProcess, event: string): string | undefined => {
    const lines = proc.log().split('\n').filter((l) => l.includes(`"${event}"`))
    const last = lines[lines.length - 1]
    return last === undefined ? undefined : (JSON.parse(last) as { url: string }).url
  }
  const scrape = async (url: string): Promise<Exposition> => {
    const res = await request('GET', url)
    expect(res.status, url).to.equal(200)
    return parseExposition(res.text)
  }
  const value = (e: Exposition, name: string, labelPart = ''): number | undefined => e.samples.find((s) => s.name === name && s.labels.includes(labelPart))?.value

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    redis = new Redis(stack.redis.url)
    const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '4000', '--health-port', '0']
    controllerProc = new FerryProcess('metrics-controller', ['bootstrap', '--role', 'controller', '--id', 'm-c1', '--port', '0', '--rebalance-debounce-ms', '500', ...common])
    workerProc = new FerryProcess('metrics-worker', ['bootstrap', '--role', 'worker', '--id', 'm-w1', '--metrics-port', '0', ...common])
    procs.push(controllerProc, workerProc)
    const controller = await waitFor('controller and worker registered', async () => {
      const instances = await listInstances(redis, keys)
      const c = instances.find((i) => i.role === 'controller' && i.url)
      return c && instances.some((i) => i.id === 'm-w1') ? c : undefined
    }, 90000)
    controllerUrl = controller.url as string
    for (const [name, servers] of [['m-src', stack.source.plaintext], ['m-dst', stack.target.plaintext]] as const) {
      expect((await request('POST', `${controllerUrl}/v1/clusters`, { json: { name, bootstrapServers: [servers] } })).status).to.equal(201)
    }
    await createTopic(stack.source.plaintext, topic, 2)
    const producer = createSampleProducer(stack.source.plaintext, topic, 2)
    await producer.send(300)
    await producer.close()
    expect((await request('POST', `${controllerUrl}/v1/groups`, { json: { name: group, sourceCluster: 'm-src', targetCluster: 'm-dst', topics: [topic] } })).status).to.equal(201)
    await waitFor('300 records on the target', async () => {
      const rows = await readAll(stack.target.plaintext, topic)
      return [...rows.values()].reduce((n, r) => n + r.length, 0) >= 300
    }, 120000, 1000)
  })

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    redis.disconnect()
  })

  it('exports the controller metrics: leader, live workers, reconciles, moves', async () => {
    const m = await scrape(`${controllerUrl}/metrics`)
    expect(value(m, 'ferry_controller_is_leader')).to.equal(1)
    expect(value(m, 'ferry_controller_live_workers')).to.equal(1)
    expect(value(m, 'ferry_controller_reconcile_seconds_count')).to.be.greaterThan(0)
    expect(value(m, 'ferry_controller_partition_moves_total')).to.be.at.least(2)
    expect(m.families.get('ferry_controller_rebalance_frozen')).to.equal('gauge')
    // The leader counts drift per kind; its one worker serves both partitions.
    const drift = await waitFor('no drift on the leader', async () => {
      const e = await scrape(`${controllerUrl}/metrics`)
      const kinds = ['not_reported', 'reported_by_other', 'no_progress'].map((kind) => value(e, 'ferry_controller_partitions_drift', `kind="${kind}"`))
      return kinds.every((v) => v === 0) ? e : undefined
    }, 30000)
    expect(drift.families.get('ferry_controller_partitions_drift')).to.equal('gauge')
  })

  it('exports the worker metrics: records and bytes in and out, lag per partition, produce latency, checkpoint age, errors', async () => {
    const workerMetricsUrl = await waitFor('the worker metrics listener', () => lastUrl(workerProc, 'worker.metrics_listening'))
    const m = await waitFor('worker metrics with every partition caught up', async () => {
      const e = await scrape(workerMetricsUrl)
      const lags = e.samples.filter((s) => s.name === 'ferry_worker_partition_lag_records' && s.labels.includes(`group="${group}"`))
      return lags.length === 2 && lags.every((s) => s.value === 0) ? e : undefined
    }, 30000)
    const g = `group="${group}"`
    expect(value(m, 'ferry_worker_consumed_records_total', g)).to.be.at.least(300)
    expect(value(m, 'ferry_worker_records_total', g)).to.be.at.least(300)
    expect(value(m, 'ferry_worker_consumed_bytes_total', g)).to.be.greaterThan(0)
    expect(value(m, 'ferry_worker_bytes_total', g)).to.be.greaterThan(0)
    expect(value(m, 'ferry_worker_produce_latency_seconds_count', g)).to.be.greaterThan(0)
    const age = value(m, 'ferry_worker_checkpoint_age_seconds', g)
    expect(age).to.be.a('number').and.to.be.at.least(0).and.below(120)
    expect(m.samples.some((s) => s.name === 'ferry_worker_partition_lag_records' && s.labels.includes(`topic="${topic}"`) && s.labels.includes('partition="1"'))).to.equal(true)
    expect(m.families.get('ferry_worker_errors_total')).to.equal('counter')
  })

  it('exports the bootstrap metrics: restarts (after a SIGKILL of the worker) and heartbeat failures', async () => {
    const healthUrl = await waitFor('the worker bootstrap health listener', () => lastUrl(workerProc, 'bootstrap.health_listening'))
    const before = await scrape(`${healthUrl}/metrics`)
    expect(value(before, 'ferry_bootstrap_child_restarts_total')).to.equal(0)
    expect(value(before, 'ferry_bootstrap_heartbeat_failures_total')).to.equal(0)
    const worker = (await listInstances(redis, keys)).find((i) => i.id === 'm-w1')
    const childPid = (worker?.metrics as { childPid?: number } | null)?.childPid
    expect(childPid).to.be.a('number')
    process.kill(childPid as number, 'SIGKILL')
    const after = await waitFor('a restart counted', async () => {
      const e = await scrape(`${healthUrl}/metrics`)
      return (value(e, 'ferry_bootstrap_child_restarts_total') ?? 0) >= 1 ? e : undefined
    }, 30000)
    expect(value(after, 'ferry_bootstrap_child_restarts_total')).to.equal(1)
    const controllerHealth = await waitFor('the controller bootstrap health listener', () => lastUrl(controllerProc, 'bootstrap.health_listening'))
    expect(value(await scrape(`${controllerHealth}/metrics`), 'ferry_bootstrap_child_restarts_total')).to.equal(0)
  })

  it('has a Grafana dashboard and Prometheus rules whose every metric name is exported, covering the required ones', async () => {
    const workerMetricsUrl = await waitFor('the restarted worker metrics listener', async () => {
      const url = lastUrl(workerProc, 'worker.metrics_listening')
      return url !== undefined && (await request('GET', url).catch(() => ({ status: 0 }))).status === 200 ? url : undefined
    }, 30000)
    const healthUrls = [lastUrl(workerProc, 'bootstrap.health_listening'), lastUrl(controllerProc, 'bootstrap.health_listening')]
    const expositions = await Promise.all([`${controllerUrl}/metrics`, workerMetricsUrl, ...healthUrls.map((u) => `${String(u)}/metrics`)].map(scrape))
    const exported = new Set<string>()
    for (const e of expositions) {
      for (const [family, type] of e.families) {
        exported.add(family)
        if (type === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) exported.add(`${family}${suffix}`)
        if (type === 'summary') for (const suffix of ['_sum', '_count']) exported.add(`${family}${suffix}`)
      }
    }
    const used = dashboardMetricNames()
    expect([...used].filter((name) => !exported.has(name)), 'dashboard metrics nobody exports').to.deep.equal([])
    const inRules = ruleMetricNames()
    expect(inRules.size).to.be.greaterThan(0)
    expect([...inRules].filter((name) => !exported.has(name)), 'rule metrics nobody exports').to.deep.equal([])
    const required = [
      'ferry_controller_reconcile_seconds_count', 'ferry_controller_partition_moves_total', 'ferry_controller_is_leader', 'ferry_controller_live_workers', 'ferry_controller_partitions_drift',
      'ferry_worker_consumed_records_total', 'ferry_worker_records_total', 'ferry_worker_consumed_bytes_total', 'ferry_worker_bytes_total',
      'ferry_worker_partition_lag_records', 'ferry_worker_produce_latency_seconds_bucket', 'ferry_worker_errors_total', 'ferry_worker_checkpoint_age_seconds',
      'ferry_bootstrap_child_restarts_total', 'ferry_bootstrap_heartbeat_failures_total',
    ]
    expect(required.filter((name) => !used.has(name)), 'required metrics missing from the dashboard').to.deep.equal([])
  })
})
