/**
 * What a mirror task (worker/mirror-task.ts) needs and what it offers: its dependencies, its
 * interface and its states. The worker builds one per topic group it serves.
 *
 * @example
 *   const task: MirrorTask = createMirrorTask(deps)   // deps: MirrorTaskDeps
 *   await task.update(partitions)
 */
import type { ClusterSpec, TopicGroupSpec } from '../common/config.js'
import type { KafkaAdmin } from '../common/kafka/admin.js'
import type { KafkaClientFactory } from '../common/kafka/port.js'
import type { Logger } from '../common/logger.js'
import type { AssignedPartition } from '../common/store.js'
import type { CheckpointStore } from './checkpoint-store.js'
import type { MirrorMetrics } from './mirror-metrics.js'
import type { PartitionStatus } from './partition-book.js'
import type { TargetProducer } from './target-producer.js'
import type { TransactionalProducer } from './transactional-producer.js'

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
  /** Opens the source consumer; default createSourceConsumer, the kafkajs one (unit tests pass a fake). */
  createConsumer?: KafkaClientFactory['sourceConsumer']
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
