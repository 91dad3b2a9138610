/**
 * Target topics of a group: each source topic's target exists, created with the source's
 * partition count and mirrored configs, and (partitions kept) grown when the source grew.
 *
 * @example
 *   const { usable, failed } = await ensureTargetTopics(deps, ['orders', 'payments'])
 */
import { targetTopicName, type TopicGroupSpec } from '../common/config.js'
import { FerryError, errorMessage } from '../common/errors.js'
import type { KafkaAdmin } from '../common/kafka/admin.js'
import type { Logger } from '../common/logger.js'
import { planTopicConfigs } from '../common/topic-configs.js'

export interface TargetTopicsDeps {
  group: TopicGroupSpec
  sourceCluster: string
  sourceAdmin: KafkaAdmin
  targetAdmin: KafkaAdmin
  log: Logger
}

export interface TargetTopics {
  /** Source topics whose target can take their partitions. */
  usable: Set<string>
  /** Source topics that cannot be mirrored now, with why. */
  failed: Map<string, FerryError>
}

export async function ensureTargetTopics(deps: TargetTopicsDeps, topics: readonly string[]): Promise<TargetTopics> {
  const { group, log } = deps
  const result: TargetTopics = { usable: new Set(), failed: new Map() }
  const sourceCounts = await deps.sourceAdmin.partitionCounts(topics)
  const targetCounts = await deps.targetAdmin.partitionCounts(topics.map((t) => targetTopicName(group, t)))
  for (const topic of topics) {
    const sourceCount = sourceCounts.get(topic)
    const targetTopic = targetTopicName(group, topic)
    if (sourceCount === undefined) {
      result.failed.set(topic, new FerryError('TOPIC_NOT_FOUND', `source topic "${topic}" does not exist on cluster "${deps.sourceCluster}"`))
      continue
    }
    let targetCount = targetCounts.get(targetTopic)
    if (targetCount === undefined) {
      // The source's allow-listed configs, the group's overrides winning (the same rule as the controller's sync, controller/topic-follow.ts).
      const configs = { ...planTopicConfigs(await deps.sourceAdmin.topicConfigs(topic), {}, group.topicConfigs?.overrides).next }
      const created = await deps.targetAdmin.createTopic({ topic: targetTopic, partitions: sourceCount, configs })
      if (created) log.info({ event: 'worker.target_topic_created', topic: targetTopic, partitions: sourceCount, configs }, 'created target topic')
      targetCount = (await deps.targetAdmin.partitionCounts([targetTopic])).get(targetTopic) ?? sourceCount
    }
    if (group.preservePartition && targetCount < sourceCount) {
      // The source topic grew: grow the target with it, so partition numbers stay the same.
      try {
        await deps.targetAdmin.expandTopic(targetTopic, sourceCount)
        log.info({ event: 'worker.target_topic_expanded', topic: targetTopic, from: targetCount, to: sourceCount }, 'added partitions to target topic')
        targetCount = sourceCount
      } catch (error) {
        // Another worker may have expanded it first; re-read before giving up.
        targetCount = (await deps.targetAdmin.partitionCounts([targetTopic])).get(targetTopic) ?? targetCount
        if (targetCount < sourceCount) log.warn({ event: 'worker.target_expand_failed', topic: targetTopic, err: errorMessage(error) }, 'could not add partitions to target topic')
      }
    }
    if (group.preservePartition && targetCount < sourceCount) {
      result.failed.set(
        topic,
        new FerryError('TARGET_REJECTED', `target topic "${targetTopic}" has ${targetCount} partitions but source topic "${topic}" has ${sourceCount}; partitions are kept, so the target needs at least as many (add partitions or set preservePartition false)`),
      )
      continue
    }
    result.usable.add(topic)
  }
  return result
}
