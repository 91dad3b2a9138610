import { expect } from 'chai'
import { appendSync, skippedRecords, translateBack, translateOffset, type OffsetSync } from '../../common/offset-translation.js'
import { runsOf } from '../../worker/offset-syncs.js'

describe('offset translation (syncs to target offsets)', () => {
  it('runsOf: contiguous source and target offsets make one run; gaps on either side split it', () => {
    expect(runsOf([10, 11, 12], [{ topic: 't', partition: 0, baseOffset: 100, count: 3 }])).to.deep.equal([[10, 100, 3]])
    // A transaction marker at source 12, and a second request placed after a foreign record at 103.
    expect(runsOf([10, 11, 13, 14], [{ topic: 't', partition: 0, baseOffset: 100, count: 2 }, { topic: 't', partition: 0, baseOffset: 103, count: 2 }])).to.deep.equal([[10, 100, 2], [13, 103, 2]])
    expect(runsOf([1, 2], [{ topic: 't', partition: 0, baseOffset: 5, count: 1 }]), 'placements that do not account for every record').to.equal(undefined)
  })

  it('translates exactly inside runs, and to the next mirrored record from a gap', () => {
    const syncs: OffsetSync[] = [{ from: 0, to: 20, end: 1017, runs: [[0, 1000, 10], [12, 1010, 7]] }]
    expect(translateOffset(syncs, 0)).to.include({ offset: 1000, exact: true })
    expect(translateOffset(syncs, 7)).to.include({ offset: 1007, exact: true })
    // 10 and 11 are not records (markers or compacted away): the next mirrored one is source 12.
    expect(translateOffset(syncs, 10)).to.include({ offset: 1010, exact: true })
    expect(translateOffset(syncs, 19)).to.include({ offset: 1017, exact: true })
    // Past everything mirrored: the end of the mirrored data.
    expect(translateOffset(syncs, 25)).to.include({ offset: 1017, exact: true })
  })

  it('after an at-least-once replay the latest copy counts, and nothing at or after C lies before it', () => {
    const syncs: OffsetSync[] = [
      { from: 0, to: 100, end: 100, runs: [[0, 0, 100]] },
      // The new owner resumed from checkpoint 50: 50..99 mirrored again at 100..149, then on.
      { from: 50, to: 150, end: 200, runs: [[50, 100, 100]] },
    ]
    const t = translateOffset(syncs, 60)
    expect(t).to.include({ offset: 110, exact: true })
    expect(skippedRecords(syncs, 60, 110)).to.equal(0)
    // The first copy's position lies before the latest copies: re-read, not skipped.
    expect(skippedRecords(syncs, 60, 60)).to.equal(0)
    // One past the latest copy of 60 skips it.
    expect(skippedRecords(syncs, 60, 111)).to.equal(1)
  })

  it('a range no sync covers falls back to the end of what was mirrored before it (re-read, not skipped)', () => {
    const syncs: OffsetSync[] = [
      { from: 0, to: 10, end: 10, runs: [[0, 0, 10]] },
      // 10..19 were written but their sync was lost.
      { from: 20, to: 30, end: 30, runs: [[20, 20, 10]] },
    ]
    const t = translateOffset(syncs, 15)
    expect(t).to.include({ offset: 10, exact: false })
    expect(skippedRecords(syncs, 15, 10)).to.equal(0)
  })

  it('older than every kept sync: the target log start', () => {
    const syncs: OffsetSync[] = [{ from: 500, to: 510, end: 10, runs: [[500, 0, 10]] }]
    expect(translateOffset(syncs, 100)).to.deep.include({ offset: undefined, fallback: 'target-start', exact: false })
    expect(translateOffset([], 100)).to.deep.include({ offset: undefined, fallback: 'target-end' })
  })

  it('appendSync merges a chain, keeps a replay apart, and bounds what it keeps', () => {
    const list: OffsetSync[] = []
    appendSync(list, { from: 0, to: 10, end: 10, runs: [[0, 0, 10]] })
    appendSync(list, { from: 10, to: 20, end: 20, runs: [[10, 10, 10]] })
    expect(list).to.deep.equal([{ from: 0, to: 20, end: 20, runs: [[0, 0, 20]] }])
    appendSync(list, { from: 5, to: 8, end: 23, runs: [[5, 20, 3]] })
    expect(list).to.have.length(2)
    const bounded: OffsetSync[] = []
    for (let i = 0; i < 50; i++) appendSync(bounded, { from: i * 2, to: i * 2 + 2, end: i + 1, runs: [[i * 2, i, 1]] }, 20)
    const runs = bounded.reduce((sum, s) => sum + s.runs.length + 1, 0)
    expect(runs).to.be.at.most(20)
    // The newest are kept: the last source offset still translates exactly.
    expect(translateOffset(bounded, 98)).to.include({ offset: 49, exact: true })
    expect(translateOffset(bounded, 0)).to.include({ exact: false })
  })

  it('translateBack: a copy goes back to its original offset; past every copy there is none', () => {
    // Source 0..9 were copied to target 100..109; 10..11 were markers; 12..19 went to 110..117.
    const syncs: OffsetSync[] = [{ from: 0, to: 20, end: 118, runs: [[0, 100, 10], [12, 110, 8]] }]
    expect(translateBack(syncs, 105)).to.equal(5)
    expect(translateBack(syncs, 110)).to.equal(12)
    expect(translateBack(syncs, 50), 'before every copy: the first original').to.equal(0)
    expect(translateBack(syncs, 118), 'past every copy').to.equal(undefined)
  })

  it('a restarted chain that mirrored nothing yet still knows where the mirrored data ends (not the target end, which others may have written past)', () => {
    const syncs: OffsetSync[] = [
      { from: 0, to: 500, end: 500, runs: [[0, 0, 500]] },
      // After a restart, the task passed over records it did not write (provenance dropped them).
      { from: 500, to: 750, end: null, runs: [] },
    ]
    expect(translateOffset(syncs, 500)).to.include({ offset: 500, exact: true })
    expect(translateOffset(syncs, 800)).to.include({ offset: 500, exact: true })
  })
})
