/**
 * The only place that builds Redis keys. Layout under `ferry:<deployment>:`:
 *   instances            set of instance ids that registered (cleaned of expired leases by readers)
 *   instance:<id>        lease: JSON { token, info, metrics }, with a TTL renewed by heartbeats
 *   departed:<id>        marker left by a graceful deregistration (a few lease TTLs), so the
 *                        controller moves the partitions at once instead of waiting for a heartbeat
 *   events               capped list of recent events for operators
 *   history:<group>      sorted set of 1-minute buckets of the group (score: the minute's start, ms),
 *                        trimmed to the retention on every write (controller/history.ts)
 *   history:<group>:topic:<topic>   the same, per topic of the group
 *   audit:<group>        sorted set of the continuous audit's 1-minute buckets (controller/history.ts)
 *   audit:<group>:topic:<topic>     the same, per topic of the group
 *   audit-state:<group>  the continuous audit's offsets reached and open minutes (controller/continuous-audit.ts)
 *   nodes                the last round of node checks, JSON (controller/node-status.ts)
 *
 * @example
 *   const keys = createKeys('prod')
 *   keys.instance('worker-1')   // 'ferry:prod:instance:worker-1'
 */
export interface Keys {
  /** The deployment these keys belong to. */
  deployment: string
  instances: string
  instance(id: string): string
  departed(id: string): string
  events: string
  /** A group's history (`topic` absent) or one of its topics' (group and topic names hold no ":"). */
  history(group: string, topic?: string): string
  /** The continuous audit's minutes of a group (`topic` absent) or of one of its topics. */
  auditHistory(group: string, topic?: string): string
  /** What a group's continuous audit keeps between runs. */
  auditState(group: string): string
  /** The last round of node checks (reachable, process, probe per instance). */
  nodes: string
}

export function createKeys(deployment: string): Keys {
  const prefix = `ferry:${deployment}`
  return {
    deployment,
    instances: `${prefix}:instances`,
    instance: (id) => `${prefix}:instance:${id}`,
    departed: (id) => `${prefix}:departed:${id}`,
    events: `${prefix}:events`,
    history: (group, topic) => (topic === undefined ? `${prefix}:history:${group}` : `${prefix}:history:${group}:topic:${topic}`),
    auditHistory: (group, topic) => (topic === undefined ? `${prefix}:audit:${group}` : `${prefix}:audit:${group}:topic:${topic}`),
    auditState: (group) => `${prefix}:audit-state:${group}`,
    nodes: `${prefix}:nodes`,
  }
}
