/**
 * `ferry` commands that talk to a controller's REST API. Human tables by default, the API's
 * JSON with `--json`. Each returns the process exit code: 0 done, 1 failed (the API refused,
 * the controller is unreachable, a wait timed out), 2 usage error.
 *
 *   ferry clusters                                   ferry cluster NAME [show|delete|create --file c.json]
 *   ferry groups                                     ferry group NAME [show|start|stop|delete|create --file g.json [--stopped]]
 *   ferry group NAME --history [--from T] [--to T] [--step 5m]
 *   ferry workers      ferry assignments             ferry rebalance [--apply]
 *   ferry nodes [--fresh]                            (exit 1 when a node fails a check)
 *   ferry events [--limit N]                         ferry wait GROUP [--timeout-s N]
 *   ferry failover --group G [--consumer-group CG ...] [--dry-run]    ferry consumer-offsets GROUP [--consumer-group CG ...]
 *   common flags: --controller URL (FERRY_CONTROLLER)  --token T (FERRY_TOKEN)  --json
 */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { SingleBar } from 'cli-progress'
import type {
  AssignedPartitionView,
  AssignmentsView,
  ClustersView,
  ClusterView,
  ConsumerOffsetsView,
  EventsView,
  FailoverView,
  GroupStateChange,
  GroupsView,
  GroupSummary,
  GroupView,
  HistoryView,
  NodesView,
  PartitionRow,
  Readiness,
  RebalanceView,
  WorkersView,
} from '../common/api-schemas.js'
import { CliError, createApiClient, type ApiClient } from './client.js'
import { count, rate, renderTable, since } from './table.js'

export const API_COMMANDS = ['clusters', 'cluster', 'groups', 'group', 'workers', 'nodes', 'assignments', 'rebalance', 'events', 'wait', 'failover', 'consumer-offsets'] as const
export type ApiCommand = (typeof API_COMMANDS)[number]

export const API_USAGE = `  clusters | cluster NAME [show|delete|create --file c.json]
  groups   | group NAME [show|start|stop|delete|create --file g.json [--stopped]]
  group NAME --history [--from T] [--to T] [--step 5m]   records/s (and yesterday's), lag, latency (and the continuous audit's figures) per step;
                T: ms, ISO-8601, or relative as --from=-2h
  workers | assignments | rebalance [--apply] | events [--limit N]
  nodes [--fresh]                per worker and controller: reachable, process running, probe answered,
                                 with the reason when not (--fresh: check now); exit 1 when one fails
  wait GROUP [--timeout-s N]     until every partition of GROUP is assigned and its lag is 0
  failover --group G [--consumer-group CG ...] [--dry-run]
                commits the consumer groups' translated offsets on the target (default: the group's consumerGroups)
  consumer-offsets GROUP [--consumer-group CG ...]   the current translations and the continuous sync's state
  api flags:    --controller URL (or FERRY_CONTROLLER, default http://127.0.0.1:8080)
                --token T (or FERRY_TOKEN)  --json (the API's JSON instead of tables)`

export function isApiCommand(command: string | undefined): command is ApiCommand {
  return (API_COMMANDS as readonly string[]).includes(command ?? '')
}

const FLAGS = {
  controller: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  file: { type: 'string' },
  stopped: { type: 'boolean' },
  apply: { type: 'boolean' },
  limit: { type: 'string' },
  'timeout-s': { type: 'string' },
  'interval-ms': { type: 'string' },
  history: { type: 'boolean' },
  from: { type: 'string' },
  to: { type: 'string' },
  step: { type: 'string' },
  group: { type: 'string' },
  'consumer-group': { type: 'string', multiple: true },
  'dry-run': { type: 'boolean' },
  fresh: { type: 'boolean' },
  help: { type: 'boolean' },
} as const

interface Flags {
  json: boolean
  file?: string | undefined
  stopped?: boolean | undefined
  apply?: boolean | undefined
  limit?: string | undefined
  'timeout-s'?: string | undefined
  'interval-ms'?: string | undefined
  history?: boolean | undefined
  from?: string | undefined
  to?: string | undefined
  step?: string | undefined
  group?: string | undefined
  'consumer-group'?: string[] | undefined
  'dry-run'?: boolean | undefined
  fresh?: boolean | undefined
}

export interface Output {
  out: (text: string) => void
  err: (text: string) => void
  /** Whether progress may redraw in place (a terminal). */
  isTTY: boolean
  stream: NodeJS.WritableStream
}

