/**
 * Ferry's patches to kafkajs (patches/kafkajs+2.2.4.patch, applied by patch-package on install).
 * These test the patched module itself, so a reinstall without the patch fails here.
 */
import { expect } from 'chai'
import { createRequire } from 'node:module'

const require = createRequire(import.meta.url)

interface Message {
  offset: string
  key: Buffer | null
  value: string
  isControlRecord?: boolean
  batchContext: { producerId: string; inTransaction: boolean }
}
type Filter = (input: { messages: Message[]; abortedTransactions: Array<{ producerId: string; firstOffset: string }> }) => Message[]
const filterAbortedMessages = require('kafkajs/src/consumer/filterAbortedMessages.js') as Filter

const ABORT = Buffer.from([0, 0, 0, 0])
const COMMIT = Buffer.from([0, 0, 0, 1])
const record = (offset: number, producerId: string, value: string): Message => ({ offset: String(offset), key: Buffer.from('k'), value, batchContext: { producerId, inTransaction: true } })
const marker = (offset: number, producerId: string, key: Buffer): Message => ({ offset: String(offset), key, value: '', isControlRecord: true, batchContext: { producerId, inTransaction: true } })
const kept = (messages: Message[]): string[] => messages.filter((m) => !m.isControlRecord).map((m) => m.value)

describe('kafkajs patch: aborted transactions hidden from read_committed readers', () => {
  // Three producers write interleaved transactions into one partition (as Ferry's per-partition
  // producers do into the checkpoint topic); A and B abort, C commits. The broker lists aborted
  // transactions in the order they ended: B (ended first) before A (began first).
  const messages = [
    record(10, 'A', 'a1'),
    record(11, 'B', 'b1'),
    record(12, 'C', 'c1'),
    record(13, 'A', 'a2'),
    marker(14, 'B', ABORT),
    marker(15, 'C', COMMIT),
    marker(16, 'A', ABORT),
    record(17, 'C', 'c2'),
  ]
  const aborted = [
    { producerId: 'B', firstOffset: '11' },
    { producerId: 'A', firstOffset: '10' },
  ]

  it('drops every record of aborted transactions listed in end order, keeps committed ones', () => {
    expect(kept(filterAbortedMessages({ messages, abortedTransactions: aborted }))).to.deep.equal(['c1', 'c2'])
  })

  it('drops them when the fetch starts inside two aborted transactions', () => {
    expect(kept(filterAbortedMessages({ messages: messages.slice(2), abortedTransactions: aborted }))).to.deep.equal(['c1', 'c2'])
  })

  it('keeps a later committed transaction of a producer whose earlier one aborted', () => {
    const later = [...messages, record(18, 'A', 'a3'), marker(19, 'A', COMMIT)]
    expect(kept(filterAbortedMessages({ messages: later, abortedTransactions: aborted }))).to.deep.equal(['c1', 'c2', 'a3'])
  })
})

describe('kafkajs patch: native CRC32C for record batches', () => {
  const patched = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (buffer: Buffer) => number
  const pureJs = require('kafkajs/src/protocol/recordBatch/crc32C/crc32C.js') as (buffer: Buffer) => number

  it('gives the CRC-32C check value and agrees with the pure-JS implementation', () => {
    expect(patched(Buffer.from('123456789'))).to.equal(0xe3069283)
    for (const size of [0, 1, 7, 1024, 100_003]) {
      const data = Buffer.alloc(size, size % 251)
      for (let i = 0; i < size; i += 97) data[i] = (i * 31) % 256
      expect(patched(data), `${size} bytes`).to.equal(pureJs(data))
    }
  })

  it('uses @node-rs/crc32 when it is installed', () => {
    expect(require.resolve('@node-rs/crc32')).to.be.a('string')
    expect(Object.keys(require.cache).some((file) => file.includes(`${'@node-rs'}/crc32`))).to.equal(true)
  })
})

describe('kafkajs patch: messages grouped per partition in place', () => {
  type Group = (input: { topic: string; partitionMetadata: unknown[]; messages: Array<{ partition: number; value: string }>; partitioner: (a: { message: { partition: number } }) => number }) => Record<number, Array<{ value: string }>>
  const group = require('kafkajs/src/producer/groupMessagesPerPartition.js') as Group

  it('keeps every message, in order, under its partition', () => {
    const messages = Array.from({ length: 5000 }, (_, i) => ({ partition: i % 3, value: `v${i}` }))
    const grouped = group({ topic: 't', partitionMetadata: [{}], messages, partitioner: ({ message }) => message.partition })
    expect(Object.keys(grouped).sort()).to.deep.equal(['0', '1', '2'])
    for (const p of [0, 1, 2]) expect(grouped[p]?.map((m) => m.value)).to.deep.equal(messages.filter((m) => m.partition === p).map((m) => m.value))
    expect(group({ topic: 't', partitionMetadata: [], messages, partitioner: () => 0 })).to.deep.equal({})
  })
})

