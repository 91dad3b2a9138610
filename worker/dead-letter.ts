/**
 * The dead-letter record of a source record the target refused: its key, its value (unless the
 * value was what made it too large), its headers (unless they may have been) and `ferry.*`
 * headers saying where it came from and why. The group's dead-letter topic is created on first use.
 *
 * @example
 *   const letters = createDeadLetters({ group, sourceCluster: 'dc1', targetAdmin })
 *   await producer.send([await letters.letter('orders', 3, record, 'MESSAGE_TOO_LARGE')])
 */
import { deadLetterTopicName, type TopicGroupSpec } from '../common/config.js'
import type { KafkaAdmin } from '../common/kafka/admin.js'
import type { RecordHeader, RecordHeaders, SourceRecord } from '../common/kafka/source-consumer.js'
import { recordIdentity } from '../common/record-identity.js'
import type { TargetRecord } from './target-producer.js'

export interface DeadLetters {
  letter(topic: string, partition: number, source: SourceRecord, reason: string): Promise<TargetRecord>
}

/** Headers larger than this are dropped from the letter of a record refused as too large. */
const MAX_KEPT_HEADER_BYTES = 64 * 1024

function headerBytes(headers: RecordHeaders): number {
  return headers.reduce((n, h) => n + h.key.length + (h.value?.length ?? 0), 0)
}

export function createDeadLetters(deps: { group: TopicGroupSpec; sourceCluster: string; targetAdmin: KafkaAdmin }): DeadLetters {
  const topic = deadLetterTopicName(deps.group)
  let ready = false
  return {
    async letter(sourceTopic, partition, source, reason) {
      if (!ready) {
        await deps.targetAdmin.createTopic({ topic, partitions: 1 })
        ready = true
      }
      const tooLarge = reason === 'MESSAGE_TOO_LARGE' || reason === 'RECORD_LIST_TOO_LARGE'
      const text = (key: string, value: string): RecordHeader => ({ key, value: Buffer.from(value) })
      return {
        topic,
        key: source.key,
        value: tooLarge ? null : source.value,
        headers: [
          // Kept unless they may be what made the record too large.
          ...(tooLarge && headerBytes(source.headers) > MAX_KEPT_HEADER_BYTES ? [] : source.headers),
          text('ferry.source.cluster', deps.sourceCluster),
          text('ferry.source.topic', sourceTopic),
          text('ferry.source.partition', String(partition)),
          text('ferry.source.offset', String(source.offset)),
          text('ferry.source.timestamp', source.timestamp),
          text('ferry.source.value-bytes', String(source.value?.length ?? 0)),
          text('ferry.source.id', recordIdentity(partition, source)),
          text('ferry.error', reason),
        ],
        timestamp: source.timestamp,
      }
    },
  }
}
