import { expect } from 'chai'
import { planAssignments, type PlanGroup } from '../../controller/plan.js'
import { parseTopicGroup } from '../../common/config.js'
import type { AssignmentRecord, Versioned } from '../../common/store.js'

function group(name: string, partitions: number, extra: Record<string, unknown> = {}, running = true): PlanGroup {
  const spec = parseTopicGroup({ name, sourceCluster: 'src', targetCluster: 'dst', topics: ['t'], ...extra })
  return { spec, running, partitions: Array.from({ length: partitions }, (_, partition) => ({ group: name, topic: 't', partition })) }
}

function apply(current: Map<string, Versioned<AssignmentRecord>>, changes: Map<string, AssignmentRecord | null>): Map<string, Versioned<AssignmentRecord>> {
  const next = new Map(current)
  for (const [worker, record] of changes) {
    if (record === null) next.delete(worker)
    else next.set(worker, { value: record, version: (current.get(worker)?.version ?? -1) + 1 })
  }
  return next
}

describe('reconcile plan', () => {
  it('writes nothing on a second pass over a settled world', () => {
    const input = { groups: [group('g1', 6), group('g2', 3)], workers: [{ id: 'a' }, { id: 'b' }], current: new Map(), epoch: 1, leader: 'c1' }
    const first = planAssignments(input)
    expect(first.changes.size).to.equal(2)
    const second = planAssignments({ ...input, current: apply(new Map(), first.changes), epoch: 2 })
    expect(second.changes.size).to.equal(0)
    expect(second.moves).to.have.length(0)
  })

  it('assigns a partition listed twice in a group once, and writes nothing on the next pass', () => {
    const g = group('g1', 2)
    const input = { groups: [{ ...g, partitions: [...g.partitions, { group: 'g1', topic: 't', partition: 0 }] }], workers: [{ id: 'a' }, { id: 'b' }], current: new Map(), epoch: 1, leader: 'c1' }
    const first = planAssignments(input)
    expect([...first.changes.values()].flatMap((r) => r?.partitions ?? [])).to.have.length(2)
    const second = planAssignments({ ...input, current: apply(new Map(), first.changes), epoch: 2 })
    expect(second.changes.size).to.equal(0)
  })

  it('removes the node of a worker that is no longer live and moves only its partitions', () => {
    const input = { groups: [group('g1', 6)], workers: [{ id: 'a' }, { id: 'b' }, { id: 'c' }], current: new Map(), epoch: 1, leader: 'c1' }
    const settled = apply(new Map(), planAssignments(input).changes)
    const lost = settled.get('c')?.value.partitions ?? []
    const plan = planAssignments({ ...input, workers: [{ id: 'a' }, { id: 'b' }], current: settled })
    expect(plan.changes.get('c')).to.equal(null)
    expect(plan.moves.map((m) => m.from)).to.deep.equal(lost.map(() => 'c'))
  })

  it('unassigns every partition of a stopped group', () => {
    const input = { groups: [group('g1', 4)], workers: [{ id: 'a' }], current: new Map(), epoch: 1, leader: 'c1' }
    const settled = apply(new Map(), planAssignments(input).changes)
    const plan = planAssignments({ ...input, groups: [group('g1', 4, {}, false)], current: settled })
    expect(plan.changes.get('a')?.partitions).to.deep.equal([])
    expect(plan.moves.every((m) => m.to === null)).to.equal(true)
  })

  it('places a zone-pinned group only on workers of that zone, and explains when there are none', () => {
    const workers = [{ id: 'a', zone: 'z1' }, { id: 'b', zone: 'z2' }]
    const plan = planAssignments({ groups: [group('g1', 4, { zone: 'z2' })], workers, current: new Map(), epoch: 1, leader: 'c1' })
    expect([...plan.owners.values()]).to.deep.equal(['b', 'b', 'b', 'b'])
    const none = planAssignments({ groups: [group('g1', 4, { zone: 'z9' })], workers, current: new Map(), epoch: 1, leader: 'c1' })
    expect(none.owners.size).to.equal(0)
    expect(none.unplaced.get('g1')).to.match(/zone "z9"/)
  })
})

