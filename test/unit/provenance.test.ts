/**
 * Provenance (active-active): the `ferry.origin` header rules of worker/provenance.ts, and a
 * provenance group's mirror task on the unit harness: records that came from the target are left
 * out, the others stamped, and the checkpoint steps past the left-out ones (a batch of nothing
 * but left-out records included), in both delivery modes.
 */
import { expect } from 'chai'
import type { SourceRecord } from '../../common/kafka/port.js'
import { ORIGIN_HEADER, originOf, stampRecords } from '../../worker/provenance.js'
import { worldPerTest, type World } from './mirror-harness.js'

const origins = { source: 'AAAAAAAAAAAAAAAAAAAAAA', target: 'BBBBBBBBBBBBBBBBBBBBBB' }
const header = (key: string, value: string | null): { key: string; value: Buffer | null } => ({ key, value: value === null ? null : Buffer.from(value) })
const record = (offset: number, headers: SourceRecord['headers']): SourceRecord => ({ offset, key: Buffer.from(`k${offset}`), value: Buffer.from(`v${offset}`), headers, timestamp: '1700000000000' })
const shown = (headers: SourceRecord['headers'] | undefined): Array<[string, string | null]> => (headers ?? []).map((h) => [h.key, h.value === null ? null : String(h.value)])

describe('provenance header (ferry.origin)', () => {
  it('appends the source cluster id after the record\'s own headers, which stay as they were (order, repeated keys, null values)', () => {
    const own = [header('b', '1'), header('a', null), header('b', '2'), header('', '')]
    const { kept, dropped } = stampRecords([record(7, own)], origins)
    expect(dropped).to.equal(0)
    expect(kept).to.have.length(1)
    expect(shown(kept[0]?.headers)).to.deep.equal([['b', '1'], ['a', null], ['b', '2'], ['', ''], [ORIGIN_HEADER, origins.source]])
    expect(kept[0]).to.include({ offset: 7 })
    // The fetched record is not changed in place (a retried batch would be stamped twice).
    expect(own).to.have.length(4)
  })

  it('keeps a record that already carries an origin exactly as it is, wherever the header sits', () => {
    const third = 'CCCCCCCCCCCCCCCCCCCCCC'
    const headers = [header('x', '1'), header(ORIGIN_HEADER, third), header('y', null)]
    const { kept } = stampRecords([record(0, headers)], origins)
    expect(kept[0]?.headers).to.equal(headers)
    expect(originOf(headers)).to.equal(third)
  })

  it('leaves out records whose origin is the target cluster, and only those', () => {
    const records = [record(0, []), record(1, [header(ORIGIN_HEADER, origins.target)]), record(2, [header(ORIGIN_HEADER, origins.source)]), record(3, [header('z', null), header(ORIGIN_HEADER, origins.target)])]
    const { kept, dropped } = stampRecords(records, origins)
    expect(dropped).to.equal(2)
    expect(kept.map((r) => r.offset)).to.deep.equal([0, 2])
  })

  it('reads the first ferry.origin header when a record carries several', () => {
    expect(originOf([header(ORIGIN_HEADER, origins.source), header(ORIGIN_HEADER, origins.target)])).to.equal(origins.source)
    expect(stampRecords([record(0, [header(ORIGIN_HEADER, origins.source), header(ORIGIN_HEADER, origins.target)])], origins).dropped).to.equal(0)
  })
})

describe('mirror task with provenance (unit harness)', function () {
  this.timeout(10000)
  const current = worldPerTest()
  let world: World
  beforeEach(() => {
    world = current()
  })
  const fromTarget = [header('h', null), header(ORIGIN_HEADER, 'target-cluster-id')]
  const fromThird = [header(ORIGIN_HEADER, 'third-cluster-id'), header('h', '1')]

  for (const delivery of ['at-least-once', 'exactly-once'] as const) {
    it(`${delivery}: writes local records stamped and foreign ones unchanged, leaves out the target's, and checkpoints past them (a batch of nothing else too)`, async () => {
      world.batchSize = 4
      // Batch 1: [local, target, third, target]; batch 2: four from the target (nothing to write); batch 3: [local, target].
      world.source.append('t', 0, 1)
      world.source.appendWithHeaders('t', 0, fromTarget)
      world.source.appendWithHeaders('t', 0, fromThird)
      for (let i = 0; i < 5; i++) world.source.appendWithHeaders('t', 0, fromTarget)
      world.source.append('t', 0, 1)
      world.source.appendWithHeaders('t', 0, fromTarget)
      const w = world.task('w1', { delivery, provenance: true })
      await w.task.update([{ group: 'g', topic: 't', partition: 0 }])
      await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 10, 'checkpoint past the last record (from the target)')
      const written = world.target.records('t')
      expect(written.map((r) => String(r.value))).to.deep.equal(['t-0-0', 't-0-2', 't-0-8'])
      expect(shown(written[0]?.headers)).to.deep.equal([['h', null], ['h', '2'], [ORIGIN_HEADER, 'source-cluster-id']])
      expect(shown(written[1]?.headers)).to.deep.equal([[ORIGIN_HEADER, 'third-cluster-id'], ['h', '1']])
      expect(world.target.checkpoints('g').get('t/0')?.mirrored).to.equal(3)
      expect(w.task.status()[0]).to.include({ position: 10, recordsMirrored: 3, state: 'mirroring' })
      const dropped = (await w.registry.getSingleMetric('ferry_worker_records_loop_dropped_total')?.get())?.values.find((v) => v.labels.group === 'g')?.value
      expect(dropped).to.equal(7)
    })
  }

  it('a batch of nothing but records from the target moves the checkpoint (at-least-once: no data write)', async () => {
    world.batchSize = 10
    for (let i = 0; i < 6; i++) world.source.appendWithHeaders('t', 0, fromTarget)
    const w = world.task('w1', { provenance: true })
    await w.task.update([{ group: 'g', topic: 't', partition: 0 }])
    await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 6, 'checkpoint 6')
    expect(world.target.records('t')).to.deep.equal([])
  })

  it('without provenance (the default) mirrors every record byte for byte, a ferry.origin naming the target included', async () => {
    world.source.append('t', 0, 1)
    world.source.appendWithHeaders('t', 0, fromTarget)
    const w = world.task('w1')
    await w.task.update([{ group: 'g', topic: 't', partition: 0 }])
    await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 2, 'checkpoint 2')
    expect(world.target.records('t').map((r) => shown(r.headers))).to.deep.equal([
      [['h', null], ['h', '2']],
      [['h', null], [ORIGIN_HEADER, 'target-cluster-id']],
    ])
  })
})
