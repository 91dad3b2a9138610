import { expect } from 'chai'
import { createHealer, HEAL_DEFAULTS, type HealReport, type Healer } from '../../controller/healer.js'
import { planAssignments, type PlanGroup } from '../../controller/plan.js'
import { parseTopicGroup } from '../../common/config.js'
import type { AssignmentRecord, Versioned } from '../../common/store.js'
import type { PartitionRef } from '../../controller/strategies/index.js'

const P = (group: string, partition: number, topic = 't'): PartitionRef => ({ group, topic, partition })
const key = (p: PartitionRef): string => `${p.group}/${p.topic}/${p.partition}`

/**
 * A fake world: workers with their partitions, each reporting a state and a position, a clock,
 * and source ends; `tick` advances the clock and lets the healer look.
 */
class World {
  t = 0
  readonly healer: Healer
  assignments = new Map<string, PartitionRef[]>()
  /** worker → partition key → report. */
  reports = new Map<string, Map<string, HealReport>>()
  ends = new Map<string, number>()
  pairs = new Map<string, string>([['g', 'src→dst'], ['h', 'src→dst'], ['other', 'src2→dst']])

  constructor() {
    this.healer = createHealer({ now: () => this.t })
  }

  assign(worker: string, partitions: PartitionRef[], state = 'mirroring', position = 0): this {
    this.assignments.set(worker, partitions)
    const byKey = new Map<string, HealReport>()
    for (const p of partitions) byKey.set(key(p), { worker, state, position })
    this.reports.set(worker, byKey)
    return this
  }

  report(worker: string, p: PartitionRef, change: Partial<HealReport> | null): this {
    const byKey = this.reports.get(worker) ?? new Map<string, HealReport>()
    this.reports.set(worker, byKey)
    if (change === null) byKey.delete(key(p))
    else byKey.set(key(p), { ...(byKey.get(key(p)) ?? { worker }), ...change, worker })
    return this
  }

  /** Worker's partitions of group advance by `n` (data flowing), with the source end ahead of them. */
  advance(worker: string, group: string, n = 10): this {
    for (const [k, r] of this.reports.get(worker) ?? []) {
      if (!k.startsWith(`${group}/`) || r.state !== 'mirroring') continue
      r.position = (r.position ?? 0) + n
      this.ends.set(k, r.position)
    }
    return this
  }

  /** Look every second for `ms`, running `each` before each look; returns every quarantine started. */
  run(ms: number, each: () => void = () => undefined) {
    const started = []
    for (let elapsed = 0; elapsed < ms; elapsed += 1000) {
      this.t += 1000
      each()
      const reports = new Map<string, HealReport[]>()
      for (const byKey of this.reports.values()) for (const [k, r] of byKey) reports.set(k, [...(reports.get(k) ?? []), { ...r }])
      this.healer.observe({ assignments: this.assignments, reports, pairOf: (g) => this.pairs.get(g) })
      const wanted = new Set(this.healer.needsSourceEnd().map(key))
      started.push(...this.healer.decide(new Map([...this.ends].filter(([k]) => wanted.has(k)))))
    }
    return started
  }
}

