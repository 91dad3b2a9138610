/**
 * The kafkajs implementation of the port's `TargetProducer` (common/kafka/port.ts).
 * Writes mirrored records to the target cluster: idempotent, acks from all in-sync replicas,
 * one in-flight request (ordering per partition survives retries), no auto topic creation.
 *
 * @example
 *   const producer = await createTargetProducer(cluster, { clientId, logger })
 *   await producer.send([{ topic: 'orders', partition: 0, key, value, headers, timestamp }])
 */
import type { Producer, RecordMetadata } from 'kafkajs'
import { Kafka, Partitioners } from '../common/kafka/kafkajs.js'
import type { ClusterSpec } from '../common/config.js'
import type { Placement, ProducerOptions, TargetProducer } from '../common/kafka/port.js'
import { FerryError } from '../common/errors.js'
import { classifyKafkaError, kafkaClientConfig, type ClientConfigOptions } from '../common/kafka/client-config.js'
import { compressionType } from '../common/kafka/codecs.js'
import { DEFAULT_MAX_BATCH_BYTES, endKey, groupByTopic, noteEnds, partitionCount, produceError, sizedChunks, unacknowledged, type TargetRecord } from './produce-records.js'

export { chunkRecords, unacknowledged, type TargetRecord } from './produce-records.js'
export type { TargetProducer } from '../common/kafka/port.js'

/** Leading records of a failed send that the target acknowledged (see acknowledgedCount). */
const acknowledgedPrefix = new WeakMap<object, number>()

/**
 * How many leading records of a failed `send` the target acknowledged before it failed (its
 * earlier record batches); 0 when none or unknown. A caller that resends only the rest writes
 * no duplicates.
 */
export function acknowledgedCount(error: unknown): number {
  return typeof error === 'object' && error !== null ? (acknowledgedPrefix.get(error) ?? 0) : 0
}

/** The port's producer options, plus what is particular to the kafkajs implementation. */
export interface TargetProducerOptions extends ProducerOptions {
  /**
   * Independent producers (connections) sends are spread over by partition, so that several
   * produce requests can be in flight at once; default 4. Sends that mix partitions must always
   * start with the same partition (Ferry's are single-partition, or checkpoint writes).
   */
  lanes?: number
  /** Most bytes (approximate encoded size) merged into one produce request; default 4 MiB. */
  maxRequestBytes?: number
  /** Retries of one request inside the client (kafkajs) before a send fails; default 8. */
  retries?: number
  /** How connections are opened; default plain TCP or TLS. Tests use it to inject network faults. */
  socketFactory?: ClientConfigOptions['socketFactory']
}

interface PendingSend {
  records: readonly TargetRecord[]
  bytes: number
  /** `topic/partition` (or `topic/*` when the partitioner decides) of every record. */
  partitions: Set<string>
  resolve: (placements: readonly Placement[]) => void
  reject: (error: unknown) => void
  /** Shared by the chunks of one send: set when one fails, so the later ones are not written. */
  send: { failed?: unknown }
}


/**
 * The kafkajs idempotent producer has one request in flight per broker, so concurrent sends (one
 * per source partition being mirrored) would each wait a full round trip in turn. So the target
 * producer is several independent producers ("lanes", each with its own connections), and a
 * send goes to the lane of its first record's topic and partition: every send for a partition
 * takes the same lane, in order. Within a lane, what arrives while a request is in flight goes
 * out together in the next one: one request per round trip, each caller resolved when its
 * records are acknowledged. Sends for the same partition are
 * never merged (a record batch must stay under the target's message.max.bytes), and when a
 * merged request is refused for a record, each send is retried alone so only its own caller sees
 * the rejection.
 */
