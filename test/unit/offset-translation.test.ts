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
    // Exactly where mirroring has got to: the end of the mirrored data.
    expect(translateOffset(syncs, 20)).to.include({ offset: 1017, exact: true })
    // Past it: the same end, and the records up to the committed offset, mirrored later, are read again.
    expect(translateOffset(syncs, 25)).to.include({ offset: 1017, exact: false })
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
    expect(translateOffset(syncs, 750)).to.include({ offset: 500, exact: true })
    expect(translateOffset(syncs, 800)).to.include({ offset: 500, exact: false })
  })

  it('never answers a position its own check counts skips at: a restart that has not yet re-mirrored what the crashed chain wrote', () => {
    const syncs: OffsetSync[] = [
      // The first chain wrote 0..149 at 0..149 and 180..199 at 150..169 (150..179 are not records:
      // markers, or records provenance leaves out), then crashed; its checkpoint said 150.
      { from: 0, to: 200, end: 170, runs: [[0, 0, 150], [180, 150, 20]] },
      // The restart from 150 passed over 150..179 and has written nothing yet: its end is the previous chain's.
      { from: 150, to: 180, end: 170, runs: [] },
    ]
    const t = translateOffset(syncs, 160)
    expect(skippedRecords(syncs, 160, t.offset as number), `skipped at ${t.offset}`).to.equal(0)
    // 180..199 are at 150..169 only: the group must start there, and reads nothing before 160 again.
    expect(t).to.include({ offset: 150, exact: true })
  })

  it('a replay still under way: records after it have only their first copy, before the replay\'s', () => {
    const syncs: OffsetSync[] = [
      { from: 0, to: 200, end: 200, runs: [[0, 0, 200]] },
      // Resumed from checkpoint 150: 150..169 mirrored again at 200..219 so far (the source was then lost).
      { from: 150, to: 170, end: 220, runs: [[150, 200, 20]] },
    ]
    const t = translateOffset(syncs, 160)
    expect(skippedRecords(syncs, 160, t.offset as number), `skipped at ${t.offset}`).to.equal(0)
    expect(t.offset).to.equal(170)
    // It re-reads 150..159 (at 200..209) after 170..199: not exact.
    expect(t.exact).to.equal(false)
  })

  it('an old owner\'s late sync (overlap after a move) does not hide the new owner\'s earlier copies of later records', () => {
    const syncs: OffsetSync[] = [
      // New owner B from checkpoint 100: 100..299 at 1000..1199.
      { from: 100, to: 300, end: 1200, runs: [[100, 1000, 200]] },
      // The old owner's in-flight batch 100..199 landed after B's writes, and its sync came last.
      { from: 100, to: 200, end: 1300, runs: [[100, 1200, 100]] },
    ]
    const t = translateOffset(syncs, 150)
    expect(skippedRecords(syncs, 150, t.offset as number), `skipped at ${t.offset}`).to.equal(0)
  })
})
