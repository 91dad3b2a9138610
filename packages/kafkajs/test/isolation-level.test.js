// FORK.md "Admin offsets per isolation level": admin.fetchTopicOffsets(topic, { isolationLevel })
// and cluster.fetchTopicsOffset(topics, isolationLevel) ask for the high watermark
// (READ_UNCOMMITTED) or the last stable offset (READ_COMMITTED, kafkajs' default) per call.
const { expect } = require('chai')
const createAdmin = require('../src/admin')
const Cluster = require('../src/cluster')
const ISOLATION_LEVEL = require('../src/protocol/isolationLevel')
const { EARLIEST_OFFSET } = require('../src/constants')
const { createLogger, LEVELS } = require('../src/loggers')

/**
 * kafkajs' own Cluster#fetchTopicsOffset over one broker that answers ListOffsets like a
 * partition with an open transaction: high watermark 10, last stable offset 7, log start 0.
 */
const fakeCluster = () => {
  const requests = []
  const broker = {
    listOffsets: async ({ isolationLevel, topics }) => {
      requests.push(isolationLevel)
      const offsetOf = timestamp => (timestamp === EARLIEST_OFFSET ? '0' : isolationLevel === ISOLATION_LEVEL.READ_UNCOMMITTED ? '10' : '7')
      return { responses: topics.map(({ topic, partitions }) => ({ topic, partitions: partitions.map(({ partition, timestamp }) => ({ partition, offset: offsetOf(timestamp) })) })) }
    },
  }
  return Object.assign(Object.create(Cluster.prototype), {
    requests,
    isolationLevel: ISOLATION_LEVEL.READ_COMMITTED,
    addTargetTopic: async () => undefined,
    refreshMetadataIfNecessary: async () => undefined,
    findTopicPartitionMetadata: () => [{ partitionId: 0, leader: 1 }],
    findBroker: async () => broker,
  })
}

describe('kafkajs fork: offsets per isolation level', () => {
  const logger = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => undefined })

  it('cluster.fetchTopicsOffset takes the isolation level per call, the client default otherwise', async () => {
    const cluster = fakeCluster()
    const topics = [{ topic: 't', fromBeginning: false, partitions: [{ partition: 0 }] }]
    expect(await cluster.fetchTopicsOffset(topics, ISOLATION_LEVEL.READ_UNCOMMITTED)).to.deep.equal([{ topic: 't', partitions: [{ partition: 0, offset: '10' }] }])
    expect(await cluster.fetchTopicsOffset(topics)).to.deep.equal([{ topic: 't', partitions: [{ partition: 0, offset: '7' }] }])
    expect(cluster.requests).to.deep.equal([ISOLATION_LEVEL.READ_UNCOMMITTED, ISOLATION_LEVEL.READ_COMMITTED])
  })

  it('admin.fetchTopicOffsets reads the high watermark with { isolationLevel: 0 }', async () => {
    const cluster = fakeCluster()
    const admin = createAdmin({ logger, cluster, retry: { retries: 0 } })
    expect(await admin.fetchTopicOffsets('t', { isolationLevel: ISOLATION_LEVEL.READ_UNCOMMITTED })).to.deep.equal([{ partition: 0, offset: '10', high: '10', low: '0' }])
    expect(await admin.fetchTopicOffsets('t')).to.deep.equal([{ partition: 0, offset: '7', high: '7', low: '0' }])
  })
})
