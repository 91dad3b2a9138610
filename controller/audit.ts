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

/** One partition to read: offsets [from, to). */
export interface ReadRange {
  partition: number
  from: number
  to: number
}

/** How to read one side (what {@link readRanges} needs of the audit's options). */
export interface ReadSide {
  sourceConsumer: KafkaReadClients['sourceConsumer']
  logger: Logger
  /** Longest reading one topic may take; default 120000 ms. */
  readTimeoutMs?: number
}

/**
 * Calls `onRecord` for every record of the given ranges of `topic` (read_committed), and returns
 * when every range was read to its end. Shared by the on-demand audit (ranges found by time) and
 * the continuous audit (controller/continuous-audit.ts: ranges from where its previous run ended).
 */
export async function readRanges(cluster: ClusterSpec, topic: string, ranges: readonly ReadRange[], side: ReadSide, onRecord: (partition: number, record: SourceRecord) => void): Promise<void> {
  const pending = new Map<number, number>()
  const partitions: PartitionStart[] = []
  for (const range of ranges) {
    if (range.from < range.to) {
      pending.set(range.partition, range.to)
      partitions.push({ topic, partition: range.partition, offset: range.from })
    }
  }
  if (partitions.length === 0) return
  const readTimeoutMs = side.readTimeoutMs ?? 120000
  const consumer = side.sourceConsumer(cluster, {
    clientId: 'ferry-audit',
    groupId: `ferry.audit.${topic}.${Date.now().toString(36)}.${Math.random().toString(36).slice(2, 8)}`,
    logger: side.logger,
    maxWaitMs: 100,
    // Transaction markers end a transactional topic: only batch ends show they were reached.
    onBatchEnd: (_topic, partition, lastOffset) => {
      const end = pending.get(partition)
      if (end !== undefined && lastOffset + 1 >= end) pending.delete(partition)
      if (pending.size === 0) finish()
    },
  })
  const ends = new Map(pending)
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
          const end = ends.get(batch.partition) ?? Number.MAX_SAFE_INTEGER
          for (const record of batch.records) {
            if (record.offset >= end) break
            onRecord(batch.partition, record)
          }
        })
        .catch(reject)
    })
  } finally {
    await consumer.stop()
  }
}

/** Calls `onRecord` for every record of [offset by fromMs, last stable offset now) in each partition whose timestamp is in [fromMs, toMs). */
async function scanWindow(cluster: ClusterSpec, admin: KafkaAdmin, topic: string, options: AuditOptions, onRecord: (partition: number, record: SourceRecord) => void): Promise<void> {
  const [starts, ends] = await Promise.all([admin.offsetsForTime(topic, options.fromMs), admin.stableOffsets(topic)])
  // What read_committed consumers see now: the end of the last committed transaction.
  const ranges = ends.map((end) => ({ partition: end.partition, from: Math.max(starts.get(end.partition) ?? end.stable, end.low), to: end.stable }))
  await readRanges(cluster, topic, ranges, options, (partition, record) => {
    const ts = Number(record.timestamp)
    if (ts >= options.fromMs && ts < options.toMs) onRecord(partition, record)
  })
}

/** The start of the bucket of `bucketMs` holding a record's timestamp. */
export function bucketStart(timestamp: string | number, bucketMs: number): number {
  return Math.floor(Number(timestamp) / bucketMs) * bucketMs
}

/** The source topic, identity and source timestamp a dead-letter record carries (ferry.* headers), or null when it lacks them. */
export function deadLetterIdentity(record: Pick<SourceRecord, 'headers' | 'timestamp'>): { topic: string; id: string; timestamp: string } | null {
  const topic = headerText(record.headers, 'ferry.source.topic') ?? ''
  const id = headerText(record.headers, 'ferry.source.id') ?? ''
  if (topic === '' || id === '') return null
  return { topic, id, timestamp: headerText(record.headers, 'ferry.source.timestamp') ?? record.timestamp }
}

/**
 * How one identity's copies compare: `source` at the source, `target` at the target, `dead` in
 * the dead-letter topic. Copies absent at the target are dead-lettered as far as the dead letters
 * go, missing beyond; copies at the target beyond the source's are duplicates.
 */
export function compareCopies(source: number, target: number, dead: number): { missing: number; duplicates: number; deadLettered: number } {
  const absent = Math.max(0, source - target)
  const deadLettered = Math.min(absent, dead)
  return { missing: absent - deadLettered, duplicates: Math.max(0, target - source), deadLettered }
}

/** Counts record identities per time bucket. */
async function countSide(cluster: ClusterSpec, admin: KafkaAdmin, topic: string, options: AuditOptions, bucketMs: number): Promise<Counts> {
  const counts: Counts = new Map()
  await scanWindow(cluster, admin, topic, options, (partition, record) => {
    const bucket = bucketStart(record.timestamp, bucketMs)
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
    const dead = deadLetterIdentity(record)
    if (dead === null) return
    const ids = byTopic.get(dead.topic) ?? new Map<string, number>()
    ids.set(dead.id, (ids.get(dead.id) ?? 0) + 1)
    byTopic.set(dead.topic, ids)
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
      for (const id of new Set([...s.keys(), ...t.keys()])) {
        const copies = compareCopies(s.get(id) ?? 0, t.get(id) ?? 0, deadIds.get(id) ?? 0)
        bucket.source += s.get(id) ?? 0
        bucket.target += t.get(id) ?? 0
        bucket.missing += copies.missing
        bucket.duplicates += copies.duplicates
        bucket.deadLettered += copies.deadLettered
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
