// FORK.md "Topics named like Object.prototype members": every map keyed by topic is a
// null-prototype object, so `__proto__`, `constructor`, `toString`, ... are keys like any other.
// End to end (consumer group, offset manager, commitOffsets, consumer topic configurations):
// Ferry's test/integration/hostile-input.test.ts mirrors such topics on real brokers.
const { expect } = require('chai')
const { MemberAssignment } = require('../src/consumer/assignerProtocol')
const initializeConsumerOffsets = require('../src/consumer/offsetManager/initializeConsumerOffsets')
const SubscriptionState = require('../src/consumer/subscriptionState')
const { DefaultPartitioner } = require('../src/producer/partitioners')
const createEosManager = require('../src/producer/eosManager')
const Cluster = require('../src/cluster')

describe('kafkajs fork: topics named like Object.prototype members', () => {
  // `__proto__` first: on a plain object it is the prototype, not a key.
  const topics = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'plain']
  const prototypeKeys = new Set(Object.getOwnPropertyNames(Object.prototype))
  /** Removes what a test added to Object.prototype (mocha itself breaks on it) and names it. */
  const restorePrototype = () => {
    const added = Object.getOwnPropertyNames(Object.prototype).filter(key => !prototypeKeys.has(key))
    for (const key of added) delete Object.prototype[key]
    return added
  }
  afterEach(() => {
    // kafkajs wrote producer sequences for `__proto__` into Object.prototype itself.
    expect(restorePrototype(), 'keys added to Object.prototype').to.deep.equal([])
  })

  it('round-trips a group assignment through the assigner protocol', () => {
    const assignment = Object.fromEntries(topics.map((topic, i) => [topic, [i, i + 10]]))
    const decoded = MemberAssignment.decode(MemberAssignment.encode({ version: 1, assignment }))
    expect(Object.keys(decoded.assignment)).to.deep.equal(topics)
    for (const [i, topic] of topics.entries()) expect(Object.getOwnPropertyDescriptor(decoded.assignment, topic).value, topic).to.deep.equal([i, i + 10])
    // An assignment without these topics does not find them either.
    const other = MemberAssignment.decode(MemberAssignment.encode({ version: 1, assignment: { plain: [0] } })).assignment
    expect(topics.filter(topic => other[topic] !== undefined)).to.deep.equal(['plain'])
  })

  it('resolves missing consumer offsets from topic offsets', () => {
    const consumer = topics.map(topic => ({ topic, partitions: [{ partition: 0, offset: '-1' }, { partition: 1, offset: '3' }] }))
    const ends = topics.map((topic, i) => ({ topic, partitions: [{ partition: 0, offset: String(100 + i) }] }))
    expect(initializeConsumerOffsets(consumer, ends)).to.deep.equal(topics.map((topic, i) => ({ topic, partitions: [{ partition: 0, offset: String(100 + i) }, { partition: 1, offset: '3' }] })))
  })

  it('pauses and resumes each topic on its own', () => {
    const state = new SubscriptionState()
    state.assign(topics.map(topic => ({ topic, partitions: [0, 1] })))
    expect(state.assigned().map(t => t.topic)).to.deep.equal(topics)
    expect(topics.filter(topic => state.isPaused(topic, 0))).to.deep.equal([])
    state.pause([{ topic: '__proto__', partitions: [1] }, { topic: 'constructor' }])
    expect(state.paused()).to.deep.equal([
      { topic: '__proto__', partitions: [1] },
      { topic: 'constructor', partitions: [0, 1] },
    ])
    state.resume([{ topic: 'constructor', partitions: [0] }])
    expect(state.active()).to.deep.include.members([
      { topic: '__proto__', partitions: [0] },
      { topic: 'constructor', partitions: [0] },
      { topic: 'toString', partitions: [0, 1] },
    ])
  })

  it('spreads keyless messages round robin over the partitions', () => {
    const partitioner = DefaultPartitioner()
    const partitionMetadata = [0, 1, 2].map(partitionId => ({ partitionId, leader: 1 }))
    for (const topic of topics) {
      const chosen = new Set(Array.from({ length: 3 }, () => partitioner({ topic, partitionMetadata, message: { value: 'v' } })))
      expect([...chosen].sort(), topic).to.deep.equal([0, 1, 2])
    }
  })

  it('keeps producer sequences and transaction partitions per topic', async () => {
    const added = []
    const leaked = []
    const broker = {
      initProducerId: async () => ({ producerId: 7, producerEpoch: 0 }),
      addPartitionsToTxn: async ({ topics: requested }) => {
        for (const { topic, partitions } of requested) added.push(`${topic}/${partitions.join(',')}`)
      },
    }
    // Only what the manager calls: there is no Kafka behind it.
    const cluster = { retry: { retries: 0 }, refreshMetadataIfNecessary: async () => undefined, findControllerBroker: async () => broker, findGroupCoordinator: async () => broker }
    const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined }
    const eos = createEosManager({ logger, cluster, transactional: true, transactionalId: 'tx' })
    await eos.initProducerId()
    let sequences
    try {
      for (const [i, topic] of topics.entries()) eos.updateSequence(topic, 0, i + 1)
      sequences = topics.map(topic => eos.getSequence(topic, 0))
    } finally {
      // Checked after the test; removed at once so that the assertions below can run.
      leaked.push(...restorePrototype())
    }
    expect(leaked, 'keys added to Object.prototype').to.deep.equal([])
    expect(sequences).to.deep.equal(topics.map((_, i) => i + 1))
    expect(topics.map(topic => eos.getSequence(topic, 1))).to.deep.equal(topics.map(() => 0))
    eos.beginTransaction()
    const topicData = topics.map(topic => ({ topic, partitions: [{ partition: 0 }, { partition: 1 }] }))
    await eos.addPartitionsToTransaction(topicData)
    await eos.addPartitionsToTransaction(topicData)
    expect(added, 'each partition added to the transaction once').to.deep.equal(topics.map(topic => `${topic}/0,1`))
  })

  it('fetches and merges the offsets of every topic from every leader', async () => {
    // Partition 0 of each topic is led by broker 1, partition 1 by broker 2.
    const asked = []
    const brokerFor = nodeId => ({
      listOffsets: async ({ topics: requested }) => {
        asked.push(...requested.map(({ topic, partitions }) => `${nodeId}:${topic}/${partitions.map(p => p.partition)}`))
        return { responses: requested.map(({ topic, partitions }) => ({ topic, partitions: partitions.map(({ partition }) => ({ partition, offset: `${topic}-${partition}` })) })) }
      },
    })
    const cluster = Object.assign(Object.create(Cluster.prototype), {
      isolationLevel: 1,
      findTopicPartitionMetadata: () => [{ partitionId: 0, leader: 1 }, { partitionId: 1, leader: 2 }],
      findBroker: async ({ nodeId }) => brokerFor(nodeId),
    })
    const offsets = await cluster.fetchTopicsOffset(topics.map(topic => ({ topic, fromBeginning: false, partitions: [{ partition: 0 }, { partition: 1 }] })))
    expect(asked.sort()).to.deep.equal(topics.flatMap(topic => [`1:${topic}/0`, `2:${topic}/1`]).sort())
    expect(offsets).to.deep.equal(topics.map(topic => ({ topic, partitions: [0, 1].map(partition => ({ partition, offset: `${topic}-${partition}` })) })))
  })

  it('keeps committed offsets per group in a map without inherited topics', () => {
    const cluster = Object.assign(Object.create(Cluster.prototype), { committedOffsetsByGroup: new Map() })
    const committed = cluster.committedOffsets({ groupId: 'g' })
    expect(topics.filter(topic => committed[topic] !== undefined)).to.deep.equal([])
  })
})
