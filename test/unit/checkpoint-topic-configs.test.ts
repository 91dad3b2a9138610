/**
 * The checkpoint store's topic set-up when the cluster will not let it change configs: mirroring
 * must go on (a slow read is better than no mirroring), with a warning that says so.
 */
import { expect } from 'chai'
import type { ClusterSpec } from '../../common/config.js'
import type { KafkaAdmin } from '../../common/kafka/admin.js'
import { CHECKPOINT_TOPIC_CONFIGS, createCheckpointStore } from '../../worker/checkpoint-store.js'
import { FerryError } from '../../common/errors.js'
import { captureLogs } from '../log-capture.js'

/** An admin whose checkpoint topic already exists with `configs`; altering them fails with `alterError`. */
function fakeAdmin(configs: Record<string, string>, alterError?: Error): KafkaAdmin & { calls: string[] } {
  const calls: string[] = []
  const unused = (): never => {
    throw new Error('not used by ensureTopic')
  }
  return {
    cluster: 'dst',
    calls,
    createTopic: async () => (calls.push('createTopic'), false),
    topicConfigs: async () => (calls.push('topicConfigs'), configs),
    replaceTopicConfigs: async () => {
      calls.push('replaceTopicConfigs')
      if (alterError) throw alterError
    },
    clusterId: unused,
    listTopics: unused,
    partitionCounts: unused,
    stableOffsets: unused,
    offsets: unused,
    offsetsForTime: unused,
    expandTopic: unused,
    groupOffsets: unused,
    setGroupOffsets: unused,
    createTopicReadAcls: unused,
    describeTopicAcls: unused,
    listGroups: unused,
    describeGroup: unused,
    disconnect: async () => undefined,
  }
}

const target = { name: 'dst', bootstrapServers: ['127.0.0.1:1'] } as ClusterSpec

describe('checkpoint topic configs when the cluster refuses the change', () => {
  it('goes on, warning with the reason; a refusal is not asked again by the same store, only by the next one', async () => {
    const admin = fakeAdmin({ 'cleanup.policy': 'compact' }, new FerryError('KAFKA_ERROR', 'TOPIC_AUTHORIZATION_FAILED: not authorized'))
    const { logger, lines } = captureLogs()
    const store = createCheckpointStore({ target, admin, deployment: 'd', sourceCluster: 'src', worker: 'w', logger })
    await store.ensureTopic()
    await store.ensureTopic()
    expect(admin.calls).to.deep.equal(['createTopic', 'topicConfigs', 'replaceTopicConfigs'])
    const warning = lines.find((l) => l.event === 'checkpoint.topic_config_failed')
    expect(warning?.err).to.match(/TOPIC_AUTHORIZATION_FAILED/)
    await createCheckpointStore({ target, admin, deployment: 'd', sourceCluster: 'src', worker: 'w', logger }).ensureTopic()
    expect(admin.calls).to.have.length(6)
  })

  it('tries a failure that may pass (a timeout) again at the next task start', async () => {
    const admin = fakeAdmin({ 'cleanup.policy': 'compact' }, new FerryError('KAFKA_ERROR', 'request timed out', { retriable: true }))
    const store = createCheckpointStore({ target, admin, deployment: 'd', sourceCluster: 'src', worker: 'w', logger: captureLogs().logger })
    await store.ensureTopic()
    await store.ensureTopic()
    expect(admin.calls).to.deep.equal(['createTopic', 'topicConfigs', 'replaceTopicConfigs', 'createTopic', 'topicConfigs', 'replaceTopicConfigs'])
  })

  it('does not touch a topic that has every config, whatever their values', async () => {
    const admin = fakeAdmin({ ...CHECKPOINT_TOPIC_CONFIGS, 'segment.bytes': '1073741824' })
    const { logger } = captureLogs()
    await createCheckpointStore({ target, admin, deployment: 'd', sourceCluster: 'src', worker: 'w', logger }).ensureTopic()
    expect(admin.calls).to.deep.equal(['createTopic', 'topicConfigs'])
  })
})
