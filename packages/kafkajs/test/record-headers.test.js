// FORK.md "Record headers": the decoder keeps headers as an ordered list (`headerList`, null
// values kept) and the record encoder takes such a list and writes null values as length -1.
const { expect } = require('chai')
const encodeRecord = require('../src/protocol/recordBatch/record/v0')
const decodeRecord = require('../src/protocol/recordBatch/record/v0/decoder')
const Decoder = require('../src/protocol/decoder')

const roundTrip = headers => {
  const decoder = new Decoder(encodeRecord({ key: null, value: Buffer.from('v'), headers }).buffer)
  decoder.readVarInt() // the record's length
  return decodeRecord(decoder, { firstOffset: '0', firstTimestamp: '0' })
}

describe('kafkajs fork: record headers as an ordered list with null values', () => {
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

  it('writes a null value as length -1 on the wire', () => {
    const { buffer } = encodeRecord({ key: null, value: null, headers: [{ key: 'n', value: null }] })
    // length 9, attributes, timestamp delta, offset delta, key -1, value -1, 1 header,
    // key length 1, 'n', value length -1 (zigzag varints: -1 is 0x01, 1 is 0x02).
    expect([...buffer]).to.deep.equal([0x12, 0, 0, 0, 0x01, 0x01, 0x02, 0x02, 0x6e, 0x01])
  })

  it('keeps the object view for other readers, repeated keys as arrays', () => {
    const { headers } = roundTrip(list)
    expect(Object.keys(headers)).to.deep.equal(['a', 'b', 'c', '__proto__'])
    expect(headers.a).to.deep.equal([Buffer.from('1'), Buffer.from('3')])
    expect(headers.b).to.equal(null)
    expect(Object.getPrototypeOf(headers)).to.equal(Object.prototype)
  })

  it('still takes the object form, a null value included', () => {
    expect(roundTrip({ x: Buffer.from('1'), y: null }).headerList).to.deep.equal([
      { key: 'x', value: Buffer.from('1') },
      { key: 'y', value: null },
    ])
  })
})
