/**
 * deploy/prometheus/ferry-rules.yml checked by Prometheus's own tool: `promtool check rules`
 * (syntax, PromQL, templates) and `promtool test rules` on test/prometheus/ferry-rules.test.yml,
 * which must hold for every alert one case where it fires and one where it stays quiet. The
 * metric names in the rules and in deploy/grafana/ferry.json must be ones Ferry declares
 * (test/integration/metrics.test.ts checks the same names against live processes), and every
 * dashboard query must parse as PromQL (promtool checks it as a recording rule).
 *
 * promtool comes from Debian's `prometheus` package (.ci/run installs it). Without it these
 * tests fail with the command to install it: they never skip.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { parse, stringify } from 'yaml'
import { createMetricsRegistry } from '../../common/metrics.js'
import { ensureDebianTool } from '../../deploy/local-stack.js'

const run = promisify(execFile)
const ROOT = process.cwd()
const RULES = join(ROOT, 'deploy', 'prometheus', 'ferry-rules.yml')
const RULE_TESTS = join(ROOT, 'test', 'prometheus', 'ferry-rules.test.yml')
const DASHBOARD = join(ROOT, 'deploy', 'grafana', 'ferry.json')

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string; for?: string; labels?: Record<string, string>; annotations?: Record<string, string> }> }>
}
interface RuleTests {
  tests: Array<{ name?: string; alert_rule_test?: Array<{ alertname: string; exp_alerts?: unknown[] }> }>
}
interface Dashboard {
  panels: Array<{ id: number; title: string; type: string; targets?: Array<{ expr: string; refId: string }> }>
}

/** promtool, installed with apt-get (Debian's prometheus package, no service started) when missing and we are root. */
function promtoolPath(): Promise<string> {
  return ensureDebianTool(
    'promtool',
    'prometheus',
    "promtool is not installed (not found on PATH). It checks and unit-tests deploy/prometheus/ferry-rules.yml and comes from Debian's prometheus package: " +
      '`apt-get install -y --no-install-recommends prometheus` (.ci/run installs it; the prometheus service itself is not needed)',
    { noRecommends: true, log: (line) => process.stderr.write(`      [promtool] ${line}\n`) },
  )
}

/** Runs promtool; returns its output, or throws with that output when it exits non-zero. */
async function promtool(args: string[], cwd: string): Promise<string> {
  try {
    const { stdout, stderr } = await run(await promtoolPath(), args, { cwd, maxBuffer: 16 * 1024 * 1024 })
    return `${stdout}${stderr}`
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string }
    if (e.stdout === undefined && e.stderr === undefined) throw error
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`)
  }
}

/** Metric names Ferry declares (`new Counter({ name: 'ferry_...' })` and friends), with histogram series suffixes, plus Node's default metrics. */
async function declaredMetricNames(): Promise<Set<string>> {
  const names = new Set<string>()
  const sources = (dir: string): string[] =>
    readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => (entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : []))
  for (const file of ['controller', 'worker', 'bootstrap', 'common'].flatMap(sources)) {
    for (const m of readFileSync(join(ROOT, file), 'utf8').matchAll(/new (Counter|Gauge|Histogram|Summary)\(\{\s*name: '(ferry_[a-z0-9_]+)'/g)) {
      const [, type, name] = m as unknown as [string, string, string]
      names.add(name)
      if (type === 'Histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${name}${suffix}`)
      if (type === 'Summary') for (const suffix of ['_sum', '_count']) names.add(`${name}${suffix}`)
    }
  }
  for (const metric of await createMetricsRegistry().getMetricsAsJSON()) {
    names.add(metric.name)
    if (String(metric.type) === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) names.add(`${metric.name}${suffix}`)
  }
  return names
}

/** `ferry_*` metric names in a PromQL expression (recording rules, `level:metric:op`, excluded). */
function metricNamesIn(expr: string): string[] {
  return [...expr.matchAll(/(?<![a-z0-9_:])ferry_[a-z0-9_]+(?![a-z0-9_:])/g)].map((m) => m[0])
}

const rules = (): RuleFile => parse(readFileSync(RULES, 'utf8')) as RuleFile
const alerts = (): Array<RuleFile['groups'][number]['rules'][number]> => rules().groups.flatMap((g) => g.rules.filter((r) => r.alert !== undefined))