describe('kafkajs patch: record headers as an ordered list with null values', () => {
  interface Encoded {
    buffer: Buffer
  }
  type RecordEncoder = (record: { key: Buffer | null; value: Buffer | null; headers?: unknown }) => Encoded
  type RecordDecoder = (decoder: unknown, context: Record<string, unknown>) => { headers: Record<string, unknown>; headerList: Array<{ key: string; value: Buffer | null }> }
  const encodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/index.js') as RecordEncoder
  const decodeRecord = require('kafkajs/src/protocol/recordBatch/record/v0/decoder.js') as RecordDecoder
  const Decoder = require('kafkajs/src/protocol/decoder.js') as new (buffer: Buffer) => { readVarInt(): number }
  const roundTrip = (headers: unknown): ReturnType<RecordDecoder> => {
    const decoder = new Decoder(encodeRecord({ key: null, value: Buffer.from('v'), headers }).buffer)
    decoder.readVarInt() // the record's length
    return decodeRecord(decoder, { firstOffset: '0', firstTimestamp: '0' })
  }
  const list = [
    { key: 'a', value: Buffer.from('1') },
    { key: 'b', value: null },
    { key: 'a', value: Buffer.from('3') },
    { key: 'c', value: Buffer.alloc(0) },
    { key: '__proto__', value: Buffer.from([0xff, 0x00]) },
  ]

  it('writes and reads the list in order, null and empty values apart', () => {
    expect(roundTrip(list).headerList).to.deep.equal(list)
  })

  it('keeps the object view for other readers, repeated keys as arrays', () => {
    const { headers } = roundTrip(list)
    expect(Object.keys(headers)).to.deep.equal(['a', 'b', 'c', '__proto__'])
    expect(headers.a).to.deep.equal([Buffer.from('1'), Buffer.from('3')])
    expect(headers.b).to.equal(null)
  })

  it('still takes the object form, a null value included', () => {
    expect(roundTrip({ x: Buffer.from('1'), y: null }).headerList).to.deep.equal([
      { key: 'x', value: Buffer.from('1') },
      { key: 'y', value: null },
    ])
  })
})