describe('healer: live workers holding partitions without progress', () => {
  it('quarantines a worker whose partitions keep retrying while another worker moves data between the same clusters, within the heal time', () => {
    const w = new World().assign('w1', [P('g', 0), P('g', 1)]).assign('w2', [P('g', 2), P('g', 3)])
    w.run(3000, () => w.advance('w1', 'g').advance('w2', 'g'))
    w.report('w1', P('g', 0), { state: 'retrying' }).report('w1', P('g', 1), { state: 'retrying' })
    const brokeAt = w.t
    let quarantinedAt: number | undefined
    const started = w.run(20000, () => {
      w.advance('w2', 'g')
      if (quarantinedAt === undefined && w.healer.excluded('g').has('w1')) quarantinedAt = w.t
    })
    expect(started.map((q) => [q.worker, q.group])).to.deep.equal([['w1', 'g']])
    expect(started[0]?.reason).to.match(/2 of its 2 partitions.*retrying.*w2/)
    const took = (started[0]?.since ?? 0) - brokeAt
    expect(took).to.be.at.least(HEAL_DEFAULTS.healAfterMs).and.at.most(HEAL_DEFAULTS.healAfterMs + 1000)
    expect([...w.healer.excluded('g')]).to.deep.equal(['w1'])
    expect(w.healer.excluded('h').size, 'only the group it failed').to.equal(0)
  })

  it('moves nothing when nobody moves data between those clusters (a cluster down for everyone)', () => {
    const w = new World().assign('w1', [P('g', 0), P('g', 1)]).assign('w2', [P('g', 2), P('g', 3)])
    w.run(3000, () => w.advance('w1', 'g').advance('w2', 'g'))
    for (const [worker, p] of [['w1', 0], ['w1', 1], ['w2', 2], ['w2', 3]] as const) w.report(worker, P('g', p), { state: 'retrying' })
    expect(w.run(60000)).to.deep.equal([])
    // A worker advancing between *other* clusters is no evidence either.
    w.assign('w3', [P('other', 0)])
    expect(w.run(30000, () => w.advance('w3', 'other'))).to.deep.equal([])
  })

  it('after an incident that hit everyone, a worker the others recovered before gets the shared grace, not the heal time', () => {
    const w = new World().assign('w1', [P('g', 0)]).assign('w2', [P('g', 1)])
    w.run(3000, () => w.advance('w1', 'g').advance('w2', 'g'))
    // The source goes away for both.
    w.report('w1', P('g', 0), { state: 'retrying' }).report('w2', P('g', 1), { state: 'retrying' })
    expect(w.run(30000)).to.deep.equal([])
    // w2 comes back first; w1 waits out a longer retry backoff.
    w.report('w2', P('g', 1), { state: 'mirroring' })
    const recoveredAt = w.t
    const started = w.run(60000, () => w.advance('w2', 'g'))
    expect(started.map((q) => q.worker)).to.deep.equal(['w1'])
    const after = (started[0]?.since ?? 0) - recoveredAt
    expect(after).to.be.at.least(HEAL_DEFAULTS.sharedGraceMs).and.at.most(HEAL_DEFAULTS.sharedGraceMs + 2000)
  })

  it('after an incident that hit everyone, a worker that came back after the others and stalled again gets the shared grace too', () => {
    const w = new World().assign('w1', [P('g', 0)]).assign('w2', [P('g', 1)])
    // Both serve for a while (longer than the heal time) before the incident.
    w.run(10000, () => w.advance('w1', 'g').advance('w2', 'g'))
    // The target goes away for both.
    w.report('w1', P('g', 0), { state: 'retrying' }).report('w2', P('g', 1), { state: 'retrying' })
    expect(w.run(20000)).to.deep.equal([])
    w.report('w2', P('g', 1), { state: 'mirroring' })
    const recoveredAt = w.t
    // w1's task restarts 3 s later: one step of progress, then its first send waits in the
    // client's own retries (mirroring, position still, records waiting at the source).
    const started = w.run(60000, () => {
      w.advance('w2', 'g')
      if (w.t === recoveredAt + 3000) w.report('w1', P('g', 0), { state: 'mirroring' }).advance('w1', 'g')
      if (w.t > recoveredAt + 3000) w.ends.set('g/t/0', (w.reports.get('w1')?.get('g/t/0')?.position ?? 0) + 100)
    })
    expect(started.map((q) => q.worker)).to.deep.equal(['w1'])
    expect((started[0]?.since ?? 0) - recoveredAt, 'quarantined only once the shared grace is over').to.be.at.least(HEAL_DEFAULTS.sharedGraceMs)
  })

  it('after an incident that hit everyone, a worker that served again for a while and then stalled still gets the shared grace', () => {
    const w = new World().assign('w1', [P('g', 0)]).assign('w2', [P('g', 1)])
    w.run(10000, () => w.advance('w1', 'g').advance('w2', 'g'))
    // The target is frozen for both: positions stand still with records waiting.
    w.ends.set('g/t/0', 1_000_000)
    w.ends.set('g/t/1', 1_000_000)
    expect(w.run(30000)).to.deep.equal([])
    const recoveredAt = w.t
    // Both come back; w1 serves 9 s (longer than the heal time), then its next send waits in the
    // client's retries after the outage while w2 moves data.
    const started = w.run(60000, () => {
      w.advance('w2', 'g')
      if (w.t < recoveredAt + 9000) w.advance('w1', 'g')
      else w.ends.set('g/t/0', (w.reports.get('w1')?.get('g/t/0')?.position ?? 0) + 100)
    })
    expect(started.map((q) => q.worker)).to.deep.equal(['w1'])
    expect((started[0]?.since ?? 0) - recoveredAt, 'quarantined only once the shared grace after the incident is over').to.be.at.least(HEAL_DEFAULTS.sharedGraceMs)
  })

  it('a worker that advances any partition of the group keeps it: one stuck partition is the partition\'s problem', () => {
    const w = new World().assign('w1', [P('g', 0), P('g', 1)]).assign('w2', [P('g', 2)])
    w.run(2000, () => w.advance('w1', 'g').advance('w2', 'g'))
    w.report('w1', P('g', 0), { state: 'retrying' })
    expect(w.run(30000, () => w.advance('w1', 'g').advance('w2', 'g'))).to.deep.equal([])
  })

  it('a position standing still counts only while the source has records past it', () => {
    const w = new World().assign('w1', [P('g', 0)], 'mirroring', 100).assign('w2', [P('g', 1)])
    w.ends.set('g/t/0', 100)
    // Caught up and idle: never stuck.
    expect(w.run(30000, () => w.advance('w2', 'g'))).to.deep.equal([])
    // Records arrive, the position stands still (a wedged consumer, a hung producer, a frozen process).
    w.ends.set('g/t/0', 150)
    const started = w.run(20000, () => w.advance('w2', 'g'))
    expect(started.map((q) => q.worker)).to.deep.equal(['w1'])
    expect(started[0]?.reason).to.match(/position 100 still for \d+ s, source end 150/)
  })

  it('an unknown source end (unreadable cluster) never counts as stuck', () => {
    const w = new World().assign('w1', [P('g', 0)], 'mirroring', 100).assign('w2', [P('g', 1)])
    w.ends.delete('g/t/0')
    expect(w.run(30000, () => w.advance('w2', 'g'))).to.deep.equal([])
  })

  it('starting and unreported partitions get the start grace on top, counted from the last change of the assignment', () => {
    const w = new World().assign('w2', [P('g', 1)])
    w.run(2000, () => w.advance('w2', 'g'))
    w.assign('w1', [P('g', 0)], 'starting')
    const assignedAt = w.t
    const started = w.run(30000, () => w.advance('w2', 'g'))
    expect(started.map((q) => q.worker)).to.deep.equal(['w1'])
    const took = (started[0]?.since ?? 0) - assignedAt
    expect(took).to.be.at.least(HEAL_DEFAULTS.healAfterMs + HEAL_DEFAULTS.startGraceMs)

    const v = new World().assign('w2', [P('g', 1)])
    v.run(2000, () => v.advance('w2', 'g'))
    v.assignments.set('w1', [P('g', 0)]) // assigned, never reported (a wedged assignment watch)
    const unreported = v.run(30000, () => v.advance('w2', 'g'))
    expect(unreported.map((q) => q.reason)).to.have.length(1)
    expect(unreported[0]?.reason).to.match(/not reported/)
  })

  it('a failed partition (the group\'s policy stopped on a record) is never healed by moving it', () => {
    const w = new World().assign('w1', [P('g', 0)], 'failed').assign('w2', [P('g', 1)])
    expect(w.run(60000, () => w.advance('w2', 'g'))).to.deep.equal([])
  })

  it('a partition healed away does not count against its next owner; the quarantine ends after the cooldown and doubles on a repeat', () => {
    const w = new World().assign('w2', [P('g', 1)]).assign('w3', [P('g', 2)])
    w.run(3000, () => w.advance('w2', 'g').advance('w3', 'g'))
    w.assign('w1', [P('g', 0)], 'retrying')
    const first = w.run(12000, () => w.advance('w2', 'g').advance('w3', 'g'))
    expect(first.map((q) => q.worker)).to.deep.equal(['w1'])
    // The partition moves to w3 and is stuck there too (an offline source partition), while w3's
    // own partition is caught up (nothing advances on w3): w3 keeps both.
    w.assign('w1', [])
    w.assign('w3', [P('g', 2), P('g', 0)], 'mirroring', 500).report('w3', P('g', 0), { state: 'retrying' })
    w.ends.set('g/t/2', 500)
    expect(w.run(30000, () => w.advance('w2', 'g')), 'w3 is not blamed for a followed partition').to.deep.equal([])
    // w1 may hold the group again after its cooldown (60 s)...
    w.run(HEAL_DEFAULTS.cooldownMs, () => w.advance('w2', 'g'))
    expect(w.healer.excluded('g').has('w1')).to.equal(false)
    // ...is given a fresh partition, is stuck again: a second strike, twice as long.
    w.assign('w1', [P('g', 3)], 'retrying')
    const second = w.run(20000, () => w.advance('w2', 'g'))
    expect(second.map((q) => [q.worker, q.strike, q.until - q.since])).to.deep.equal([['w1', 2, 2 * HEAL_DEFAULTS.cooldownMs]])
  })

  it('forgets quarantines of workers that left', () => {
    const w = new World().assign('w2', [P('g', 1)])
    w.run(3000, () => w.advance('w2', 'g'))
    w.assign('w1', [P('g', 0)], 'retrying')
    expect(w.run(12000, () => w.advance('w2', 'g')).map((q) => q.worker)).to.deep.equal(['w1'])
    w.assignments.delete('w1')
    w.reports.delete('w1')
    w.run(1000)
    expect(w.healer.active()).to.deep.equal([])
  })
})

