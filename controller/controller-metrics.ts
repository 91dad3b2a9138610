/**
 * Controller metrics read at scrape time: live workers by their Redis lease,
 * as every controller (leader or follower) sees them. Reconciles, moves and leadership are
 * recorded by the reconciler (`ferry_controller_reconcile_seconds`, `..._partition_moves_total`,
 * `ferry_controller_is_leader`).
 *
 * @example
 *   registerControllerMetrics({ registry, redis, keys })
 */
import type { Redis } from 'ioredis'
import { Gauge, type Registry } from 'prom-client'
import type { Keys } from '../common/keys.js'
import { listInstances } from '../common/registry.js'

export function registerControllerMetrics(deps: { registry: Registry; redis: Redis; keys: Keys }): void {
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
