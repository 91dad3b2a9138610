/**
 * A mirror task's source consumers ("slices") and the partitions each reads. An assignment
 * change releases what left on the consumer that reads it (stopping a consumer left with
 * nothing) and starts what came on a new slice, so the partitions that stay keep flowing.
 *
 * `prepareSlice` does what a new slice needs before its consumer runs: target topics, fencing
 * (exactly-once), checkpoints and where each partition starts.
 *
 * @example
 *   const { starts } = await prepareSlice(deps, partitions, signal)
 *   const slices = createSlices()
 *   slices.add(consumer, starts)
 *   await slices.release([{ topic: 'orders', partition: 3 }])
 *   slices.of('orders/4')?.resumeAt('orders', 4, 120)
 */
import type { TopicGroupSpec } from '../common/config.js'
import type { FerryError } from '../common/errors.js'
import type { KafkaAdmin, SourceConsumer } from '../common/kafka/port.js'
import type { Logger } from '../common/logger.js'
import type { AssignedPartition } from '../common/store.js'
import { partitionKey } from '../common/worker-report.js'
import type { CheckpointStore } from './checkpoint-store.js'
import type { Delivery } from './delivery.js'
import { missingPartitionError, readStarts, type ReadStartsDeps, type Start } from './start-offsets.js'
import { ensureTargetTopics } from './target-topics.js'
import type { TargetProducer } from './target-producer.js'

/**
 * Consumers a task may run at once before a change restarts it on one: each slice costs a group
 * session and its own fetch requests, and a restart costs every partition a few seconds.
 */
export const MAX_SLICES = 4

type Partition = { topic: string; partition: number }

export interface Slices {
  readonly size: number
  add(consumer: SourceConsumer, partitions: readonly Partition[]): void
  /** The consumer reading partition `key` (`partitionKey`), if any. */
  of(key: string): SourceConsumer | undefined
  /** Stops reading these partitions; resolves once their batches in flight have landed. */
  release(partitions: readonly Partition[]): Promise<void>
  /** Stops every consumer (batches in flight land first) and forgets them. */
  stopAll(): Promise<void>
}

export function createSlices(): Slices {
  let slices: Array<{ consumer: SourceConsumer; keys: Set<string> }> = []
  return {
    get size() {
      return slices.length
    },
    add(consumer, partitions) {
      slices.push({ consumer, keys: new Set(partitions.map((p) => partitionKey(p))) })
    },
    of: (key) => slices.find((s) => s.keys.has(key))?.consumer,
    async release(partitions) {
      await Promise.all(
        slices.map(async (slice) => {
          const leaving = partitions.filter((p) => slice.keys.has(partitionKey(p)))
          if (leaving.length === 0) return
          for (const p of leaving) slice.keys.delete(partitionKey(p))
          if (slice.keys.size === 0) await slice.consumer.stop()
          else await slice.consumer.release(leaving)
        }),
      )
      slices = slices.filter((s) => s.keys.size > 0)
    },
    async stopAll() {
      const current = slices
      slices = []
      await Promise.all(current.map((s) => s.consumer.stop()))
    },
  }
}

export interface SliceDeps extends Pick<ReadStartsDeps, 'baseline' | 'onAnomaly'> {
  group: TopicGroupSpec
  sourceCluster: string
  sourceAdmin: KafkaAdmin
  targetAdmin: KafkaAdmin
  producer: TargetProducer
  checkpoints: CheckpointStore
  delivery: Delivery
  log: Logger
  /** A topic of `partitions` cannot be mirrored now (its target topic, or a partition missing at the source). */
  onTopicFailed: (topic: string, error: FerryError) => void
}

/**
 * Prepares `partitions` for a new slice: target topics, the delivery opened (exactly-once fences
 * each partition's previous owner) before the checkpoints are read, then each partition's start.
 * Partitions of topics that failed are left out.
 */
export async function prepareSlice(deps: SliceDeps, partitions: readonly AssignedPartition[], signal: AbortSignal): Promise<Start[]> {
  const { group, log } = deps
  await deps.checkpoints.ensureTopic()
  const topics = await ensureTargetTopics({ group, sourceCluster: deps.sourceCluster, sourceAdmin: deps.sourceAdmin, targetAdmin: deps.targetAdmin, log }, [...new Set(partitions.map((p) => p.topic))].sort())
  for (const [topic, error] of topics.failed) deps.onTopicFailed(topic, error)
  const usable = partitions.filter((p) => topics.usable.has(p.topic))
  await deps.delivery.open(usable)
  const saved = await deps.checkpoints.read(group.name, signal)
  const read = await readStarts({ group, sourceAdmin: deps.sourceAdmin, checkpoints: saved, baseline: deps.baseline, log, onAnomaly: deps.onAnomaly }, usable)
  for (const m of read.missing) deps.onTopicFailed(m.topic, missingPartitionError(m.topic, m.partition, deps.sourceCluster))
  // Record the start of partitions never mirrored, so a move before the first record cannot skip to a later "latest".
  if (read.fresh.length > 0) await deps.checkpoints.write(deps.producer, group.name, read.fresh)
  return read.starts
}
