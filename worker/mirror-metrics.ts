/**
 * The mirror task's Prometheus series (worker/worker-metrics.ts adds the ones measured at the
 * edges the worker wires together).
 *
 * @example
 *   const metrics = createMirrorMetrics(registry)
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { SourceBatch } from '../common/kafka/source-consumer.js'

export interface MirrorMetrics {
  records: Counter<'group'>
  bytes: Counter<'group'>
  batches: Counter<'group'>
  errors: Counter<'group' | 'code'>
  deadLettered: Counter<'group'>
  /** Records a provenance group left out because they came from its target cluster (worker/provenance.ts). */
  loopDropped: Counter<'group'>
  position: Gauge<'group' | 'topic' | 'partition'>
  latency: Histogram<'group'>
  /** Per fetched batch (records and bytes in, high watermark): worker/worker-metrics.ts. */
  fetched?: (group: string, batch: SourceBatch, bytes: number) => void
}

export function createMirrorMetrics(registry: Registry): MirrorMetrics {
  return {
    records: new Counter({ name: 'ferry_worker_records_total', help: 'Records mirrored (acknowledged by the target)', labelNames: ['group'], registers: [registry] }),
    bytes: new Counter({ name: 'ferry_worker_bytes_total', help: 'Key + value bytes mirrored', labelNames: ['group'], registers: [registry] }),
    batches: new Counter({ name: 'ferry_worker_batches_total', help: 'Batches mirrored', labelNames: ['group'], registers: [registry] }),
    errors: new Counter({ name: 'ferry_worker_errors_total', help: 'Mirroring failures by error code', labelNames: ['group', 'code'], registers: [registry] }),
    deadLettered: new Counter({ name: 'ferry_worker_dead_lettered_total', help: 'Records the target refused, written to the dead-letter topic', labelNames: ['group'], registers: [registry] }),
    loopDropped: new Counter({ name: 'ferry_worker_records_loop_dropped_total', help: 'Records not mirrored because their ferry.origin header names the target cluster (they came from there)', labelNames: ['group'], registers: [registry] }),
    latency: new Histogram({ name: 'ferry_worker_end_to_end_latency_seconds', help: 'Target acknowledgement time minus source timestamp of the newest record of each batch', labelNames: ['group'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers: [registry] }),
    position: new Gauge({ name: 'ferry_worker_partition_position', help: 'Next source offset to mirror', labelNames: ['group', 'topic', 'partition'], registers: [registry] }),
  }
}
