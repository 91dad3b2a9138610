/**
 * Which source partitions a topic group covers right now: its explicit topics, or every
 * topic whose whole name matches its pattern (Ferry's own and Kafka's internal topics never).
 */
import { groupIncludesTopic, type TopicGroupSpec } from '../common/config.js'
import { FerryError } from '../common/errors.js'
import type { KafkaAdmin } from '../common/kafka/admin.js'
import type { PartitionRef } from './strategies/index.js'

export interface Discovered {
  partitions: PartitionRef[]
  topics: Record<string, number>
  /** Explicitly listed topics that do not exist on the source. */
  missingTopics: string[]
}

export function isInternalTopic(topic: string): boolean {
  return topic.startsWith('__') || topic.startsWith('_ferry.') || topic.startsWith('_confluent')
}

export async function discoverPartitions(group: TopicGroupSpec, admin: KafkaAdmin): Promise<Discovered> {
  const candidates = group.topics ?? (await admin.listTopics()).filter((t) => !isInternalTopic(t) && groupIncludesTopic(group, t))
  const counts = await admin.partitionCounts([...candidates].sort())
  const partitions: PartitionRef[] = []
  const topics: Record<string, number> = {}
  for (const [topic, count] of [...counts].sort(([a], [b]) => a.localeCompare(b))) {
    topics[topic] = count
    for (let partition = 0; partition < count; partition++) partitions.push({ group: group.name, topic, partition })
  }
  const missingTopics = candidates.filter((t) => !counts.has(t))
  return { partitions, topics, missingTopics }
}

export function missingTopicsError(group: string, cluster: string, missing: readonly string[]): FerryError {
  return new FerryError('TOPIC_NOT_FOUND', `topic(s) ${missing.join(', ')} of group "${group}" do not exist on source cluster "${cluster}"`, {
    context: { group, cluster },
  })
}
