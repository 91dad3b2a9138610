/**
 * Where a partition starts mirroring, as a pure rule over what the task read: the partition's
 * checkpoint (if any), its source offsets, the group's start position and whether it existed
 * when the group began (the controller's baseline). `readStarts` gathers those inputs.
 *
 * @example
 *   resolveStart({ checkpoint: { offset: 500 }, range: { low: 0, stable: 20, high: 20 }, startPosition: 'latest', inBaseline: true })
 *   // { offset: 0, rule: 'checkpoint_ahead' }
 */
import type { TopicGroupSpec } from '../common/config.js'
import { FerryError } from '../common/errors.js'
import type { KafkaAdmin, PartitionOffsets } from '../common/kafka/admin.js'
import type { PartitionStart } from '../common/kafka/source-consumer.js'
import type { Logger } from '../common/logger.js'
import type { AssignedPartition } from '../common/store.js'
import { partitionKey } from '../common/worker-report.js'
import type { Checkpoint } from './checkpoint-store.js'

/**
 * `checkpoint`: resume there. `fresh`: no checkpoint, the group's start position applies.
 * `retention_gap`: records were deleted at the source before they were mirrored, so resume at the
 * log start. `checkpoint_ahead`: the source partition is shorter than what was mirrored (the
 * topic was deleted and recreated, or truncated): its records are new, copy them all.
 */
export type StartRule = 'checkpoint' | 'fresh' | 'retention_gap' | 'checkpoint_ahead'

export interface StartInput {
  checkpoint?: { offset: number } | undefined
  range: Pick<PartitionOffsets, 'low' | 'stable' | 'high'>
  startPosition: TopicGroupSpec['startPosition']
  /** The partition existed when the group began (see `inBaseline`). */
  inBaseline: boolean
}

export function resolveStart(input: StartInput): { offset: number; rule: StartRule } {
  const { checkpoint, range } = input
  if (checkpoint === undefined) {
    // Not past the last stable offset: records of a transaction open now may still commit.
    return { offset: input.startPosition === 'latest' && input.inBaseline ? range.stable : range.low, rule: 'fresh' }
  }
  if (checkpoint.offset < range.low) return { offset: range.low, rule: 'retention_gap' }
  if (checkpoint.offset > range.high) return { offset: range.low, rule: 'checkpoint_ahead' }
  return { offset: checkpoint.offset, rule: 'checkpoint' }
}

/**
 * Whether a partition counts as existing when the group began: "latest" applies to those; a
 * partition or topic that appeared later is new data, mirrored from its first offset. An
 * unknown baseline (null) counts every partition in.
 */
export function inBaseline(baseline: Readonly<Record<string, number>> | null, topic: string, partition: number): boolean {
  return baseline === null || partition < (Object.hasOwn(baseline, topic) ? (baseline[topic] ?? 0) : 0)
}

export type Start = PartitionStart & { mirrored?: number }

export interface StartsRead {
  starts: Start[]
  /** Starts of partitions never mirrored (no checkpoint): to be checkpointed at once. */
  fresh: PartitionStart[]
  /** Assigned partitions the source does not have. */
  missing: Array<{ topic: string; partition: number }>
}

export interface ReadStartsDeps {
  group: TopicGroupSpec
  sourceAdmin: KafkaAdmin
  checkpoints: ReadonlyMap<string, Checkpoint>
  /** Read only when a partition has no checkpoint (see worker/mirror-task.ts). */
  baseline: () => Promise<Record<string, number> | null>
  log: Logger
  /** A start rule that means an operator should look (retention_gap, checkpoint_ahead). */
  onAnomaly: (code: 'RETENTION_GAP' | 'CHECKPOINT_AHEAD') => void
}

/** The start of each partition, from the source's offsets and the checkpoints read. */
export async function readStarts(deps: ReadStartsDeps, partitions: readonly AssignedPartition[]): Promise<StartsRead> {
  // Read from ZooKeeper only when a partition has no checkpoint: a task restarted while
  // ZooKeeper is away (the worker keeps mirroring then) resumes from its checkpoints alone.
  let baselineRead: Promise<Record<string, number> | null> | undefined
  const read: StartsRead = { starts: [], fresh: [], missing: [] }
  const byTopic = new Map<string, AssignedPartition[]>()
  for (const p of partitions) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p])
  for (const [topic, list] of byTopic) {
    const offsets = new Map((await deps.sourceAdmin.offsets(topic)).map((o) => [o.partition, o]))
    for (const { partition } of list) {
      const range = offsets.get(partition)
      if (range === undefined) {
        read.missing.push({ topic, partition })
        continue
      }
      const checkpoint = deps.checkpoints.get(partitionKey({ topic, partition }))
      const baseline = checkpoint === undefined ? await (baselineRead ??= deps.baseline()) : null
      const { offset, rule } = resolveStart({ checkpoint, range, startPosition: deps.group.startPosition, inBaseline: inBaseline(baseline, topic, partition) })
      if (rule === 'fresh') read.fresh.push({ topic, partition, offset })
      if (rule === 'retention_gap') {
        deps.log.error({ event: 'worker.retention_gap', topic, partition, checkpoint: checkpoint?.offset, logStart: range.low }, 'records were deleted by source retention before they were mirrored')
        deps.onAnomaly('RETENTION_GAP')
      }
      if (rule === 'checkpoint_ahead') {
        deps.log.error({ event: 'worker.checkpoint_ahead', topic, partition, checkpoint: checkpoint?.offset, high: range.high }, 'checkpoint is past the source end (topic recreated?); mirroring the partition from its start')
        deps.onAnomaly('CHECKPOINT_AHEAD')
      }
      read.starts.push({ topic, partition, offset, ...(checkpoint?.mirrored === undefined ? {} : { mirrored: checkpoint.mirrored }) })
    }
  }
  return read
}

/** The error of an assigned partition the source does not have. */
export function missingPartitionError(topic: string, partition: number, sourceCluster: string): FerryError {
  return new FerryError('TOPIC_NOT_FOUND', `partition ${partition} of "${topic}" does not exist on cluster "${sourceCluster}"`)
}
