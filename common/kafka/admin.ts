/**
 * The kafkajs implementation of the port's `KafkaAdmin` (common/kafka/port.ts): topic and
 * partition discovery, offsets, topic configs and creation, consumer group offsets and topic
 * ACLs. Connects lazily, reconnects after a failure, and turns every error into a classified
 * FerryError.
 */
import type { Admin } from 'kafkajs'
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ConfigResourceTypes, Kafka, ResourcePatternTypes } from './kafkajs.js'
import type { AdminOptions, GroupOffset, KafkaAdmin, PartitionOffsets, TopicReadAcl } from './port.js'
import type { ClusterSpec } from '../config.js'
import { FerryError } from '../errors.js'
import { classifyKafkaError, kafkaClientConfig } from './client-config.js'

export type { AdminOptions, CreateTopicRequest, GroupOffset, KafkaAdmin, PartitionOffsets, StableOffsets, TopicReadAcl } from './port.js'

/** Kafka's isolation level 0: offsets counting records of transactions still open. */
const READ_UNCOMMITTED = 0

/** Moved to common/topic-configs.ts (the allow and deny lists and the sync plan); kept here for existing imports. */
export { MIRRORED_TOPIC_CONFIGS } from '../topic-configs.js'

/** Without `withHigh` the high watermark is not asked for (one round trip fewer) and `high` is the last stable offset. */
async function readOffsets(a: Admin, topic: string, withHigh: boolean): Promise<PartitionOffsets[]> {
  // kafkajs asks for read_committed offsets unless told otherwise (our fork, packages/kafkajs, adds the option).
  const fetch = a.fetchTopicOffsets as (topic: string, options?: { isolationLevel?: number }) => ReturnType<Admin['fetchTopicOffsets']>
  // In this order, not in parallel: the last stable offset read first cannot exceed the high watermark read after it.
  const committed = await fetch(topic)
  const uncommitted = withHigh ? new Map((await fetch(topic, { isolationLevel: READ_UNCOMMITTED })).map((o) => [o.partition, Number(o.high)])) : undefined
  const offsets = committed
    .map((o) => ({ partition: o.partition, low: Number(o.low), stable: Number(o.high), high: uncommitted === undefined ? Number(o.high) : (uncommitted.get(o.partition) ?? Number.NaN) }))
    .sort((x, y) => x.partition - y.partition)
  const bad = offsets.find((o) => !Number.isSafeInteger(o.low) || !Number.isSafeInteger(o.high) || o.low > o.stable || o.stable > o.high)
  if (bad) throw new FerryError('KAFKA_ERROR', `inconsistent offsets for ${topic}[${bad.partition}]: log start ${bad.low}, last stable ${bad.stable}, high watermark ${bad.high}`, { retriable: true })
  return offsets
}

const ACL_OPERATIONS = { READ: AclOperationTypes.READ, DESCRIBE: AclOperationTypes.DESCRIBE } as const