describe('kafkajs patch: topics named like Object.prototype members', () => {
  // `__proto__` first: on a plain object it is the prototype, not a key.
  const topics = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'plain']
  const prototypeKeys = new Set(Object.getOwnPropertyNames(Object.prototype))
  /** Removes what a test added to Object.prototype (mocha itself breaks on it) and names it. */
  const restorePrototype = (): string[] => {
    const added = Object.getOwnPropertyNames(Object.prototype).filter((key) => !prototypeKeys.has(key))
    for (const key of added) delete (Object.prototype as Record<string, unknown>)[key]
    return added
  }
  afterEach(() => {
    // Unpatched, producer sequences for `__proto__` were written into Object.prototype itself.
    expect(restorePrototype(), 'keys added to Object.prototype').to.deep.equal([])
  })

  it('round-trips a group assignment through the assigner protocol', () => {
    type Assignment = Record<string, number[]>
    const { MemberAssignment } = require('kafkajs/src/consumer/assignerProtocol.js') as {
      MemberAssignment: { encode(input: { version: number; assignment: Assignment; userData?: Buffer }): Buffer; decode(buffer: Buffer): { version: number; assignment: Assignment } | null }
    }
    const assignment: Assignment = Object.fromEntries(topics.map((topic, i) => [topic, [i, i + 10]]))
    const decoded = MemberAssignment.decode(MemberAssignment.encode({ version: 1, assignment }))
    expect(Object.keys(decoded?.assignment ?? {})).to.deep.equal(topics)
    for (const [i, topic] of topics.entries()) expect(Object.getOwnPropertyDescriptor(decoded?.assignment, topic)?.value, topic).to.deep.equal([i, i + 10])
    // An assignment without these topics does not find them either.
    const other = MemberAssignment.decode(MemberAssignment.encode({ version: 1, assignment: { plain: [0] } }))?.assignment ?? {}
    expect(topics.filter((topic) => (other as Record<string, unknown>)[topic] !== undefined)).to.deep.equal(['plain'])
  })

  it('resolves missing consumer offsets from topic offsets', () => {
    type Offsets = Array<{ topic: string; partitions: Array<{ partition: number; offset: string }> }>
    const initialize = require('kafkajs/src/consumer/offsetManager/initializeConsumerOffsets.js') as (consumer: Offsets, topic: Offsets) => Offsets
    const consumer = topics.map((topic) => ({ topic, partitions: [{ partition: 0, offset: '-1' }, { partition: 1, offset: '3' }] }))
    const ends = topics.map((topic, i) => ({ topic, partitions: [{ partition: 0, offset: String(100 + i) }] }))
    expect(initialize(consumer, ends)).to.deep.equal(topics.map((topic, i) => ({ topic, partitions: [{ partition: 0, offset: String(100 + i) }, { partition: 1, offset: '3' }] })))
  })

  it('pauses and resumes each topic on its own', () => {
    type TopicPartitions = Array<{ topic: string; partitions?: number[] }>
    const SubscriptionState = require('kafkajs/src/consumer/subscriptionState.js') as new () => {
      assign(tp: TopicPartitions): void
      pause(tp: TopicPartitions): void
      resume(tp: TopicPartitions): void
      isPaused(topic: string, partition: number): boolean
      assigned(): TopicPartitions
      active(): TopicPartitions
      paused(): TopicPartitions
    }
    const state = new SubscriptionState()
    state.assign(topics.map((topic) => ({ topic, partitions: [0, 1] })))
    expect(state.assigned().map((t) => t.topic)).to.deep.equal(topics)
    expect(topics.filter((topic) => state.isPaused(topic, 0))).to.deep.equal([])
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
    const { DefaultPartitioner } = require('kafkajs/src/producer/partitioners/index.js') as { DefaultPartitioner: () => (input: { topic: string; partitionMetadata: Array<{ partitionId: number; leader: number }>; message: { value: string } }) => number }
    const partitioner = DefaultPartitioner()
    const partitionMetadata = [0, 1, 2].map((partitionId) => ({ partitionId, leader: 1 }))
    for (const topic of topics) {
      const chosen = new Set(Array.from({ length: 3 }, () => partitioner({ topic, partitionMetadata, message: { value: 'v' } })))
      expect([...chosen].sort(), topic).to.deep.equal([0, 1, 2])
    }
  })

  it('keeps producer sequences and transaction partitions per topic', async () => {
    interface EosManager {
      initProducerId(): Promise<void>
      beginTransaction(): void
      getSequence(topic: string, partition: number): number
      updateSequence(topic: string, partition: number, increment: number): void
      addPartitionsToTransaction(topicData: Array<{ topic: string; partitions: Array<{ partition: number }> }>): Promise<void>
    }
    const createEosManager = require('kafkajs/src/producer/eosManager/index.js') as (options: Record<string, unknown>) => EosManager
    const added: string[] = []
    const leaked: string[] = []
    const broker = {
      initProducerId: async () => ({ producerId: 7, producerEpoch: 0 }),
      addPartitionsToTxn: async ({ topics: requested }: { topics: Array<{ topic: string; partitions: number[] }> }) => {
        for (const { topic, partitions } of requested) added.push(`${topic}/${partitions.join(',')}`)
      },
    }
    // Only what the manager calls: there is no Kafka behind it.
    const cluster = { retry: { retries: 0 }, refreshMetadataIfNecessary: async () => undefined, findControllerBroker: async () => broker, findGroupCoordinator: async () => broker }
    const logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined }
    const eos = createEosManager({ logger, cluster, transactional: true, transactionalId: 'tx' })
    await eos.initProducerId()
    const sequences = ((): number[] => {
      try {
        for (const [i, topic] of topics.entries()) eos.updateSequence(topic, 0, i + 1)
        return topics.map((topic) => eos.getSequence(topic, 0))
      } finally {
        // Checked after the test; removed at once so that the assertions below can run.
        leaked.push(...restorePrototype())
      }
    })()
    expect(leaked, 'keys added to Object.prototype').to.deep.equal([])
    expect(sequences).to.deep.equal(topics.map((_, i) => i + 1))
    expect(topics.map((topic) => eos.getSequence(topic, 1))).to.deep.equal(topics.map(() => 0))
    eos.beginTransaction()
    const topicData = topics.map((topic) => ({ topic, partitions: [{ partition: 0 }, { partition: 1 }] }))
    await eos.addPartitionsToTransaction(topicData)
    await eos.addPartitionsToTransaction(topicData)
    expect(added, 'each partition added to the transaction once').to.deep.equal(topics.map((topic) => `${topic}/0,1`))
  })
})
