/**
 * The kafkajs implementation of the port's `TransactionalProducer` (common/kafka/port.ts), for
 * exactly-once groups: `sendAtomically` writes records (data plus the checkpoint) in one
 * transaction. One per source partition, with a transactional id derived from deployment, group
 * and source partition: whoever owns the partition next opens the same id, and the broker fences
 * the previous owner (its open transaction is aborted, its commits fail with FENCED).
 *
 * @example
 *   const producer = await createTransactionalProducer(cluster, transactionalIdFor(deployment, group, 'orders', 3), { clientId, logger })
 *   await producer.fence()
 *   await producer.sendAtomically([...records, checkpointRecord])
 */
import type { Producer } from 'kafkajs'
import { Kafka, Partitioners } from '../common/kafka/kafkajs.js'
import type { ClusterSpec } from '../common/config.js'
import { FerryError } from '../common/errors.js'
import { classifyKafkaError, kafkaClientConfig } from '../common/kafka/client-config.js'
import { compressionType } from '../common/kafka/codecs.js'
import { DEFAULT_MAX_BATCH_BYTES, chunkRecords, endKey, groupByTopic, noteEnds, produceError, unacknowledged } from './produce-records.js'
import type { TargetProducerOptions } from './target-producer.js'
import type { Placement, TransactionalProducer } from '../common/kafka/port.js'

export type { TransactionalProducer } from '../common/kafka/port.js'

/**
 * How long the broker lets a transaction stay open before it aborts it: bounds how long a dead
 * owner's open transaction can hold back read_committed readers (see checkpoint-store.ts).
 */
export const TRANSACTION_TIMEOUT_MS = 60000

export function transactionalIdFor(deployment: string, group: string, topic: string, partition: number): string {
  return `ferry.${deployment}.${group}.${topic}.${partition}`
}

export async function createTransactionalProducer(cluster: ClusterSpec, transactionalId: string, options: TargetProducerOptions): Promise<TransactionalProducer> {
  const kafka = new Kafka(kafkaClientConfig(cluster, { clientId: options.clientId, logger: options.logger }))
  const producer: Producer = kafka.producer({
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
    transactionTimeout: TRANSACTION_TIMEOUT_MS,
    retry: { retries: 8, initialRetryTime: 300, maxRetryTime: 10000 },
  })
  try {
    await producer.connect()
  } catch (error) {
    await producer.disconnect().catch(() => undefined)
    throw classifyKafkaError(error, cluster.name, 'connect transactional producer')
  }
  const ends = new Map<string, number>()
  const inTransaction = async (topics: readonly string[], fn: (txn: Awaited<ReturnType<Producer['transaction']>>) => Promise<void>): Promise<void> => {
    // The first transaction() runs InitProducerId: it fences older producers with this id.
    const txn = await producer.transaction().catch((error: unknown) => {
      throw produceError(error, cluster.name, topics)
    })
    try {
      await fn(txn)
      await txn.commit()
    } catch (error) {
      if (txn.isActive()) await txn.abort().catch(() => undefined)
      throw error instanceof FerryError ? error : produceError(error, cluster.name, topics)
    }
  }
  return {
    transactionalId,
    async fence() {
      await inTransaction([], async () => undefined)
    },
    acknowledgedEnd: (topic, partition) => ends.get(endKey(topic, partition)),
    async sendAtomically(records) {
      const topics = [...new Set(records.map((r) => r.topic))]
      const pending = new Map<string, number>()
      const placements: Placement[] = []
      await inTransaction(topics, async (txn) => {
        // In record batches under the target's size limit, all in the one transaction.
        for (const chunk of chunkRecords(records, options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES)) {
          const byTopic = groupByTopic(chunk)
          const acknowledged = await txn.sendBatch({ acks: -1, timeout: options.requestTimeoutMs ?? 30000, compression: compressionType(options.compression ?? 'none'), topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) })
          const missing = unacknowledged(chunk, acknowledged)
          // Aborts the transaction (inTransaction): nothing of it becomes visible.
          if (missing.length > 0) throw new FerryError('NOT_ACKNOWLEDGED', `cluster "${cluster.name}" did not acknowledge ${missing.join(', ')} in a transaction`, { retriable: true, context: { cluster: cluster.name } })
          placements.push(...noteEnds(pending, chunk, acknowledged))
        }
      })
      // Committed: now they count.
      for (const [key, end] of pending) ends.set(key, end)
      return placements
    },
    async close() {
      await producer.disconnect().catch(() => undefined)
    },
  }
}