describe('Prometheus rules (promtool) and the Grafana dashboard', function () {
  this.timeout(60000)

  it('passes promtool check rules', async () => {
    const output = await promtool(['check', 'rules', RULES], ROOT)
    expect(output).to.match(/SUCCESS: \d+ rules found/)
  })

  it('passes promtool test rules', async () => {
    // rule_files in the test file are relative to it.
    const output = await promtool(['test', 'rules', 'ferry-rules.test.yml'], join(ROOT, 'test', 'prometheus'))
    expect(output).to.include('SUCCESS')
  })

  it("parses every dashboard query as PromQL", async () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard
    // Grafana's variables as a query would see them: `$group` is a regex of group names.
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr.replace(/\$\{?(\w+)\}?/g, (_all, name: string) => (name.startsWith('__') ? '1m' : '.*'))))
    expect(exprs.length).to.be.greaterThan(0)
    const dir = mkdtempSync(join(tmpdir(), 'ferry-dashboard-promql-'))
    try {
      const file = join(dir, 'dashboard-queries.yml')
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules: exprs.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }] }))
      const output = await promtool(['check', 'rules', file], dir)
      expect(output).to.include(`SUCCESS: ${exprs.length} rules found`)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('draws drift by kind and records out today over yesterday on the dashboard', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard
    const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr.replace(/\s+/g, ' ')))
    expect(exprs, 'drift panel').to.include('sum by (kind) (ferry_controller_partitions_drift)')
    const today = exprs.find((e) => /^sum by \(group\) \(rate\(ferry_worker_records_total\{group=~"\$group"\}\[5m\]\)\)$/.test(e))
    expect(today, 'records out today').to.be.a('string')
    expect(exprs, 'the same query one day earlier').to.include((today as string).replace('[5m]', '[5m] offset 1d'))
  })

  it('tests every alert once firing and once quiet', () => {
    const names = alerts().map((a) => a.alert as string)
    expect(names.length, 'alerts in ferry-rules.yml').to.be.greaterThan(0)
    const cases = (parse(readFileSync(RULE_TESTS, 'utf8')) as RuleTests).tests.flatMap((t) => t.alert_rule_test ?? [])
    const firing = new Set(cases.filter((c) => (c.exp_alerts ?? []).length > 0).map((c) => c.alertname))
    const quiet = new Set(cases.filter((c) => (c.exp_alerts ?? []).length === 0).map((c) => c.alertname))
    expect(names.filter((n) => !firing.has(n)), 'alerts without a firing case').to.deep.equal([])
    expect(names.filter((n) => !quiet.has(n)), 'alerts without a quiet case').to.deep.equal([])
    expect([...firing, ...quiet].filter((n) => !names.includes(n)), 'cases of alerts that do not exist').to.deep.equal([])
  })

  it('gives every alert a for, a severity, a summary and a description', () => {
    for (const alert of alerts()) {
      expect(alert.labels?.severity, `${alert.alert}: severity`).to.be.oneOf(['critical', 'warning', 'info'])
      expect(alert.annotations?.summary, `${alert.alert}: summary`).to.be.a('string').and.not.equal('')
      expect(alert.annotations?.description, `${alert.alert}: description`).to.be.a('string').and.not.equal('')
      // A result (the last audit) is true until the next one: waiting adds nothing.
      if (alert.alert !== 'FerryAuditMissingRecords') expect(alert.for, `${alert.alert}: for`).to.match(/^\d+[smh]$/)
    }
  })

  it('uses only metric names Ferry declares, in the rules and in the dashboard', async () => {
    const declared = await declaredMetricNames()
    expect(declared.has('ferry_controller_partitions_drift'), 'the source scan finds the declared metrics').to.equal(true)
    const ruleNames = rules().groups.flatMap((g) => g.rules.flatMap((r) => metricNamesIn(r.expr)))
    expect(ruleNames.length).to.be.greaterThan(0)
    expect([...new Set(ruleNames)].filter((n) => !declared.has(n)), 'rule metrics Ferry does not declare').to.deep.equal([])

    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard
    const ids = dashboard.panels.map((p) => p.id)
    expect(new Set(ids).size, 'unique panel ids').to.equal(ids.length)
    for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
      const targets = panel.targets ?? []
      expect(targets.length, `panel "${panel.title}" has queries`).to.be.greaterThan(0)
      const refIds = targets.map((t) => t.refId)
      expect(new Set(refIds).size, `panel "${panel.title}": unique refIds`).to.equal(refIds.length)
      for (const { expr } of targets) {
        const used = metricNamesIn(expr)
        expect(used.length, `panel "${panel.title}": ${expr} names a Ferry metric`).to.be.greaterThan(0)
        expect(used.filter((n) => !declared.has(n)), `panel "${panel.title}": ${expr}`).to.deep.equal([])
      }
    }
  })
})
