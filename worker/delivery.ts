/**
 * How mirrored records and the checkpoint that covers them reach the target, per delivery mode:
 *
 * - at-least-once: records are sent (acks=all, idempotent); once acknowledged, the partition's
 *   next offset is kept and written to the checkpoint topic by the next flush (every
 *   `checkpointIntervalMs`, and at `close()`). A crash replays at most the unflushed tail.
 * - exactly-once: one transactional producer per source partition, opened (which fences any
 *   previous owner) before the checkpoints are read; each write commits the records and their
 *   checkpoint in one transaction.
 *
 * @example
 *   const delivery = group.delivery === 'exactly-once' ? createExactlyOnce(deps) : createAtLeastOnce(deps)
 *   await delivery.open(partitions)
 *   await delivery.write('orders', 3, records, { topic: 'orders', partition: 3, offset: 43, mirrored: 43 })
 *   delivery.acknowledged({ topic: 'orders', partition: 3, offset: 43, mirrored: 43 })
 *   await delivery.close()
 */
import type { TopicGroupSpec } from '../common/config.js'
import { FerryError, errorMessage } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import type { AssignedPartition } from '../common/store.js'
import { partitionKey } from '../common/worker-report.js'
import type { CheckpointEntry, CheckpointStore } from './checkpoint-store.js'
import type { MirrorMetrics } from './mirror-metrics.js'
import type { Placement } from '../common/kafka/port.js'
import type { TargetProducer, TargetRecord } from './target-producer.js'
import { transactionalIdFor, type TransactionalProducer } from './transactional-producer.js'

export interface Delivery {
  /** Before the checkpoints are read: exactly-once opens (and so fences) each partition's producer. */
  open(partitions: readonly AssignedPartition[]): Promise<void>
  /** Whether the partition writes in transactions (see worker/failure-policy.ts). */
  transactional(topic: string, partition: number): boolean
  /**
   * Writes records of one source partition. `checkpoint`: where the partition continues once they
   * are on the target, with its count then (exactly-once commits it with them).
   */
  write(topic: string, partition: number, records: readonly TargetRecord[], checkpoint: CheckpointEntry): Promise<readonly Placement[] | void>
  /** The target has everything before `checkpoint.offset`: at-least-once checkpoints it by the next flush. */
  acknowledged(checkpoint: CheckpointEntry): void
  /** Where the records of a source partition this delivery wrote end in `targetTopic` (same partition number). */
  acknowledgedEnd(topic: string, partition: number, targetTopic: string): number | undefined
  /**
   * After `close()`, the partitions that stay (keys from `partitionKey`): what is still unwritten
   * of the others is dropped, or a later flush would write it over their new owner's checkpoints.
   */
  retain(keep: ReadonlySet<string>): void
  /**
   * The consumer stopped reading these partitions (moved away) while the others go on:
   * at-least-once writes their acknowledged positions now (what cannot be written is dropped, as
   * by `retain`); exactly-once closes their transactional producers.
   */
  release(partitions: readonly AssignedPartition[]): Promise<void>
  /** Begins periodic checkpoint flushes (at-least-once). */
  start(): void
  /** After the consumer stopped: writes what was acknowledged, closes transactional producers. */
  close(): Promise<void>
}

export interface DeliveryDeps {
  group: TopicGroupSpec
  producer: TargetProducer
  checkpoints: CheckpointStore
  log: Logger
  metrics: MirrorMetrics
}

export interface AtLeastOnceDeps extends DeliveryDeps {
  /** How often acknowledged positions are written; default 1000 ms. */
  checkpointIntervalMs?: number
}

