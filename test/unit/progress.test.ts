/**
 * No-progress detection from consecutive worker reports (controller/progress.ts): a position
 * that stands still is stalled for as long as it has been watched unchanged; one that advances,
 * or moves to another worker, starts afresh; reports without a position are not evidence.
 */
import { expect } from 'chai'
import { createProgressTracker } from '../../controller/progress.js'

describe('progress tracker', () => {
  const p = { group: 'g', topic: 't', partition: 0 }
  const setup = () => {
    let now = 1000
    const tracker = createProgressTracker({ now: () => now, forgetAfterMs: 60000 })
    return { tracker, advance: (ms: number) => (now += ms) }
  }

  it('counts how long a reported position has not changed', () => {
    const { tracker, advance } = setup()
    expect(tracker.stalledForMs(p, 'w1')).to.equal(0)
    tracker.observe([{ ...p, worker: 'w1', position: 10 }])
    advance(4000)
    tracker.observe([{ ...p, worker: 'w1', position: 10 }])
    advance(3000)
    expect(tracker.stalledForMs(p, 'w1')).to.equal(7000)
  })

  it('starts afresh when the position advances', () => {
    const { tracker, advance } = setup()
    tracker.observe([{ ...p, worker: 'w1', position: 10 }])
    advance(5000)
    tracker.observe([{ ...p, worker: 'w1', position: 11 }])
    advance(1000)
    expect(tracker.stalledForMs(p, 'w1')).to.equal(1000)
  })

  it('keeps workers apart: a partition that moved is judged on its new owner only', () => {
    const { tracker, advance } = setup()
    tracker.observe([{ ...p, worker: 'w1', position: 10 }])
    advance(9000)
    tracker.observe([{ ...p, worker: 'w2', position: 10 }])
    advance(1000)
    expect(tracker.stalledForMs(p, 'w2')).to.equal(1000)
    expect(tracker.stalledForMs(p, 'w1')).to.equal(10000)
  })

  it('ignores reports without a position and forgets partitions no longer reported', () => {
    const { tracker, advance } = setup()
    tracker.observe([{ ...p, worker: 'w1' }])
    expect(tracker.stalledForMs(p, 'w1')).to.equal(0)
    tracker.observe([{ ...p, worker: 'w1', position: 3 }])
    advance(61000)
    tracker.observe([])
    expect(tracker.stalledForMs(p, 'w1')).to.equal(0)
  })
})
