import { expect } from 'chai'
import { chunkRecords, type TargetRecord } from '../../worker/target-producer.js'

describe('target record chunks (record batches under the target size limit)', () => {
  const record = (i: number, valueBytes: number): TargetRecord => ({ topic: 't', partition: 0, key: `k${i}`, value: Buffer.alloc(valueBytes), headers: [{ key: 'h', value: Buffer.from('x') }] })

  it('keeps every record in order and each chunk within the limit', () => {
    const records = Array.from({ length: 3000 }, (_, i) => record(i, 1024))
    const chunks = chunkRecords(records, 512 * 1024)
    expect(chunks.flat()).to.deep.equal(records)
    expect(chunks.length).to.be.greaterThan(1)
    for (const chunk of chunks) expect(chunk.reduce((n, r) => n + (r.value as Buffer).length, 0)).to.be.at.most(512 * 1024)
  })

  it('puts a record larger than the limit in a chunk of its own, and makes no empty chunk', () => {
    const chunks = chunkRecords([record(0, 10), record(1, 2000), record(2, 10)], 1000)
    expect(chunks.map((c) => c.map((r) => r.key))).to.deep.equal([['k0'], ['k1'], ['k2']])
    expect(chunkRecords([], 1000)).to.deep.equal([])
  })
})