export function createAtLeastOnce(deps: AtLeastOnceDeps): Delivery {
  const { group } = deps
  /** Acknowledged positions not yet checkpointed, keyed `topic/partition`. */
  const unwritten = new Map<string, CheckpointEntry>()
  let checkpointing: Promise<void> = Promise.resolve()
  let timer: NodeJS.Timeout | undefined

  /** Writes every acknowledged position not yet written, one flush at a time (so none goes backwards). */
  const flush = (): Promise<void> => {
    checkpointing = checkpointing.then(async () => {
      if (unwritten.size === 0) return
      const entries = [...unwritten.values()]
      unwritten.clear()
      try {
        await deps.checkpoints.write(deps.producer, group.name, entries)
      } catch (error) {
        // Kept for the next flush unless a newer position came in meanwhile.
        for (const e of entries) if (!unwritten.has(partitionKey(e))) unwritten.set(partitionKey(e), e)
        deps.metrics.errors.inc({ group: group.name, code: error instanceof FerryError ? error.code : 'INTERNAL' })
        deps.log.warn({ event: 'worker.checkpoint_failed', partitions: entries.length, err: errorMessage(error) }, 'writing checkpoints failed; will retry')
      }
    })
    return checkpointing
  }

  /** Forgets unwritten positions of partitions that moved away (a later flush would write them over their new owner's). */
  const drop = (moved: (key: string) => boolean): void => {
    for (const [key, entry] of [...unwritten]) {
      if (!moved(key)) continue
      unwritten.delete(key)
      // The new owner resumes from the checkpoint before this one: the records between are mirrored twice.
      deps.log.warn({ event: 'worker.handoff_checkpoint_dropped', topic: entry.topic, partition: entry.partition, offset: entry.offset }, 'the checkpoint of a partition that moved away could not be written; its new owner mirrors the records since the one before again')
    }
  }

  return {
    open: async () => undefined,
    transactional: () => false,
    write: (_topic, _partition, records) => deps.producer.send(records),
    acknowledged(checkpoint) {
      // Only after the target acknowledged the data: at-least-once.
      unwritten.set(partitionKey(checkpoint), { topic: checkpoint.topic, partition: checkpoint.partition, offset: checkpoint.offset, ...(checkpoint.mirrored === undefined ? {} : { mirrored: checkpoint.mirrored }) })
    },
    acknowledgedEnd: (_topic, partition, targetTopic) => deps.producer.acknowledgedEnd(targetTopic, partition),
    retain(keep) {
      drop((key) => !keep.has(key))
    },
    async release(partitions) {
      await flush()
      const gone = new Set(partitions.map((p) => partitionKey(p)))
      drop((key) => gone.has(key))
    },
    start() {
      if (timer) clearInterval(timer)
      timer = setInterval(() => void flush(), deps.checkpointIntervalMs ?? 1000)
    },
    async close() {
      if (timer) clearInterval(timer)
      timer = undefined
      await flush()
    },
  }
}

export interface ExactlyOnceDeps extends DeliveryDeps {
  deployment: string
  createTransactional: (transactionalId: string) => Promise<TransactionalProducer>
}

export function createExactlyOnce(deps: ExactlyOnceDeps): Delivery {
  const { group } = deps
  /** One transactional producer per source partition. */
  const producers = new Map<string, TransactionalProducer>()
  return {
    async open(partitions) {
      // Fence first, then read checkpoints: a previous owner's open transaction is aborted (and
      // its later commits refused), so what the task reads is final.
      for (const p of partitions) {
        // Already open (a start cancelled after fencing): it has fenced, and is still the newest.
        if (producers.has(partitionKey(p))) continue
        const producer = await deps.createTransactional(transactionalIdFor(deps.deployment, group.name, p.topic, p.partition))
        producers.set(partitionKey(p), producer)
        await producer.fence()
      }
    },
    transactional: (topic, partition) => producers.has(partitionKey({ topic, partition })),
    write(topic, partition, records, checkpoint) {
      const producer = producers.get(partitionKey({ topic, partition }))
      if (producer === undefined) return deps.producer.send(records)
      // The data and the checkpoint that covers it commit together, or neither.
      return producer.sendAtomically([...records, deps.checkpoints.record(group.name, checkpoint)])
    },
    acknowledged: () => undefined,
    retain: () => undefined,
    async release(partitions) {
      const moved = partitions.flatMap((p) => {
        const producer = producers.get(partitionKey(p))
        producers.delete(partitionKey(p))
        return producer === undefined ? [] : [producer]
      })
      await Promise.all(moved.map((p) => p.close()))
    },
    acknowledgedEnd: (topic, partition, targetTopic) => (producers.get(partitionKey({ topic, partition })) ?? deps.producer).acknowledgedEnd(targetTopic, partition),
    start: () => undefined,
    async close() {
      const open = [...producers.values()]
      producers.clear()
      await Promise.all(open.map((p) => p.close()))
    },
  }
}

/** The group's delivery: exactly-once needs `createTransactional`. */
export function createDelivery(deps: DeliveryDeps & Pick<AtLeastOnceDeps, 'checkpointIntervalMs'> & Pick<ExactlyOnceDeps, 'deployment'> & { createTransactional?: ExactlyOnceDeps['createTransactional'] | undefined }): Delivery {
  const base: DeliveryDeps = { group: deps.group, producer: deps.producer, checkpoints: deps.checkpoints, log: deps.log, metrics: deps.metrics }
  if (deps.group.delivery === 'exactly-once') {
    const createTransactional = deps.createTransactional ?? (() => Promise.reject(new FerryError('INVALID_CONFIG', 'exactly-once needs a transactional producer factory')))
    return createExactlyOnce({ ...base, deployment: deps.deployment, createTransactional })
  }
  return createAtLeastOnce({ ...base, ...(deps.checkpointIntervalMs === undefined ? {} : { checkpointIntervalMs: deps.checkpointIntervalMs }) })
}
