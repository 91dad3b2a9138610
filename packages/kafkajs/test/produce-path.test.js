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

describe('kafkajs fork: large encoders kept by reference', () => {
  const createRequest = require('../src/protocol/request')

  /** Bytes copied by Buffer#copy and Buffer.concat while `fn` runs. */
  const countCopied = async fn => {
    const { copy } = Buffer.prototype
    const { concat } = Buffer
    let copied = 0
    Buffer.prototype.copy = function (target, targetStart, sourceStart = 0, sourceEnd = this.length) {
      copied += Math.max(0, Math.min(sourceEnd, this.length) - sourceStart)
      return copy.call(this, target, targetStart, sourceStart, sourceEnd)
    }
    Buffer.concat = (list, length) => {
      const result = concat.call(Buffer, list, length)
      copied += result.length
      return result
    }
    try {
      return { result: await fn(), copied }
    } finally {
      Buffer.prototype.copy = copy
      Buffer.concat = concat
    }
  }

  const messagesOf = (partition, count, size) =>
    Array.from({ length: count }, (_, i) => ({ key: Buffer.from(`k${partition}-${i}`), value: Buffer.alloc(size, (partition * 31 + i) % 251), timestamp: String(1700000000000 + i) }))

  it('copies a produce request\'s records about twice (into their batch, into the request) on their way to the socket, and every batch decodes back with a valid CRC', async () => {
    // Two partitions of 200 records of 1 KiB, and one partition with a record of 40 KiB (kept by reference inside its record too).
    const partitions = [
      { partition: 0, firstSequence: 0, messages: messagesOf(0, 200, 1024) },
      { partition: 1, firstSequence: 7, messages: messagesOf(1, 200, 1024) },
      { partition: 2, firstSequence: 0, messages: [...messagesOf(2, 3, 100), { key: null, value: Buffer.alloc(40 * 1024, 9), timestamp: '1700000000000' }] },
    ]
    const payload = partitions.reduce((sum, p) => sum + p.messages.reduce((s, m) => s + m.value.length + (m.key ? m.key.length : 0), 0), 0)
    const { result: frame, copied } = await countCopied(async () => {
      const encoder = await createRequest({ correlationId: 1, clientId: 'c', request: ProduceV3({ acks: -1, timeout: 1000, topicData: [{ topic: 't', partitions }] }) })
      return encoder.buffer
    })
    // kafkajs copied them about 10.7 times here (each nesting level, each doubling of a buffer); now 2.0.
    expect(copied / payload, 'bytes copied per payload byte').to.be.below(2.5)

    const decoder = new Decoder(frame)
    expect(decoder.readInt32(), 'frame size').to.equal(frame.length - 4)
    decoder.readInt16() // api key
    decoder.readInt16() // api version
    decoder.readInt32() // correlation id
    decoder.readString() // client id
    decoder.readString() // transactional id
    decoder.readInt16() // acks
    decoder.readInt32() // timeout
    expect(decoder.readInt32(), 'topics').to.equal(1)
    expect(decoder.readString()).to.equal('t')
    expect(decoder.readInt32(), 'partitions').to.equal(3)
    for (const expected of partitions) {
      expect(decoder.readInt32(), 'partition').to.equal(expected.partition)
      const size = decoder.readInt32()
      const batchBytes = frame.slice(decoder.offset, decoder.offset + size)
      // The CRC-32C covers the batch from its attributes (offset 21) to its end.
      expect(batchBytes.readUInt32BE(17), `CRC of partition ${expected.partition}`).to.equal(crc32C(batchBytes.slice(21)))
      const batch = await decodeRecordBatch(decoder)
      expect(batch.records.map(r => r.value)).to.deep.equal(expected.messages.map(m => m.value))
      expect(batch.records.map(r => r.key)).to.deep.equal(expected.messages.map(m => m.key))
    }
  })
})

