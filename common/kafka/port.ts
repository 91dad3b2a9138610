/**
 * The Kafka port: every operation Ferry needs from a Kafka client, and the guarantee the data
 * path relies on for each. Ferry's code uses these interfaces; one factory
 * (`KafkaClientFactory`, for kafkajs `kafkajsClients` in worker/kafka-clients.ts, where the
 * producers live; its read half `KafkaReadClients`, `kafkajsReadClients` in
 * common/kafka/kafkajs-clients.ts, is what the controller takes) is where a client library is
 * chosen; only common/kafka/ and the kafkajs producers in worker/ (target-producer.ts,
 * transactional-producer.ts, produce-records.ts) import kafkajs (test/unit/kafka-boundary.test.ts).
 * test/contract/ holds the suite that
 * checks each guarantee below against real brokers, so the kafkajs fork (packages/kafkajs) and
 * any other client are held to the same contract. Each guarantee has a tag (`[G-...]`) that the
 * contract test checking it names.
 *
 * @example
 *   const admin = clients.admin(cluster, { clientId, logger })
 *   const starts = [{ topic: 'orders', partition: 0, offset: (await admin.offsets('orders'))[0].low }]
 *   const consumer = clients.sourceConsumer(cluster, { clientId, groupId, logger })
 *   await consumer.start(starts, async (batch) => { await producer.send(toTarget(batch)) })
 */
import type { ClusterSpec, TargetCompression } from '../config.js'
import type { Logger } from '../logger.js'

// ---------------------------------------------------------------------------------------------
// Records

/** One record header. A value may be null (Java `new RecordHeader("k", null)`, `kcat -H k`). */
export interface RecordHeader {
  key: string
  value: Buffer | null
}

/**
 * A record's headers: an ordered list in which a key may repeat, kept exactly as on the wire.
 * [G-HEADERS] A fetched record's headers are the produced ones, in order, repeated keys and null
 * values included; a produced record's headers reach the broker the same way.
 */
export type RecordHeaders = readonly RecordHeader[]

export interface SourceRecord {
  offset: number
  key: Buffer | null
  value: Buffer | null
  headers: RecordHeaders
  /** Milliseconds since the epoch, as Kafka stores it (CreateTime or LogAppendTime, whichever the topic keeps). */
  timestamp: string
}

export interface SourceBatch {
  topic: string
  partition: number
  /** Source high watermark when the batch was fetched. */
  highWatermark: number
  records: SourceRecord[]
}

/** A record to write. */
export interface TargetRecord {
  topic: string
  /** Omit to let the producer partition by key (Java-compatible murmur2, as the Java client's default partitioner). */
  partition?: number
  key: Buffer | string | null
  value: Buffer | string | null
  headers?: RecordHeaders
  /** Milliseconds since the epoch; the broker's CreateTime is kept as given. */
  timestamp?: string
}

// ---------------------------------------------------------------------------------------------
// Fetch: explicit partitions from explicit offsets

export interface PartitionStart {
  topic: string
  partition: number
  /** First offset to read. */
  offset: number
}

/**
 * Thrown by a batch handler that handled part of a batch: the partition resumes at
 * `resumeOffset` (not at the batch start) once `resumeAt` is called.
 */
export class PartialBatchError extends Error {
  constructor(
    readonly resumeOffset: number,
    readonly reason: unknown,
  ) {
    super(reason instanceof Error ? reason.message : String(reason))
    this.name = 'PartialBatchError'
  }
}

export interface SourceConsumerOptions {
  clientId: string
  /** Private group id, unique to this consumer instance (a client that can assign partitions without a group may ignore it). */
  groupId: string
  logger: Logger
  /** Longest a fetch waits for data; default 250 ms. */
  maxWaitMs?: number
  /** Batches processed at once, each from a different partition; default min(partitions, 8). */
  partitionsConsumedConcurrently?: number
  /** Per-partition fetch size; default 1 MiB. */
  maxBytesPerPartition?: number
  /** The handler failed for a partition: it is paused at its position until `resumeAt`. */
  onPartitionError?: (topic: string, partition: number, error: unknown) => void
  /** The consumer died and will not restart by itself. */
  onCrash?: (error: unknown) => void
  /**
   * After every fetched batch, even one that held only transaction markers or aborted records
   * (those never reach the handler): the last offset it covered.
   */
  onBatchEnd?: (topic: string, partition: number, lastOffset: number) => void
}