describe('planner: quarantined workers', () => {
  const group = (partitions: number, excluded?: string[]): PlanGroup => ({
    spec: parseTopicGroup({ name: 'g', sourceCluster: 'src', targetCluster: 'dst', topics: ['t'] }),
    running: true,
    partitions: Array.from({ length: partitions }, (_, p) => P('g', p)),
    ...(excluded ? { excluded: new Set(excluded) } : {}),
  })
  const current = (owners: Record<string, number[]>) =>
    new Map<string, Versioned<AssignmentRecord>>(Object.entries(owners).map(([worker, ps]) => [worker, { version: 0, value: { epoch: 1, leader: 'c', partitions: ps.map((p) => P('g', p)) } }]))
  const workers = [{ id: 'w1' }, { id: 'w2' }, { id: 'w3' }]

  it('moves every partition off a quarantined worker at once, even with no move budget, and leaves the others', () => {
    const plan = planAssignments({ groups: [group(6, ['w1'])], workers, current: current({ w1: [0, 1], w2: [2, 3], w3: [4, 5] }), epoch: 2, leader: 'c', maxMovesPerPass: 0 })
    expect(plan.moves.map((m) => [m.partition.partition, m.from])).to.deep.equal([[0, 'w1'], [1, 'w1']])
    expect(plan.moves.every((m) => m.to === 'w2' || m.to === 'w3')).to.equal(true)
    expect(plan.deferred).to.equal(0)
    expect(plan.changes.get('w1')?.partitions).to.deep.equal([])
  })

  it('never leaves a group without a worker: a quarantine of every eligible worker is ignored', () => {
    const plan = planAssignments({ groups: [group(4, ['w1', 'w2', 'w3'])], workers, current: current({ w1: [0, 1], w2: [2], w3: [3] }), epoch: 2, leader: 'c' })
    expect(plan.moves).to.deep.equal([])
  })

  it('with no quarantine it is the ordinary plan (nothing moves in a balanced world)', () => {
    const plan = planAssignments({ groups: [group(6)], workers, current: current({ w1: [0, 1], w2: [2, 3], w3: [4, 5] }), epoch: 2, leader: 'c', maxMovesPerPass: 0 })
    expect(plan.moves).to.deep.equal([])
  })
})