describe('kafkajs fork: records written straight into their batch', () => {
  const { Types } = require('../src/protocol/message/compression')
  const messages = [
    { key: Buffer.from('a'), value: Buffer.from('1'), headers: [{ key: 'h', value: null }, { key: 'h', value: Buffer.from('x') }], timestamp: '1700000000005' },
    { key: null, value: null, headers: { one: Buffer.from('1'), many: [Buffer.from('2'), Buffer.from('3')] }, timestamp: '1700000000000' },
    { key: Buffer.alloc(20000, 1), value: Buffer.alloc(70000, 2), timestamp: '1700000000009' },
  ]
  for (const [name, compression] of [['uncompressed', Types.None], ['gzip', Types.GZIP]]) {
    it(`${name}: every field decodes back as written by a record encoder of its own`, async () => {
      const request = ProduceV3({ acks: -1, timeout: 1000, compression, topicData: [{ topic: 't', partitions: [{ partition: 0, firstSequence: 3, messages }] }] })
      const frame = (await request.encode()).buffer
      const decoder = new Decoder(frame)
      decoder.readString()
      decoder.readInt16()
      decoder.readInt32()
      decoder.readInt32()
      decoder.readString()
      decoder.readInt32()
      decoder.readInt32()
      decoder.readInt32() // record set size
      const batch = await decodeRecordBatch(decoder)
      expect(batch.firstSequence).to.equal(3)
      expect(batch.records.map(r => [r.key, r.value, r.timestamp, r.offset])).to.deep.equal(messages.map((m, i) => [m.key, m.value, m.timestamp, String(i)]))
      expect(batch.records[0].headerList).to.deep.equal([{ key: 'h', value: null }, { key: 'h', value: Buffer.from('x') }])
      expect(batch.records[1].headerList.map(h => [h.key, String(h.value)])).to.deep.equal([['one', '1'], ['many', '2'], ['many', '3']])
      // The same bytes as a record encoded on its own (record/v0, as before) for each record.
      if (compression === Types.None) {
        const alone = encodeRecord({ key: messages[2].key, value: messages[2].value, offsetDelta: 2, timestampDelta: 9 }).buffer
        expect(frame.includes(alone)).to.equal(true)
      }
    })
  }
})

describe('kafkajs fork: varints written in place', () => {
  const Encoder = require('../src/protocol/encoder')
  const Long = require('../src/utils/long')
  /** Upstream's encoding (an array of bytes, then a Buffer), as the reference. */
  const reference = value => {
    const bytes = []
    while ((value & 0xffffff80) !== 0) {
      bytes.push((value & 0x7f) | 0x80)
      value >>>= 7
    }
    bytes.push(value & 0x7f)
    return Buffer.from(bytes)
  }
  const edges = [0, 1, -1, 63, 64, -64, -65, 127, 128, 300, 8191, 8192, -8193, 2 ** 20, 2 ** 28 - 1, 2 ** 28, 2147483647, -2147483648]

  it('writes the bytes upstream wrote, and they decode back, after other bytes and across buffer growth', () => {
    const values = [...edges]
    for (let i = 0; i < 2000; i++) values.push(((i * 2654435761) | 0) >> (i % 31))
    const encoder = new Encoder(1).writeInt8(7)
    for (const v of values) encoder.writeVarInt(v)
    const expected = Buffer.concat([Buffer.from([7]), ...values.map(v => reference(Encoder.encodeZigZag(v)))])
    expect(encoder.buffer.equals(expected)).to.equal(true)
    const decoder = new Decoder(encoder.buffer)
    decoder.readInt8()
    for (const v of values) expect(decoder.readVarInt()).to.equal(v)
  })

  it('allocates no buffer per varint', () => {
    const encoder = new Encoder(64 * 1024)
    const { from } = Buffer
    let calls = 0
    Buffer.from = (...args) => (calls++, from.apply(Buffer, args))
    try {
      for (let i = 0; i < 1000; i++) encoder.writeVarInt(i * 7919).writeVarLong(Long.fromNumber(i * 1e9))
    } finally {
      Buffer.from = from
    }
    expect(calls).to.equal(0)
  })

  it('writes a varlong of a number in the int32 range as the Long path does, and sizes it alike', () => {
    for (const v of [...edges, 1234567, -7654321]) {
      const fast = new Encoder(16).writeVarLong(v).buffer
      const slow = new Encoder(16).writeVarLong(Long.fromNumber(v)).buffer
      expect(fast.equals(slow), `${v}`).to.equal(true)
      expect(Encoder.sizeOfVarLong(v), `size of ${v}`).to.equal(slow.length)
    }
  })

  it('writes varlongs that decode back', () => {
    const values = ['0', '1', '-1', '1700000000000', '-1700000000000', '9223372036854775807', '-9223372036854775808', '4398046511104']
    const encoder = new Encoder(1)
    for (const v of values) encoder.writeVarLong(Long.fromString(v))
    const decoder = new Decoder(encoder.buffer)
    for (const v of values) expect(decoder.readVarLong().toString()).to.equal(v)
  })
})
