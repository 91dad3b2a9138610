/**
 * The kafkajs implementation of the port's `SourceConsumer` (common/kafka/port.ts).
 * Consumes exactly a given set of source partitions, from given offsets (kafkajs has no
 * `assign()`, see shared/reference/clients.md §1.2). Each consumer has a private group id,
 * new per start, and a static assigner that hands its one member exactly our partitions; start
 * positions are applied by `seek()` in a synchronous GROUP_JOIN listener, before any fetch,
 * and re-applied from the current positions on every rejoin. Nothing is committed to the
 * source: progress is checkpointed on the target by the caller.
 *
 * @example
 *   const consumer = createSourceConsumer(cluster, { clientId, groupId, logger })
 *   await consumer.start([{ topic: 'orders', partition: 0, offset: 42 }], async (batch) => { ... })
 */
import type { Consumer, PartitionAssigner, KafkaMessage } from 'kafkajs'
import { AssignerProtocol, Kafka } from './kafkajs.js'
import type { ClusterSpec } from '../config.js'
import { errorMessage } from '../errors.js'
import { partitionKey } from '../worker-report.js'
import { classifyKafkaError, kafkaClientConfig } from './client-config.js'
import { PartialBatchError, type RecordHeader, type RecordHeaders, type SourceConsumer, type SourceConsumerOptions, type SourceRecord } from './port.js'

export { PartialBatchError } from './port.js'
export type { PartitionStart, RecordHeader, RecordHeaders, SourceBatch, SourceConsumer, SourceConsumerOptions, SourceRecord } from './port.js'

/** The ordered headers of a fetched message (kept by Ferry's kafkajs fork, packages/kafkajs, as `headerList`). */
export function headerListOf(message: KafkaMessage): RecordHeaders {
  const list = (message as KafkaMessage & { headerList?: RecordHeaders }).headerList
  if (list !== undefined) return list
  // Old message formats (magic 0 and 1) have no headers. Anything else means kafkajs runs
  // without Ferry's fork, and mirroring would drop headers: refuse rather than lose them.
  if (message.headers === undefined || Object.keys(message.headers).length === 0) return []
  throw new Error('kafkajs returned headers without headerList: is node_modules/kafkajs the fork in packages/kafkajs (linked by npm ci)?')
}

/** The last value of header `key`, as text; undefined when absent or null. */
export function headerText(headers: RecordHeaders, key: string): string | undefined {
  for (let i = headers.length - 1; i >= 0; i--) {
    const header = headers[i] as RecordHeader
    if (header.key === key) return header.value === null ? undefined : header.value.toString('utf8')
  }
  return undefined
}

const ASSIGNER_NAME = 'FerryStaticAssigner'

