/**
 * One topic group's mirroring on this worker: consumes exactly the partitions the controller
 * assigned, produces each record to the target (key, value, headers, timestamp and, by
 * default, partition kept), then checkpoints the next source offset on the target. A changed
 * partition set restarts the consumer from fresh checkpoints, so a partition that moved here
 * resumes exactly where its previous owner's acknowledged data ends.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { deadLetterTopicName, targetTopicName, type ClusterSpec, type TopicGroupSpec } from '../common/config.js'
import { FerryError, errorMessage } from '../common/errors.js'
import type { KafkaAdmin } from '../common/kafka/admin.js'
import { MIRRORED_TOPIC_CONFIGS } from '../common/kafka/admin.js'
import type { CheckpointEntry, CheckpointStore } from './checkpoint-store.js'
import { PartialBatchError, createSourceConsumer, partitionKey, type PartitionStart, type RecordHeader, type RecordHeaders, type SourceBatch, type SourceConsumer, type SourceRecord } from '../common/kafka/source-consumer.js'
import { recordIdentity } from '../common/record-identity.js'
import { emptyLatencyCounts, recordLatency } from '../common/latency.js'
import { acknowledgedCount, transactionalIdFor, type TargetProducer, type TargetRecord, type TransactionalProducer } from './target-producer.js'
import type { Logger } from '../common/logger.js'
import type { AssignedPartition } from '../common/store.js'
import { createRateLimiter, type RateLimiter } from './rate-limiter.js'
import { createIncidentLog } from './incidents.js'

export type PartitionState = 'starting' | 'mirroring' | 'retrying' | 'failed'

export interface PartitionStatus {
  group: string
  topic: string
  partition: number
  targetTopic: string
  state: PartitionState
  /** Next source offset to mirror. */
  position?: number
  recordsMirrored: number
  /** Records the target refused that went to the dead-letter topic. */
  deadLettered: number
  /** End-to-end latency counts per bucket (see common/latency.ts), and the largest seen. */
  latencyCounts: number[]
  latencyMaxMs: number
  /** Smoothed rates over recent status calls. */
  bytesPerSec: number
  recordsPerSec: number
  error?: { code: string; message: string }
  /**
   * Target offset after the last record of this partition the target acknowledged (when
   * partitions are kept): the controller checks the target's log still reaches it.
   */
  targetEnd?: number
}

export type TaskState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed'

export interface MirrorTaskDeps {
  deployment: string
  worker: string
  group: TopicGroupSpec
  source: ClusterSpec
  target: ClusterSpec
  sourceAdmin: KafkaAdmin
  targetAdmin: KafkaAdmin
  producer: TargetProducer
  checkpoints: CheckpointStore
  logger: Logger
  metrics: MirrorMetrics
  /**
   * Partition counts per topic when the group was first discovered (the controller's baseline);
   * null when unknown. Partitions outside it start from their first offset.
   */
  baseline: () => Promise<Record<string, number> | null>
  /** Opens a transactional producer on the target (exactly-once groups). */
  createTransactional?: (transactionalId: string) => Promise<TransactionalProducer>
  /**
   * At-least-once: how often acknowledged positions are written to the checkpoint topic; default
   * 1000 ms. A crash replays at most about this much; a stop or hand-off writes them at once.
   */
  checkpointIntervalMs?: number
  /** Opens the source consumer; default createSourceConsumer (unit tests pass a fake). */
  createConsumer?: typeof createSourceConsumer
  /** Retry delay bounds for a failed partition or consumer; defaults 1000 and 30000 ms. */
  minRetryMs?: number
  maxRetryMs?: number
}

export interface MirrorTask {
  readonly group: string
  state(): TaskState
  /** Make the task mirror exactly these partitions of its group. Serialised. */
  update(partitions: readonly AssignedPartition[]): Promise<void>
  status(): PartitionStatus[]
  stop(): Promise<void>
}

export interface MirrorMetrics {
  records: Counter<'group'>
  bytes: Counter<'group'>
  batches: Counter<'group'>
  errors: Counter<'group' | 'code'>
  deadLettered: Counter<'group'>
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
    latency: new Histogram({ name: 'ferry_worker_end_to_end_latency_seconds', help: 'Target acknowledgement time minus source timestamp of the newest record of each batch', labelNames: ['group'], buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300], registers: [registry] }),
    position: new Gauge({ name: 'ferry_worker_partition_position', help: 'Next source offset to mirror', labelNames: ['group', 'topic', 'partition'], registers: [registry] }),
  }
}

