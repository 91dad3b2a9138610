/**
 * Writes mirrored records to the target cluster: idempotent, acks from all in-sync replicas,
 * one in-flight request (ordering per partition survives retries), no auto topic creation.
 *
 * @example
 *   const producer = await createTargetProducer(cluster, { clientId, logger })
 *   await producer.send([{ topic: 'orders', partition: 0, key, value, headers, timestamp }])
 */
import type { Producer, Message, RecordMetadata } from 'kafkajs'
import { Kafka, Partitioners } from './kafkajs.js'
import type { ClusterSpec, TargetCompression } from '../config.js'
import type { Logger } from '../logger.js'
import { FerryError, errorMessage, isProgrammerError } from '../errors.js'
import { classifyKafkaError, kafkaClientConfig, type ClientConfigOptions } from './client-config.js'
import { compressionType } from './codecs.js'
import type { RecordHeaders } from './source-consumer.js'

/**
 * Broker errors that refuse a record for what it is, so no retry can help: the record must be
 * reported (and the partition stopped) or dead-lettered.
 */
const REJECTIONS = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_RECORD',
  'CORRUPT_MESSAGE',
  'INVALID_TIMESTAMP',
  'POLICY_VIOLATION',
  'TOPIC_AUTHORIZATION_FAILED',
])

/** Why no retry can help: the broker's refusal, or UNENCODABLE when the client could not encode a record. */
function rejectionType(error: unknown): string | undefined {
  for (let current = error as { type?: string; cause?: unknown; originalError?: unknown } | undefined, depth = 0; current && depth < 6; depth++) {
    if (current.type !== undefined && REJECTIONS.has(current.type)) return current.type
    // kafkajs encodes records inside send: a TypeError or RangeError there comes from what a
    // record holds, and would come again on every retry.
    if (isProgrammerError(current)) return 'UNENCODABLE'
    current = (current.originalError ?? current.cause) as typeof current
  }
  return undefined
}

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

export interface TargetRecord {
  topic: string
  /** Omit to let the producer partition by key. */
  partition?: number
  key: Buffer | string | null
  value: Buffer | string | null
  headers?: RecordHeaders
  timestamp?: string
}

export interface TargetProducer {
  /** Resolves once every record is acknowledged by the target (acks=all). */
  send(records: readonly TargetRecord[]): Promise<void>
  /**
   * The target offset after the last record this producer had acknowledged in `topic`
   * `partition` (its base offset plus its records), or undefined before any: the target's log
   * must reach at least this far, or acknowledged records are gone from it.
   */
  acknowledgedEnd(topic: string, partition: number): number | undefined
  close(): Promise<void>
}

export interface TargetProducerOptions {
  clientId: string
  logger: Logger
  /** How long the broker may take to gather acknowledgements of a request; default 30000. */
  requestTimeoutMs?: number
  /** Codec of the batches written; default none. */
  compression?: TargetCompression
  /**
   * Independent producers (connections) sends are spread over by partition, so that several
   * produce requests can be in flight at once; default 4. Sends that mix partitions must always
   * start with the same partition (Ferry's are single-partition, or checkpoint writes).
   */
  lanes?: number
  /** Most bytes (approximate encoded size) merged into one produce request; default 4 MiB. */
  maxRequestBytes?: number
  /**
   * Records of one send are split into record batches of about this many bytes at most, so a
   * large fetched batch stays under the target's message.max.bytes (1 MiB by default); default
   * 512 KiB. A single larger record goes alone.
   */
  maxBatchBytes?: number
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
  resolve: () => void
  reject: (error: unknown) => void
  /** Shared by the chunks of one send: set when one fails, so the later ones are not written. */
  send: { failed?: unknown }
}

/** Approximate encoded size of a record: key, value, header keys and values, framing. */
function sizeOf(r: TargetRecord): number {
  let bytes = 24 + (r.key?.length ?? 0) + (r.value?.length ?? 0)
  for (const header of r.headers ?? []) bytes += header.key.length + 8 + (header.value?.length ?? 0)
  return bytes
}

