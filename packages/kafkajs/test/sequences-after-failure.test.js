// FORK.md "Sequences after a failed send": when a produce request fails for one partition, the
// partitions the broker wrote keep their sequence numbers once the send gives up, and partitions
// the broker may have written (no answer) refuse further sends until a new producer id.
const { expect } = require('chai')
const createSendMessages = require('../src/producer/sendMessages')
const createEosManager = require('../src/producer/eosManager')
const createRetry = require('../src/retry')
const Cluster = require('../src/cluster')
const { KafkaJSRequestTimeoutError } = require('../src/errors')
const { parse: parseProduceResponse } = require('../src/protocol/requests/produce/v3/response')
const { createLogger, LEVELS } = require('../src/loggers')

const MESSAGE_TOO_LARGE = 10
const NOT_LEADER_FOR_PARTITION = 6

/**
 * Brokers that answer each produce request with `answer(partition, attempt)` per partition: an
 * error code (0 = written), or 'no-answer' for a request that times out. Answers go through
 * kafkajs' own produce response parser, which throws for a partition error. Every request's
 * partitions and first sequences are recorded. `leaders` maps partition to broker node id.
 */
const fakeCluster = ({ leaders, answer, delays = {} }) => {
  const requests = []
  const attempts = new Map()
  const brokerFor = nodeId => ({
    nodeId,
    produce: async ({ topicData }) => {
      const sent = topicData.flatMap(({ topic, partitions }) =>
        partitions.map(({ partition, firstSequence, messages }) => ({ topic, partition, firstSequence, count: messages.length }))
      )
      requests.push(sent)
      if (delays[nodeId]) await new Promise(resolve => setTimeout(resolve, delays[nodeId]))
      const codes = sent.map(({ partition }) => {
        const attempt = attempts.get(partition) || 0
        attempts.set(partition, attempt + 1)
        return answer(partition, attempt)
      })
      if (codes.includes('no-answer')) throw new KafkaJSRequestTimeoutError('Request Produce timed out', { broker: `b${nodeId}` })
      return parseProduceResponse({
        topics: topicData.map(({ topic, partitions }) => ({
          topicName: topic,
          partitions: partitions.map(({ partition }) => ({
            partition,
            errorCode: codes[sent.findIndex(s => s.topic === topic && s.partition === partition)],
            baseOffset: '0',
            logAppendTime: '-1',
            logStartOffset: '0',
          })),
        })),
        throttleTime: 0,
      })
    },
  })
  const brokers = new Map(Object.values(leaders).map(nodeId => [nodeId, brokerFor(nodeId)]))
  const cluster = Object.assign(Object.create(Cluster.prototype), {
    retry: { retries: 0 },
    targetTopics: new Set(),
    requests,
    isConnected: () => true,
    addMultipleTargetTopics: async topics => topics.forEach(t => cluster.targetTopics.add(t)),
    refreshMetadataIfNecessary: async () => undefined,
    refreshMetadata: async () => undefined,
    findTopicPartitionMetadata: () => Object.entries(leaders).map(([partitionId, leader]) => ({ partitionId: Number(partitionId), leader })),
    findBroker: async ({ nodeId }) => brokers.get(Number(nodeId)),
    findControllerBroker: async () => ({ initProducerId: async () => ({ producerId: 7, producerEpoch: 0 }) }),
  })
  return cluster
}

const idempotentSender = async (cluster, retries) => {
  const logger = createLogger({ level: LEVELS.NOTHING, logCreator: () => () => undefined })
  const eosManager = createEosManager({ logger, cluster, transactional: false })
  await eosManager.initProducerId()
  const sendMessages = createSendMessages({
    logger,
    cluster,
    partitioner: ({ message }) => message.partition,
    eosManager,
    retrier: createRetry({ retries, initialRetryTime: 1, maxRetryTime: 5 }),
  })
  const send = messages => sendMessages({ acks: -1, timeout: 1000, topicMessages: [{ topic: 't', messages }] })
  return { eosManager, send }
}

