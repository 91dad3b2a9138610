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
import { Gauge, type Registry } from 'prom-client'
import type { Keys } from '../common/keys.js'
import { listInstances } from '../common/registry.js'
import { DRIFT_KINDS, type DriftCounts } from './served.js'

export interface ControllerMetricsDeps {
  registry: Registry
  redis: Redis
  keys: Keys
  /** Whether this controller leads now (only the leader reports drift). */
  isLeader: () => boolean
  /** Drift counts over every group (GroupsService.drift). */
  drift: () => Promise<DriftCounts>
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