export async function createTargetProducer(cluster: ClusterSpec, options: TargetProducerOptions): Promise<TargetProducer> {
  const count = Math.max(1, options.lanes ?? 4)
  const opened = await Promise.allSettled(Array.from({ length: count }, () => openLane(cluster, options)))
  const lanes = opened.flatMap((o) => (o.status === 'fulfilled' ? [o.value] : []))
  const failed = opened.find((o): o is PromiseRejectedResult => o.status === 'rejected')
  if (failed !== undefined) {
    await Promise.all(lanes.map((lane) => lane.close()))
    throw failed.reason
  }
  const laneOf = (records: readonly TargetRecord[]): TargetProducer => {
    const first = records[0] as TargetRecord
    const key = `${first.topic}/${first.partition ?? '*'}`
    let hash = 0
    for (let i = 0; i < key.length; i++) hash = (hash * 31 + key.charCodeAt(i)) | 0
    return lanes[Math.abs(hash) % lanes.length] as TargetProducer
  }
  return {
    async send(records) {
      if (records.length === 0) return []
      return laneOf(records).send(records)
    },
    acknowledgedEnd: (topic, partition) => laneOf([{ topic, partition, key: null, value: null }]).acknowledgedEnd(topic, partition),
    async close() {
      await Promise.all(lanes.map((lane) => lane.close()))
    },
  }
}

/**
 * One idempotent producer (its own connections) with the merging queue described above.
 *
 * After a failed send the lane starts over with a new producer id. The broker may have written
 * a request whose answer never came (a timeout, a broker killed or frozen mid-request), while
 * kafkajs keeps the record sequence numbers where they were; the next, different records of
 * that partition would reuse those numbers, and the broker would refuse them forever
 * (OUT_OF_ORDER_SEQUENCE_NUMBER) or, with the same count, drop them as duplicates of the
 * written request. The Java producer avoids this by resending the very same batch and bumping
 * its epoch when it gives up (KIP-360); kafkajs does neither. A new producer id has fresh
 * sequences, and Ferry resends from its checkpoint (at-least-once: the written request's
 * records may appear twice, none is lost).
 */
