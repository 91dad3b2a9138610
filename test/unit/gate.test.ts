import { expect } from 'chai'
import { freezeGate, gateMoves, gatedPlan, holdMoves, initialGate, lostLiveWorker, unfreezeGate, type GateDecision, type GateState } from '../../controller/gate.js'
import { planAssignments, type Plan, type PlanGroup, type PlanInput } from '../../controller/plan.js'
import { parseTopicGroup } from '../../common/config.js'
import type { AssignmentRecord, Versioned } from '../../common/store.js'

const timing = { debounceMs: 3000, leaseTtlMs: 10000 }

function group(name: string, partitions: number): PlanGroup {
  const spec = parseTopicGroup({ name, sourceCluster: 'src', targetCluster: 'dst', topics: ['t'] })
  return { spec, running: true, partitions: Array.from({ length: partitions }, (_, partition) => ({ group: name, topic: 't', partition })) }
}

type Assignment = Map<string, Versioned<AssignmentRecord>>

/** Worker → partition numbers of group g1 (a fake of the assignment znodes). */
function assignment(owners: Record<string, number[]>): Assignment {
  return new Map(Object.entries(owners).map(([worker, partitions]) => [worker, { version: 0, value: { epoch: 1, leader: 'c1', partitions: partitions.map((partition) => ({ group: 'g1', topic: 't', partition })) } }]))
}

function apply(current: Assignment, changes: Map<string, AssignmentRecord | null>): Assignment {
  const next = new Map(current)
  for (const [worker, record] of changes) {
    if (record === null) next.delete(worker)
    else next.set(worker, { value: record, version: (current.get(worker)?.version ?? -1) + 1 })
  }
  return next
}

interface World {
  /** Live workers as the fake registry lists them. */
  live: string[]
  current: Assignment
  /** Unseen workers that deregistered gracefully. */
  departed?: string[]
  partitions?: number
}

interface Pass {
  decision: GateDecision
  full: Plan
  /** What the pass writes; null: no assignment. */
  plan: Plan | null
}

/** One reconcile pass's gating as the reconciler does it: owners from the assignment, the gate, the gated plan. */
function pass(state: GateState, world: World, now: number): Pass {
  const workerIds = [...world.live].sort()
  const owners = [...world.current].filter(([, r]) => r.value.partitions.length > 0).map(([w]) => w)
  const departedIds = (world.departed ?? []).filter((w) => !workerIds.includes(w))
  const input: PlanInput = { groups: [group('g1', world.partitions ?? 6)], workers: workerIds.map((id) => ({ id })), current: world.current, epoch: 2, leader: 'c1', maxMovesPerPass: 100 }
  const full = planAssignments(input)
  const decision = gateMoves(state, { workerIds, owners, departedIds }, now, timing)
  return { decision, full, plan: gatedPlan(decision.mode, input, full) }
}

/** A gate that has seen `live` for long enough: no debounce left at `now`. */
function settledGate(live: string[], now: number): GateState {
  return { ...initialGate(), membership: [...live].sort(), membershipChangedAt: now - timing.debounceMs - 1 }
}

