/**
 * Mirrors one fetched batch of a source partition: builds the target records (key, value, the
 * ordered headers with their null values, timestamp and, by default, the partition number), waits
 * for the rate limit, writes them through the group's delivery and records the progress.
 *
 * When the target cannot take a record for what it holds (refused by the broker, or not
 * encodable), the range is split in halves until that record is alone, so every record around
 * it is written and checkpointed; the group's policy then applies to it: `stop` stops the
 * partition at its offset (a group error names topic, partition and offset), `dead-letter`
 * writes it to the dead-letter topic and goes on. Any other failure stops the batch where it is
 * (PartialBatchError: the partition is retried from there).
 *
 * @example
 *   const mirrorBatch = createBatchMirror({ group, targetCluster, delivery, deadLetters, book, metrics, log, onRecovered })
 *   await consumer.start(starts, mirrorBatch)
 */
import { targetTopicName, type TopicGroupSpec } from '../common/config.js'
import { FerryError } from '../common/errors.js'
import { PartialBatchError, type Placement, type SourceBatch, type SourceRecord } from '../common/kafka/port.js'
import type { Logger } from '../common/logger.js'
import type { DeadLetters } from './dead-letter.js'
import type { Delivery } from './delivery.js'
import type { MirrorMetrics } from './mirror-metrics.js'
import type { OffsetSyncWriter } from './offset-syncs.js'
import type { PartitionBook } from './partition-book.js'
import type { Provenance } from './provenance.js'
import type { RateLimiter } from './rate-limiter.js'
import { acknowledgedCount, type TargetRecord } from './target-producer.js'

export interface BatchMirrorDeps {
  group: TopicGroupSpec
  targetCluster: string
  delivery: Delivery
  deadLetters: DeadLetters
  book: PartitionBook
  limiter?: RateLimiter | undefined
  metrics: MirrorMetrics
  log: Logger
  /** Active-active (`provenance: true`): stamps records and leaves out those that came from the target. */
  provenance?: Provenance | undefined
  /** The partition mirrors again after a failure (its error was cleared). */
  onRecovered: (topic: string, partition: number) => void
  /** Where mirrored records landed, for consumer offset translation (worker/offset-syncs.ts). */
  syncs?: OffsetSyncWriter | undefined
}

