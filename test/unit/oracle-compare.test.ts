/** The oracle's comparison (test/integration/oracle.ts) catches what it must: it is the judge of the record-shape and growth suites. */
import { expect } from 'chai'
import { compareMirror, type OracleRecord } from '../integration/oracle.js'

const b64 = (text: string): string => Buffer.from(text).toString('base64')
const record = (o: number, value: string, headers: Array<[string, string | null]> = []): OracleRecord => ({ p: 0, o, tt: 'CreateTime', ts: 1000 + o, k: b64(`k${o}`), v: b64(value), h: headers.map(([k, v]) => [b64(k), v === null ? null : b64(v)]) })
const partition = (records: OracleRecord[]): Map<number, OracleRecord[]> => new Map([[0, records]])
const source = [0, 1, 2, 3, 4].map((o) => record(o, `v${o}`, [['a', '1'], ['b', '2'], ['a', '3'], ['n', null]]))

describe('record oracle comparison', () => {
  it('an identical mirror is clean in both modes, whatever the target offsets', () => {
    const target = partition(source.map((r, i) => ({ ...r, o: 100 + i })))
    for (const mode of ['exact', 'at-least-once'] as const) {
      expect(compareMirror(partition(source), target, mode)).to.deep.include({ missing: 0, duplicates: 0, problems: [] })
    }
  })

  it('header order, a null header value turned empty, and a changed timestamp are each a problem', () => {
    const reordered = { ...source[1], h: [[b64('a'), b64('1')], [b64('a'), b64('3')], [b64('b'), b64('2')], [b64('n'), null]] } as OracleRecord
    const emptied = { ...source[2], h: [[b64('a'), b64('1')], [b64('b'), b64('2')], [b64('a'), b64('3')], [b64('n'), '']] } as OracleRecord
    const restamped = { ...source[3], ts: 99 } as OracleRecord
    const result = compareMirror(partition(source), partition([source[0], reordered, emptied, restamped, source[4]] as OracleRecord[]), 'at-least-once')
    expect(result.missing).to.equal(3)
    expect(result.problems.join('\n')).to.include('headers [a=0x31, a=0x33, b=0x32, n=null] != [a=0x31, b=0x32, a=0x33, n=null]').and.to.include('n=0x] != [').and.to.include('timestamp 99')
  })

  it('at-least-once: a re-sent run is duplicates; a gap or a reorder is missing records', () => {
    const replayed = [0, 1, 2, 1, 2, 3, 4].map((i) => source[i] as OracleRecord)
    expect(compareMirror(partition(source), partition(replayed), 'at-least-once')).to.deep.include({ missing: 0, duplicates: 2, problems: [] })
    expect(compareMirror(partition(source), partition(replayed), 'exact').problems).to.have.length(1)
    const gap = compareMirror(partition(source), partition([0, 1, 3, 4].map((i) => source[i] as OracleRecord)), 'at-least-once')
    expect(gap.missing).to.equal(1)
    expect(gap.problems[0]).to.include('1 source records missing').and.to.include('source offsets 2..2')
    const swapped = compareMirror(partition(source), partition([0, 2, 1, 3, 4].map((i) => source[i] as OracleRecord)), 'at-least-once')
    expect(swapped.missing).to.be.greaterThan(0)
    const short = compareMirror(partition(source), partition(source.slice(0, 3)), 'at-least-once')
    expect(short.missing).to.equal(2)
    expect(short.problems[0]).to.include('the last 2 source records are missing')
  })

  it('a partition only one side has is compared too', () => {
    const result = compareMirror(new Map([[0, source], [1, [{ ...(source[0] as OracleRecord), p: 1 }]]]), partition(source), 'exact')
    expect(result.partitions.map((p) => [p.partition, p.missing])).to.deep.equal([[0, 0], [1, 1]])
  })
})