/** Splits records, in order, into chunks of at most `maxBytes` (a larger record is a chunk of its own), with their sizes. */
function sizedChunks(records: readonly TargetRecord[], maxBytes: number): Array<{ records: TargetRecord[]; bytes: number }> {
  const chunks: Array<{ records: TargetRecord[]; bytes: number }> = []
  let current: TargetRecord[] = []
  let bytes = 0
  for (const r of records) {
    const size = sizeOf(r)
    if (current.length > 0 && bytes + size > maxBytes) {
      chunks.push({ records: current, bytes })
      current = []
      bytes = 0
    }
    current.push(r)
    bytes += size
  }
  if (current.length > 0) chunks.push({ records: current, bytes })
  return chunks
}

/** Splits records, in order, into chunks of at most `maxBytes` (a larger record is a chunk of its own). */
export function chunkRecords(records: readonly TargetRecord[], maxBytes: number): TargetRecord[][] {
  return sizedChunks(records, maxBytes).map((chunk) => chunk.records)
}

/** Record batches stay under this by default (the target's message.max.bytes defaults to 1 MiB). */
const DEFAULT_MAX_BATCH_BYTES = 512 * 1024

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
      if (records.length === 0) return
      await laneOf(records).send(records)
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

  const sendNow = async (records: readonly TargetRecord[], partitions: number): Promise<void> => {
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
    if (missing.length === 0) noteEnds(ends, records, acknowledged)
    if (missing.length > 0) {
      // Never count a record the target did not acknowledge. The send may have written some of
      // the request, so the sequences cannot be trusted either.
      renew = true
      throw new FerryError('NOT_ACKNOWLEDGED', `cluster "${cluster.name}" did not acknowledge ${missing.join(', ')}; the send is failed and will be retried`, { retriable: true, context: { cluster: cluster.name } })
    }
  }

  const takeRequest = (): PendingSend[] => {
    const taken: PendingSend[] = []
    const partitions = new Set<string>()
    let bytes = 0
    for (let next = queue[0]; next !== undefined; next = queue[0]) {
      const clash = [...next.partitions].some((p) => partitions.has(p))
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
          await sendNow(taken.length === 1 ? (taken[0] as PendingSend).records : taken.flatMap((p) => p.records), partitionCount(taken.flatMap((p) => [...p.partitions])))
          for (const p of taken) p.resolve()
        } catch (error) {
          if (taken.length === 1 || !(error instanceof FerryError) || error.code !== 'TARGET_REJECTED') {
            for (const p of taken) p.reject(error)
            continue
          }
          // A record was refused: find whose, so the others are not failed for it.
          for (const p of taken) {
            try {
              await sendNow(p.records, partitionCount([...p.partitions]))
              p.resolve()
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
      if (records.length === 0) return
      // Chunks of one send touch the same partitions, so they go in consecutive requests, in order.
      const chunks = sizedChunks(records, maxBatchBytes)
      const state: PendingSend['send'] = {}
      const sent = chunks.map(
        (chunk) =>
          new Promise<void>((resolve, reject) => {
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
      if (failed < 0) return
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

/**
 * `topic[partition]` of every explicit partition of `records` that has no error-free answer in
 * `acknowledged`, and `topic` for a topic without any answer (records the partitioner placed).
 */
export function unacknowledged(records: readonly TargetRecord[], acknowledged: readonly RecordMetadata[]): string[] {
  const answered = new Set<string>()
  const topics = new Set<string>()
  for (const a of acknowledged) {
    if (a.errorCode !== 0) continue
    answered.add(`${a.topicName}\u0000${a.partition}`)
    topics.add(a.topicName)
  }
  const missing = new Set<string>()
  for (const r of records) {
    if (r.partition === undefined ? !topics.has(r.topic) : !answered.has(`${r.topic}\u0000${r.partition}`)) missing.add(r.partition === undefined ? r.topic : `${r.topic}[${r.partition}]`)
  }
  return [...missing]
}

function endKey(topic: string, partition: number): string {
  return `${topic}\u0000${partition}`
}

/** Records in `ends` where each explicitly addressed partition of an acknowledged request now ends on the target. */
function noteEnds(ends: Map<string, number>, records: readonly TargetRecord[], acknowledged: readonly RecordMetadata[]): void {
  const counts = new Map<string, number>()
  for (const r of records) if (r.partition !== undefined) counts.set(endKey(r.topic, r.partition), (counts.get(endKey(r.topic, r.partition)) ?? 0) + 1)
  for (const a of acknowledged) {
    const key = endKey(a.topicName, a.partition)
    const count = counts.get(key)
    if (count === undefined || a.baseOffset === undefined || Number(a.baseOffset) < 0) continue
    ends.set(key, Number(a.baseOffset) + count)
  }
}

/** Partitions a request writes to; `topic/*` (the partitioner decides) may be any number. */
function partitionCount(keys: readonly string[]): number {
  return keys.some((k) => k.endsWith('/*')) ? Infinity : new Set(keys).size
}

function groupByTopic(records: readonly TargetRecord[]): Map<string, Message[]> {
  const byTopic = new Map<string, Message[]>()
  for (const r of records) {
    const messages = byTopic.get(r.topic) ?? []
    messages.push({
      key: r.key,
      value: r.value,
      ...(r.partition === undefined ? {} : { partition: r.partition }),
      // Ferry's kafkajs fork (packages/kafkajs) writes a list in order, null values as null (the typings say object).
      ...(r.headers === undefined ? {} : { headers: r.headers as unknown as Message['headers'] }),
      ...(r.timestamp === undefined ? {} : { timestamp: r.timestamp }),
    })
    byTopic.set(r.topic, messages)
  }
  return byTopic
}

function produceError(error: unknown, cluster: string, topics: readonly string[]): FerryError {
  const rejection = rejectionType(error)
  if (rejection !== undefined) {
    const what = rejection === 'UNENCODABLE' ? `could not encode records for ${topics.join(', ')} for cluster "${cluster}": ${errorMessage(error)}` : `cluster "${cluster}" rejected records for ${topics.join(', ')}: ${rejection}`
    return new FerryError('TARGET_REJECTED', what, {
      cause: error,
      retriable: false,
      context: { cluster, kafkaError: rejection },
    })
  }
  const chain = JSON.stringify(String((error as Error)?.message ?? error)) + String((error as { type?: string })?.type ?? '')
  if (/PRODUCER_FENCED|INVALID_PRODUCER_EPOCH|fenced/i.test(chain)) {
    return new FerryError('FENCED', `cluster "${cluster}": this transactional producer was fenced by a newer owner of the partition`, { cause: error, retriable: false, context: { cluster } })
  }
  return classifyKafkaError(error, cluster, `produce to ${topics.join(', ')}`)
}

/**
 * A transactional producer for exactly-once groups: `sendAtomically` writes records (data plus
 * the checkpoint) in one transaction. One per source partition, with a transactional id derived
 * from deployment, group and source partition: whoever owns the partition next opens the same
 * id, and the broker fences the previous owner (its open transaction is aborted, its commits
 * fail with FENCED).
 */
export interface TransactionalProducer {
  readonly transactionalId: string
  /** Opens (and thereby fences) the transactional id; call before reading checkpoints. */
  fence(): Promise<void>
  sendAtomically(records: readonly TargetRecord[]): Promise<void>
  /** As TargetProducer.acknowledgedEnd, for committed transactions (the commit marker follows). */
  acknowledgedEnd(topic: string, partition: number): number | undefined
  close(): Promise<void>
}

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
      await inTransaction(topics, async (txn) => {
        // In record batches under the target's size limit, all in the one transaction.
        for (const chunk of chunkRecords(records, options.maxBatchBytes ?? DEFAULT_MAX_BATCH_BYTES)) {
          const byTopic = groupByTopic(chunk)
          const acknowledged = await txn.sendBatch({ acks: -1, timeout: options.requestTimeoutMs ?? 30000, compression: compressionType(options.compression ?? 'none'), topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) })
          const missing = unacknowledged(chunk, acknowledged)
          // Aborts the transaction (inTransaction): nothing of it becomes visible.
          if (missing.length > 0) throw new FerryError('NOT_ACKNOWLEDGED', `cluster "${cluster.name}" did not acknowledge ${missing.join(', ')} in a transaction`, { retriable: true, context: { cluster: cluster.name } })
          noteEnds(pending, chunk, acknowledged)
        }
      })
      // Committed: now they count.
      for (const [key, end] of pending) ends.set(key, end)
    },
    async close() {
      await producer.disconnect().catch(() => undefined)
    },
  }
}
