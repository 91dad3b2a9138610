/**
 * Controller metrics read at scrape time: live workers by their Redis lease,
 * as every controller (leader or follower) sees them; and, on the leader only, assigned
 * partitions per kind of drift between the assignment and what workers serve
 * (`ferry_controller_partitions_drift{kind}`, see served.ts). Only the leader reports drift so
 * that summing over every controller counts each partition once; followers report no sample. Reconciles, moves and leadership are
 * recorded by the reconciler (`ferry_controller_reconcile_seconds`, `..._partition_moves_total`,
 * `ferry_controller_is_leader`).
 *
 * @example
 *   registerControllerMetrics({ registry, redis, keys, isLeader: () => election.isLeader(), drift: () => groups.drift() })
 */
import type { Redis } from 'ioredis'
import { Counter, Gauge, type Registry } from 'prom-client'
import type { Keys } from '../common/keys.js'
import { listInstances } from '../common/registry.js'
import type { AuditRun } from './continuous-audit.js'
import type { NodesRound } from './node-status.js'
import { DRIFT_KINDS, type DriftCounts } from './served.js'

export interface ControllerMetricsDeps {
  registry: Registry
  redis: Redis
  keys: Keys
  /** Whether this controller leads now (only the leader reports drift). */
  isLeader: () => boolean
  /** Drift counts over every group (GroupsService.drift). */
  drift: () => Promise<DriftCounts>
  /** The leader's last round of node checks (NodeStatusService.latest); null elsewhere. */
  nodes?: () => NodesRound | null
}

export function registerControllerMetrics(deps: ControllerMetricsDeps): void {
  new Gauge({
    name: 'ferry_controller_partitions_drift',
    help: 'Assigned partitions not served as assigned, by kind: not_reported, reported_by_other (a stale owner), no_progress (reported, not advancing while the source has records). Reported by the leader only',
    labelNames: ['kind'],
    registers: [deps.registry],
    async collect() {
      this.reset()
      if (!deps.isLeader()) return
      try {
        const counts = await deps.drift()
        for (const kind of DRIFT_KINDS) this.set({ kind }, counts[kind])
      } catch {
        // Unknown is not zero: no sample while ZooKeeper or Redis cannot be read.
      }
    },
  })
  new Gauge({
    name: 'ferry_controller_node_check',
    help: "Node checks of the leader's last round, per worker and controller (node, node_role) and check (reachable, process, probe): 1 passes, 0 fails; no sample when it could not be checked. Reported by the leader only; the reasons are in GET /v1/nodes",
    labelNames: ['node', 'node_role', 'check'],
    registers: [deps.registry],
    collect() {
      this.reset()
      for (const node of deps.nodes?.()?.nodes ?? []) {
        for (const c of node.checks) if (c.ok !== null) this.set({ node: node.id, node_role: node.role, check: c.check }, c.ok ? 1 : 0)
      }
    },
  })
  new Gauge({
    name: 'ferry_controller_live_workers',
    help: 'Workers with a live lease in Redis (absent while Redis is unreachable; see ferry_controller_rebalance_frozen)',
    registers: [deps.registry],
    async collect() {
      this.reset()
      try {
        const instances = await listInstances(deps.redis, deps.keys)
        this.set(instances.filter((i) => i.role === 'worker').length)
      } catch {
        // Unknown is not zero: a dashboard must not show "no workers" while Redis is down.
      }
    },
  })
}

/**
 * Metrics of the continuous audit (controller/continuous-audit.ts), from each run: per group the
 * missing and duplicated records of the minutes the run made final (gauges, reported while this
 * controller leads, until the group's next run), when it last ran, and running totals of those
 * and of what the runs read. Returns the audit's `onRun`.
 */
export function registerContinuousAuditMetrics(registry: Registry, isLeader: () => boolean): (group: string, run: AuditRun) => void {
  const lastRuns = new Map<string, { missing: number; duplicates: number; atSeconds: number }>()
  const fromLastRuns = (pick: (r: { missing: number; duplicates: number; atSeconds: number }) => number) =>
    function (this: Gauge) {
      this.reset()
      // A deposed leader's figures are stale: the new leader reports from its first run.
      if (!isLeader()) return
      for (const [group, r] of lastRuns) this.set({ group }, pick(r))
    }
  new Gauge({ name: 'ferry_audit_continuous_missing_records', help: "Source records missing at the target (and not dead-lettered) in the minutes the group's last continuous-audit run made final. Reported by the leader", labelNames: ['group'], registers: [registry], collect: fromLastRuns((r) => r.missing) })
  new Gauge({ name: 'ferry_audit_continuous_duplicate_records', help: "Extra target copies in the minutes the group's last continuous-audit run made final. Reported by the leader", labelNames: ['group'], registers: [registry], collect: fromLastRuns((r) => r.duplicates) })
  new Gauge({ name: 'ferry_audit_continuous_last_run_timestamp_seconds', help: "When this controller last ran the group's continuous audit (Unix time). Reported by the leader", labelNames: ['group'], registers: [registry], collect: fromLastRuns((r) => r.atSeconds) })
  const missingTotal = new Counter({ name: 'ferry_audit_continuous_missing_records_total', help: 'Missing records of the minutes made final by the continuous-audit runs of this controller', labelNames: ['group'], registers: [registry] })
  const duplicatesTotal = new Counter({ name: 'ferry_audit_continuous_duplicate_records_total', help: 'Duplicated records of the minutes made final by the continuous-audit runs of this controller', labelNames: ['group'], registers: [registry] })
  const readRecords = new Counter({ name: 'ferry_audit_continuous_read_records_total', help: 'Records the continuous-audit runs of this controller read (source, target and dead-letter topic)', labelNames: ['group'], registers: [registry] })
  const readBytes = new Counter({ name: 'ferry_audit_continuous_read_bytes_total', help: 'Key, value and header bytes the continuous-audit runs of this controller read', labelNames: ['group'], registers: [registry] })
  return (group, run) => {
    const final = (run.minutes.get('') ?? []).filter((m) => m.final)
    const missing = final.reduce((n, m) => n + m.missing, 0)
    const duplicates = final.reduce((n, m) => n + m.duplicates, 0)
    lastRuns.set(group, { missing, duplicates, atSeconds: run.state.lastRunMs / 1000 })
    missingTotal.inc({ group }, missing)
    duplicatesTotal.inc({ group }, duplicates)
    readRecords.inc({ group }, run.recordsRead)
    readBytes.inc({ group }, run.bytesRead)
  }
}
