/**
 * The mirror task's record of its partitions: one status per partition (what the worker
 * reports, see common/worker-report.ts), the progress that moves it, and the smoothed rates.
 * The book owns the per-partition series of the position gauge, so a partition that leaves the
 * book leaves the metrics too.
 *
 * @example
 *   const book = createPartitionBook(group, metrics)
 *   book.progress('orders', 3, { records, next: 43, ackedAt: Date.now() })
 *   worker.status().partitions = book.snapshot()
 */
import { targetTopicName, type TopicGroupSpec } from '../common/config.js'
import type { FerryError } from '../common/errors.js'
import { emptyLatencyCounts, recordLatency } from '../common/latency.js'
import type { SourceRecord } from '../common/kafka/source-consumer.js'
import { partitionKey, type PartitionReport } from '../common/worker-report.js'
import type { MirrorMetrics } from './mirror-metrics.js'

export type PartitionStatus = PartitionReport

export interface Progress {
  /** The records now on the target (none past a dead-lettered record). */
  records: readonly SourceRecord[]
  /** Next source offset to mirror. */
  next: number
  ackedAt: number
  targetEnd?: number | undefined
}

export interface PartitionBook {
  /** The status of a partition, created (state starting) on first use. */
  of(topic: string, partition: number): PartitionStatus
  has(topic: string, partition: number): boolean
  /** Records on the target: position, counts, latency, metrics; clears an error. Returns the status. */
  progress(topic: string, partition: number, progress: Progress): { status: PartitionStatus; recovered: boolean }
  fail(topic: string, partition: number, state: PartitionStatus['state'], error: FerryError): void
  /**
   * The partition starts at `offset` with `mirrored` records so far (by every owner: a move keeps
   * the count). The start reached both clusters, so errors of an earlier start are over, unless
   * the partition failed for good (state failed: it waits for a new assignment).
   */
  started(topic: string, partition: number, offset: number, mirrored: number): void
  /** A new assignment: failed partitions (those of `keys` when given) get another chance. */
  retryFailed(keys?: ReadonlySet<string>): void
  /** Forgets every partition not in `keep` (keys from `partitionKey`). */
  retain(keep: ReadonlySet<string>): void
  /** Copies of every status with fresh rates (smoothed since the previous snapshot). */
  snapshot(): PartitionStatus[]
}

/** Weight of the newest sample in the smoothed rates. */
const ALPHA = 0.3

export function createPartitionBook(group: TopicGroupSpec, metrics: MirrorMetrics, now: () => number = Date.now): PartitionBook {
  const statuses = new Map<string, PartitionStatus>()
  const bytesMirrored = new Map<string, number>()
  const rateSamples = new Map<string, { at: number; bytes: number; records: number }>()
  const labels = (s: PartitionStatus): { group: string; topic: string; partition: string } => ({ group: group.name, topic: s.topic, partition: String(s.partition) })

  const of = (topic: string, partition: number): PartitionStatus => {
    const key = partitionKey({ topic, partition })
    let status = statuses.get(key)
    if (status === undefined) {
      status = { group: group.name, topic, partition, targetTopic: targetTopicName(group, topic), state: 'starting', recordsMirrored: 0, deadLettered: 0, latencyCounts: emptyLatencyCounts(), latencyMaxMs: 0, bytesPerSec: 0, recordsPerSec: 0 }
      statuses.set(key, status)
    }
    return status
  }

  const updateRates = (): void => {
    const at = now()
    for (const [key, status] of statuses) {
      const bytes = bytesMirrored.get(key) ?? 0
      const sample = rateSamples.get(key)
      rateSamples.set(key, { at, bytes, records: status.recordsMirrored })
      if (sample === undefined || at - sample.at < 100) continue
      const seconds = (at - sample.at) / 1000
      status.bytesPerSec = ALPHA * ((bytes - sample.bytes) / seconds) + (1 - ALPHA) * status.bytesPerSec
      status.recordsPerSec = ALPHA * ((status.recordsMirrored - sample.records) / seconds) + (1 - ALPHA) * status.recordsPerSec
    }
  }

  return {
    of,
    has: (topic, partition) => statuses.has(partitionKey({ topic, partition })),
    progress(topic, partition, { records, next, ackedAt, targetEnd }) {
      const status = of(topic, partition)
      let bytes = 0
      for (const record of records) {
        bytes += (record.key?.length ?? 0) + (record.value?.length ?? 0)
        const latencyMs = Math.max(0, ackedAt - Number(record.timestamp))
        recordLatency(status.latencyCounts, latencyMs)
        if (latencyMs > status.latencyMaxMs) status.latencyMaxMs = latencyMs
      }
      const newest = records[records.length - 1]
      if (newest !== undefined) metrics.latency.observe({ group: group.name }, Math.max(0, ackedAt - Number(newest.timestamp)) / 1000)
      status.position = next
      if (targetEnd !== undefined) status.targetEnd = targetEnd
      status.recordsMirrored += records.length
      const key = partitionKey({ topic, partition })
      bytesMirrored.set(key, (bytesMirrored.get(key) ?? 0) + bytes)
      const recovered = status.state !== 'mirroring' || status.error !== undefined
      if (recovered) {
        status.state = 'mirroring'
        delete status.error
      }
      metrics.records.inc({ group: group.name }, records.length)
      metrics.bytes.inc({ group: group.name }, bytes)
      metrics.batches.inc({ group: group.name })
      metrics.position.set(labels(status), next)
      return { status, recovered }
    },
    fail(topic, partition, state, error) {
      const status = of(topic, partition)
      status.state = state
      status.error = { code: error.code, message: error.message }
    },
    started(topic, partition, offset, mirrored) {
      const status = of(topic, partition)
      status.position = offset
      status.recordsMirrored = Math.max(status.recordsMirrored, mirrored)
      if (status.state === 'failed') return
      status.state = 'mirroring'
      delete status.error
    },
    retryFailed(keys) {
      for (const [key, status] of statuses) {
        if (status.state !== 'failed' || (keys !== undefined && !keys.has(key))) continue
        status.state = 'starting'
        delete status.error
      }
    },
    retain(keep) {
      for (const [key, status] of [...statuses]) {
        if (keep.has(key)) continue
        statuses.delete(key)
        bytesMirrored.delete(key)
        rateSamples.delete(key)
        metrics.position.remove(labels(status))
      }
    },
    snapshot() {
      updateRates()
      return [...statuses.values()].map((s) => ({ ...s, latencyCounts: [...s.latencyCounts], bytesPerSec: Math.round(s.bytesPerSec), recordsPerSec: Math.round(s.recordsPerSec) }))
    },
  }
}
