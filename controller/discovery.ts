/**
 * Which source partitions a topic group covers right now: its explicit topics, or every
 * topic whose whole name matches its pattern (Ferry's own and Kafka's internal topics never).
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises'
import { groupIncludesTopic, targetTopicProblem, type TopicGroupSpec } from '../common/config.js'
import { FerryError } from '../common/errors.js'
import type { KafkaAdmin } from '../common/kafka/admin.js'
import type { PartitionRef } from './strategies/index.js'

export interface Discovered {
  partitions: PartitionRef[]
  /** Topic → partition count (no prototype: topic names are keys). */
  topics: Record<string, number>
  /** Explicitly listed topics that do not exist on the source. */
  missingTopics: string[]
  /** Matching topics left out because their target name would be longer than Kafka allows. */
  unmirrorable: string[]
}

/** Longest the matching may hold the event loop before it lets other work (probes, API) run. */
const MATCH_SLICE_MS = 10

/** The topics matching a group's pattern, yielding to the event loop between slices of work. */
async function matchingTopics(group: TopicGroupSpec, topics: readonly string[]): Promise<string[]> {
  const matched: string[] = []
  let sliceStart = Date.now()
  for (const topic of topics) {
    if (!isInternalTopic(topic) && groupIncludesTopic(group, topic)) matched.push(topic)
    if (Date.now() - sliceStart >= MATCH_SLICE_MS) {
      await yieldToEventLoop()
      sliceStart = Date.now()
    }
  }
  return matched
}

export function isInternalTopic(topic: string): boolean {
  return topic.startsWith('__') || topic.startsWith('_ferry.') || topic.startsWith('_confluent')
}

export async function discoverPartitions(group: TopicGroupSpec, admin: KafkaAdmin): Promise<Discovered> {
  const matched = group.topics ?? (await matchingTopics(group, await admin.listTopics()))
  const unmirrorable = matched.filter((t) => targetTopicProblem(group, t) !== undefined)
  const candidates = matched.filter((t) => targetTopicProblem(group, t) === undefined)
  const counts = await admin.partitionCounts([...candidates].sort())
  const partitions: PartitionRef[] = []
  const topics = Object.create(null) as Record<string, number>
  for (const [topic, count] of [...counts].sort(([a], [b]) => a.localeCompare(b))) {
    topics[topic] = count
    for (let partition = 0; partition < count; partition++) partitions.push({ group: group.name, topic, partition })
  }
  const missingTopics = candidates.filter((t) => !counts.has(t))
  return { partitions, topics, missingTopics, unmirrorable }
}

export function missingTopicsError(group: string, cluster: string, missing: readonly string[]): FerryError {
  return new FerryError('TOPIC_NOT_FOUND', `topic(s) ${missing.join(', ')} of group "${group}" do not exist on source cluster "${cluster}"`, {
    context: { group, cluster },
  })
}
