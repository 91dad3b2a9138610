/**
 * Ferry's progress, kept on the target cluster in a compacted topic: for each topic group and
 * source partition, the next source offset to mirror. It is written only after the target
 * acknowledged the records before that offset, so whoever owns the partition next resumes
 * exactly where the target's data ends (at-least-once: at most the unacknowledged tail twice).
 *
 * Key `<group>/<topic>/<partition>`, value JSON { offset, sourceCluster, worker, at }.
 *
 * The topic is shared: exactly-once partitions commit their checkpoints in transactions. A read
 * goes to the high watermark, not to the last stable offset: a checkpoint committed after the
 * first record of another owner's still-open transaction lies past the last stable offset, and
 * stopping there would return an older checkpoint (and the data after it would be mirrored
 * twice). So a read waits for transactions open when it began to end: at most the transaction
 * timeout, for a transaction whose owner died.
 */
import { randomUUID } from 'node:crypto'
import type { ClusterSpec } from '../common/config.js'
import type { Logger } from '../common/logger.js'
import type { KafkaAdmin } from '../common/kafka/admin.js'
import { classifyKafkaError } from '../common/kafka/client-config.js'
import type { KafkaClientFactory } from '../common/kafka/port.js'
import { createSourceConsumer } from '../common/kafka/source-consumer.js'
import { FerryError, errorMessage } from '../common/errors.js'
import { partitionKey } from '../common/worker-report.js'
import type { TargetProducer, TargetRecord } from './target-producer.js'
import { TRANSACTION_TIMEOUT_MS } from './transactional-producer.js'

export interface Checkpoint {
  /** Next source offset to mirror. */
  offset: number
  /** Records of the partition mirrored so far, by every owner (absent in checkpoints of older Ferry versions). */
  mirrored?: number
  sourceCluster: string
  worker: string
  at: string
}

export interface CheckpointEntry {
  topic: string
  partition: number
  offset: number
  /** Records of the partition mirrored so far, carried from owner to owner. */
  mirrored?: number
}

export interface CheckpointStore {
  readonly topic: string
  ensureTopic(): Promise<void>
  /**
   * Every checkpoint of a group, keyed `topic/partition`. `signal` abandons a read that waits
   * (for an open transaction) when its result is no longer wanted.
   */
  read(group: string, signal?: AbortSignal): Promise<Map<string, Checkpoint>>
  write(producer: TargetProducer, group: string, entries: readonly CheckpointEntry[]): Promise<void>
  /** The checkpoint as a record, to be written inside a transaction with the data it covers. */
  record(group: string, entry: CheckpointEntry): TargetRecord
}

export interface CheckpointStoreOptions {
  target: ClusterSpec
  admin: KafkaAdmin
  deployment: string
  sourceCluster: string
  worker: string
  logger: Logger
  /** Reads the checkpoint topic (through the Kafka port); default the kafkajs source consumer. */
  createConsumer?: KafkaClientFactory['sourceConsumer']
  /** Longest a full read may take; default the transaction timeout + 30 s (see above). */
  readTimeoutMs?: number
  /** A read still waiting after this long is logged (an open transaction holds it); default 5000 ms. */
  slowReadMs?: number
}

/**
 * Configs of the checkpoint topic. Every task start reads the whole topic, so it must stay
 * small: compaction keeps one record per key but only cleans closed segments, and by default a
 * segment closes at 1 GiB or after 7 days. Exactly-once groups write a checkpoint per batch (an
 * at-least-once partition one a second), so with the defaults a busy deployment's reads grow to
 * millions of records (~4 s per million) before compaction starts. 16 MiB segments, closed at
 * least hourly, bound the uncompacted part to about 100,000 records. Each exactly-once commit
 * also leaves a transaction marker, which compaction keeps for `delete.retention.ms` (default
 * 24 h) after its records are gone: 10 minutes, still far longer than any read (at most the read
 * timeout), keeps those few too. (The store writes no tombstones, the other thing it governs.)
 */
export const CHECKPOINT_TOPIC_CONFIGS: Readonly<Record<string, string>> = {
  'cleanup.policy': 'compact',
  'min.compaction.lag.ms': '60000',
  'segment.bytes': String(16 * 1024 * 1024),
  'segment.ms': String(60 * 60 * 1000),
  'delete.retention.ms': String(10 * 60 * 1000),
}

export function checkpointTopicName(deployment: string): string {
  return `_ferry.${deployment}.checkpoints`
}

export function checkpointKey(group: string, topic: string, partition: number): string {
  return partitionKey({ topic, partition }, group)
}

