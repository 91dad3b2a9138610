/**
 * Worker metrics beyond the mirror task's own counters, measured at the edges the worker wires
 * together (no per-record work): records and bytes in (per fetched batch), lag per partition
 * (the batch's high watermark minus the mirrored position, computed at scrape time, so a
 * partition that moved away stops being reported), produce latency (wrapping the target
 * producers) and checkpoint age (wrapping the checkpoint store).
 *
 * @example
 *   const wm = createWorkerMetrics(registry, createMirrorMetrics(registry))
 *   createMirrorTask({ metrics: wm.mirror, producer: wm.producer(group, producer), checkpoints: wm.checkpoints(group, store), ... })
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { CheckpointStore } from './checkpoint-store.js'
import type { SourceBatch } from '../common/kafka/source-consumer.js'
import type { TargetProducer } from './target-producer.js'
import type { TransactionalProducer } from './transactional-producer.js'
import { partitionKey } from '../common/worker-report.js'
import type { MirrorMetrics } from './mirror-metrics.js'

export interface WorkerMetrics {
  /** The mirror task's metrics, with the per-batch hook. */
  readonly mirror: MirrorMetrics
  producer(group: string, producer: TargetProducer): TargetProducer
  transactional(group: string, producer: TransactionalProducer): TransactionalProducer
  checkpoints(group: string, store: CheckpointStore): CheckpointStore
}

const key = (group: string, topic: string, partition: number | string): string => partitionKey({ topic, partition: Number(partition) }, group)

export function createWorkerMetrics(registry: Registry, mirror: MirrorMetrics, now: () => number = Date.now): WorkerMetrics {
  const recordsIn = new Counter({ name: 'ferry_worker_consumed_records_total', help: 'Records fetched from the source', labelNames: ['group'], registers: [registry] })
  const bytesIn = new Counter({ name: 'ferry_worker_consumed_bytes_total', help: 'Key + value bytes fetched from the source', labelNames: ['group'], registers: [registry] })
  const produceSeconds = new Histogram({ name: 'ferry_worker_produce_latency_seconds', help: 'Time from handing a batch to the target producer to its acknowledgement (acks=all), or to the commit of an exactly-once transaction', labelNames: ['group'], buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30], registers: [registry] })
  /** Latest high watermark seen per partition. */
  const highWatermarks = new Map<string, number>()
  /** Last successful checkpoint per group, ms. */
  const checkpointedAt = new Map<string, number>()

  // Only partitions the worker mirrors now: the mirror task removes their position series on a move or stop.
  const activePositions = async (): Promise<Array<{ labels: Record<string, string | number>; value: number }>> => (await mirror.position.get()).values as Array<{ labels: Record<string, string | number>; value: number }>

  new Gauge({
    name: 'ferry_worker_partition_lag_records',
    help: 'Records at the source not yet mirrored, per partition (high watermark at the last fetch minus the mirrored position)',
    labelNames: ['group', 'topic', 'partition'],
    registers: [registry],
    async collect() {
      this.reset()
      for (const { labels, value } of await activePositions()) {
        const high = highWatermarks.get(key(String(labels.group), String(labels.topic), String(labels.partition)))
        if (high !== undefined) this.set({ group: String(labels.group), topic: String(labels.topic), partition: String(labels.partition) }, Math.max(0, high - value))
      }
    },
  })
  new Gauge({
    name: 'ferry_worker_checkpoint_age_seconds',
    help: 'Seconds since the group last wrote a checkpoint on this worker',
    labelNames: ['group'],
    registers: [registry],
    async collect() {
      this.reset()
      const groups = new Set((await activePositions()).map((p) => String(p.labels.group)))
      for (const group of groups) {
        const at = checkpointedAt.get(group)
        if (at !== undefined) this.set({ group }, Math.max(0, now() - at) / 1000)
      }
    },
  })

  const timed = async <T>(group: string, send: () => Promise<T>): Promise<T> => {
    const end = produceSeconds.startTimer({ group })
    const result = await send()
    end()
    return result
  }

  return {
    mirror: {
      ...mirror,
      fetched(group: string, batch: SourceBatch, bytes: number): void {
        recordsIn.inc({ group }, batch.records.length)
        bytesIn.inc({ group }, bytes)
        highWatermarks.set(key(group, batch.topic, batch.partition), batch.highWatermark)
      },
    },
    // Spread, so methods added to these interfaces later pass through unchanged.
    producer: (group, producer) => ({
      ...producer,
      send: (records) => timed(group, () => producer.send(records)),
    }),
    transactional: (group, producer) => ({
      ...producer,
      sendAtomically: async (records) => {
        // Where the records went passes through: offset syncs are built from it.
        const placed = await timed(group, () => producer.sendAtomically(records))
        // The transaction carried the checkpoint of its data.
        checkpointedAt.set(group, now())
        return placed
      },
    }),
    checkpoints: (group, store) => ({
      ...store,
      write: async (producer, g, entries) => {
        await store.write(producer, g, entries)
        checkpointedAt.set(group, now())
      },
    }),
  }
}
