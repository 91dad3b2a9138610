/**
 * Drift between the assignment and what workers serve (controller/served.ts): the pure
 * classification of one partition, the counts per kind, and the not-served clock.
 */
import { expect } from 'chai'
import { DRIFT_GRACE_MS, classifyServed, countDrift, createNotServedTracker, mayBeStalled, type ServedInput } from '../../controller/served.js'

describe('served classification', () => {
  const base: ServedInput = { assignedWorker: 'w1', reports: [], stalledMs: 0, sourceEnd: 100, stallThresholdMs: DRIFT_GRACE_MS }
  const mirroring = (worker: string, position = 50) => ({ worker, state: 'mirroring', position })

  const table: Array<[string, Partial<ServedInput>, ReturnType<typeof classifyServed>]> = [
    ['the assigned worker mirrors it and advances', { reports: [mirroring('w1')] }, 'serving'],
    ['caught up: standing still at the source end', { reports: [mirroring('w1', 100)], stalledMs: 600000 }, 'serving'],
    ['standing still, source end not read', { reports: [mirroring('w1')], stalledMs: 600000, sourceEnd: null }, 'serving'],
    ['standing still shorter than the threshold', { reports: [mirroring('w1')], stalledMs: DRIFT_GRACE_MS - 1 }, 'serving'],
    ['mirroring without a position yet', { reports: [{ worker: 'w1', state: 'mirroring' }], stalledMs: 600000 }, 'serving'],
    ['nobody reports it', { reports: [] }, 'not_reported'],
    ['only another worker reports it (stale owner)', { reports: [mirroring('w2')] }, 'reported_by_other'],
    ['another worker reports it, not mirroring', { reports: [{ worker: 'w2', state: 'retrying' }] }, 'reported_by_other'],
    ['the stale owner and the assigned one both report it', { reports: [mirroring('w2'), mirroring('w1')] }, 'serving'],
    ['standing still for the threshold with records waiting', { reports: [mirroring('w1')], stalledMs: DRIFT_GRACE_MS }, 'no_progress'],
    ['reported while retrying', { reports: [{ worker: 'w1', state: 'retrying', position: 50 }] }, 'no_progress'],
    ['reported as failed', { reports: [{ worker: 'w1', state: 'failed', position: 50 }] }, 'no_progress'],
    ['reported as starting', { reports: [{ worker: 'w1', state: 'starting' }] }, 'no_progress'],
    ['reported without a state', { reports: [{ worker: 'w1', position: 50 }] }, 'no_progress'],
  ]
  for (const [name, input, kind] of table) {
    it(`${name}: ${kind}`, () => {
      expect(classifyServed({ ...base, ...input })).to.equal(kind)
    })
  }

  it('reads the source end only where a mirroring position stood still for the threshold', () => {
    expect(mayBeStalled({ ...base, reports: [mirroring('w1')], stalledMs: DRIFT_GRACE_MS })).to.equal(true)
    expect(mayBeStalled({ ...base, reports: [mirroring('w1')], stalledMs: DRIFT_GRACE_MS - 1 })).to.equal(false)
    expect(mayBeStalled({ ...base, reports: [mirroring('w2')], stalledMs: DRIFT_GRACE_MS })).to.equal(false)
    expect(mayBeStalled({ ...base, reports: [{ worker: 'w1', state: 'retrying', position: 1 }], stalledMs: DRIFT_GRACE_MS })).to.equal(false)
  })

  it('counts the kinds of drift, serving not among them', () => {
    expect(countDrift(['serving', 'not_reported', 'no_progress', 'not_reported', 'serving'])).to.deep.equal({ not_reported: 2, reported_by_other: 0, no_progress: 1 })
    expect(countDrift([])).to.deep.equal({ not_reported: 0, reported_by_other: 0, no_progress: 0 })
  })
})

describe('not-served tracker', () => {
  const p = { group: 'g', topic: 't', partition: 0 }
  const setup = () => {
    let now = 1000
    return { tracker: createNotServedTracker({ now: () => now }), advance: (ms: number) => (now += ms) }
  }

  it('times a partition from the first sample that found it not served', () => {
    const { tracker, advance } = setup()
    expect(tracker.notServedForMs(p)).to.equal(0)
    tracker.observe([{ ...p, kind: 'not_reported' }])
    advance(5000)
    tracker.observe([{ ...p, kind: 'not_reported' }])
    advance(2000)
    expect(tracker.notServedForMs(p)).to.equal(7000)
  })

  it('keeps the clock when the kind changes (handed to a worker that does not serve it either)', () => {
    const { tracker, advance } = setup()
    tracker.observe([{ ...p, kind: 'reported_by_other' }])
    advance(20000)
    tracker.observe([{ ...p, kind: 'not_reported' }])
    advance(15000)
    expect(tracker.notServedForMs(p)).to.equal(35000)
  })

  it('resets once served, and forgets partitions no longer assigned', () => {
    const { tracker, advance } = setup()
    const q = { ...p, partition: 1 }
    tracker.observe([{ ...p, kind: 'not_reported' }, { ...q, kind: 'not_reported' }])
    advance(10000)
    tracker.observe([{ ...p, kind: 'serving' }])
    expect(tracker.notServedForMs(p)).to.equal(0)
    expect(tracker.notServedForMs(q)).to.equal(0)
    tracker.observe([{ ...p, kind: 'not_reported' }])
    advance(1000)
    expect(tracker.notServedForMs(p)).to.equal(1000)
  })
})
