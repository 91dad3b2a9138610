import { expect } from 'chai'
import { balanced } from '../../controller/strategies/balanced.js'
import { partitionRefKey, type PartitionRef, type WorkerRef } from '../../controller/strategies/types.js'

function parts(count: number, group = 'g', topic = 't'): PartitionRef[] {
  return Array.from({ length: count }, (_, partition) => ({ group, topic, partition }))
}
function workers(...ids: string[]): WorkerRef[] {
  return ids.map((id) => ({ id }))
}
function counts(owners: Map<string, string>): Map<string, number> {
  const result = new Map<string, number>()
  for (const worker of owners.values()) result.set(worker, (result.get(worker) ?? 0) + 1)
  return result
}
function moved(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): string[] {
  return [...after].filter(([key, worker]) => before.get(key) !== worker).map(([key]) => key)
}
const none = new Map<string, string>()
const noLoad = new Map<string, number>()

describe('balanced strategy', () => {
  const cases: Array<[number, number]> = [
    [1, 1], [6, 2], [7, 2], [10, 3], [3, 5], [100, 7], [64, 64],
  ]
  for (const [p, w] of cases) {
    it(`places ${p} partitions on ${w} workers evenly (max - min <= 1) and assigns every partition`, () => {
      const ids = Array.from({ length: w }, (_, i) => `w${i}`)
      const owners = balanced({ partitions: parts(p), workers: workers(...ids), current: none, load: noLoad })
      expect(owners.size).to.equal(p)
      const c = ids.map((id) => counts(owners).get(id) ?? 0)
      expect(Math.max(...c) - Math.min(...c)).to.be.at.most(1)
    })
  }

  it('leaves a balanced assignment unchanged', () => {
    const first = balanced({ partitions: parts(10), workers: workers('a', 'b', 'c'), current: none, load: noLoad })
    const second = balanced({ partitions: parts(10), workers: workers('a', 'b', 'c'), current: first, load: noLoad })
    expect([...second].sort()).to.deep.equal([...first].sort())
  })

  for (const [p, w] of [[10, 4], [12, 3], [7, 7], [50, 6]] as Array<[number, number]>) {
    it(`moves only the leaving worker's partitions (${p} partitions, ${w} -> ${w - 1} workers)`, () => {
      const ids = Array.from({ length: w }, (_, i) => `w${i}`)
      const before = balanced({ partitions: parts(p), workers: workers(...ids), current: none, load: noLoad })
      const leaver = 'w1'
      const after = balanced({ partitions: parts(p), workers: workers(...ids.filter((id) => id !== leaver)), current: before, load: noLoad })
      const movedKeys = moved(before, after)
      expect(movedKeys.length).to.equal(counts(before).get(leaver))
      for (const key of movedKeys) expect(before.get(key)).to.equal(leaver)
      expect(after.size).to.equal(p)
    })

    it(`moves at most ceil(P/W) partitions, all to the new worker, when one joins (${p} partitions, ${w} -> ${w + 1})`, () => {
      const ids = Array.from({ length: w }, (_, i) => `w${i}`)
      const before = balanced({ partitions: parts(p), workers: workers(...ids), current: none, load: noLoad })
      const after = balanced({ partitions: parts(p), workers: workers(...ids, 'zz-new'), current: before, load: noLoad })
      const movedKeys = moved(before, after)
      expect(movedKeys.length).to.be.at.most(Math.ceil(p / (w + 1)))
      for (const key of movedKeys) expect(after.get(key)).to.equal('zz-new')
      const c = [...counts(after).values()]
      expect(Math.max(...c) - Math.min(...c)).to.be.at.most(1)
    })
  }

  it('does not depend on the order of its inputs', () => {
    const ps = [...parts(5, 'g', 'a'), ...parts(4, 'g', 'b')]
    const ws = workers('c', 'a', 'b')
    const current = new Map([[partitionRefKey({ group: 'g', topic: 'a', partition: 3 }), 'b']])
    const one = balanced({ partitions: ps, workers: ws, current, load: noLoad })
    const two = balanced({ partitions: [...ps].reverse(), workers: [...ws].reverse(), current, load: noLoad })
    expect([...one].sort()).to.deep.equal([...two].sort())
  })

  it('keeps a partition with its current owner when that owner is still eligible', () => {
    const key = partitionRefKey({ group: 'g', topic: 't', partition: 0 })
    const owners = balanced({ partitions: parts(4), workers: workers('a', 'b'), current: new Map([[key, 'b']]), load: noLoad })
    expect(owners.get(key)).to.equal('b')
  })

  it('prefers less-loaded workers for the extra partition', () => {
    const owners = balanced({ partitions: parts(1), workers: workers('a', 'b'), current: none, load: new Map([['a', 5]]) })
    expect(owners.get(partitionRefKey({ group: 'g', topic: 't', partition: 0 }))).to.equal('b')
  })

  it('assigns nothing when no worker is eligible', () => {
    expect(balanced({ partitions: parts(3), workers: [], current: none, load: noLoad }).size).to.equal(0)
  })
})