/**
 * Reads exactly the given partitions from the given offsets. Guarantees:
 * - [G-FETCH-EXACT] The handler sees the given partitions only, each from its start offset on
 *   (never a record below it), in offset order, one batch of a partition at a time; nothing is
 *   committed to the source cluster.
 * - [G-READ-COMMITTED] Isolation is read_committed: records of aborted transactions never reach
 *   the handler, nor do control records (commit/abort markers); records of open transactions
 *   wait until their transaction ends. Non-transactional and committed records all arrive, in
 *   every codec a Java producer writes (none, gzip, snappy, lz4, zstd).
 * - [G-PAST-MARKERS] A reader waiting for the high watermark gets there: `onBatchEnd` reports
 *   offsets covered by batches of markers or aborted records too, so the last offset it reports
 *   reaches high watermark − 1 even when the log ends with a marker.
 * - [G-RECORD-EXACT] key, value (null stays null, empty stays empty), headers ([G-HEADERS]) and
 *   timestamp are as the broker stored them.
 * - [G-PAUSE] A partition whose handler failed is paused at its position (or at a
 *   `PartialBatchError`'s resume offset) until `resumeAt`, which reads it again from there.
 * - [G-RELEASE] `release` of some partitions resolves after their batch being handled has
 *   finished; no batch of theirs reaches the handler afterwards, while the other partitions go on
 *   being read on the same consumer.
 */
