// FORK.md "Aborted transactions": read_committed readers drop every record of every aborted
// transaction, whatever order the broker lists them in.
const { expect } = require('chai')
const filterAbortedMessages = require('../src/consumer/filterAbortedMessages')

const ABORT = Buffer.from([0, 0, 0, 0])
const COMMIT = Buffer.from([0, 0, 0, 1])
const record = (offset, producerId, value) => ({ offset: String(offset), key: Buffer.from('k'), value, batchContext: { producerId, inTransaction: true } })
const marker = (offset, producerId, key) => ({ offset: String(offset), key, value: '', isControlRecord: true, batchContext: { producerId, inTransaction: true } })
const kept = messages => messages.filter(m => !m.isControlRecord).map(m => m.value)

describe('kafkajs fork: aborted transactions hidden from read_committed readers', () => {
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
