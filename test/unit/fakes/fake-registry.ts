/**
 * The instance registry as the controller reads it (common/registry.ts `InstanceReads`), in
 * memory: live instances with their reported metrics, graceful departures, and an outage switch
 * (every read rejects, as with Redis down).
 *
 * @example
 *   const registry = createFakeRegistry()
 *   registry.join('w1')
 *   registry.report('w1', [{ group: 'g', topic: 't', partition: 0, state: 'mirroring', position: 10 }])
 *   registry.leave('w1')            // graceful: a departed marker, like deregistration
 */
import type { InstanceReads, InstanceRecord } from '../../../common/registry.js'
import { parseInstanceMetrics } from '../../../common/worker-report.js'

/** What a test says a worker reports of a partition; the rest is filled in as the registry's parser does. */
export interface ReportedPartition {
  group: string
  topic: string
  partition: number
  state: 'starting' | 'mirroring' | 'retrying' | 'failed'
  position?: number
  bytesPerSec?: number
}

export interface FakeRegistry extends InstanceReads {
  /** Registers a worker (or re-registers it: its departed marker goes). */
  join(id: string, extra?: { zone?: string; dc?: string }): void
  /** Replaces what the worker reports about its partitions. */
  report(id: string, partitions: ReportedPartition[]): void
  /** Deregisters gracefully: gone, with a departed marker. */
  leave(id: string): void
  /** The lease vanishes without a marker (kill -9, lease expiry, a registry that lost its data). */
  vanish(id: string): void
  /** Every read rejects with this error until set back to null. */
  setDown(error: Error | null): void
  /** Reads made so far. */
  readonly reads: number
}

export function createFakeRegistry(): FakeRegistry {
  const live = new Map<string, InstanceRecord>()
  const departed = new Set<string>()
  let down: Error | null = null
  let reads = 0
  const read = async (): Promise<void> => {
    reads++
    await Promise.resolve()
    if (down !== null) throw down
  }
  return {
    async listInstances() {
      await read()
      return [...live.values()].sort((a, b) => a.id.localeCompare(b.id)).map((i) => structuredClone(i))
    },
    async listDeparted(ids) {
      await read()
      return ids.filter((id) => departed.has(id))
    },
    async listLiveIds() {
      await read()
      return [...live.keys()].sort()
    },
    join(id, extra = {}) {
      departed.delete(id)
      live.set(id, { id, role: 'worker', host: 'localhost', pid: 1, version: 'test', startedAt: new Date(0).toISOString(), lastHeartbeatAt: new Date(0).toISOString(), metrics: { partitions: [] }, ...extra })
    },
    report(id, partitions) {
      const instance = live.get(id)
      if (instance === undefined) throw new Error(`FakeRegistry: ${id} is not registered`)
      // Through the real parser, as listInstances reads a lease: defaults filled, bad entries dropped.
      instance.metrics = parseInstanceMetrics({ partitions: partitions.map((p) => ({ targetTopic: p.topic, ...p })) })
    },
    leave(id) {
      live.delete(id)
      departed.add(id)
    },
    vanish(id) {
      live.delete(id)
    },
    setDown(error) {
      down = error
    },
    get reads() {
      return reads
    },
  }
}