export function createKafkaAdmin(cluster: ClusterSpec, options: AdminOptions): KafkaAdmin {
  let admin: Admin | undefined
  let connecting: Promise<Admin> | undefined

  const connected = (): Promise<Admin> => {
    if (admin) return Promise.resolve(admin)
    connecting ??= (async () => {
      const client = new Kafka(kafkaClientConfig(cluster, { ...options, retries: 2 })).admin()
      try {
        await client.connect()
      } catch (error) {
        await client.disconnect().catch(() => undefined)
        throw error
      }
      admin = client
      return client
    })().finally(() => {
      connecting = undefined
    })
    return connecting
  }

  // Calls run one at a time: kafkajs' admin keeps per-cluster mutable state (target topics,
  // metadata) that concurrent fetchTopicOffsets calls corrupt: seen here as a log start offset
  // equal to the high watermark, or "Cannot destructure property 'partitions' of 'low.pop(...)'".
  // A wrong log start would make a worker skip records, so correctness wins over parallelism.
  let queue: Promise<unknown> = Promise.resolve()
  // On failure drop the connection, so the next call starts clean (e.g. after a CA fix or broker restart).
  const run = <T>(action: string, fn: (a: Admin) => Promise<T>): Promise<T> => {
    const call = queue.then(async () => {
      try {
        return await fn(await connected())
      } catch (error) {
        const failed = admin
        admin = undefined
        await failed?.disconnect().catch(() => undefined)
        throw classifyKafkaError(error, cluster.name, action)
      }
    })
    queue = call.catch(() => undefined)
    return call
  }

  return {
    cluster: cluster.name,
    clusterId: () =>
      run('read cluster metadata', async (a) => {
        const { clusterId } = await a.describeCluster()
        // Metadata v0/v1 (brokers before 0.10.1) carry no id: nothing Ferry could tell clusters apart by.
        if (typeof clusterId !== 'string' || clusterId.length === 0) throw new FerryError('KAFKA_ERROR', `cluster "${cluster.name}" reports no cluster id`, { retriable: false })
        return clusterId
      }),
    listTopics: () => run('list topics', (a) => a.listTopics()),
    partitionCounts: (topics) =>
      run('read topic metadata', async (a) => {
        const counts = new Map<string, number>()
        if (topics.length === 0) return counts
        const existing = new Set(await a.listTopics())
        const present = topics.filter((t) => existing.has(t))
        if (present.length === 0) return counts
        const metadata = await a.fetchTopicMetadata({ topics: present })
        for (const topic of metadata.topics) counts.set(topic.name, topic.partitions.length)
        return counts
      }),
    stableOffsets: (topic) => run(`read offsets of "${topic}"`, (a) => readOffsets(a, topic, false)),
    offsets: (topic) => run(`read offsets of "${topic}"`, (a) => readOffsets(a, topic, true)),
    offsetsForTime: (topic, timestampMs) =>
      run(`find offsets of "${topic}" by time`, async (a) => {
        const [byTime, ends] = [await a.fetchTopicOffsetsByTimestamp(topic, timestampMs), await a.fetchTopicOffsets(topic)]
        const high = new Map(ends.map((o) => [o.partition, Number(o.high)]))
        // kafkajs reports -1 where no record is that recent: start at the end.
        return new Map(byTime.map((o) => [o.partition, Number(o.offset) < 0 ? (high.get(o.partition) ?? 0) : Number(o.offset)]))
      }),
    topicConfigs: (topic) =>
      run(`describe configs of "${topic}"`, async (a) => {
        const result = await a.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] })
        const configs: Record<string, string> = {}
        for (const resource of result.resources) {
          for (const entry of resource.configEntries) {
            // configSource 1 = DYNAMIC_TOPIC_CONFIG: set on the topic itself, not inherited.
            const source = (entry as { configSource?: number }).configSource
            if (!entry.isDefault && source === 1 && entry.configValue !== null) configs[entry.configName] = entry.configValue
          }
        }
        return configs
      }),
    replaceTopicConfigs: (topic, configs) =>
      run(`alter configs of "${topic}"`, async (a) => {
        await a.alterConfigs({
          validateOnly: false,
          resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }],
        })
      }),
    createTopic: (request) =>
      run(`create topic "${request.topic}"`, async (a) => {
        if (!Number.isInteger(request.partitions) || request.partitions < 1) {
          throw new FerryError('INVALID_INPUT', `cannot create topic "${request.topic}" with ${request.partitions} partitions`)
        }
        try {
          return await a.createTopics({
            waitForLeaders: true,
            topics: [
              {
                topic: request.topic,
                numPartitions: request.partitions,
                configEntries: Object.entries(request.configs ?? {}).map(([name, value]) => ({ name, value })),
              },
            ],
          })
        } catch (error) {
          // Created, but the broker kafkajs asked for leaders had not seen the topic yet (kafkajs
          // retries only LEADER_NOT_AVAILABLE): wait for it here instead of failing a done create.
          if ((error as { type?: string }).type !== 'UNKNOWN_TOPIC_OR_PARTITION') throw error
          const deadline = Date.now() + 30000
          for (;;) {
            const found = await a.fetchTopicMetadata({ topics: [request.topic] }).catch(() => undefined)
            if (found?.topics[0]?.partitions.every((p) => p.leader >= 0)) return true
            if (Date.now() > deadline) throw error
            await new Promise((resolve) => setTimeout(resolve, 100))
          }
        }
      }),
    expandTopic: (topic, partitions) =>
      run(`add partitions to "${topic}"`, async (a) => {
        await a.createPartitions({ topicPartitions: [{ topic, count: partitions }] })
      }),
    groupOffsets: (groupId, topic) =>
      run(`read offsets of group "${groupId}"`, async (a) => {
        const [found] = await a.fetchOffsets({ groupId, topics: [topic] })
        // kafkajs reports -1 for a partition the group has no offset for.
        return (found?.partitions ?? [])
          .map((p) => ({ topic, partition: p.partition, offset: Number(p.offset) }))
          .filter((p) => p.offset >= 0)
          .sort((x, y) => x.partition - y.partition)
      }),
    setGroupOffsets: (groupId, offsets) =>
      run(`set offsets of group "${groupId}"`, async (a) => {
        const byTopic = new Map<string, GroupOffset[]>()
        for (const o of offsets) byTopic.set(o.topic, [...(byTopic.get(o.topic) ?? []), o])
        if (byTopic.size === 0) return
        // One commit for all, as a non-member: never joins the group (see the fork's alterConsumerGroupOffsets).
        await a.alterConsumerGroupOffsets({ groupId, topics: [...byTopic].map(([topic, list]) => ({ topic, partitions: list.map((o) => ({ partition: o.partition, offset: String(o.offset) })) })) })
      }),
    createTopicReadAcls: (acls) =>
      run('create ACLs', async (a) => {
        if (acls.length === 0) return
        await a.createAcls({
          acl: acls.map((acl) => ({
            resourceType: AclResourceTypes.TOPIC,
            resourceName: acl.topic,
            resourcePatternType: ResourcePatternTypes.LITERAL,
            principal: acl.principal,
            host: '*',
            operation: ACL_OPERATIONS[acl.operation],
            permissionType: AclPermissionTypes.ALLOW,
          })),
        })
      }),
    describeTopicAcls: (topic) =>
      run(`describe ACLs of "${topic}"`, async (a) => {
        const result = await a.describeAcls({
          resourceType: AclResourceTypes.TOPIC,
          resourceName: topic,
          resourcePatternType: ResourcePatternTypes.LITERAL,
          operation: AclOperationTypes.ANY,
          permissionType: AclPermissionTypes.ALLOW,
        })
        const acls: TopicReadAcl[] = []
        for (const resource of result.resources) {
          for (const acl of resource.acls) {
            const operation = acl.operation === AclOperationTypes.READ ? 'READ' : acl.operation === AclOperationTypes.DESCRIBE ? 'DESCRIBE' : undefined
            if (operation !== undefined && acl.host === '*') acls.push({ principal: acl.principal, topic: resource.resourceName, operation })
          }
        }
        return acls
      }),
    listGroups: () => run('list consumer groups', async (a) => (await a.listGroups()).groups.map((g) => g.groupId).sort()),
    describeGroup: (groupId) =>
      run(`describe group "${groupId}"`, async (a) => {
        const [group] = (await a.describeGroups([groupId])).groups
        return { state: group?.state ?? 'Dead', members: group?.members.length ?? 0 }
      }),
    async disconnect() {
      const current = admin
      admin = undefined
      await current?.disconnect().catch(() => undefined)
    },
  }
}