export interface SourceConsumer {
  start(partitions: readonly PartitionStart[], handler: (batch: SourceBatch) => Promise<void>): Promise<void>
  /** Next offset to read for each consumed partition (after the batches handled so far), keyed by `partitionKey` (common/worker-report.ts). */
  positions(): ReadonlyMap<string, number>
  /** Seeks and resumes a paused partition; false when the consumer cannot right now (try later). */
  resumeAt(topic: string, partition: number, offset: number): boolean
  /**
   * Stops reading these partitions (an assignment moved them away) while the others go on:
   * resolves once their batches being handled have finished; no batch of theirs is handed over
   * afterwards, and their positions are forgotten. Idempotent.
   */
  release(partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<void>
  /** Idempotent; batches being handled finish first. */
  stop(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Produce

export interface ProducerOptions {
  clientId: string
  logger: Logger
  /** How long the broker may take to gather acknowledgements of a request; default 30000. */
  requestTimeoutMs?: number
  /** Codec of the batches written; default none. */
  compression?: TargetCompression
  /** Records of one send go in record batches of about this many bytes at most; default 512 KiB. */
  maxBatchBytes?: number
}

/**
 * The at-least-once producer: idempotent, acks=all, no auto topic creation. Guarantees:
 * - [G-ACKED] `send` resolves only when every record is acknowledged by all in-sync replicas;
 *   a record for a partition added after the client read its metadata is written too, never
 *   silently left out of the request.
 * - [G-ORDER] Records of one partition are written in the order sent, across sends.
 * - [G-UNANSWERED] A send the broker wrote but never answered (a timeout, a broker killed or
 *   frozen mid-request) fails; the records sent next to that partition are all written and none
 *   is dropped as a duplicate or refused as out of order. Sequence numbers are reused only by a
 *   retry of the very same batch (which idempotence makes safe); otherwise the producer id is
 *   replaced. The unanswered records may be written once (at-least-once).
 * - [G-REJECTED] A record the broker refuses for what it is (too large, invalid) fails the send
 *   with `FerryError` code TARGET_REJECTED, retriable false, and the partition takes the next
 *   records. (The kafkajs producer also tells how many leading records of a failed send were
 *   written, `acknowledgedCount` in worker/target-producer.ts; the contract does not check it.)
 */
/**
 * Where a send's records of one target partition were written: `count` records from `baseOffset`
 * on, in the order sent. A send whose records went out in several requests has one placement per
 * request and partition, in the order written.
 */
export interface Placement {
  topic: string
  partition: number
  baseOffset: number
  count: number
}

export interface TargetProducer {
  /**
   * Resolves once every record is acknowledged by the target (acks=all). [G-PLACED] With where
   * they were written, when the client knows it: records of explicit partitions only, in send
   * order (Ferry's offset translation relies on it; a client that resolves with nothing gives none).
   */
  send(records: readonly TargetRecord[]): Promise<readonly Placement[] | void>
  /**
   * The target offset after the last record this producer had acknowledged in `topic`
   * `partition` (its base offset plus its records), or undefined before any: the target's log
   * must reach at least this far, or acknowledged records are gone from it.
   */
  acknowledgedEnd(topic: string, partition: number): number | undefined
  close(): Promise<void>
}

/**
 * The exactly-once producer, one per transactional id. Guarantees:
 * - [G-ATOMIC] `sendAtomically` writes all its records in one transaction, committed before it
 *   resolves; when it fails the transaction is aborted and read_committed readers see none of it.
 * - [G-FENCED] Opening the same transactional id elsewhere (`fence`) aborts this producer's open
 *   transaction; every later `sendAtomically` of this producer fails with `FerryError` code
 *   FENCED (not retriable) and writes nothing a read_committed reader sees.
 * - [G-ATOMIC-AFTER-FAILURE] After a failed `sendAtomically` (a record refused while other
 *   partitions of the same request were written), the next one commits all its records: none is
 *   taken for a duplicate of the aborted ones, none refused as out of order. The data path relies
 *   on it (batch-mirror.ts retries the halves of a refused batch with the same producer);
 *   kafkajs breaks it today (test/contract/kafkajs.test.ts, docs/design-notes.md).
 */
export interface TransactionalProducer {
  readonly transactionalId: string
  /** Opens (and thereby fences) the transactional id; call before reading checkpoints. */
  fence(): Promise<void>
  /** Resolves once committed, with where the records were written (as `TargetProducer.send`). */
  sendAtomically(records: readonly TargetRecord[]): Promise<readonly Placement[] | void>
  /** As TargetProducer.acknowledgedEnd, for committed transactions (the commit marker follows). */
  acknowledgedEnd(topic: string, partition: number): number | undefined
  close(): Promise<void>
}

// ---------------------------------------------------------------------------------------------
// Admin

export interface StableOffsets {
  partition: number
  /** Log start offset. */
  low: number
  /**
   * Last stable offset: the end of what a read_committed reader can see now. Short of the high
   * watermark while a transaction is open (its first record and everything after it wait for its end).
   */
  stable: number
}

export interface PartitionOffsets extends StableOffsets {
  /** High watermark: the offset the next record will get (records of open transactions included). */
  high: number
}

export interface CreateTopicRequest {
  topic: string
  partitions: number
  configs?: Record<string, string>
}

/** A consumer group's committed offset for one partition. */
export interface GroupOffset {
  topic: string
  partition: number
  /** Next offset the group will read. */
  offset: number
}

/** An ACL on a topic (literal name) that lets `principal` read it from any host. */
export interface TopicReadAcl {
  /** E.g. `User:mirror`. */
  principal: string
  topic: string
  operation: 'READ' | 'DESCRIBE'
}

/**
 * Admin operations. Every failure is a classified `FerryError` (KAFKA_UNREACHABLE, KAFKA_TLS_FAILED,
 * KAFKA_AUTH_FAILED, KAFKA_ERROR) naming the cluster and never a secret. Guarantees:
 * - [G-OFFSETS] `offsets`: log start ≤ last stable ≤ high watermark, per partition, in partition
 *   order; the last stable offset stops at the first record of a transaction still open.
 * - [G-OFFSETS-BY-TIME] `offsetsForTime`: per partition, the first offset whose timestamp is at
 *   or after the time; the high watermark where no record is that recent.
 * - [G-TOPICS] `createTopic` is false for a topic that exists (never an error), `partitionCounts`
 *   leaves out topics that do not exist, `topicConfigs` returns only configs set on the topic.
 * - [G-GROUP-OFFSETS] `groupOffsets` returns what `setGroupOffsets` wrote; setting offsets of a
 *   group with live members fails and changes nothing.
 * - [G-ACLS] `createTopicReadAcls` is idempotent, and `describeTopicAcls` lists what it created.
 */
export interface KafkaAdmin {
  readonly cluster: string
  /**
   * The cluster's id from its metadata (KRaft's `cluster.id`; the id a ZooKeeper-mode cluster
   * generated): the same through every listener and for every client, unlike Ferry's name for it.
   */
  clusterId(): Promise<string>
  listTopics(): Promise<string[]>
  /** Partition count per topic; topics that do not exist are absent from the map. */
  partitionCounts(topics: readonly string[]): Promise<Map<string, number>>
  /** Log start and last stable offset per partition: what consumers can read now (one round trip fewer than `offsets`). */
  stableOffsets(topic: string): Promise<StableOffsets[]>
  /** Log start, last stable offset and high watermark per partition. */
  offsets(topic: string): Promise<PartitionOffsets[]>
  /**
   * Per partition, the first offset whose record timestamp is at or after `timestampMs`
   * (the high watermark when there is none).
   */
  offsetsForTime(topic: string, timestampMs: number): Promise<Map<number, number>>
  /** Configs set explicitly on the topic (not broker defaults). */
  topicConfigs(topic: string): Promise<Record<string, string>>
  /**
   * Replaces every config set on the topic with `configs` (AlterConfigs is not incremental: a
   * config left out returns to the broker default), so pass the topic's current ones too.
   */
  replaceTopicConfigs(topic: string, configs: Record<string, string>): Promise<void>
  /** Creates the topic; false when it already existed. */
  createTopic(request: CreateTopicRequest): Promise<boolean>
  /** Adds partitions up to `partitions` (never removes). */
  expandTopic(topic: string, partitions: number): Promise<void>
  /** The committed offsets of consumer group `groupId` for `topic`; partitions without one are absent. */
  groupOffsets(groupId: string, topic: string): Promise<GroupOffset[]>
  /** Writes committed offsets of a group that has no live members (a group being moved or prepared). */
  setGroupOffsets(groupId: string, offsets: readonly GroupOffset[]): Promise<void>
  /** ALLOW ACLs on literal topic names, for any host. */
  createTopicReadAcls(acls: readonly TopicReadAcl[]): Promise<void>
  /** The ALLOW ACLs on the literal topic name that are READ or DESCRIBE, any host. */
  describeTopicAcls(topic: string): Promise<TopicReadAcl[]>
  /** Ids of the cluster's consumer groups (any state). */
  listGroups(): Promise<string[]>
  /** A consumer group's state (`Empty`, `Stable`, `Dead` for one that does not exist, ...) and live members. */
  describeGroup(groupId: string): Promise<{ state: string; members: number }>
  disconnect(): Promise<void>
}

export interface AdminOptions {
  clientId: string
  logger: Logger
}

// ---------------------------------------------------------------------------------------------
// The factory: the one place a client library is chosen

/** Builds every client Ferry uses for one cluster definition (TLS, SASL and secrets read from it). */
/** The clients that only read and administer: what the controller needs (discovery, status, audits). */
export interface KafkaReadClients {
  /** Which client library, for logs and benchmark reports (e.g. `kafkajs 2.2.4-ferry.2`). */
  readonly name: string
  /** Connects lazily, on first use, and reconnects after a failure. */
  admin(cluster: ClusterSpec, options: AdminOptions): KafkaAdmin
  sourceConsumer(cluster: ClusterSpec, options: SourceConsumerOptions): SourceConsumer
}

export interface KafkaClientFactory extends KafkaReadClients {
  targetProducer(cluster: ClusterSpec, options: ProducerOptions): Promise<TargetProducer>
  transactionalProducer(cluster: ClusterSpec, transactionalId: string, options: ProducerOptions): Promise<TransactionalProducer>
}
