/**
 * The audit, in the spirit of Uber's Chaperone: for a topic group and a time window, count the
 * records at the source and at the target per topic and time bucket (by record timestamp,
 * which Ferry preserves), and report what is missing and what is duplicated.
 *
 * Records are matched by content, not position: a record's identity is a hash of its source
 * partition (kept on the target), timestamp, key, value and headers, so the audit needs no
 * marker in the data and works on any target. Both sides are read only over the window
 * (offsets found by timestamp), which keeps a recurring audit of recent minutes cheap.
 */
import { deadLetterTopicName, targetTopicName, type ClusterSpec, type TopicGroupSpec } from '../common/config.js'
import type { KafkaAdmin } from '../common/kafka/admin.js'
import type { KafkaReadClients } from '../common/kafka/port.js'
import { headerText, type PartitionStart, type SourceRecord } from '../common/kafka/source-consumer.js'
import { recordIdentity } from '../common/record-identity.js'
import type { LatencySummary } from '../common/latency.js'
import type { Logger } from '../common/logger.js'

export interface AuditBucket {
  /** Bucket start, ms since the epoch. */
  start: number
  source: number
  target: number
  /** Source records found neither on the target nor in the dead-letter topic. */
  missing: number
  duplicates: number
  /** Source records that went to the dead-letter topic (by the group's policy). */
  deadLettered: number
}

export interface AuditTopic {
  topic: string
  targetTopic: string
  source: number
  target: number
  missing: number
  duplicates: number
  deadLettered: number
  buckets: AuditBucket[]
}

export interface AuditReport {
  group: string
  fromMs: number
  toMs: number
  bucketMs: number
  source: number
  target: number
  missing: number
  duplicates: number
  deadLettered: number
  topics: AuditTopic[]
  /**
   * End-to-end latency (target acknowledgement minus source timestamp) of the records the
   * group's live workers mirrored since they started, from their reports; bucket upper bounds.
   */
  latency?: LatencySummary
}

export interface AuditOptions {
  group: TopicGroupSpec
  topics: readonly string[]
  source: { cluster: ClusterSpec; admin: KafkaAdmin }
  target: { cluster: ClusterSpec; admin: KafkaAdmin }
  /** Reads each side (the port's source consumer; it reads the target alike). */
  sourceConsumer: KafkaReadClients['sourceConsumer']
  fromMs: number
  toMs: number
  /** Default 60000 ms. */
  bucketMs?: number
  logger: Logger
  /** Longest one side of one topic may take to read; default 120000 ms. */
  readTimeoutMs?: number
}

type Counts = Map<number, Map<string, number>>

/** Calls `onRecord` for every record of [offset by fromMs, last stable offset now) in each partition. */
async function scanWindow(cluster: ClusterSpec, admin: KafkaAdmin, topic: string, options: AuditOptions, onRecord: (partition: number, record: SourceRecord) => void): Promise<void> {
  const [starts, ends] = await Promise.all([admin.offsetsForTime(topic, options.fromMs), admin.stableOffsets(topic)])
  const pending = new Map<number, number>()
  const partitions: PartitionStart[] = []
  for (const end of ends) {
    // What read_committed consumers see now: the end of the last committed transaction.
    const from = Math.max(starts.get(end.partition) ?? end.stable, end.low)
    if (from < end.stable) {
      pending.set(end.partition, end.stable)
      partitions.push({ topic, partition: end.partition, offset: from })
    }
  }
  if (partitions.length === 0) return
  const readTimeoutMs = options.readTimeoutMs ?? 120000
  const consumer = options.sourceConsumer(cluster, {
    clientId: 'ferry-audit',
    groupId: `ferry.audit.${topic}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}`,
    logger: options.logger,
    maxWaitMs: 100,
    // Transaction markers end a transactional topic: only batch ends show they were reached.
    onBatchEnd: (_topic, partition, lastOffset) => {
      const end = pending.get(partition)
      if (end !== undefined && lastOffset + 1 >= end) pending.delete(partition)
      if (pending.size === 0) finish()
    },
  })
  let finish: () => void = () => undefined
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`audit: reading ${topic} on cluster "${cluster.name}" took longer than ${readTimeoutMs} ms`)), readTimeoutMs)
      finish = () => {
        clearTimeout(timer)
        resolve()
      }
      consumer
        .start(partitions, async (batch) => {
          const end = pending.get(batch.partition) ?? Number.MAX_SAFE_INTEGER
          for (const record of batch.records) {
            if (record.offset >= end) break
            const ts = Number(record.timestamp)
            if (ts >= options.fromMs && ts < options.toMs) onRecord(batch.partition, record)
          }
        })
        .catch(reject)
    })
  } finally {
    await consumer.stop()
  }
}