export function createSourceConsumer(cluster: ClusterSpec, options: SourceConsumerOptions): SourceConsumer {
  const positions = new Map<string, number>()
  /** The batch being handled per partition: resolves true when handled, false when it failed. */
  const inFlight = new Map<string, Promise<boolean>>()
  /** Partitions given up by release(): paused for good (again after every rejoin), never handed over. */
  const released = new Map<string, { topic: string; partition: number }>()
  const pauseReleased = (target: Consumer): void => {
    const byTopic = new Map<string, number[]>()
    for (const p of released.values()) byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition])
    if (byTopic.size > 0) target.pause([...byTopic].map(([topic, partitions]) => ({ topic, partitions })))
  }
  let consumer: Consumer | undefined
  let stopped = false

  return {
    positions: () => positions,
    async start(partitions, handler) {
      const byTopic = new Map<string, number[]>()
      for (const p of partitions) {
        byTopic.set(p.topic, [...(byTopic.get(p.topic) ?? []), p.partition])
        positions.set(partitionKey(p), p.offset)
      }
      const assignment = Object.fromEntries([...byTopic].map(([topic, list]) => [topic, [...list].sort((a, b) => a - b)]))

      const staticAssigner: PartitionAssigner = () => ({
        name: ASSIGNER_NAME,
        version: 1,
        // The group is private, so the only member is us; should a stray member ever join, it gets nothing.
        async assign({ members }) {
          const sorted = [...members].sort((a, b) => a.memberId.localeCompare(b.memberId))
          return sorted.map((member, index) => ({
            memberId: member.memberId,
            memberAssignment: AssignerProtocol.MemberAssignment.encode({
              version: 1,
              assignment: index === 0 ? assignment : {},
              userData: Buffer.alloc(0),
            }),
          }))
        },
        protocol({ topics }) {
          return { name: ASSIGNER_NAME, metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) }
        },
      })

      const kafka = new Kafka(kafkaClientConfig(cluster, { clientId: options.clientId, logger: options.logger }))
      const created = kafka.consumer({
        groupId: options.groupId,
        partitionAssigners: [staticAssigner],
        sessionTimeout: 10000,
        rebalanceTimeout: 20000,
        heartbeatInterval: 3000,
        maxWaitTimeInMs: options.maxWaitMs ?? 250,
        maxBytesPerPartition: options.maxBytesPerPartition ?? 1024 * 1024,
        allowAutoTopicCreation: false,
        readUncommitted: false,
        retry: { retries: 5, initialRetryTime: 300, maxRetryTime: 10000 },
      })
      consumer = created

      // Synchronous on purpose: kafkajs emits GROUP_JOIN after SyncGroup and before the first
      // fetch, so seeks made here are in place before anything is read.
      created.on(created.events.GROUP_JOIN, () => {
        // A join still in flight when stop() ran: kafkajs would start fetching for nobody.
        if (stopped) {
          void created.disconnect().catch(() => undefined)
          return
        }
        for (const [key, offset] of positions) {
          const slash = key.lastIndexOf('/')
          created.seek({ topic: key.slice(0, slash), partition: Number(key.slice(slash + 1)), offset: String(offset) })
        }
        try {
          pauseReleased(created)
        } catch (error) {
          // Never into kafkajs' join: the batches of released partitions are dropped in eachBatch anyway.
          options.logger.warn({ event: 'source.pause_failed', err: errorMessage(error) }, 'could not pause released partitions after a rejoin')
        }
      })
      if (options.onBatchEnd) {
        const onBatchEnd = options.onBatchEnd
        created.on(created.events.END_BATCH_PROCESS, (event) => {
          const { topic, partition, lastOffset } = event.payload as { topic: string; partition: number; lastOffset: string }
          onBatchEnd(topic, partition, Number(lastOffset))
        })
      }
      created.on(created.events.CRASH, (event) => {
        const { error, restart } = event.payload as { error: unknown; restart: boolean }
        options.logger.error({ event: 'source.consumer_crash', err: errorMessage(error), restart }, 'source consumer crashed')
        if (!restart && !stopped) options.onCrash?.(classifyKafkaError(error, cluster.name, 'consume'))
      })

      try {
        await created.connect()
        await created.subscribe({ topics: [...byTopic.keys()], fromBeginning: true })
      } catch (error) {
        await created.disconnect().catch(() => undefined)
        throw classifyKafkaError(error, cluster.name, 'start consuming')
      }
      await created.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: options.partitionsConsumedConcurrently ?? Math.max(1, Math.min(partitions.length, 8)),
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale, pause }) => {
          if (stopped || !isRunning() || isStale()) return
          const key = partitionKey(batch)
          if (released.has(key)) return
          // One batch per partition is handled at a time, in order; the next one waits here for
          // it while kafkajs already fetches, so fetching overlaps producing.
          const previous = inFlight.get(key)
          if (previous !== undefined && !(await previous)) return
          if (stopped || !isRunning() || isStale() || released.has(key)) return
          const from = positions.get(key) ?? 0
          const records: SourceRecord[] = []
          for (const message of batch.messages) {
            const offset = Number(message.offset)
            if (offset < from) continue
            records.push({ offset, key: message.key, value: message.value, headers: headerListOf(message), timestamp: message.timestamp })
          }
          const last = records[records.length - 1]
          if (last === undefined) {
            // Everything is below our position: kafkajs is behind us (a seek from a rejoin that
            // raced an in-flight batch). Move it up, or it would fetch this range forever.
            if (batch.messages.length > 0 && from > 0) resolveOffset(String(from - 1))
            return
          }
          const handled = handler({ topic: batch.topic, partition: batch.partition, highWatermark: Number(batch.highWatermark), records }).then(
            () => {
              positions.set(key, last.offset + 1)
              return true
            },
            (error: unknown) => {
              // A batch that fails after stop() or its partition's release() began is not reported:
              // whoever stopped or released it starts the partition again from checkpoints
              // (reporting it would restart it twice, or touch a partition no longer ours).
              if (stopped || released.has(key)) {
                options.logger.info({ event: 'source.stopped_batch_failed', topic: batch.topic, partition: batch.partition, err: errorMessage(error) }, 'a batch failed while the consumer was stopping')
                return false
              }
              // Stop this partition where it is; the caller decides when to try again (resumeAt).
              pause()
              if (error instanceof PartialBatchError) {
                positions.set(key, error.resumeOffset)
                options.onPartitionError?.(batch.topic, batch.partition, error.reason)
              } else {
                options.onPartitionError?.(batch.topic, batch.partition, error)
              }
              return false
            },
          )
          inFlight.set(key, handled)
          void handled.finally(() => {
            if (inFlight.get(key) === handled) inFlight.delete(key)
          })
          // Fetch on from here; should this batch fail, the partition is paused and re-sought.
          resolveOffset(String(last.offset))
          // A rejoin during this batch queued a seek to the old position; override it.
          if (isStale()) created.seek({ topic: batch.topic, partition: batch.partition, offset: String(last.offset + 1) })
          await heartbeat()
        },
      })
    },
    resumeAt(topic, partition, offset) {
      if (released.has(partitionKey({ topic, partition }))) return true
      if (consumer === undefined) return false
      positions.set(partitionKey({ topic, partition }), offset)
      try {
        consumer.seek({ topic, partition, offset: String(offset) })
        consumer.resume([{ topic, partitions: [partition] }])
        return true
      } catch (error) {
        // kafkajs throws while it is between a crash and its own restart; the caller retries.
        options.logger.warn({ event: 'source.resume_failed', topic, partition, err: errorMessage(error) }, 'could not resume partition yet')
        return false
      }
    },
    async release(partitions) {
      const keys = partitions.map((p) => partitionKey(p))
      for (const [i, p] of partitions.entries()) released.set(keys[i] as string, { topic: p.topic, partition: p.partition })
      if (consumer !== undefined) {
        try {
          pauseReleased(consumer)
        } catch (error) {
          // Between a crash and kafkajs' own restart; the GROUP_JOIN listener pauses them then,
          // and no batch of theirs is handed over meanwhile.
          options.logger.debug({ event: 'source.pause_failed', err: errorMessage(error) }, 'could not pause released partitions yet')
        }
      }
      await Promise.all(keys.map((key) => inFlight.get(key)))
      for (const key of keys) positions.delete(key)
    },
    async stop() {
      stopped = true
      const current = consumer
      consumer = undefined
      // disconnect() stops the runner after in-flight batches finish and leaves the group.
      await current?.disconnect().catch((error: unknown) => {
        options.logger.warn({ event: 'source.disconnect_failed', err: errorMessage(error) }, 'source consumer disconnect failed')
      })
      // Batches still being handled finish before stop() returns (their handlers never reject).
      await Promise.all(inFlight.values())
    },
  }
}