function sameSet(a: readonly AssignedPartition[], b: readonly AssignedPartition[]): boolean {
  const key = (p: AssignedPartition): string => partitionKey(p.topic, p.partition)
  const left = new Set(a.map(key))
  return left.size === new Set(b.map(key)).size && b.every((p) => left.has(key(p)))
}

/** How a batch's records reach the target: plain sends, or transactions that include the checkpoint. */
interface BatchWriter {
  /** True when `write` also commits the checkpoint `next` (exactly-once). */
  checkpointsItself: boolean
  write(records: readonly TargetRecord[], next: number): Promise<void>
  /** Where the partition's acknowledged records end on the target (see PartitionStatus.targetEnd). */
  acknowledgedEnd(): number | undefined
}

function headerBytes(headers: RecordHeaders): number {
  return headers.reduce((n, h) => n + h.key.length + (h.value?.length ?? 0), 0)
}

const TASK_INCIDENT = '\u0000task'

function asFerry(error: unknown): FerryError {
  return error instanceof FerryError ? error : new FerryError('INTERNAL', errorMessage(error), { cause: error })
}

export function createMirrorTask(deps: MirrorTaskDeps): MirrorTask {
  const { group, logger } = deps
  const log = logger.child({ group: group.name })
  const minRetryMs = deps.minRetryMs ?? 1000
  const maxRetryMs = deps.maxRetryMs ?? 30000
  const limiter: RateLimiter | undefined = group.maxBytesPerSec === undefined ? undefined : createRateLimiter(group.maxBytesPerSec)
  let state: TaskState = 'starting'
  let assigned: AssignedPartition[] = []
  /** The newest set passed to update(); `assigned` catches up with it on the chain. */
  let requested: AssignedPartition[] = []
  let consumer: SourceConsumer | undefined
  let chain: Promise<void> = Promise.resolve()
  let incarnation = 0
  let restartTimer: NodeJS.Timeout | undefined
  let restartAttempt = 0
  /** Cancels the start under way (its checkpoint read can wait for open transactions). */
  let starting: AbortController | undefined
  const statuses = new Map<string, PartitionStatus>()
  const retryTimers = new Map<string, NodeJS.Timeout>()
  const retryAttempts = new Map<string, number>()
  let deadLetterReady = false
  /** Exactly-once groups: one transactional producer per source partition. */
  const txProducers = new Map<string, TransactionalProducer>()
  const bytesMirrored = new Map<string, number>()
  /** Acknowledged positions not yet checkpointed, keyed `topic/partition`. */
  const unwritten = new Map<string, CheckpointEntry>()
  let checkpointing: Promise<void> = Promise.resolve()
  let checkpointTimer: NodeJS.Timeout | undefined
  const rateSamples = new Map<string, { at: number; bytes: number; records: number }>()
  /** Failures logged once per incident (per partition, and the task's restarts). */
  const incidents = createIncidentLog({ logger: log })

  /** Exponentially smoothed bytes/s and records/s per partition, updated on each status call. */
  const updateRates = (): void => {
    const now = Date.now()
    for (const [key, status] of statuses) {
      const bytes = bytesMirrored.get(key) ?? 0
      const sample = rateSamples.get(key)
      rateSamples.set(key, { at: now, bytes, records: status.recordsMirrored })
      if (sample === undefined || now - sample.at < 100) continue
      const seconds = (now - sample.at) / 1000
      const alpha = 0.3
      status.bytesPerSec = alpha * ((bytes - sample.bytes) / seconds) + (1 - alpha) * status.bytesPerSec
      status.recordsPerSec = alpha * ((status.recordsMirrored - sample.records) / seconds) + (1 - alpha) * status.recordsPerSec
    }
  }

  const setState = (next: TaskState): void => {
    if (next === state) return
    log.info({ event: 'worker.task_state', from: state, to: next }, `task ${next}`)
    state = next
  }

  const backoffMs = (attempt: number): number => {
    const base = Math.min(maxRetryMs, minRetryMs * 2 ** Math.min(attempt, 10))
    return Math.round(base / 2 + Math.random() * (base / 2))
  }

  const statusOf = (topic: string, partition: number): PartitionStatus => {
    const key = partitionKey(topic, partition)
    let status = statuses.get(key)
    if (status === undefined) {
      status = { group: group.name, topic, partition, targetTopic: targetTopicName(group, topic), state: 'starting', recordsMirrored: 0, deadLettered: 0, latencyCounts: emptyLatencyCounts(), latencyMaxMs: 0, bytesPerSec: 0, recordsPerSec: 0 }
      statuses.set(key, status)
    }
    return status
  }

  /** Make sure each target topic exists with enough partitions; returns the usable source topics. */
  const ensureTargetTopics = async (topics: readonly string[]): Promise<Set<string>> => {
    const usable = new Set<string>()
    const sourceCounts = await deps.sourceAdmin.partitionCounts(topics)
    const targetNames = topics.map((t) => targetTopicName(group, t))
    const targetCounts = await deps.targetAdmin.partitionCounts(targetNames)
    for (const topic of topics) {
      const sourceCount = sourceCounts.get(topic)
      const targetTopic = targetTopicName(group, topic)
      if (sourceCount === undefined) {
        markTopicFailed(topic, new FerryError('TOPIC_NOT_FOUND', `source topic "${topic}" does not exist on cluster "${deps.source.name}"`))
        continue
      }
      let targetCount = targetCounts.get(targetTopic)
      if (targetCount === undefined) {
        const configs = Object.fromEntries(Object.entries(await deps.sourceAdmin.topicConfigs(topic)).filter(([name]) => MIRRORED_TOPIC_CONFIGS.has(name)))
        const created = await deps.targetAdmin.createTopic({ topic: targetTopic, partitions: sourceCount, configs })
        if (created) log.info({ event: 'worker.target_topic_created', topic: targetTopic, partitions: sourceCount, configs }, 'created target topic')
        targetCount = (await deps.targetAdmin.partitionCounts([targetTopic])).get(targetTopic) ?? sourceCount
      }
      if (group.preservePartition && targetCount < sourceCount) {
        // The source topic grew: grow the target with it, so partition numbers stay the same.
        try {
          await deps.targetAdmin.expandTopic(targetTopic, sourceCount)
          log.info({ event: 'worker.target_topic_expanded', topic: targetTopic, from: targetCount, to: sourceCount }, 'added partitions to target topic')
          targetCount = sourceCount
        } catch (error) {
          // Another worker may have expanded it first; re-read before giving up.
          targetCount = (await deps.targetAdmin.partitionCounts([targetTopic])).get(targetTopic) ?? targetCount
          if (targetCount < sourceCount) log.warn({ event: 'worker.target_expand_failed', topic: targetTopic, err: errorMessage(error) }, 'could not add partitions to target topic')
        }
      }
      if (group.preservePartition && targetCount < sourceCount) {
        markTopicFailed(
          topic,
          new FerryError('TARGET_REJECTED', `target topic "${targetTopic}" has ${targetCount} partitions but source topic "${topic}" has ${sourceCount}; partitions are kept, so the target needs at least as many (add partitions or set preservePartition false)`),
        )
        continue
      }
      usable.add(topic)
    }
    return usable
  }

  const markTopicFailed = (topic: string, error: FerryError): void => {
    for (const p of assigned.filter((a) => a.topic === topic)) {
      const status = statusOf(p.topic, p.partition)
      status.state = 'failed'
      status.error = { code: error.code, message: error.message }
    }
    deps.metrics.errors.inc({ group: group.name, code: error.code })
    log.error({ event: 'worker.topic_failed', topic, code: error.code, err: error.message }, 'cannot mirror topic')
  }

  /** Where each partition starts: its checkpoint, else the group's start position; recorded at once. */
  const startOffsets = async (partitions: readonly AssignedPartition[], signal: AbortSignal): Promise<Array<PartitionStart & { mirrored?: number }>> => {
    const saved = await deps.checkpoints.read(group.name, signal)
    // Read from ZooKeeper only when a partition has no checkpoint: a task restarted while
    // ZooKeeper is away (the worker keeps mirroring then) resumes from its checkpoints alone.
    let baselineRead: Promise<Record<string, number> | null> | undefined
    const readBaseline = (): Promise<Record<string, number> | null> => (baselineRead ??= deps.baseline())
    const starts: Array<PartitionStart & { mirrored?: number }> = []
    const fresh: PartitionStart[] = []
    const byTopic = new Map<string, AssignedPartition[]>()
    for (const p of partitions) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p])
    for (const [topic, list] of byTopic) {
      const offsets = new Map((await deps.sourceAdmin.offsets(topic)).map((o) => [o.partition, o]))
      for (const p of list) {
        const range = offsets.get(p.partition)
        if (range === undefined) {
          markTopicFailed(topic, new FerryError('TOPIC_NOT_FOUND', `partition ${p.partition} of "${topic}" does not exist on cluster "${deps.source.name}"`))
          continue
        }
        const checkpoint = saved.get(partitionKey(topic, p.partition))
        let offset: number
        if (checkpoint === undefined) {
          // "latest" applies to what existed when the group started; a partition or topic that
          // appeared later is new data, mirrored from its first offset.
          const baseline = await readBaseline()
          const inBaseline = baseline === null || p.partition < (Object.hasOwn(baseline, topic) ? (baseline[topic] ?? 0) : 0)
          // Not past the last stable offset: records of a transaction open now may still commit.
          offset = group.startPosition === 'latest' && inBaseline ? range.stable : range.low
          fresh.push({ topic, partition: p.partition, offset })
        } else if (checkpoint.offset < range.low) {
          log.error({ event: 'worker.retention_gap', topic, partition: p.partition, checkpoint: checkpoint.offset, logStart: range.low }, 'records were deleted by source retention before they were mirrored')
          deps.metrics.errors.inc({ group: group.name, code: 'RETENTION_GAP' })
          offset = range.low
        } else if (checkpoint.offset > range.high) {
          // The source partition is shorter than what was mirrored: the topic was deleted and
          // recreated (or truncated). Its records are new: copy them all rather than skip any.
          log.error({ event: 'worker.checkpoint_ahead', topic, partition: p.partition, checkpoint: checkpoint.offset, high: range.high }, 'checkpoint is past the source end (topic recreated?); mirroring the partition from its start')
          deps.metrics.errors.inc({ group: group.name, code: 'CHECKPOINT_AHEAD' })
          offset = range.low
        } else {
          offset = checkpoint.offset
        }
        starts.push({ topic, partition: p.partition, offset, ...(checkpoint?.mirrored === undefined ? {} : { mirrored: checkpoint.mirrored }) })
      }
    }
    // Record the start of partitions never mirrored, so a move before the first record cannot skip to a later "latest".
    if (fresh.length > 0) await deps.checkpoints.write(deps.producer, group.name, fresh)
    return starts
  }

  const mirrorBatch = async (batch: SourceBatch): Promise<void> => {
    const targetTopic = targetTopicName(group, batch.topic)
    let bytes = 0
    const records: TargetRecord[] = batch.records.map((r) => {
      bytes += (r.key?.length ?? 0) + (r.value?.length ?? 0)
      return {
        topic: targetTopic,
        ...(group.preservePartition ? { partition: batch.partition } : {}),
        key: r.key,
        value: r.value,
        headers: r.headers,
        timestamp: r.timestamp,
      }
    })
    deps.metrics.fetched?.(group.name, batch, bytes)
    if (limiter) await limiter.take(bytes)
    const transactional = txProducers.get(partitionKey(batch.topic, batch.partition))
    // Exactly-once: the data and the checkpoint that covers it commit together, or neither.
    const producer = transactional ?? deps.producer
    const write: BatchWriter = {
      checkpointsItself: transactional !== undefined,
      write: (slice, next) => {
        if (transactional === undefined) return deps.producer.send(slice)
        // The count the checkpoint carries: what is mirrored once this transaction commits.
        const mirrored = statusOf(batch.topic, batch.partition).recordsMirrored + slice.filter((r) => r.topic === targetTopic).length
        return transactional.sendAtomically([...slice, deps.checkpoints.record(group.name, { topic: batch.topic, partition: batch.partition, offset: next, mirrored })])
      },
      acknowledgedEnd: () => (group.preservePartition ? producer.acknowledgedEnd(targetTopic, batch.partition) : undefined),
    }
    await deliver(batch, records, write, 0, records.length)
  }

  /**
   * Writes records [from, to) of a batch and records the progress. When the target cannot take
   * a record for what it holds (refused by the broker, or not encodable), the range is split in
   * halves until that record is alone, so every record around it is written and checkpointed;
   * the group's policy then applies to it: `stop` stops the partition at its offset (a group
   * error names topic, partition and offset), `dead-letter` writes it to the dead-letter topic
   * (metadata and headers, no value if the value was the problem) and goes on. Any other
   * failure stops the batch where it is (PartialBatchError: the partition is retried from there).
   */
  const deliver = async (batch: SourceBatch, records: readonly TargetRecord[], writer: BatchWriter, from: number, to: number): Promise<void> => {
    if (from >= to) return
    const last = batch.records[to - 1] as SourceRecord
    try {
      await writer.write(records.slice(from, to), last.offset + 1)
      await recordProgress(batch, from, to, last.offset + 1, !writer.checkpointsItself, writer.acknowledgedEnd())
      return
    } catch (error) {
      const acknowledged = Math.min(acknowledgedCount(error), to - from - 1)
      if (acknowledged > 0) {
        await recordProgress(batch, from, from + acknowledged, (batch.records[from + acknowledged] as SourceRecord).offset, !writer.checkpointsItself, writer.acknowledgedEnd())
        from += acknowledged
      }
      if (!(error instanceof FerryError) || error.code !== 'TARGET_REJECTED') throw new PartialBatchError((batch.records[from] as SourceRecord).offset, error)
      if (to - from > 1) {
        const middle = from + Math.ceil((to - from) / 2)
        await deliver(batch, records, writer, from, middle)
        await deliver(batch, records, writer, middle, to)
        return
      }
      await refused(batch, from, error, writer)
    }
  }

  /** The group's policy for one record the target cannot take (see deliver). */
  const refused = async (batch: SourceBatch, index: number, error: FerryError, writer: BatchWriter): Promise<void> => {
    const source = batch.records[index] as SourceRecord
    const kafkaError = String(error.context.kafkaError ?? 'REJECTED')
    if (group.onRejectedRecord !== 'dead-letter') {
      const reason = `record at offset ${source.offset} of ${batch.topic}[${batch.partition}] (${(source.value?.length ?? 0) + (source.key?.length ?? 0)} bytes) cannot be written to target cluster "${deps.target.name}": ${kafkaError === 'UNENCODABLE' ? error.message : kafkaError}`
      throw new PartialBatchError(source.offset, new FerryError('TARGET_REJECTED', reason, { cause: error, context: { group: group.name, topic: batch.topic, partition: batch.partition, offset: source.offset, kafkaError } }))
    }
    try {
      const letter = await deadLetter(batch, source, kafkaError)
      if (writer.checkpointsItself) await writer.write([letter], source.offset + 1)
      else await deps.producer.send([letter])
    } catch (dlqError) {
      // What was written before stays written; the partition waits at this record.
      throw new PartialBatchError(source.offset, dlqError)
    }
    deps.metrics.deadLettered.inc({ group: group.name })
    statusOf(batch.topic, batch.partition).deadLettered += 1
    log.warn({ event: 'worker.record_dead_lettered', topic: batch.topic, partition: batch.partition, offset: source.offset, reason: kafkaError }, 'record dead-lettered')
    await recordProgress(batch, index, index, source.offset + 1, !writer.checkpointsItself)
  }

  /** The dead-letter record for a refused source record (its topic is created on first use). */
  const deadLetter = async (batch: SourceBatch, source: SourceRecord, reason: string): Promise<TargetRecord> => {
    const dlq = deadLetterTopicName(group)
    if (!deadLetterReady) {
      await deps.targetAdmin.createTopic({ topic: dlq, partitions: 1 })
      deadLetterReady = true
    }
    const tooLarge = reason === 'MESSAGE_TOO_LARGE' || reason === 'RECORD_LIST_TOO_LARGE'
    const text = (key: string, value: string): RecordHeader => ({ key, value: Buffer.from(value) })
    return {
      topic: dlq,
      key: source.key,
      value: tooLarge ? null : source.value,
      headers: [
        // Kept unless they may be what made the record too large.
        ...(tooLarge && headerBytes(source.headers) > 64 * 1024 ? [] : source.headers),
        text('ferry.source.cluster', deps.source.name),
        text('ferry.source.topic', batch.topic),
        text('ferry.source.partition', String(batch.partition)),
        text('ferry.source.offset', String(source.offset)),
        text('ferry.source.timestamp', source.timestamp),
        text('ferry.source.value-bytes', String(source.value?.length ?? 0)),
        text('ferry.source.id', recordIdentity(batch.partition, source)),
        text('ferry.error', reason),
      ],
      timestamp: source.timestamp,
    }
  }

  /**
   * Records [from, to) of the batch are on the target and the partition continues at `next`
   * (past a dead-lettered record, `from === to`).
   */
  const recordProgress = async (batch: SourceBatch, from: number, to: number, next: number, writeCheckpoint: boolean, targetEnd?: number): Promise<void> => {
    const ackedAt = Date.now()
    const status = statusOf(batch.topic, batch.partition)
    let bytes = 0
    for (let i = from; i < to; i++) {
      const record = batch.records[i] as SourceRecord
      bytes += (record.key?.length ?? 0) + (record.value?.length ?? 0)
      const latencyMs = Math.max(0, ackedAt - Number(record.timestamp))
      recordLatency(status.latencyCounts, latencyMs)
      if (latencyMs > status.latencyMaxMs) status.latencyMaxMs = latencyMs
    }
    const newest = batch.records[to - 1]
    if (to > from && newest) deps.metrics.latency.observe({ group: group.name }, Math.max(0, ackedAt - Number(newest.timestamp)) / 1000)
    const count = to - from
    status.position = next
    if (targetEnd !== undefined) status.targetEnd = targetEnd
    status.recordsMirrored += count
    // Only after the target acknowledged the data: at-least-once. Written by the next flush.
    if (writeCheckpoint) unwritten.set(partitionKey(batch.topic, batch.partition), { topic: batch.topic, partition: batch.partition, offset: next, mirrored: status.recordsMirrored })
    bytesMirrored.set(partitionKey(batch.topic, batch.partition), (bytesMirrored.get(partitionKey(batch.topic, batch.partition)) ?? 0) + bytes)
    if (status.state !== 'mirroring' || status.error !== undefined) {
      status.state = 'mirroring'
      delete status.error
      retryAttempts.delete(partitionKey(batch.topic, batch.partition))
      incidents.recovered(partitionKey(batch.topic, batch.partition), { topic: batch.topic, partition: batch.partition })
    }
    deps.metrics.records.inc({ group: group.name }, count)
    deps.metrics.bytes.inc({ group: group.name }, bytes)
    deps.metrics.batches.inc({ group: group.name })
    deps.metrics.position.set({ group: group.name, topic: batch.topic, partition: String(batch.partition) }, next)
  }

  /** Writes every acknowledged position not yet written, one flush at a time (so none goes backwards). */
  const flushCheckpoints = (): Promise<void> => {
    checkpointing = checkpointing.then(async () => {
      if (unwritten.size === 0) return
      const entries = [...unwritten.values()]
      unwritten.clear()
      try {
        await deps.checkpoints.write(deps.producer, group.name, entries)
      } catch (error) {
        // Kept for the next flush unless a newer position came in meanwhile.
        for (const e of entries) if (!unwritten.has(partitionKey(e.topic, e.partition))) unwritten.set(partitionKey(e.topic, e.partition), e)
        deps.metrics.errors.inc({ group: group.name, code: asFerry(error).code })
        log.warn({ event: 'worker.checkpoint_failed', partitions: entries.length, err: errorMessage(error) }, 'writing checkpoints failed; will retry')
      }
    })
    return checkpointing
  }

  const onPartitionError = (topic: string, partition: number, error: unknown): void => {
    const ferry = asFerry(error)
    const key = partitionKey(topic, partition)
    const status = statusOf(topic, partition)
    const attempt = (retryAttempts.get(key) ?? 0) + 1
    retryAttempts.set(key, attempt)
    // A refused record will be refused again unless an operator changes the target: the
    // partition stops there (state failed) and is re-tried only at the slowest pace.
    if (txProducers.has(key) && ferry.code !== 'TARGET_REJECTED' && ferry.code !== 'FENCED') {
      // Exactly-once: after a failed transaction neither the producer (kafkajs can stay stuck
      // mid-commit) nor our position (the commit may have landed) can be trusted. Restart the
      // task: new producers fence, and positions come again from the committed checkpoints.
      status.state = 'retrying'
      status.error = { code: ferry.code, message: ferry.message }
      deps.metrics.errors.inc({ group: group.name, code: ferry.code })
      incidents.failure(key, { event: 'worker.transaction_failed', code: ferry.code, msg: 'transaction failed; restarting the task from committed checkpoints', fields: { topic, partition, err: ferry.message } })
      scheduleRestart(ferry)
      return
    }
    if (ferry.code === 'FENCED') {
      // A newer owner holds this partition's transactional id: stop here; the assignment
      // (or a restart, which fences in turn) decides what happens next.
      status.state = 'failed'
      status.error = { code: ferry.code, message: ferry.message }
      deps.metrics.errors.inc({ group: group.name, code: ferry.code })
      incidents.failure(key, { event: 'worker.partition_fenced', code: ferry.code, msg: 'fenced by a newer owner', fields: { topic, partition } })
      scheduleRestart(ferry)
      return
    }
    const rejected = ferry.code === 'TARGET_REJECTED'
    status.state = rejected ? 'failed' : 'retrying'
    status.error = { code: ferry.code, message: ferry.message }
    deps.metrics.errors.inc({ group: group.name, code: ferry.code })
    const delayMs = rejected ? maxRetryMs : backoffMs(attempt)
    incidents.failure(key, {
      event: rejected ? 'worker.partition_stopped' : 'worker.partition_retry',
      code: ferry.code,
      level: rejected ? 'error' : 'warn',
      msg: rejected ? 'a record cannot be written to the target; the partition waits at it (onRejectedRecord: stop)' : 'mirroring a batch failed; retrying from the last checkpoint',
      fields: { topic, partition, delayMs, err: ferry.message, ...(ferry.context.offset === undefined ? {} : { offset: ferry.context.offset }) },
    })
    const myIncarnation = incarnation
    clearTimeout(retryTimers.get(key))
    const retry = (): void => {
      retryTimers.delete(key)
      if (myIncarnation !== incarnation || consumer === undefined) return
      const position = consumer.positions().get(key)
      if (position !== undefined && !consumer.resumeAt(topic, partition, position)) retryTimers.set(key, setTimeout(retry, minRetryMs))
    }
    retryTimers.set(key, setTimeout(retry, delayMs))
  }

  const stopConsumer = async (): Promise<void> => {
    incarnation++
    for (const timer of retryTimers.values()) clearTimeout(timer)
    retryTimers.clear()
    if (restartTimer) clearTimeout(restartTimer)
    restartTimer = undefined
    const current = consumer
    consumer = undefined
    await current?.stop()
    // Every batch has finished: what was acknowledged is checkpointed before anyone takes over.
    if (checkpointTimer) clearInterval(checkpointTimer)
    checkpointTimer = undefined
    await flushCheckpoints()
    const producers = [...txProducers.values()]
    txProducers.clear()
    await Promise.all(producers.map((p) => p.close()))
  }

  const startConsumer = async (): Promise<void> => {
    const myIncarnation = ++incarnation
    if (assigned.length === 0) return
    const abort = new AbortController()
    starting = abort
    try {
      await deps.checkpoints.ensureTopic()
      const usableTopics = await ensureTargetTopics([...new Set(assigned.map((p) => p.topic))].sort())
      const usable = assigned.filter((p) => usableTopics.has(p.topic))
      if (group.delivery === 'exactly-once') {
        if (deps.createTransactional === undefined) throw new FerryError('INVALID_CONFIG', 'exactly-once needs a transactional producer factory')
        // Fence first, then read checkpoints: a previous owner's open transaction is aborted
        // (and its later commits refused), so what we read is final.
        for (const p of usable) {
          const producer = await deps.createTransactional(transactionalIdFor(deps.deployment, group.name, p.topic, p.partition))
          txProducers.set(partitionKey(p.topic, p.partition), producer)
          await producer.fence()
        }
      }
      const starts = await startOffsets(usable, abort.signal)
      if (myIncarnation !== incarnation) return
      for (const s of starts) {
        const status = statusOf(s.topic, s.partition)
        status.position = s.offset
        // The partition's count so far, whoever mirrored it (a move keeps it).
        status.recordsMirrored = Math.max(status.recordsMirrored, s.mirrored ?? 0)
        // The start reached both clusters: errors of an earlier incarnation are over.
        if (status.state !== 'failed') {
          status.state = 'mirroring'
          delete status.error
        }
      }
      if (starts.length === 0) return
      const created = (deps.createConsumer ?? createSourceConsumer)(deps.source, {
        clientId: `ferry-${deps.worker}`,
        groupId: `ferry.${deps.deployment}.${deps.worker}.${group.name}.${Date.now().toString(36)}`,
        logger: log,
        onPartitionError,
        onCrash: (error) => scheduleRestart(error),
      })
      consumer = created
      if (checkpointTimer) clearInterval(checkpointTimer)
      checkpointTimer = setInterval(() => void flushCheckpoints(), deps.checkpointIntervalMs ?? 1000)
      await created.start(starts, mirrorBatch)
      restartAttempt = 0
      incidents.recovered(TASK_INCIDENT)
      setState('running')
      log.info({ event: 'worker.task_started', partitions: starts.length }, 'mirroring')
    } catch (error) {
      // Cancelled by stop() or a new assignment, which take over from here.
      if (!abort.signal.aborted) scheduleRestart(error)
    } finally {
      if (starting === abort) starting = undefined
    }
  }

  const scheduleRestart = (error: unknown): void => {
    // One restart per incident: further failures before it runs would only stretch its backoff.
    if (state === 'stopping' || state === 'stopped' || restartTimer !== undefined) return
    const ferry = asFerry(error)
    restartAttempt++
    const delayMs = backoffMs(restartAttempt)
    for (const p of assigned) {
      const status = statusOf(p.topic, p.partition)
      if (status.state === 'failed') continue
      status.state = 'retrying'
      status.error = { code: ferry.code, message: ferry.message }
    }
    deps.metrics.errors.inc({ group: group.name, code: ferry.code })
    incidents.failure(TASK_INCIDENT, { event: 'worker.task_restart', code: ferry.code, level: 'error', msg: 'task failed; restarting', fields: { attempt: restartAttempt, delayMs, err: ferry.message } })
    setState('starting')
    if (restartTimer) clearTimeout(restartTimer)
    restartTimer = setTimeout(() => {
      restartTimer = undefined
      chain = chain.then(async () => {
        if (state === 'stopping' || state === 'stopped') return
        await stopConsumer()
        await startConsumer()
      })
    }, delayMs)
  }

  const task: MirrorTask = {
    group: group.name,
    state: () => state,
    update(partitions) {
      const next = [...partitions]
      // A start still reading checkpoints for another set (it may wait on an open transaction,
      // perhaps of a partition this assignment brings here to fence) gives way at once. The
      // same set again (a repeated read of one assignment) leaves it alone: compare with the
      // newest set asked for, not the one applied, or every repeat would cancel its own start.
      if (!sameSet(requested, next)) starting?.abort()
      requested = next
      chain = chain.then(async () => {
        if (state === 'stopping' || state === 'stopped') return
        if (sameSet(assigned, next) && consumer !== undefined) return
        await stopConsumer()
        const keep = new Set(next.map((p) => partitionKey(p.topic, p.partition)))
        for (const key of [...statuses.keys()]) {
          if (keep.has(key)) continue
          const status = statuses.get(key)
          statuses.delete(key)
          bytesMirrored.delete(key)
          rateSamples.delete(key)
          if (status) deps.metrics.position.remove({ group: group.name, topic: status.topic, partition: String(status.partition) })
        }
        for (const status of statuses.values()) if (status.state === 'failed') { status.state = 'starting'; delete status.error }
        assigned = next
        log.info({ event: 'worker.assignment_applied', partitions: next.length }, 'assignment changed')
        await startConsumer()
      })
      return chain
    },
    status: () => {
      updateRates()
      return [...statuses.values()].map((s) => ({ ...s, latencyCounts: [...s.latencyCounts], bytesPerSec: Math.round(s.bytesPerSec), recordsPerSec: Math.round(s.recordsPerSec) }))
    },
    async stop() {
      if (state === 'stopped') return
      setState('stopping')
      starting?.abort()
      const done = chain.then(async () => {
        await stopConsumer()
        for (const status of statuses.values()) deps.metrics.position.remove({ group: group.name, topic: status.topic, partition: String(status.partition) })
        statuses.clear()
        setState('stopped')
      })
      chain = done
      await done
    },
  }
  return task
}