describe('reconcile gate', () => {
  it('writes nothing in a settled world', () => {
    const current = assignment({ a: [0, 2, 4], b: [1, 3, 5] })
    const settled = pass(settledGate(['a', 'b'], 100_000), { live: ['a', 'b'], current }, 100_000)
    expect(settled.decision.mode).to.equal('all')
    expect(settled.decision.waitMs).to.be.at.most(0)
    expect(settled.decision.membershipChange).to.equal(undefined)
    expect(settled.plan?.changes.size).to.equal(0)
  })

  it('places the partitions of a worker that left at once, and holds moves between live workers for the debounce', () => {
    // a holds more than its share; b and c one each. c's lease expires.
    const current = assignment({ a: [0, 1, 2, 3], b: [4], c: [5] })
    const t = 100_000
    const left = pass(settledGate(['a', 'b', 'c'], t), { live: ['a', 'b'], current }, t)
    expect(left.decision.mode).to.equal('orphans-only')
    expect(left.decision.waitMs).to.equal(timing.debounceMs)
    expect(left.decision.membershipChange).to.deep.equal({ workers: ['a', 'b'], joined: [], left: ['c'] })
    // The ungated plan would also rebalance a → b; the gated one only re-homes c's partition.
    expect(left.full.moves.some((m) => m.from === 'a')).to.equal(true)
    expect(left.plan?.moves.map((m) => [m.partition.partition, m.from])).to.deep.equal([[5, 'c']])
    expect(left.plan?.changes.get('c')).to.equal(null)

    // Debounce over: the move between live workers happens.
    const after = apply(current, left.plan?.changes ?? new Map())
    const settled = pass(left.decision.state, { live: ['a', 'b'], current: after }, t + timing.debounceMs)
    expect(settled.decision.mode).to.equal('all')
    expect(settled.plan?.moves.length).to.be.greaterThan(0)
    expect(settled.plan?.moves.every((m) => m.from === 'a' && m.to === 'b')).to.equal(true)
  })

  it('moves nothing to a worker that joined until membership has been stable for the debounce', () => {
    const current = assignment({ a: [0, 2, 4], b: [1, 3, 5] })
    const t = 100_000
    let state = settledGate(['a', 'b'], t)
    const joined = pass(state, { live: ['a', 'b', 'c'], current }, t)
    expect(joined.decision.mode).to.equal('orphans-only')
    expect(joined.decision.membershipChange?.joined).to.deep.equal(['c'])
    expect(joined.full.moves.length).to.be.greaterThan(0)
    expect(joined.plan?.changes.size).to.equal(0)
    state = joined.decision.state

    const almost = pass(state, { live: ['a', 'b', 'c'], current }, t + timing.debounceMs - 1)
    expect(almost.decision.mode).to.equal('orphans-only')
    expect(almost.decision.waitMs).to.equal(1)
    expect(almost.plan?.changes.size).to.equal(0)

    const settled = pass(almost.decision.state, { live: ['a', 'b', 'c'], current }, t + timing.debounceMs)
    expect(settled.decision.mode).to.equal('all')
    expect(settled.plan?.moves.map((m) => m.to)).to.deep.equal(['c', 'c'])
  })

  it('restarts the debounce when membership changes again while settling', () => {
    const current = assignment({ a: [0, 2, 4], b: [1, 3, 5] })
    const t = 100_000
    const first = pass(settledGate(['a', 'b'], t), { live: ['a', 'b', 'c'], current }, t)
    const second = pass(first.decision.state, { live: ['a', 'b', 'c', 'd'], current }, t + 2000)
    expect(second.decision.mode).to.equal('orphans-only')
    expect(second.decision.waitMs).to.equal(timing.debounceMs)
    expect(second.decision.state.membershipChangedAt).to.equal(t + 2000)
  })

  it('moves nothing for one lease TTL after election while an owner is unseen', () => {
    const current = assignment({ a: [0, 3], b: [1, 4], c: [2, 5] })
    const elected = 100_000
    const state = holdMoves(initialGate(), elected, timing.leaseTtlMs)
    // c has not renewed its lease with this leader yet (one of three unseen: no mass disappearance).
    const early = pass(state, { live: ['a', 'b'], current }, elected + 1)
    expect(early.decision.mode).to.equal('none')
    expect(early.decision.reason).to.equal('holding for unseen owners')
    expect(early.decision.waitMs).to.equal(timing.leaseTtlMs - 1)
    expect(early.decision.massDisappearance).to.equal(undefined)
    expect(early.full.moves.length).to.be.greaterThan(0)
    expect(early.plan).to.equal(null)

    const late = pass(early.decision.state, { live: ['a', 'b'], current }, elected + timing.leaseTtlMs)
    expect(late.decision.mode).to.equal('all')
    expect(late.plan?.moves.every((m) => m.from === 'c')).to.equal(true)
    expect(late.plan?.moves).to.have.length(2)
  })

  it('does not hold after election when every owner is seen (only the first debounce applies)', () => {
    const current = assignment({ a: [0, 2, 4], b: [1, 3, 5] })
    const state = holdMoves(initialGate(), 100_000, timing.leaseTtlMs)
    const first = pass(state, { live: ['a', 'b'], current }, 100_001)
    expect(first.decision.mode).to.equal('orphans-only')
    expect(first.decision.waitMs).to.equal(timing.debounceMs)
  })

  it('never holds for a worker that deregistered gracefully', () => {
    const current = assignment({ a: [0, 3], b: [1, 4], c: [2, 5] })
    const elected = 100_000
    const state = holdMoves(initialGate(), elected, timing.leaseTtlMs)
    const departed = pass(state, { live: ['a', 'b'], current, departed: ['c'] }, elected + 1)
    expect(departed.decision.mode).to.equal('orphans-only')
    expect(departed.plan?.moves.map((m) => m.from)).to.deep.equal(['c', 'c'])

    // Most of the fleet leaving gracefully is no mass disappearance either.
    const most = pass(settledGate(['a', 'b', 'c'], elected), { live: ['a'], current, departed: ['b', 'c'] }, elected)
    expect(most.decision.massDisappearance).to.equal(undefined)
    expect(most.decision.mode).to.equal('orphans-only')
    expect(most.plan?.moves).to.have.length(4)
    expect(most.plan?.moves.every((m) => m.to === 'a')).to.equal(true)
  })

  it('holds for one lease TTL when most owners vanish at once, and reports it once', () => {
    const current = assignment({ a: [0, 3], b: [1, 4], c: [2, 5] })
    const t = 100_000
    const vanished = pass(settledGate(['a', 'b', 'c'], t), { live: ['a'], current }, t)
    expect(vanished.decision.massDisappearance).to.deep.equal({ unseen: 2, owners: 3 })
    expect(vanished.decision.mode).to.equal('none')
    expect(vanished.decision.waitMs).to.equal(timing.leaseTtlMs)
    expect(vanished.plan).to.equal(null)

    // Still gone a little later: no new report, and the hold is not pushed further out.
    const still = pass(vanished.decision.state, { live: ['a'], current }, t + 5000)
    expect(still.decision.massDisappearance).to.equal(undefined)
    expect(still.decision.mode).to.equal('none')
    expect(still.decision.state.holdUntil).to.equal(t + timing.leaseTtlMs)

    // Gone for a whole TTL: they are dead, their partitions move.
    const dead = pass(still.decision.state, { live: ['a'], current }, t + timing.leaseTtlMs)
    expect(dead.decision.mode).to.equal('all')
    expect(dead.plan?.moves).to.have.length(4)
    expect(dead.plan?.moves.every((m) => m.to === 'a')).to.equal(true)
  })

  it('takes a new mass-disappearance hold only after the fleet was seen again', () => {
    const current = assignment({ a: [0, 3], b: [1, 4], c: [2, 5] })
    const t = 100_000
    const first = pass(settledGate(['a', 'b', 'c'], t), { live: ['a'], current }, t)
    const back = pass(first.decision.state, { live: ['a', 'b', 'c'], current }, t + 20_000)
    expect(back.decision.state.massDisappearance).to.equal(false)
    const again = pass(back.decision.state, { live: ['a'], current }, t + 40_000)
    expect(again.decision.massDisappearance).to.deep.equal({ unseen: 2, owners: 3 })
    expect(again.decision.state.holdUntil).to.equal(t + 40_000 + timing.leaseTtlMs)
  })

  it('moves nothing while Redis is unreadable, and holds one lease TTL once it is back', () => {
    const current = assignment({ a: [0, 3], b: [1, 4], c: [2, 5] })
    const t = 100_000
    const settled = settledGate(['a', 'b', 'c'], t)
    const frozen = freezeGate(settled, 'Redis unreachable')
    const whileFrozen = gateMoves(frozen, { workerIds: ['a', 'b'], owners: ['a', 'b', 'c'], departedIds: [] }, t, timing)
    expect(whileFrozen.mode).to.equal('none')
    expect(whileFrozen.reason).to.equal('rebalancing frozen')
    expect(whileFrozen.state).to.equal(frozen)

    const unfrozen = unfreezeGate(frozen, t + 60_000, timing.leaseTtlMs)
    expect(unfrozen.resumed).to.equal(true)
    expect(unfrozen.state.frozen).to.equal(null)
    // c's lease lapsed while Redis was away; it may be alive and renewing: hold.
    const back = pass(unfrozen.state, { live: ['a', 'b'], current }, t + 60_001)
    expect(back.decision.mode).to.equal('none')
    expect(back.plan).to.equal(null)
    const later = pass(back.decision.state, { live: ['a', 'b'], current }, t + 60_000 + timing.leaseTtlMs)
    expect(later.decision.mode).to.equal('all')
    expect(later.plan?.moves.every((m) => m.from === 'c')).to.equal(true)

    // A successful read when nothing was frozen takes no hold.
    expect(unfreezeGate(settled, t, timing.leaseTtlMs)).to.deep.equal({ state: settled, resumed: false })
  })

  it('extends a hold, never shortens it', () => {
    const held = holdMoves(initialGate(), 100_000, timing.leaseTtlMs)
    expect(holdMoves(held, 50_000, timing.leaseTtlMs).holdUntil).to.equal(110_000)
    expect(holdMoves(held, 105_000, timing.leaseTtlMs).holdUntil).to.equal(115_000)
  })

  it('asks for a pass when a worker of the last membership lost its lease', () => {
    expect(lostLiveWorker(initialGate(), new Set())).to.equal(false)
    const state = settledGate(['a', 'b'], 100_000)
    expect(lostLiveWorker(state, new Set(['a', 'b']))).to.equal(false)
    expect(lostLiveWorker(state, new Set(['a', 'b', 'c']))).to.equal(false)
    expect(lostLiveWorker(state, new Set(['a']))).to.equal(true)
    expect(lostLiveWorker({ ...state, membership: [] }, new Set())).to.equal(false)
  })
})
