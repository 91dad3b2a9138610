/**
 * What the target producers (target-producer.ts, transactional-producer.ts) share: the record
 * they write, its size and chunking into record batches, the acknowledgement checks and how a
 * failed produce is classified (a refusal no retry can help, a fence, or a Kafka error).
 */
import type { Message, RecordMetadata } from 'kafkajs'
import { FerryError, errorMessage, isProgrammerError } from '../common/errors.js'
import { classifyKafkaError } from '../common/kafka/client-config.js'
import type { Placement, TargetRecord } from '../common/kafka/port.js'
import { partitionKey } from '../common/worker-report.js'

export type { TargetRecord } from '../common/kafka/port.js'

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


/** Approximate encoded size of a record: key, value, header keys and values, framing. */
function sizeOf(r: TargetRecord): number {
  let bytes = 24 + (r.key?.length ?? 0) + (r.value?.length ?? 0)
  for (const header of r.headers ?? []) bytes += header.key.length + 8 + (header.value?.length ?? 0)
  return bytes
}

/** Splits records, in order, into chunks of at most `maxBytes` (a larger record is a chunk of its own), with their sizes. */
export function sizedChunks(records: readonly TargetRecord[], maxBytes: number): Array<{ records: TargetRecord[]; bytes: number }> {
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
export const DEFAULT_MAX_BATCH_BYTES = 512 * 1024

/**
 * `topic[partition]` of every explicit partition of `records` that has no error-free answer in
 * `acknowledged`, and `topic` for a topic without any answer (records the partitioner placed).
 */
export function unacknowledged(records: readonly TargetRecord[], acknowledged: readonly RecordMetadata[]): string[] {
  const answered = new Set<string>()
  const topics = new Set<string>()
  for (const a of acknowledged) {
    if (a.errorCode !== 0) continue
    answered.add(endKey(a.topicName, a.partition))
    topics.add(a.topicName)
  }
  const missing = new Set<string>()
  for (const r of records) {
    if (r.partition === undefined ? !topics.has(r.topic) : !answered.has(endKey(r.topic, r.partition))) missing.add(r.partition === undefined ? r.topic : `${r.topic}[${r.partition}]`)
  }
  return [...missing]
}

export function endKey(topic: string, partition: number): string {
  return partitionKey({ topic, partition })
}

/**
 * Records in `ends` where each explicitly addressed partition of an acknowledged request now ends
 * on the target, and returns where the request's records went (one placement per partition, in
 * the order the records name them).
 */
export function noteEnds(ends: Map<string, number>, records: readonly TargetRecord[], acknowledged: readonly RecordMetadata[]): Placement[] {
  const counts = new Map<string, { topic: string; partition: number; count: number }>()
  for (const r of records) {
    if (r.partition === undefined) continue
    const key = endKey(r.topic, r.partition)
    const seen = counts.get(key)
    if (seen === undefined) counts.set(key, { topic: r.topic, partition: r.partition, count: 1 })
    else seen.count++
  }
  const bases = new Map<string, number>()
  for (const a of acknowledged) {
    const key = endKey(a.topicName, a.partition)
    const count = counts.get(key)?.count
    if (count === undefined || a.baseOffset === undefined || Number(a.baseOffset) < 0) continue
    bases.set(key, Number(a.baseOffset))
    ends.set(key, Number(a.baseOffset) + count)
  }
  const placements: Placement[] = []
  for (const [key, c] of counts) {
    const baseOffset = bases.get(key)
    if (baseOffset !== undefined) placements.push({ topic: c.topic, partition: c.partition, baseOffset, count: c.count })
  }
  return placements
}

/** Partitions a request writes to; `topic/*` (the partitioner decides) may be any number. */
export function partitionCount(keys: readonly string[]): number {
  return keys.some((k) => k.endsWith('/*')) ? Infinity : new Set(keys).size
}

export function groupByTopic(records: readonly TargetRecord[]): Map<string, Message[]> {
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

export function produceError(error: unknown, cluster: string, topics: readonly string[]): FerryError {
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

