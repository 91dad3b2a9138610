/**
 * Kafka clusters as the controller reads them (common/kafka/cluster-admins.ts), in memory: topics
 * with partition counts and source end offsets per cluster. Only what discovery
 * (controller/discovery.ts) and the healer's source-end reads call is faked; anything else throws.
 * A cluster can be made unreachable: every call on it rejects.
 *
 * @example
 *   const kafka = createFakeKafka()
 *   kafka.topic('src', 'orders', 4)
 *   kafka.setEnd('src', 'orders', 0, 120)
 */
import type { ClusterSpec } from '../../../common/config.js'
import type { KafkaAdmin, StableOffsets } from '../../../common/kafka/admin.js'
import type { ClusterAdmins } from '../../../common/kafka/cluster-admins.js'

export interface FakeKafka extends ClusterAdmins {
  /** Creates or resizes a topic on a cluster. */
  topic(cluster: string, topic: string, partitions: number): void
  deleteTopic(cluster: string, topic: string): void
  /** The stable end offset of a partition (default 0). */
  setEnd(cluster: string, topic: string, partition: number, end: number): void
  /** Every call on the cluster rejects with this error until set back to null. */
  setUnreachable(cluster: string, error: Error | null): void
  /** Calls made, as `cluster method topic?`, oldest first. */
  readonly calls: readonly string[]
}

export function createFakeKafka(): FakeKafka {
  const topics = new Map<string, Map<string, number>>()
  const ends = new Map<string, number>()
  const down = new Map<string, Error>()
  const calls: string[] = []
  const topicsOf = (cluster: string): Map<string, number> => {
    let map = topics.get(cluster)
    if (map === undefined) topics.set(cluster, (map = new Map()))
    return map
  }
  const reach = async (cluster: string, call: string): Promise<Map<string, number>> => {
    calls.push(`${cluster} ${call}`)
    await Promise.resolve()
    const error = down.get(cluster)
    if (error !== undefined) throw error
    return topicsOf(cluster)
  }
  const notFaked = (name: string) => (): never => {
    throw new Error(`FakeKafka: ${name} is not faked`)
  }
  const admin = (cluster: string): KafkaAdmin => ({
    cluster,
    async listTopics() {
      return [...(await reach(cluster, 'listTopics')).keys()].sort()
    },
    async partitionCounts(wanted) {
      const all = await reach(cluster, 'partitionCounts')
      return new Map(wanted.flatMap((t) => (all.has(t) ? [[t, all.get(t) as number] as const] : [])))
    },
    async stableOffsets(topic): Promise<StableOffsets[]> {
      const count = (await reach(cluster, `stableOffsets ${topic}`)).get(topic) ?? 0
      return Array.from({ length: count }, (_, partition) => ({ partition, low: 0, stable: ends.get(`${cluster}/${topic}/${partition}`) ?? 0 }))
    },
    clusterId: notFaked('clusterId'),
    offsets: notFaked('offsets'),
    offsetsForTime: notFaked('offsetsForTime'),
    topicConfigs: notFaked('topicConfigs'),
    replaceTopicConfigs: notFaked('replaceTopicConfigs'),
    createTopic: notFaked('createTopic'),
    expandTopic: notFaked('expandTopic'),
    groupOffsets: notFaked('groupOffsets'),
    setGroupOffsets: notFaked('setGroupOffsets'),
    createTopicReadAcls: notFaked('createTopicReadAcls'),
    describeTopicAcls: notFaked('describeTopicAcls'),
    listGroups: notFaked('listGroups'),
    describeGroup: notFaked('describeGroup'),
    disconnect: async () => undefined,
  })
  return {
    get: (spec: ClusterSpec) => admin(spec.name),
    clients: {
      name: 'fake',
      admin: (spec: ClusterSpec) => admin(spec.name),
      sourceConsumer: () => {
        throw new Error('the fake Kafka has no source consumer')
      },
    },
    closeAll: async () => undefined,
    topic(cluster, topic, partitions) {
      topicsOf(cluster).set(topic, partitions)
    },
    deleteTopic(cluster, topic) {
      topicsOf(cluster).delete(topic)
    },
    setEnd(cluster, topic, partition, end) {
      ends.set(`${cluster}/${topic}/${partition}`, end)
    },
    setUnreachable(cluster, error) {
      if (error === null) down.delete(cluster)
      else down.set(cluster, error)
    },
    calls,
  }
}