const processOutput = (): Output => ({
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  isTTY: process.stderr.isTTY === true,
  stream: process.stderr,
})

const topicsOf = (spec: GroupSummary['spec']): string => spec.topics?.join(',') ?? `/${spec.topicPattern ?? ''}/`

/** "g: t[0,1,2]" groups of partitions, compact for a table cell. */
function partitionList(partitions: readonly AssignedPartitionView[]): Array<[string, string, string]> {
  const byTopic = new Map<string, { group: string; topic: string; numbers: number[] }>()
  for (const p of partitions) {
    const k = `${p.group}\u0000${p.topic}`
    const entry = byTopic.get(k) ?? { group: p.group, topic: p.topic, numbers: [] }
    entry.numbers.push(p.partition)
    byTopic.set(k, entry)
  }
  return [...byTopic.values()].map((e) => [e.group, e.topic, e.numbers.sort((a, b) => a - b).join(',')])
}

function readJsonFile(file: string | undefined, what: string): Record<string, unknown> {
  if (!file) throw new CliError(`${what} needs --file FILE.json`, 2)
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`, 2)
  }
  try {
    const parsed: unknown = JSON.parse(text)
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object')
    return parsed as Record<string, unknown>
  } catch (error) {
    throw new CliError(`${file} is not a JSON object: ${(error as Error).message}`, 2)
  }
}

function positiveInt(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new CliError(`${flag} must be a positive whole number, got "${value}"`, 2)
  return Number(value)
}

const json = (value: unknown): string => `${JSON.stringify(value, null, 2)}\n`
const path = (...parts: string[]): string => parts.map((p) => (p.startsWith('/') ? p : encodeURIComponent(p))).join('/')

/** `serving`, or the kind of drift with how long it has lasted: `not_reported 42s`. */
function servedCell(p: Pick<PartitionRow, 'served' | 'sinceMs'>): string {
  if (p.served === undefined) return '-'
  return p.served === 'serving' || p.sinceMs === undefined ? p.served : `${p.served} ${Math.floor(p.sinceMs / 1000)}s`
}

/** Per partition: source committed offset, translated target offset, whether the group re-reads only its own uncommitted records, and why. */
function translationTable(rows: FailoverView['partitions']): string {
  return renderTable(
    ['consumer group', 'topic', 'partition', 'source committed', 'target offset', 'target committed', 're-reads', 'skipped', 'why'],
    rows.map((r) => [r.consumerGroup, r.targetTopic === r.topic ? r.topic : `${r.topic} -> ${r.targetTopic}`, r.partition, r.sourceOffset, r.targetOffset, r.targetCommitted ?? '-', r.exact ? 'only after its commit' : 'more (see why)', r.skipped, r.reason]),
    { right: [2, 3, 4, 5, 7] },
  )
}

const DAY_MS = 24 * 3600000

/** A time flag: milliseconds since the epoch, an ISO-8601 time, or "-2h" / "-30m" before now (`--from=-2h`: parseArgs takes a value starting with "-" only after "="). */
function timeFlag(value: string | undefined, flag: string, fallback: number, now: number): number {
  if (value === undefined) return fallback
  const relative = /^-(\d+)(m|h|d)$/.exec(value)
  if (relative) return now - Number(relative[1]) * (relative[2] === 'm' ? 60000 : relative[2] === 'h' ? 3600000 : DAY_MS)
  if (/^\d+$/.test(value)) return Number(value)
  const parsed = Date.parse(value)
  if (!Number.isFinite(parsed)) throw new CliError(`${flag} must be milliseconds since the epoch, an ISO-8601 time or "-2h", got "${value}"`, 2)
  return parsed
}

/** `ferry group NAME --history`: one row per step with yesterday's records/s beside today's, then the events. */
async function groupHistory(api: ApiClient, group: string, flags: Flags, output: Output): Promise<number> {
  const now = Date.now()
  const to = timeFlag(flags.to, '--to', now, now)
  const from = timeFlag(flags.from, '--from', to - 3600000, now)
  const query = (f: number, t: number) => `${path('/v1/groups', group, 'history')}?from=${f}&to=${t}&step=${encodeURIComponent(flags.step ?? '5m')}`
  // The API checks the window and the step and names the field it refuses.
  const [today, yesterday] = await Promise.all([api.get<HistoryView>(query(from, to)), api.get<HistoryView>(query(from - DAY_MS, to - DAY_MS))])
  if (flags.json) {
    output.out(json({ today, yesterday }))
    return 0
  }
  const before = new Map(yesterday.points.map((p) => [p.t + DAY_MS, p]))
  const minute = (ms: number): string => new Date(ms).toISOString().slice(0, 16).replace('T', ' ')
  output.out(`history of "${group}", ${minute(today.fromMs)} .. ${minute(today.toMs)} UTC, ${today.stepMs / 60000} min steps\n`)
  // The continuous audit's columns only for a group it audited in the window; "?" marks a step still in its grace.
  const audited = today.points.some((p) => p.audit != null)
  const auditCells = (p: (typeof today.points)[number]): string[] => (p.audit == null ? ['-', '-', '-'] : [`${count(p.audit.missing)}${p.audit.final ? '' : '?'}`, count(p.audit.duplicates), count(p.audit.late)])
  output.out(
    renderTable(
      ['time (UTC)', 'records/s', 'yesterday', 'bytes/s', 'lag', 'lag max', 'p50 ms', 'p99 ms', ...(audited ? ['missing', 'duplicates', 'late'] : [])],
      today.points.map((p) => [minute(p.t), count(p.recordsPerSec), count(before.get(p.t)?.recordsPerSec), rate(p.bytesPerSec), count(p.lag), count(p.lagMax), count(p.latencyP50Ms), count(p.latencyP99Ms), ...(audited ? auditCells(p) : [])]),
      { right: audited ? [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] : [1, 2, 3, 4, 5, 6, 7] },
    ),
  )
  if (today.events.length > 0) output.out(`\n${renderTable(['time', 'event', 'worker', 'message'], today.events.map((e) => [e.at, e.type, e.worker, e.message]))}`)
  return 0
}

function groupDetailText(view: GroupView): string {
  const error = view.status.error ?? view.status.lagError
  // Only the kinds that occur: "not_reported 1, no_progress 2".
  const drift = Object.entries(view.status.drift ?? {})
    .filter(([, n]) => n > 0)
    .map(([kind, n]) => `${kind} ${n}`)
    .join(', ')
  const lines = [
    `group        ${view.name}`,
    `state        ${view.state}`,
    `clusters     ${view.spec.sourceCluster} -> ${view.spec.targetCluster}`,
    `topics       ${topicsOf(view.spec)}`,
    `delivery     ${view.spec.delivery ?? '-'}    strategy ${view.spec.strategy ?? '-'}`,
    `partitions   ${view.status.assignedPartitions}    lag ${count(view.status.lag)}    ${view.status.healthy ? 'healthy' : 'unhealthy'}`,
    ...(error ? [`error        ${error.code}: ${error.message}`] : []),
    ...(view.status.droppedTopics?.length ? [`dropped      ${view.status.droppedTopics.join(', ')}`] : []),
    ...(view.status.quarantined ?? []).map((q) => `quarantined  ${q.worker} until ${q.until}: ${q.reason}`),
    ...(drift ? [`not served   ${drift}`] : []),
    '',
  ]
  const rows = view.partitions.map((p) => [p.topic, p.partition, p.targetTopic, p.worker, p.state, servedCell(p), count(p.position), count(p.highWatermark), count(p.lag), p.error ? `${p.error.code}: ${p.error.message}` : ''])
  return `${lines.join('\n')}\n${renderTable(['topic', 'partition', 'target topic', 'worker', 'state', 'served', 'position', 'high watermark', 'lag', 'error'], rows, { right: [1, 6, 7, 8] })}`
}

async function waitForGroup(api: ApiClient, name: string, flags: Flags, output: Output): Promise<number> {
  const timeoutMs = positiveInt(flags['timeout-s'], '--timeout-s', 600) * 1000
  const intervalMs = positiveInt(flags['interval-ms'], '--interval-ms', 1000)
  const deadline = Date.now() + timeoutMs
  // Progress goes to stderr so `--json` output on stdout stays clean; without a terminal,
  // cli-progress prints a plain line every few seconds instead of redrawing.
  const bar = new SingleBar({
    format: `${name} [{bar}] {percentage}% | position {value}/{total} | lag {lag} | {partitions} partitions | {state}`,
    stream: output.stream,
    noTTYOutput: !output.isTTY,
    notTTYSchedule: 5000,
    hideCursor: output.isTTY,
    etaBuffer: 20,
    barsize: 30,
    barCompleteChar: '#',
    barIncompleteChar: '.',
    formatValue: (value, _options, type) => (type === 'value' || type === 'total' ? count(value) : String(value)),
  })
  let started = false
  let last: GroupView | undefined
  try {
    for (;;) {
      const view = await api.get<GroupView>(path('/v1/groups', name))
      last = view
      const positions = view.partitions.reduce((sum, p) => sum + (p.position ?? 0), 0)
      const highs = view.partitions.reduce((sum, p) => sum + (p.highWatermark ?? 0), 0)
      const payload = { lag: count(view.status.lag), partitions: view.status.assignedPartitions, state: view.status.healthy ? view.state : `${view.state}, ${(view.status.error ?? view.status.lagError)?.code ?? 'partition errors'}` }
      if (!started) {
        bar.start(Math.max(highs, 1), Math.min(positions, Math.max(highs, 1)), payload)
        started = true
      } else {
        bar.setTotal(Math.max(highs, 1))
        bar.update(Math.min(positions, Math.max(highs, 1)), payload)
      }
      if (view.state !== 'running') throw new CliError(`topic group "${name}" is ${view.state}: it will not catch up until started (ferry group ${name} start)`)
      const caughtUp = view.partitions.length > 0 && view.status.lag === 0 && view.partitions.every((p) => p.lag === 0)
      if (caughtUp) break
      if (Date.now() + intervalMs > deadline) {
        throw new CliError(`topic group "${name}" did not catch up within ${timeoutMs / 1000} s (lag ${count(view.status.lag)}, ${view.partitions.length} partitions assigned)`)
      }
      await new Promise((resolve) => setTimeout(resolve, intervalMs))
    }
  } finally {
    if (started) bar.stop()
  }
  output.out(flags.json ? json(last) : `topic group "${name}" caught up: lag 0 on ${last?.partitions.length ?? 0} partitions\n`)
  return 0
}

async function run(command: ApiCommand, positionals: string[], flags: Flags, api: ApiClient, output: Output): Promise<number> {
  const [name, action = 'show', ...extra] = positionals
  const needName = (what: string): string => {
    if (!name) throw new CliError(`ferry ${what} needs a NAME`, 2)
    if (extra.length > 0) throw new CliError(`unexpected arguments: ${extra.join(' ')}`, 2)
    return name
  }
  const noPositionals = (): void => {
    if (positionals.length > 0) throw new CliError(`ferry ${command} takes no arguments, got: ${positionals.join(' ')}`, 2)
  }
  switch (command) {
    case 'clusters': {
      noPositionals()
      const { clusters } = await api.get<ClustersView>('/v1/clusters')
      output.out(flags.json ? json({ clusters }) : renderTable(['name', 'protocol', 'bootstrap servers', 'dc', 'zone'], clusters.map((c) => [c.name, c.securityProtocol ?? 'PLAINTEXT', c.bootstrapServers.join(','), c.dc, c.zone])))
      return 0
    }
    case 'cluster': {
      const cluster = needName('cluster')
      if (action === 'show') {
        const view = await api.get<ClusterView>(path('/v1/clusters', cluster))
        output.out(flags.json ? json(view) : renderTable(['name', 'protocol', 'bootstrap servers', 'dc', 'zone'], [[view.name, view.securityProtocol ?? 'PLAINTEXT', view.bootstrapServers.join(','), view.dc, view.zone]]))
      } else if (action === 'delete') {
        await api.send('DELETE', path('/v1/clusters', cluster))
        output.out(flags.json ? json({ name: cluster, deleted: true }) : `cluster "${cluster}" deleted\n`)
      } else if (action === 'create') {
        const body = readJsonFile(flags.file, 'ferry cluster NAME create')
        if (body.name !== undefined && body.name !== cluster) throw new CliError(`${flags.file ?? ''} names cluster "${String(body.name)}", not "${cluster}"`, 2)
        const created = await api.send<ClusterView>('POST', '/v1/clusters', { ...body, name: cluster })
        output.out(flags.json ? json(created) : `cluster "${created.name}" registered\n`)
      } else {
        throw new CliError(`unknown cluster action "${action}": use show, delete or create --file c.json`, 2)
      }
      return 0
    }
    case 'groups': {
      noPositionals()
      const { groups } = await api.get<GroupsView>('/v1/groups')
      output.out(
        flags.json
          ? json({ groups })
          : renderTable(['name', 'state', 'source', 'target', 'topics', 'delivery', 'strategy'], groups.map((g) => [g.name, g.state, g.spec.sourceCluster, g.spec.targetCluster, topicsOf(g.spec), g.spec.delivery, g.spec.strategy])),
      )
      return 0
    }
    case 'group': {
      const group = needName('group')
      if (flags.history) {
        if (action !== 'show') throw new CliError(`--history goes with no action, got "${action}"`, 2)
        return groupHistory(api, group, flags, output)
      }
      if (action === 'show') {
        const view = await api.get<GroupView>(path('/v1/groups', group))
        output.out(flags.json ? json(view) : groupDetailText(view))
      } else if (action === 'start' || action === 'stop') {
        const result = await api.send<GroupStateChange>('POST', path('/v1/groups', group, action))
        output.out(flags.json ? json(result) : `topic group "${result.name}" ${result.state}\n`)
      } else if (action === 'delete') {
        await api.send('DELETE', path('/v1/groups', group))
        output.out(flags.json ? json({ name: group, deleted: true }) : `topic group "${group}" deleted\n`)
      } else if (action === 'create') {
        const body = readJsonFile(flags.file, 'ferry group NAME create')
        if (body.name !== undefined && body.name !== group) throw new CliError(`${flags.file ?? ''} names group "${String(body.name)}", not "${group}"`, 2)
        const created = await api.send<GroupSummary>('POST', '/v1/groups', { ...body, name: group, ...(flags.stopped ? { start: false } : {}) })
        output.out(flags.json ? json(created) : `topic group "${created.name}" created (${created.state})\n`)
      } else {
        throw new CliError(`unknown group action "${action}": use show, start, stop, delete or create --file g.json`, 2)
      }
      return 0
    }
    case 'workers': {
      noPositionals()
      const [{ workers, controllers }, ready] = await Promise.all([
        api.get<WorkersView>('/v1/workers'),
        api.get<Pick<Readiness, 'leader'>>('/readyz').catch(() => ({ leader: null })),
      ])
      if (flags.json) {
        output.out(json({ workers, controllers, leader: ready.leader }))
        return 0
      }
      const now = Date.now()
      output.out(
        renderTable(
          ['worker', 'zone', 'dc', 'host', 'partitions', 'records/s', 'bytes/s', 'heartbeat age'],
          [...workers].sort((a, b) => a.id.localeCompare(b.id)).map((w) => [w.id, w.zone, w.dc, `${w.host}:${w.pid}`, w.load?.partitions ?? 0, count(w.load?.recordsPerSec), rate(w.load?.bytesPerSec), since(w.lastHeartbeatAt, now)]),
          { right: [4, 5, 6, 7] },
        ),
      )
      output.out(`\n${renderTable(['controller', 'role', 'url', 'heartbeat age'], controllers.map((c) => [c.id, c.id === ready.leader ? 'leader' : 'follower', c.url, since(c.lastHeartbeatAt, now)]), { right: [3] })}`)
      return 0
    }
    case 'nodes': {
      noPositionals()
      const view = await api.get<NodesView>(`/v1/nodes${flags.fresh ? '?fresh=true' : ''}`)
      const failing = view.nodes.some((n) => n.status === 'failing')
      if (flags.json) {
        output.out(json(view))
        return failing ? 1 : 0
      }
      const mark = (ok: boolean | null): string => (ok === null ? '?' : ok ? 'ok' : 'FAIL')
      output.out(`checked ${since(view.checkedAt, Date.now())} ago by ${view.checkedBy}\n`)
      output.out(
        renderTable(
          ['node', 'role', 'host', 'status', 'reachable', 'process', 'probe', 'reason'],
          view.nodes.map((n) => {
            const check = (name: string) => n.checks.find((c) => c.check === name)
            return [n.id, n.role, `${n.host}:${n.pid}`, n.status, mark(check('reachable')?.ok ?? null), mark(check('process')?.ok ?? null), mark(check('probe')?.ok ?? null), [...new Set(n.checks.filter((c) => c.ok !== true).map((c) => c.reason))].join('; ')]
          }),
        ),
      )
      return failing ? 1 : 0
    }
    case 'assignments': {
      noPositionals()
      const { assignments } = await api.get<AssignmentsView>('/v1/assignments')
      if (flags.json) {
        output.out(json({ assignments }))
        return 0
      }
      const rows = Object.entries(assignments)
        .sort(([a], [b]) => a.localeCompare(b))
        .flatMap(([worker, record]) => partitionList(record.partitions).map(([group, topic, partitions]) => [worker, group, topic, partitions]))
      output.out(renderTable(['worker', 'group', 'topic', 'partitions'], rows))
      return 0
    }
    case 'rebalance': {
      noPositionals()
      const plan = await api.send<RebalanceView>(
        'POST',
        `/v1/rebalance?dryRun=${flags.apply ? 'false' : 'true'}`,
      )
      if (flags.json) {
        output.out(json(plan))
        return 0
      }
      if (!plan.dryRun) {
        output.out(`rebalance pass: ${plan.moves === undefined ? 0 : typeof plan.moves === 'number' ? plan.moves : plan.moves.length} moves, ${plan.writes ?? 0} writes${plan.skipped ? ` (${plan.skipped})` : ''}\n`)
        return 0
      }
      const moves = Array.isArray(plan.moves) ? plan.moves : []
      output.out(`dry run over ${plan.workers?.length ?? 0} live workers: ${moves.length} moves${plan.deferred ? `, ${plan.deferred} deferred to later passes` : ''}\n`)
      output.out(renderTable(['group', 'topic', 'partition', 'from', 'to'], moves.map((m) => [m.partition.group, m.partition.topic, m.partition.partition, m.from ?? '(unassigned)', m.to ?? '(unassigned)']), { right: [2] }))
      for (const [group, reason] of Object.entries(plan.unplaced ?? {})) output.out(`unplaced: ${group}: ${reason}\n`)
      return 0
    }
    case 'events': {
      noPositionals()
      const limit = positiveInt(flags.limit, '--limit', 50)
      const { events } = await api.get<EventsView>(`/v1/events?limit=${limit}`)
      output.out(flags.json ? json({ events }) : renderTable(['time', 'type', 'group', 'worker', 'message'], events.map((e) => [e.at, e.type, e.group, e.worker, e.message])))
      return 0
    }
    case 'wait': {
      if (!name || positionals.length > 1) throw new CliError('usage: ferry wait GROUP [--timeout-s N]', 2)
      return waitForGroup(api, name, flags, output)
    }
    case 'failover': {
      noPositionals()
      if (!flags.group) throw new CliError('usage: ferry failover --group G [--consumer-group CG ...] [--dry-run]', 2)
      const body = { ...(flags['consumer-group'] === undefined ? {} : { consumerGroups: flags['consumer-group'] }), dryRun: flags['dry-run'] === true }
      const result = await api.send<FailoverView>('POST', path('/v1/groups', flags.group, 'failover'), body)
      if (flags.json) {
        output.out(json(result))
        return 0
      }
      output.out(`${result.dryRun ? 'dry run: would commit' : 'committed'} on the target for ${result.consumerGroups.map((g) => `"${g}"`).join(', ')} (group "${result.group}"): ${result.partitions.length} partition(s), ${result.inexact} not exact, ${result.skipped} record(s) skipped\n`)
      output.out(translationTable(result.partitions))
      return 0
    }
    case 'consumer-offsets': {
      if (!name || positionals.length > 1) throw new CliError('usage: ferry consumer-offsets GROUP [--consumer-group CG ...]', 2)
      const query = (flags['consumer-group'] ?? []).map((g) => `consumerGroup=${encodeURIComponent(g)}`).join('&')
      const view = await api.get<ConsumerOffsetsView>(`${path('/v1/groups', name, 'consumer-offsets')}${query ? `?${query}` : ''}`)
      if (flags.json) {
        output.out(json(view))
        return 0
      }
      output.out(translationTable(view.partitions))
      for (const s of view.sync) output.out(`sync ${s.consumerGroup}: ${s.state} at ${s.at}: ${s.message}\n`)
      return 0
    }
  }
}

/** Runs one API command; never throws (errors are printed to stderr and become the exit code). */
export async function runApiCommand(command: ApiCommand, args: string[], output: Output = processOutput()): Promise<number> {
  try {
    let parsed
    try {
      parsed = parseArgs({ args, options: FLAGS, strict: true, allowPositionals: true })
    } catch (error) {
      throw new CliError(`${(error as Error).message}\nusage: ferry ${API_USAGE.trim()}`, 2)
    }
    const { values, positionals } = parsed
    if (values.help) {
      output.out(`usage: ferry ${API_USAGE.trim()}\n`)
      return 0
    }
    const api = createApiClient({ controller: values.controller, token: values.token })
    return await run(command, positionals, { ...values, json: values.json === true }, api, output)
  } catch (error) {
    if (error instanceof CliError) {
      output.err(`ferry ${command}: ${error.message}\n`)
      return error.exitCode
    }
    output.err(`ferry ${command}: ${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  }
}
