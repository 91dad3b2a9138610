import { expect } from 'chai'
import { diffStatuses, sameStatus } from '../../controller/status-diff.js'
import type { GroupStatusRecord } from '../../common/store.js'

function status(group: string, observedAt: string, extra: Partial<GroupStatusRecord> = {}): GroupStatusRecord {
  return { group, observedAt, topics: { t: 3 }, ...extra }
}

describe('status diff', () => {
  it('writes nothing when only observedAt changed', () => {
    const stored = new Map([['g1', status('g1', '2024-01-01T00:00:00Z')]])
    expect(sameStatus(stored.get('g1'), status('g1', '2024-01-02T00:00:00Z'))).to.equal(true)
    expect(diffStatuses(stored, [status('g1', '2024-01-02T00:00:00Z')])).to.deep.equal({ writes: [], newErrors: [], removals: [] })
  })

  it('creates a new group status and sets a changed one', () => {
    const stored = new Map([['g1', status('g1', 'x')]])
    const g1 = status('g1', 'y', { topics: { t: 4 } })
    const g2 = status('g2', 'y')
    const diff = diffStatuses(stored, [g1, g2])
    expect(diff.writes).to.deep.equal([
      { status: g1, exists: true },
      { status: g2, exists: false },
    ])
    expect(diff.newErrors).to.deep.equal([])
  })

  it('reports an error once, and again only when its code or message changes', () => {
    const error = { code: 'UNAVAILABLE', message: 'no live worker' }
    const first = status('g1', 'y', { error })
    expect(diffStatuses(new Map(), [first]).newErrors).to.deep.equal([first])

    const stored = new Map([['g1', status('g1', 'x', { error })]])
    // Same error, other fields changed: written, but the error is not new.
    const same = status('g1', 'y', { error: { ...error }, topics: { t: 9 } })
    const unchanged = diffStatuses(stored, [same])
    expect(unchanged.writes).to.have.length(1)
    expect(unchanged.newErrors).to.deep.equal([])

    const message = status('g1', 'y', { error: { ...error, message: 'other' } })
    expect(diffStatuses(stored, [message]).newErrors).to.deep.equal([message])
    const code = status('g1', 'y', { error: { ...error, code: 'KAFKA_ERROR' } })
    expect(diffStatuses(stored, [code]).newErrors).to.deep.equal([code])
    // An error cleared is no new error.
    expect(diffStatuses(stored, [status('g1', 'y')]).newErrors).to.deep.equal([])
  })

  it('removes the status of a group that no longer exists', () => {
    const stored = new Map([
      ['g1', status('g1', 'x')],
      ['gone', status('gone', 'x')],
    ])
    expect(diffStatuses(stored, [status('g1', 'y')])).to.deep.equal({ writes: [], newErrors: [], removals: ['gone'] })
  })
})