export function createBatchMirror(deps: BatchMirrorDeps): (batch: SourceBatch) => Promise<void> {
  const { group, delivery, book } = deps

  /**
   * Records [from, to) of the batch are on the target and the partition continues at `next` (past
   * a dead-lettered record, `from === to`); `placed`: where they went (undefined: not known).
   */
  const progress = (batch: SourceBatch, from: number, to: number, next: number, targetEnd: number | undefined, placed: readonly Placement[] | void | undefined): void => {
    const records = batch.records.slice(from, to)
    if (deps.syncs !== undefined && group.preservePartition) {
      const targetTopic = targetTopicName(group, batch.topic)
      // Exactly-once writes carry the checkpoint too: only the data's placement counts.
      const ours = placed?.filter((p) => p.topic === targetTopic && p.partition === batch.partition)
      deps.syncs.note(batch.topic, batch.partition, records.map((r) => r.offset), next, from === to ? [] : ours)
    }
    const { status, recovered } = book.progress(batch.topic, batch.partition, { records, next, ackedAt: Date.now(), targetEnd })
    delivery.acknowledged({ topic: batch.topic, partition: batch.partition, offset: next, mirrored: status.recordsMirrored })
    if (recovered) deps.onRecovered(batch.topic, batch.partition)
  }

  /** The checkpoint a write of `count` records of the partition carries: where it continues, with its count then. */
  const checkpointAfter = (batch: SourceBatch, next: number, count: number): { topic: string; partition: number; offset: number; mirrored: number } => ({
    topic: batch.topic,
    partition: batch.partition,
    offset: next,
    mirrored: book.of(batch.topic, batch.partition).recordsMirrored + count,
  })

  const acknowledgedEnd = (batch: SourceBatch): number | undefined => (group.preservePartition ? delivery.acknowledgedEnd(batch.topic, batch.partition, targetTopicName(group, batch.topic)) : undefined)

  const deliver = async (batch: SourceBatch, records: readonly TargetRecord[], from: number, to: number): Promise<void> => {
    if (from >= to) return
    const next = (batch.records[to - 1] as SourceRecord).offset + 1
    try {
      const placed = await delivery.write(batch.topic, batch.partition, records.slice(from, to), checkpointAfter(batch, next, to - from))
      progress(batch, from, to, next, acknowledgedEnd(batch), placed)
      return
    } catch (error) {
      const acknowledged = Math.min(acknowledgedCount(error), to - from - 1)
      if (acknowledged > 0) {
        progress(batch, from, from + acknowledged, (batch.records[from + acknowledged] as SourceRecord).offset, acknowledgedEnd(batch), undefined)
        from += acknowledged
      }
      if (!(error instanceof FerryError) || error.code !== 'TARGET_REJECTED') throw new PartialBatchError((batch.records[from] as SourceRecord).offset, error)
      if (to - from > 1) {
        const middle = from + Math.ceil((to - from) / 2)
        await deliver(batch, records, from, middle)
        await deliver(batch, records, middle, to)
        return
      }
      await refused(batch, from, error)
    }
  }

  /** The group's policy for one record the target cannot take (see the file comment). */
  const refused = async (batch: SourceBatch, index: number, error: FerryError): Promise<void> => {
    const source = batch.records[index] as SourceRecord
    const kafkaError = String(error.context.kafkaError ?? 'REJECTED')
    if (group.onRejectedRecord !== 'dead-letter') {
      const reason = `record at offset ${source.offset} of ${batch.topic}[${batch.partition}] (${(source.value?.length ?? 0) + (source.key?.length ?? 0)} bytes) cannot be written to target cluster "${deps.targetCluster}": ${kafkaError === 'UNENCODABLE' ? error.message : kafkaError}`
      throw new PartialBatchError(source.offset, new FerryError('TARGET_REJECTED', reason, { cause: error, context: { group: group.name, topic: batch.topic, partition: batch.partition, offset: source.offset, kafkaError } }))
    }
    try {
      const letter = await deps.deadLetters.letter(batch.topic, batch.partition, source, kafkaError)
      await delivery.write(batch.topic, batch.partition, [letter], checkpointAfter(batch, source.offset + 1, 0))
    } catch (dlqError) {
      // What was written before stays written; the partition waits at this record.
      throw new PartialBatchError(source.offset, dlqError)
    }
    deps.metrics.deadLettered.inc({ group: group.name })
    book.of(batch.topic, batch.partition).deadLettered += 1
    deps.log.warn({ event: 'worker.record_dead_lettered', topic: batch.topic, partition: batch.partition, offset: source.offset, reason: kafkaError }, 'record dead-lettered')
    progress(batch, index, index, source.offset + 1, undefined, [])
  }

  /**
   * Provenance left out the last records of `fetched` (they came from the target): the partition
   * continues past them. Exactly-once commits that checkpoint in a transaction of its own.
   */
  const stepPast = async (fetched: SourceBatch, kept: SourceBatch): Promise<void> => {
    const keptEnd = kept.records[kept.records.length - 1]?.offset ?? -1
    const trailing = fetched.records.filter((r) => r.offset > keptEnd)
    const first = trailing[0]
    const last = trailing[trailing.length - 1]
    if (first === undefined || last === undefined) return
    try {
      await delivery.write(fetched.topic, fetched.partition, [], checkpointAfter(fetched, last.offset + 1, 0))
    } catch (error) {
      throw new PartialBatchError(first.offset, error)
    }
    progress(fetched, 0, 0, last.offset + 1, undefined, [])
  }

  return async (fetched) => {
    // Provenance groups (worker/provenance.ts) write only records that did not come from the target, stamped.
    const batch = deps.provenance === undefined ? fetched : await deps.provenance.admit(fetched)
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
    deps.metrics.fetched?.(group.name, fetched, batch === fetched ? bytes : fetched.records.reduce((sum, r) => sum + (r.key?.length ?? 0) + (r.value?.length ?? 0), 0))
    if (deps.limiter) await deps.limiter.take(bytes)
    await deliver(batch, records, 0, records.length)
    if (batch !== fetched) await stepPast(fetched, batch)
  }
}
