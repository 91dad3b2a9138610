// FORK.md "Partitions missing from the metadata": a send that addresses a partition the
// producer's metadata does not have yet refreshes the metadata and retries, instead of leaving
// that partition's records out of the request and resolving.
const { expect } = require('chai')
const createSendMessages = require('../src/producer/sendMessages')
const createEosManager = require('../src/producer/eosManager')
const createRetry = require('../src/retry')
const Cluster = require('../src/cluster')
const { createLogger, LEVELS } = require('../src/loggers')

/**
 * A cluster with kafkajs' own partition-to-leader lookup over metadata this test controls, and
 * one broker that records what it was asked to produce. No Kafka behind it: the code under test
 * is what kafkajs does between the metadata and the produce request.
 */
const fakeCluster = ({ partitionsBefore, partitionsAfterRefresh }) => {
  const produced = []
  let partitions = partitionsBefore
  const broker = {
    nodeId: 1,
    produce: async ({ topicData }) => {
      for (const { topic, partitions } of topicData) {
        for (const { partition, messages } of partitions) produced.push(...messages.map(m => `${topic}/${partition}/${m.value}`))
      }
      return {
        topics: topicData.map(({ topic, partitions }) => ({
          topicName: topic,
          partitions: partitions.map(({ partition }) => ({ partition, errorCode: 0, baseOffset: '0', logAppendTime: '-1', logStartOffset: '0' })),
        })),
      }
    },
  }
  const cluster = Object.assign(Object.create(Cluster.prototype), {
    retry: { retries: 0 },
    targetTopics: new Set(),
    refreshes: 0,
    produced,
    isConnected: () => true,
    addMultipleTargetTopics: async topics => topics.forEach(t => cluster.targetTopics.add(t)),
    refreshMetadataIfNecessary: async () => undefined,
    refreshMetadata: async () => {
      cluster.refreshes++
      partitions = partitionsAfterRefresh
    },
    findTopicPartitionMetadata: () => partitions.map(partitionId => ({ partitionId, leader: 1 })),
    findBroker: async () => broker,
  })
  return cluster
}

const send = (cluster, messages) => {
  const logger = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => undefined })
  const sendMessages = createSendMessages({
    logger,
    cluster,
    partitioner: ({ message }) => message.partition,
    eosManager: createEosManager({ logger, cluster, transactional: false }),
    retrier: createRetry({ retries: 3, initialRetryTime: 1, maxRetryTime: 5 }),
  })
  return sendMessages({ acks: -1, timeout: 1000, topicMessages: [{ topic: 't', messages }] })
}

describe('kafkajs fork: producing to a partition missing from the metadata', () => {
  const messages = [
    { partition: 0, value: 'a' },
    { partition: 1, value: 'b' },
  ]

  it('refreshes the metadata and produces every record once the partition is known', async () => {
    // The topic gained partition 1 after the producer read its metadata.
    const cluster = fakeCluster({ partitionsBefore: [0], partitionsAfterRefresh: [0, 1] })
    const response = await send(cluster, messages)
    expect(cluster.refreshes).to.equal(1)
    expect(cluster.produced).to.deep.equal(['t/0/a', 't/1/b'])
    expect(response.map(r => r.partition)).to.deep.equal([0, 1])
  })

  it('fails the send when the partition never appears, producing nothing', async () => {
    const cluster = fakeCluster({ partitionsBefore: [0], partitionsAfterRefresh: [0] })
    const error = await send(cluster, messages).then(
      () => null,
      e => e
    )
    expect(error, 'the send resolved').to.be.an('error')
    expect(error.name).to.equal('KafkaJSNumberOfRetriesExceeded')
    expect(error.cause.name).to.equal('KafkaJSMetadataNotLoaded')
    expect(error.cause.message).to.equal('Producing to partition(s) 1 of topic "t" not in the metadata')
    expect(cluster.produced).to.deep.equal([])
  })
})