const records = (partition, n) => Array.from({ length: n }, (_, i) => ({ partition, value: `v${i}` }))
const rejection = promise =>
  promise.then(
    () => null,
    e => e
  )

describe('kafkajs fork: sequence numbers after a failed send', () => {
  it('a partition the broker wrote keeps its sequences when another partition of the request is refused', async () => {
    // Partition 1 refuses its records once; partition 0 takes everything.
    const cluster = fakeCluster({ leaders: { 0: 1, 1: 1 }, answer: (partition, attempt) => (partition === 1 && attempt === 0 ? MESSAGE_TOO_LARGE : 0) })
    const { eosManager, send } = await idempotentSender(cluster, 2)
    await send(records(0, 1))
    const error = await rejection(send([...records(0, 2), ...records(1, 1)]))
    expect(error && error.type).to.equal('MESSAGE_TOO_LARGE')
    // Written: 1 + 2 records to partition 0. Refused: nothing of partition 1.
    expect(eosManager.getSequence('t', 0)).to.equal(3)
    expect(eosManager.getSequence('t', 1)).to.equal(0)
    await send([...records(0, 2), ...records(1, 1)])
    expect(cluster.requests.at(-1)).to.deep.equal([
      { topic: 't', partition: 0, firstSequence: 3, count: 2 },
      { topic: 't', partition: 1, firstSequence: 0, count: 1 },
    ])
  })

  it('a retry sends the written partition with the same sequences (the broker takes it for a duplicate), once', async () => {
    const cluster = fakeCluster({ leaders: { 0: 1, 1: 1 }, answer: (partition, attempt) => (partition === 1 && attempt === 0 ? NOT_LEADER_FOR_PARTITION : 0) })
    const { eosManager, send } = await idempotentSender(cluster, 2)
    await send([...records(0, 2), ...records(1, 1)])
    expect(cluster.requests.map(r => r.map(p => [p.partition, p.firstSequence]))).to.deep.equal([
      [
        [0, 0],
        [1, 0],
      ],
      [
        [0, 0],
        [1, 0],
      ],
    ])
    expect(eosManager.getSequence('t', 0)).to.equal(2)
    expect(eosManager.getSequence('t', 1)).to.equal(1)
  })

  it('a partition whose request was never answered refuses further sends until a new producer id', async () => {
    const cluster = fakeCluster({ leaders: { 0: 1 }, answer: (partition, attempt) => (attempt < 2 ? 'no-answer' : 0) })
    const { eosManager, send } = await idempotentSender(cluster, 1)
    const error = await rejection(send(records(0, 2)))
    expect(error && error.name).to.equal('KafkaJSNumberOfRetriesExceeded')
    const next = await rejection(send(records(0, 2)))
    expect(next && next.name).to.equal('KafkaJSNonRetriableError')
    expect(next.message).to.include('partition 0 of topic "t"')
    expect(cluster.requests).to.have.length(2)
    await eosManager.initProducerId()
    await send(records(0, 2))
    expect(cluster.requests.at(-1)).to.deep.equal([{ topic: 't', partition: 0, firstSequence: 0, count: 2 }])
  })

  it('gives up only after every broker answered: a slower broker that was not answered marks its partition', async () => {
    // Broker 1 refuses partition 0 at once; broker 2's request for partition 1 times out later.
    const cluster = fakeCluster({ leaders: { 0: 1, 1: 2 }, delays: { 2: 30 }, answer: partition => (partition === 0 ? MESSAGE_TOO_LARGE : 'no-answer') })
    const { eosManager, send } = await idempotentSender(cluster, 0)
    const error = await rejection(send([...records(0, 1), ...records(1, 1)]))
    expect(error && error.type).to.equal('MESSAGE_TOO_LARGE')
    expect(eosManager.isSequenceUnknown('t', 1)).to.equal(true)
    expect(eosManager.isSequenceUnknown('t', 0)).to.equal(false)
    expect(eosManager.getSequence('t', 1)).to.equal(0)
  })
})
