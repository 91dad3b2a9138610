import { expect } from 'chai'
import type { Placement, TargetRecord } from '../../common/kafka/port.js'
import { silentLogger } from '../../common/logger.js'
import type { OffsetSync } from '../../common/offset-translation.js'
import { createOffsetSyncWriter } from '../../worker/offset-syncs.js'

/** A writer whose producer keeps every sync it was asked to write. */
function writer(): { syncs: ReturnType<typeof createOffsetSyncWriter>; written: OffsetSync[] } {
  const written: OffsetSync[] = []
  const syncs = createOffsetSyncWriter({
    group: { name: 'g' },
    topic: '_ferry.test.offset-syncs',
    admin: { createTopic: async () => true },
    log: silentLogger(),
    producer: {
      send: async (records: readonly TargetRecord[]) => {
        for (const r of records) written.push(JSON.parse(String(r.value)) as OffsetSync)
        return []
      },
      acknowledgedEnd: () => undefined,
      close: async () => undefined,
    },
  })
  return { syncs, written }
}

const placed = (baseOffset: number, count: number): Placement[] => [{ topic: 't', partition: 0, baseOffset, count }]

describe('offset sync writer', () => {
  it('a write whose placement is unknown breaks the chain, but what the chain gathered before it is still written', async () => {
    const { syncs, written } = writer()
    syncs.begin('t', 0, 100)
    syncs.note('t', 0, [100, 101, 102], 103, placed(1000, 3))
    // A partly acknowledged send: where 103..104 went is not known.
    syncs.note('t', 0, [103, 104], 105, undefined)
    syncs.note('t', 0, [105], 106, placed(1010, 1))
    await syncs.flush()
    expect(written).to.deep.equal([
      { from: 100, to: 103, end: 1003, runs: [[100, 1000, 3]] },
      { from: 105, to: 106, end: 1011, runs: [[105, 1010, 1]] },
    ])
  })

  it('a restart (begin) keeps what the previous chain gathered: it is written data', async () => {
    const { syncs, written } = writer()
    syncs.begin('t', 0, 0)
    syncs.note('t', 0, [0, 1], 2, placed(500, 2))
    syncs.begin('t', 0, 1)
    syncs.note('t', 0, [1, 2], 3, placed(502, 2))
    await syncs.flush()
    expect(written).to.deep.equal([
      { from: 0, to: 2, end: 502, runs: [[0, 500, 2]] },
      { from: 1, to: 3, end: 504, runs: [[1, 502, 2]] },
    ])
  })

  it('a chain begun with the target end writes it before anything is handled, and a chain that only passes over records keeps that end', async () => {
    const { syncs, written } = writer()
    syncs.begin('t', 0, 500, 1200)
    await syncs.flush()
    expect(written).to.deep.equal([{ from: 500, to: 500, end: 1200, runs: [] }])
    // Records left out (provenance) or markers: handled, none written; the end stays the known one.
    syncs.note('t', 0, [], 520, [])
    await syncs.flush()
    expect(written[1]).to.deep.equal({ from: 500, to: 520, end: 1200, runs: [] })
  })
})

