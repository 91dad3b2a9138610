// FORK.md "Produce path": native CRC32C, messages grouped per partition in place, batch
// timestamps found in one numeric pass, records encoded into one buffer of their size.
const { expect } = require('chai')
const crc32C = require('../src/protocol/recordBatch/crc32C')
const pureJsCrc32C = require('../src/protocol/recordBatch/crc32C/crc32C')
const groupMessagesPerPartition = require('../src/producer/groupMessagesPerPartition')
const ProduceV3 = require('../src/protocol/requests/produce/v3/request')
const decodeRecordBatch = require('../src/protocol/recordBatch/v0/decoder')
const encodeRecord = require('../src/protocol/recordBatch/record/v0')
const Decoder = require('../src/protocol/decoder')

describe('kafkajs fork: native CRC32C for record batches', () => {
  it('gives the CRC-32C check value and agrees with the pure-JS implementation', () => {
    expect(crc32C(Buffer.from('123456789'))).to.equal(0xe3069283)
    for (const size of [0, 1, 7, 1024, 100_003]) {
      const data = Buffer.alloc(size, size % 251)
      for (let i = 0; i < size; i += 97) data[i] = (i * 31) % 256
      expect(crc32C(data), `${size} bytes`).to.equal(pureJsCrc32C(data))
    }
  })

  it('uses @node-rs/crc32 (a dependency of the fork)', () => {
    // Module#children lists what a module required, also when it was already loaded elsewhere.
    const crcModule = require.cache[require.resolve('../src/protocol/recordBatch/crc32C')]
    const native = require.resolve('@node-rs/crc32')
    expect(crcModule.children.map(child => child.id)).to.include(native)
  })
})

describe('kafkajs fork: messages grouped per partition in place', () => {
  it('keeps every message, in order, under its partition', () => {
    const messages = Array.from({ length: 5000 }, (_, i) => ({ partition: i % 3, value: `v${i}` }))
    const grouped = groupMessagesPerPartition({ topic: 't', partitionMetadata: [{}], messages, partitioner: ({ message }) => message.partition })
    expect(Object.keys(grouped).sort()).to.deep.equal(['0', '1', '2'])
    for (const p of [0, 1, 2]) expect(grouped[p].map(m => m.value)).to.deep.equal(messages.filter(m => m.partition === p).map(m => m.value))
    expect(groupMessagesPerPartition({ topic: 't', partitionMetadata: [], messages, partitioner: () => 0 })).to.deep.equal({})
  })
})

describe('kafkajs fork: record batch timestamps', () => {
  /** Encodes a one-partition produce v3 request and decodes its record batch back. */
  const producedBatch = async messages => {
    const request = ProduceV3({ acks: -1, timeout: 1000, topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 0, messages }] }] })
    const decoder = new Decoder((await request.encode()).buffer)
    decoder.readString() // transactional id
    decoder.readInt16() // acks
    decoder.readInt32() // timeout
    expect(decoder.readInt32(), 'topics').to.equal(1)
    decoder.readString() // topic
    expect(decoder.readInt32(), 'partitions').to.equal(1)
    decoder.readInt32() // partition
    decoder.readInt32() // record set size
    return decodeRecordBatch(decoder)
  }

  it('writes the smallest and largest timestamp, compared as numbers', async () => {
    // As strings, '1000' < '20' < '999': kafkajs took '1000' as the first and '999' as the max.
    const batch = await producedBatch([
      { key: null, value: Buffer.from('a'), timestamp: '999' },
      { key: null, value: Buffer.from('b'), timestamp: '1000' },
      { key: null, value: Buffer.from('c'), timestamp: '20' },
    ])
    expect([batch.firstTimestamp, batch.maxTimestamp]).to.deep.equal(['20', '1000'])
    expect(batch.records.map(r => r.timestamp)).to.deep.equal(['999', '1000', '20'])
  })

  it('uses the current time when no message has a timestamp', async () => {
    const before = Date.now()
    const batch = await producedBatch([{ key: null, value: Buffer.from('a') }])
    expect(Number(batch.firstTimestamp)).to.be.within(before, Date.now())
    expect(batch.maxTimestamp).to.equal(batch.firstTimestamp)
  })
})

describe('kafkajs fork: records encoded into one buffer of their size', () => {
  /** Counts Buffer.alloc and Buffer.allocUnsafe calls made by `fn`. */
  const countAllocations = fn => {
    const { alloc, allocUnsafe } = Buffer
    const calls = { alloc: 0, allocUnsafe: 0 }
    Buffer.alloc = (...args) => (calls.alloc++, alloc.apply(Buffer, args))
    Buffer.allocUnsafe = (...args) => (calls.allocUnsafe++, allocUnsafe.apply(Buffer, args))
    try {
      fn()
    } finally {
      Buffer.alloc = alloc
      Buffer.allocUnsafe = allocUnsafe
    }
    return calls
  }

  it('allocates one unzeroed buffer for a 10 KiB record, and the bytes decode back', () => {
    const key = Buffer.from('k')
    const value = Buffer.alloc(10 * 1024, 7)
    let encoded
    // kafkajs allocated a zero-filled 512-byte buffer, then a larger one to copy it into. (Each
    // header is encoded into a buffer of its own, as in kafkajs: none here.)
    expect(countAllocations(() => (encoded = encodeRecord({ key, value }))))
      .to.deep.equal({ alloc: 0, allocUnsafe: 1 })
    const decoder = new Decoder(encoded.buffer)
    decoder.readVarInt()
    expect(decoder.readInt8()).to.equal(0) // attributes
    decoder.readVarLong()
    decoder.readVarInt()
    expect(decoder.readVarIntBytes()).to.deep.equal(key)
    expect(decoder.readVarIntBytes()).to.deep.equal(value)
  })
})