/** Counts record identities per time bucket. */
async function countSide(cluster: ClusterSpec, admin: KafkaAdmin, topic: string, options: AuditOptions, bucketMs: number): Promise<Counts> {
  const counts: Counts = new Map()
  await scanWindow(cluster, admin, topic, options, (partition, record) => {
    const bucket = Math.floor(Number(record.timestamp) / bucketMs) * bucketMs
    const ids = counts.get(bucket) ?? new Map<string, number>()
    const id = recordIdentity(partition, record)
    ids.set(id, (ids.get(id) ?? 0) + 1)
    counts.set(bucket, ids)
  })
  return counts
}

/** Identities of the records a group dead-lettered, per source topic (from their ferry.* headers). */
async function deadLettered(options: AuditOptions): Promise<Map<string, Map<string, number>>> {
  const byTopic = new Map<string, Map<string, number>>()
  const topic = deadLetterTopicName(options.group)
  if (!(await options.target.admin.partitionCounts([topic])).has(topic)) return byTopic
  await scanWindow(options.target.cluster, options.target.admin, topic, options, (_partition, record) => {
    const source = headerText(record.headers, 'ferry.source.topic') ?? ''
    const id = headerText(record.headers, 'ferry.source.id') ?? ''
    if (source === '' || id === '') return
    const ids = byTopic.get(source) ?? new Map<string, number>()
    ids.set(id, (ids.get(id) ?? 0) + 1)
    byTopic.set(source, ids)
  })
  return byTopic
}

export async function auditGroup(options: AuditOptions): Promise<AuditReport> {
  const bucketMs = options.bucketMs ?? 60000
  const report: AuditReport = { group: options.group.name, fromMs: options.fromMs, toMs: options.toMs, bucketMs, source: 0, target: 0, missing: 0, duplicates: 0, deadLettered: 0, topics: [] }
  const dead = await deadLettered(options)
  for (const topic of [...options.topics].sort()) {
    const targetTopic = targetTopicName(options.group, topic)
    const [source, target] = await Promise.all([
      countSide(options.source.cluster, options.source.admin, topic, options, bucketMs),
      (await options.target.admin.partitionCounts([targetTopic])).has(targetTopic)
        ? countSide(options.target.cluster, options.target.admin, targetTopic, options, bucketMs)
        : Promise.resolve<Counts>(new Map()),
    ])
    const row: AuditTopic = { topic, targetTopic, source: 0, target: 0, missing: 0, duplicates: 0, deadLettered: 0, buckets: [] }
    const deadIds = dead.get(topic) ?? new Map<string, number>()
    for (const start of [...new Set([...source.keys(), ...target.keys()])].sort((a, b) => a - b)) {
      const s = source.get(start) ?? new Map<string, number>()
      const t = target.get(start) ?? new Map<string, number>()
      const bucket: AuditBucket = { start, source: 0, target: 0, missing: 0, duplicates: 0, deadLettered: 0 }
      for (const [id, n] of s) {
        bucket.source += n
        const absent = Math.max(0, n - (t.get(id) ?? 0))
        const lettered = Math.min(absent, deadIds.get(id) ?? 0)
        bucket.deadLettered += lettered
        bucket.missing += absent - lettered
      }
      for (const [id, n] of t) {
        bucket.target += n
        bucket.duplicates += Math.max(0, n - (s.get(id) ?? 0))
      }
      row.buckets.push(bucket)
      row.source += bucket.source
      row.target += bucket.target
      row.missing += bucket.missing
      row.duplicates += bucket.duplicates
      row.deadLettered += bucket.deadLettered
    }
    report.topics.push(row)
    report.source += row.source
    report.target += row.target
    report.missing += row.missing
    report.duplicates += row.duplicates
    report.deadLettered += row.deadLettered
  }
  return report
}