export function createCheckpointStore(options: CheckpointStoreOptions): CheckpointStore {
  const topic = checkpointTopicName(options.deployment)
  const readTimeoutMs = options.readTimeoutMs ?? TRANSACTION_TIMEOUT_MS + 30000
  /** Created or checked once per store: task starts call ensureTopic() again and again. */
  let configured: Promise<void> | undefined
  /**
   * A topic made by an older Ferry (or by hand) gets the configs it lacks; configs an operator
   * set on it are kept, even where they differ from ours. Failing to alter them (a cluster that
   * does not allow us) costs read time, not correctness, so it is logged and mirroring goes on;
   * a failure that may pass (a timeout, a lost connection) is tried again at the next task start.
   * Read-then-replace is not atomic (kafkajs has no IncrementalAlterConfigs): a config changed
   * by hand in between is reverted; it happens once per store, only when a config is missing.
   */
  const addMissingConfigs = async (): Promise<void> => {
    try {
      const current = await options.admin.topicConfigs(topic)
      const missing = Object.keys(CHECKPOINT_TOPIC_CONFIGS).filter((name) => current[name] === undefined)
      if (missing.length === 0) return
      await options.admin.replaceTopicConfigs(topic, { ...CHECKPOINT_TOPIC_CONFIGS, ...current })
      options.logger.info({ event: 'checkpoint.topic_configured', topic, added: missing }, 'checkpoint topic configs added')
    } catch (error) {
      options.logger.warn({ event: 'checkpoint.topic_config_failed', topic, err: errorMessage(error) }, 'could not check or add the checkpoint topic configs; reads of it may grow slow')
      if (error instanceof FerryError && error.retriable) configured = undefined
    }
  }
  const store: CheckpointStore = {
    topic,
    async ensureTopic() {
      configured ??= (async () => {
        if (await options.admin.createTopic({ topic, partitions: 1, configs: { ...CHECKPOINT_TOPIC_CONFIGS } })) return
        await addMissingConfigs()
      })().catch((error: unknown) => {
        configured = undefined
        throw error
      })
      await configured
    },
    async read(group, signal) {
      const result = new Map<string, Checkpoint>()
      const startedAt = Date.now()
      const offsets = await options.admin.offsets(topic)
      // To the high watermark: committed records past the last stable offset are read once the
      // transactions before them end (see the file comment).
      const pending = new Map(offsets.filter((o) => o.high > o.low).map((o) => [o.partition, o.high]))
      if (pending.size === 0) return result
      const held = offsets.filter((o) => o.stable < o.high)
      const stableOf = new Map(held.map((o) => [o.partition, o.stable]))
      /** This group's checkpoints found past the last stable offset (a read stopping there would have missed them). */
      let late = 0
      const waitingOn = held.map((o) => ({ partition: o.partition, stable: o.stable, high: o.high }))
      const slow =
        held.length === 0
          ? undefined
          : setTimeout(() => {
              options.logger.warn({ event: 'checkpoint.read_waiting', topic, partitions: waitingOn }, 'reading checkpoints waits for open transactions on the checkpoint topic to end')
            }, options.slowReadMs ?? 5000)
      const prefix = `${group}/`
      // A throwaway reader of every partition from its log start, that never commits.
      const consumer = (options.createConsumer ?? createSourceConsumer)(options.target, {
        clientId: `ferry-checkpoint-reader-${options.worker}`,
        groupId: `_ferry.${options.deployment}.checkpoint-reader.${randomUUID()}`,
        logger: options.logger,
        maxWaitMs: 100,
        // Exactly-once groups write checkpoints in transactions: the topic ends with a commit
        // marker that no handler sees, so completion is judged from batch ends.
        onBatchEnd: (_topic, partition, lastOffset) => {
          const high = pending.get(partition)
          if (high !== undefined && lastOffset + 1 >= high) pending.delete(partition)
          if (pending.size === 0) done?.()
        },
        onCrash: (error) => failed?.(error),
        onPartitionError: (_topic, _partition, error) => failed?.(error),
      })
      let done: (() => void) | undefined
      let failed: ((error: unknown) => void) | undefined
      try {
        await new Promise<void>((resolve, reject) => {
          const stuck =
            held.length === 0
              ? ''
              : ` (a transaction open since offset ${waitingOn.map((o) => o.stable).join(', ')} has not ended; if it never does, find and abort it with kafka-transactions.sh find-hanging / abort)`
          const timer = setTimeout(() => reject(new Error(`reading ${topic} took longer than ${readTimeoutMs} ms${stuck}`)), readTimeoutMs)
          done = () => {
            clearTimeout(timer)
            resolve()
          }
          failed = (error) => {
            clearTimeout(timer)
            reject(error)
          }
          if (signal?.aborted) reject(new FerryError('UNAVAILABLE', `reading ${topic} was cancelled`))
          signal?.addEventListener('abort', () => {
            clearTimeout(timer)
            reject(new FerryError('UNAVAILABLE', `reading ${topic} was cancelled`))
          }, { once: true })
          const starts = offsets.filter((o) => pending.has(o.partition)).map((o) => ({ topic, partition: o.partition, offset: o.low }))
          consumer
            .start(starts, async (batch) => {
              for (const message of batch.records) {
                const key = message.key?.toString('utf8')
                if (key === undefined || !key.startsWith(prefix)) continue
                if (message.offset >= (stableOf.get(batch.partition) ?? Infinity)) late++
                if (message.value === null) result.delete(key.slice(prefix.length))
                else result.set(key.slice(prefix.length), JSON.parse(message.value.toString('utf8')) as Checkpoint)
              }
              const high = pending.get(batch.partition)
              const last = batch.records[batch.records.length - 1]
              if (high !== undefined && last !== undefined && last.offset + 1 >= high) pending.delete(batch.partition)
              if (pending.size === 0) done?.()
            })
            .catch((error: unknown) => failed?.(error))
        })
      } catch (error) {
        throw classifyKafkaError(error, options.target.name, `read checkpoints from ${topic}`)
      } finally {
        clearTimeout(slow)
        await consumer.stop()
      }
      if (held.length > 0) {
        const records = held.reduce((sum, o) => sum + o.high - o.stable, 0)
        options.logger.info({ event: 'checkpoint.read_waited', topic, group, records, late, ms: Date.now() - startedAt }, 'read checkpoints past records of transactions that were open')
      }
      return result
    },
    async write(producer, group, entries) {
      await producer.send(entries.map((e) => store.record(group, e)))
    },
    record(group, e) {
      const at = new Date().toISOString()
      return {
        topic,
        key: checkpointKey(group, e.topic, e.partition),
        value: JSON.stringify({ offset: e.offset, ...(e.mirrored === undefined ? {} : { mirrored: e.mirrored }), sourceCluster: options.sourceCluster, worker: options.worker, at } satisfies Checkpoint),
      }
    },
  }
  return store
}