async function openLane(cluster: ClusterSpec, options: TargetProducerOptions): Promise<TargetProducer> {
  // The client waits a little longer than the broker may take to gather acknowledgements, so a
  // slow acknowledgement is answered (with an error) rather than abandoned.
  const requestTimeoutMs = (options.requestTimeoutMs ?? 30000) + 5000
  const kafka = new Kafka(
    kafkaClientConfig(cluster, {
      clientId: options.clientId,
      logger: options.logger,
      requestTimeoutMs,
      ...(options.socketFactory === undefined ? {} : { socketFactory: options.socketFactory }),
    }),
  )
  const connect = async (): Promise<Producer> => {
    const created: Producer = kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
      // Java-compatible murmur2, chosen explicitly (also silences kafkajs' start-up warning).
      createPartitioner: Partitioners.DefaultPartitioner,
      retry: { retries: options.retries ?? 8, initialRetryTime: 300, maxRetryTime: 10000 },
    })
    try {
      await created.connect()
    } catch (error) {
      await created.disconnect().catch(() => undefined)
      throw classifyKafkaError(error, cluster.name, 'connect producer')
    }
    return created
  }
  let producer = await connect()
  /** The last send failed: its records may be on the broker, so the sequences cannot be reused. */
  let renew = false
  const compression = compressionType(options.compression ?? 'none')
  const maxRequestBytes = options.maxRequestBytes ?? 4 * 1024 * 1024
  const maxBatchBytes = options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES
  const queue: PendingSend[] = []
  const ends = new Map<string, number>()
  let draining: Promise<void> | undefined
  let closed = false

  const closedError = (): FerryError => new FerryError('UNAVAILABLE', `producer for cluster "${cluster.name}" is closed`)

  const sendNow = async (records: readonly TargetRecord[], partitions: number): Promise<Placement[]> => {
    if (closed) throw closedError()
    if (renew) {
      const fresh = await connect()
      if (closed) {
        await fresh.disconnect().catch(() => undefined)
        throw closedError()
      }
      const old = producer
      producer = fresh
      renew = false
      await old.disconnect().catch(() => undefined)
      options.logger.info({ event: 'target.producer_renewed', cluster: cluster.name }, 'new producer id after a failed send')
    }
    const byTopic = groupByTopic(records)
    let acknowledged: RecordMetadata[]
    try {
      acknowledged = await producer.sendBatch({
        acks: -1,
        timeout: options.requestTimeoutMs ?? 30000,
        compression,
        topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })),
      })
    } catch (error) {
      const failed = produceError(error, cluster.name, [...byTopic.keys()])
      // A refusal of a one-partition request wrote nothing; any other failure may have written some.
      if (failed.code !== 'TARGET_REJECTED' || partitions > 1) renew = true
      throw failed
    }
    const missing = unacknowledged(records, acknowledged)
    if (missing.length === 0) return noteEnds(ends, records, acknowledged)
    // Never count a record the target did not acknowledge. The send may have written some of
    // the request, so the sequences cannot be trusted either.
    renew = true
    throw new FerryError('NOT_ACKNOWLEDGED', `cluster "${cluster.name}" did not acknowledge ${missing.join(', ')}; the send is failed and will be retried`, { retriable: true, context: { cluster: cluster.name } })
  }

  const takeRequest = (): PendingSend[] => {
    const taken: PendingSend[] = []
    const partitions = new Set<string>()
    let bytes = 0
    for (let next = queue[0]; next !== undefined; next = queue[0]) {
      // A record the partitioner places (`topic/*`) may land in any partition of its topic: it
      // never shares a request with explicit partitions of that topic (their placements would mix).
      const clash = [...next.partitions].some((p) => partitions.has(p) || (p.endsWith('/*') ? [...partitions].some((q) => q.startsWith(p.slice(0, -1))) : partitions.has(`${p.slice(0, p.lastIndexOf('/'))}/*`)))
      if (taken.length > 0 && (clash || bytes + next.bytes > maxRequestBytes)) break
      queue.shift()
      taken.push(next)
      bytes += next.bytes
      for (const p of next.partitions) partitions.add(p)
    }
    return taken
  }

  const drain = async (): Promise<void> => {
    try {
      for (let all = takeRequest(); all.length > 0; all = takeRequest()) {
        // A chunk after a failed one of the same send is not written: the send resumes from the
        // failed chunk, so writing later ones would only duplicate them.
        const taken = all.filter((p) => {
          if (p.send.failed === undefined) return true
          p.reject(p.send.failed)
          return false
        })
        if (taken.length === 0) continue
        try {
          const placed = await sendNow(taken.length === 1 ? (taken[0] as PendingSend).records : taken.flatMap((p) => p.records), partitionCount(taken.flatMap((p) => [...p.partitions])))
          // Merged sends never share a partition: each takes the placements of its own.
          for (const p of taken) p.resolve(taken.length === 1 ? placed : placed.filter((x) => p.partitions.has(`${x.topic}/${x.partition}`)))
        } catch (error) {
          if (taken.length === 1 || !(error instanceof FerryError) || error.code !== 'TARGET_REJECTED') {
            for (const p of taken) p.reject(error)
            continue
          }
          // A record was refused: find whose, so the others are not failed for it.
          for (const p of taken) {
            try {
              p.resolve(await sendNow(p.records, partitionCount([...p.partitions])))
            } catch (own) {
              p.reject(own)
            }
          }
        }
      }
    } finally {
      draining = undefined
    }
  }

  return {
    async send(records) {
      if (records.length === 0) return []
      // Chunks of one send touch the same partitions, so they go in consecutive requests, in order.
      const chunks = sizedChunks(records, maxBatchBytes)
      const state: PendingSend['send'] = {}
      const sent = chunks.map(
        (chunk) =>
          new Promise<readonly Placement[]>((resolve, reject) => {
            const fail = (error: unknown): void => {
              state.failed ??= error
              reject(error)
            }
            queue.push({ records: chunk.records, bytes: chunk.bytes, partitions: new Set(chunk.records.map((r) => `${r.topic}/${r.partition ?? '*'}`)), resolve, reject: fail, send: state })
          }),
      )
      draining ??= drain()
      const outcomes = await Promise.allSettled(sent)
      const failed = outcomes.findIndex((o) => o.status === 'rejected')
      if (failed < 0) return outcomes.flatMap((o) => (o.status === 'fulfilled' ? o.value : []))
      const error = (outcomes[failed] as PromiseRejectedResult).reason as unknown
      // Chunks go out in order, and none after the failed one: the chunks before it are written.
      let acknowledged = 0
      for (let i = 0; i < failed; i++) acknowledged += (chunks[i] as { records: TargetRecord[] }).records.length
      if (acknowledged > 0 && typeof error === 'object' && error !== null) acknowledgedPrefix.set(error, acknowledged)
      throw error
    },
    acknowledgedEnd: (topic, partition) => ends.get(endKey(topic, partition)),
    async close() {
      // Sends still queued fail (closed); the one in flight ends first, so no producer outlives close().
      closed = true
      await draining
      await producer.disconnect().catch(() => undefined)
    },
  }
}

