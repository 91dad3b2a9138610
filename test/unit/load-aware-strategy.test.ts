import { expect } from 'chai'
import { loadAware } from '../../controller/strategies/load-aware.js'
import { partitionRefKey, type PartitionRef } from '../../controller/strategies/types.js'

const key = (partition: number, topic = 't'): string => partitionRefKey({ group: 'g', topic, partition })
function parts(count: number, topic = 't'): PartitionRef[] {
  return Array.from({ length: count }, (_, partition) => ({ group: 'g', topic, partition }))
}
function loads(owners: Map<string, string>, weights: Map<string, number>): Map<string, number> {
  const result = new Map<string, number>()
  for (const [k, w] of owners) result.set(w, (result.get(w) ?? 0) + (weights.get(k) ?? 1))
  return result
}
const noLoad = new Map<string, number>()

describe('load-aware strategy', () => {
  it('makes an overloaded worker shed its hottest partition that fits, and brings every worker within the ratio', () => {
    // a carries 100 + 60 + 10 + 10, b carries 10 + 10: a is far above 1.2 × mean.
    const weights = new Map([[key(0), 100], [key(1), 60], [key(2), 10], [key(3), 10], [key(4), 10], [key(5), 10]])
    const current = new Map([[key(0), 'a'], [key(1), 'a'], [key(2), 'a'], [key(3), 'a'], [key(4), 'b'], [key(5), 'b']])
    const owners = loadAware({ partitions: parts(6), workers: [{ id: 'a' }, { id: 'b' }], current, load: noLoad, weights, overloadRatio: 1.2 })
    // Moving key(0) (100) or key(1) (60) both bring the hotter side to 120; the hottest goes.
    expect(owners.get(key(0))).to.equal('b')
    expect(owners.get(key(1))).to.equal('a')
    // a is then at 80, below mean / 1.2, and takes back one small partition: two moves in all.
    const moved = [...owners].filter(([k, w]) => current.get(k) !== w).map(([k]) => k)
    expect(moved).to.have.length(2)
    const l = loads(owners, weights)
    expect(Math.max(...l.values())).to.be.at.most(1.2 * 100)
    expect(Math.min(...l.values())).to.be.at.least(100 / 1.2)
  })

  it('leaves a world within the ratio unchanged', () => {
    const weights = new Map([[key(0), 50], [key(1), 40], [key(2), 45]])
    const current = new Map([[key(0), 'a'], [key(1), 'b'], [key(2), 'c']])
    const owners = loadAware({ partitions: parts(3), workers: [{ id: 'a' }, { id: 'b' }, { id: 'c' }], current, load: noLoad, weights })
    expect([...owners].sort()).to.deep.equal([...current].sort())
  })

  it('places the partitions of a worker that left on the least-loaded workers, heaviest first', () => {
    const weights = new Map([[key(0), 90], [key(1), 30], [key(2), 20], [key(3), 10]])
    const current = new Map([[key(0), 'gone'], [key(1), 'a'], [key(2), 'b'], [key(3), 'gone']])
    const owners = loadAware({ partitions: parts(4), workers: [{ id: 'a' }, { id: 'b' }], current, load: noLoad, weights })
    expect(owners.get(key(1))).to.equal('a')
    expect(owners.get(key(0))).to.equal('b') // b (20) was lighter than a (30)
    expect(owners.get(key(3))).to.equal('a')
    // b then holds 110 of 150 (> 1.2 × 75) and sheds key(2) to a.
    expect(owners.get(key(2))).to.equal('a')
    expect(Math.max(...loads(owners, weights).values())).to.be.at.most(1.2 * 75)
  })

  it('gives a worker that joins its share, taking only partitions for it', () => {
    const current = new Map(parts(12).map((p, i) => [partitionRefKey(p), i % 2 === 0 ? 'a' : 'b']))
    const owners = loadAware({ partitions: parts(12), workers: [{ id: 'a' }, { id: 'b' }, { id: 'c' }], current, load: noLoad })
    const moved = [...owners].filter(([k, w]) => current.get(k) !== w)
    expect(moved.every(([, w]) => w === 'c')).to.equal(true)
    expect(moved.length).to.be.within(Math.ceil(4 / 1.2), 4)
  })

  it('places partitions of equal weight in partition order (t/2 before t/10), in turn over equal workers', () => {
    const owners = loadAware({ partitions: parts(12), workers: [{ id: 'a' }, { id: 'b' }, { id: 'c' }], current: new Map(), load: noLoad })
    expect(parts(12).map((p) => owners.get(partitionRefKey(p)))).to.deep.equal(['a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c', 'a', 'b', 'c'])
  })

  it('balances counts when nothing is reported, and ignores input order', () => {
    const one = loadAware({ partitions: parts(9), workers: [{ id: 'a' }, { id: 'b' }, { id: 'c' }], current: new Map(), load: noLoad })
    const two = loadAware({ partitions: [...parts(9)].reverse(), workers: [{ id: 'c' }, { id: 'a' }, { id: 'b' }], current: new Map(), load: noLoad })
    expect([...one].sort()).to.deep.equal([...two].sort())
    expect([...loads(one, new Map()).values()]).to.deep.equal([3, 3, 3])
  })
})