describe('reconcile plan order', () => {
  const key = (m: { partition: { group: string; topic: string; partition: number } }): string => `${m.partition.group}/${m.partition.topic}/${m.partition.partition}`

  it('lists moves in the order of their partition keys as strings, for names where one is a prefix of another', () => {
    const groups = ['a', 'a-b', 'a.b', 'ab', 'A'].map((name) => {
      const spec = parseTopicGroup({ name, sourceCluster: 'src', targetCluster: 'dst', topics: ['t', 't-x', 't.x', 'tx', 'T'] })
      const partitions = spec.topics?.flatMap((topic) => Array.from({ length: 12 }, (_, partition) => ({ group: name, topic, partition }))) ?? []
      return { spec, running: true, partitions }
    })
    const plan = planAssignments({ groups, workers: [{ id: 'a' }, { id: 'b' }], current: new Map(), epoch: 1, leader: 'c1' })
    const keys = plan.moves.map(key)
    expect(keys).to.have.length(5 * 5 * 12)
    expect(keys).to.deep.equal([...keys].sort())
  })

  it('writes each worker its partitions in partition order even when a group lists partitions named after another group', () => {
    const spec = (name: string): PlanGroup['spec'] => parseTopicGroup({ name, sourceCluster: 'src', targetCluster: 'dst', topics: ['t'] })
    const groups: PlanGroup[] = [
      { spec: spec('g1'), running: true, partitions: [{ group: 'z', topic: 't', partition: 0 }] },
      { spec: spec('g2'), running: true, partitions: [{ group: 'b', topic: 't', partition: 0 }] },
    ]
    const plan = planAssignments({ groups, workers: [{ id: 'a' }], current: new Map(), epoch: 1, leader: 'c1' })
    expect(plan.changes.get('a')?.partitions.map((p) => p.group)).to.deep.equal(['b', 'z'])
  })
})

describe('reconcile plan throttling and constraints', () => {
  it('moves at most maxMovesPerPass partitions between live workers, and finishes over later passes', () => {
    const base = { groups: [group('g1', 12)], workers: [{ id: 'a' }], current: new Map(), epoch: 1, leader: 'c1' }
    let current = apply(new Map(), planAssignments(base).changes)
    const joined = { ...base, workers: [{ id: 'a' }, { id: 'b' }, { id: 'c' }], maxMovesPerPass: 3 }
    let passes = 0
    for (;;) {
      const plan = planAssignments({ ...joined, current })
      if (plan.changes.size === 0) break
      expect(plan.moves.length).to.be.at.most(3)
      current = apply(current, plan.changes)
      passes++
      expect(passes).to.be.below(10)
    }
    expect(passes).to.equal(3)
    expect(current.get('b')?.value.partitions).to.have.length(4)
  })

  it('never throttles partitions whose owner is gone', () => {
    const base = { groups: [group('g1', 6)], workers: [{ id: 'a' }, { id: 'b' }], current: new Map(), epoch: 1, leader: 'c1' }
    const current = apply(new Map(), planAssignments(base).changes)
    const plan = planAssignments({ ...base, workers: [{ id: 'a' }], current, maxMovesPerPass: 0 })
    expect(plan.changes.get('a')?.partitions).to.have.length(6)
    expect(plan.deferred).to.equal(0)
  })

  it('pins a group to a data centre', () => {
    const workers = [{ id: 'a', dc: 'dc1' }, { id: 'b', dc: 'dc2' }]
    const plan = planAssignments({ groups: [group('g1', 3, { dc: 'dc1', strategy: 'zone-aware' })], workers, current: new Map(), epoch: 1, leader: 'c1' })
    expect([...new Set(plan.owners.values())]).to.deep.equal(['a'])
  })
})
