import { expect } from 'chai'
import { checkTargetEnds, type TargetCheckedRow } from '../../controller/target-check.js'

describe('group status checked against the target log', () => {
  const admin = (highs: Record<string, number[]>) => ({
    offsets: async (topic: string) => (highs[topic] ?? []).map((high, partition) => ({ partition, low: 0, stable: high, high })),
  })

  it('flags a partition whose target log ends before what the target acknowledged', async () => {
    const rows: TargetCheckedRow[] = [
      { targetTopic: 'dc1.orders', partition: 0, targetEnd: 100 },
      { targetTopic: 'dc1.orders', partition: 1, targetEnd: 50 },
      { targetTopic: 'dc1.orders', partition: 2 },
    ]
    expect(await checkTargetEnds(rows, admin({ 'dc1.orders': [100, 20, 7] }))).to.equal(undefined)
    expect(rows[0]).to.not.have.property('error')
    expect(rows[0]?.targetHighWatermark).to.equal(100)
    expect((rows[1]?.error as { code: string; message: string }).code).to.equal('TARGET_BEHIND')
    expect((rows[1]?.error as { message: string }).message).to.include('dc1.orders[1]').and.include('ends at offset 20').and.include('up to 50')
    // Nothing reported for it: nothing to compare, no error.
    expect(rows[2]).to.not.have.property('error')
  })

  it('flags a target partition that no longer exists, and keeps an error the worker reported', async () => {
    const rows: TargetCheckedRow[] = [
      { targetTopic: 'gone', partition: 0, targetEnd: 10 },
      { targetTopic: 'gone', partition: 1, targetEnd: 10, error: { code: 'KAFKA_UNREACHABLE', message: 'x' } },
    ]
    await checkTargetEnds(rows, admin({}))
    expect((rows[0]?.error as { code: string }).code).to.equal('TARGET_BEHIND')
    expect((rows[1]?.error as { code: string }).code).to.equal('KAFKA_UNREACHABLE')
  })

  it('returns the error of an unreachable target instead of failing the status', async () => {
    const rows: TargetCheckedRow[] = [{ targetTopic: 't', partition: 0, targetEnd: 1 }]
    const failing = { offsets: async () => Promise.reject(new Error('connect ECONNREFUSED')) }
    expect(await checkTargetEnds(rows, failing)).to.deep.equal({ code: 'KAFKA_ERROR', message: 'connect ECONNREFUSED' })
    expect(rows[0]).to.not.have.property('error')
  })
})
