/**
 * When a reconcile pass may move partitions: the membership debounce, the hold after a takeover
 * or after Redis comes back, mass disappearance and the Redis freeze, as pure functions over a
 * small state record. The reconciler keeps one `GateState`, feeds each pass's observations in
 * and acts on the decision; nothing here reads a clock, a store or a registry.
 *
 *   let gate = initialGate()
 *   gate = holdMoves(gate, now, leaseTtlMs)                  // on election
 *   const d = gateMoves(gate, { workerIds, owners, departedIds }, now, timing)
 *   gate = d.state
 *   const plan = gatedPlan(d.mode, planInput, fullPlan)     // null: write no assignment
 */
import { planAssignments, type Plan, type PlanInput } from './plan.js'

export interface GateState {
  /** Live worker ids (sorted) at the last gated pass; undefined before the first. */
  readonly membership: readonly string[] | undefined
  /** When `membership` last changed (ms since the epoch). */
  readonly membershipChangedAt: number
  /** Until when moves wait while some owner is unseen (takeover, Redis back, mass disappearance). */
  readonly holdUntil: number
  /** Whether most owners were last seen vanishing at once (the hold is taken once per episode). */
  readonly massDisappearance: boolean
  /** Why rebalancing is frozen (Redis unreadable), or null. */
  readonly frozen: string | null
}

export interface GateTiming {
  /** Membership must be stable this long before moves between live workers. */
  debounceMs: number
  /** Instance lease TTL: the length of every hold. */
  leaseTtlMs: number
}

export interface GateInput {
  /** Live worker ids from the registry, sorted. */
  workerIds: readonly string[]
  /** Workers holding at least one partition in the current assignment. */
  owners: readonly string[]
  /** Unseen owners that deregistered gracefully: known gone, never held for. */
  departedIds: readonly string[]
}

/**
 * - `all`: the plan is written as computed (moves between live workers throttled as configured).
 * - `orphans-only`: membership is settling; only partitions whose owner is gone are placed.
 * - `none`: nothing moves (a hold with owners unseen, or rebalancing frozen).
 */
export type GateMode = 'all' | 'orphans-only' | 'none'

export interface GateDecision {
  state: GateState
  mode: GateMode
  /** How long until moves between live workers are allowed again; > 0 unless mode is `all`. */
  waitMs: number
  reason: 'settled' | 'membership settling' | 'holding for unseen owners' | 'rebalancing frozen'
  /** Set when the live workers differ from the previous pass's (not on the first pass). */
  membershipChange?: { workers: readonly string[]; joined: string[]; left: string[] }
  /** Set on the pass that detects most owners vanishing at once (and starts the hold). */
  massDisappearance?: { unseen: number; owners: number }
}

export function initialGate(): GateState {
  return { membership: undefined, membershipChangedAt: 0, holdUntil: 0, massDisappearance: false, frozen: null }
}

/** Nothing moves for one lease TTL from `now` while some owner is unseen (after election). */
export function holdMoves(state: GateState, now: number, leaseTtlMs: number): GateState {
  return { ...state, holdUntil: Math.max(state.holdUntil, now + leaseTtlMs) }
}

/** Redis could not be read: freeze rebalancing. */
export function freezeGate(state: GateState, reason: string): GateState {
  return { ...state, frozen: reason }
}

/**
 * Redis was read: unfreeze. Coming back from a freeze holds moves for one lease TTL, so that
 * instances whose leases lapsed meanwhile can renew them before they are taken for dead.
 */
export function unfreezeGate(state: GateState, now: number, leaseTtlMs: number): { state: GateState; resumed: boolean } {
  if (state.frozen === null) return { state, resumed: false }
  return { state: { ...holdMoves(state, now, leaseTtlMs), frozen: null }, resumed: true }
}

/** Whether a worker of the last gated membership no longer holds a lease (worth a pass now). */
export function lostLiveWorker(state: GateState, liveIds: ReadonlySet<string>): boolean {
  return state.membership !== undefined && state.membership.some((id) => !liveIds.has(id))
}

/** Decides what a pass may move, given what it saw. */
export function gateMoves(state: GateState, input: GateInput, now: number, timing: GateTiming): GateDecision {
  if (state.frozen !== null) return { state, mode: 'none', waitMs: Number.POSITIVE_INFINITY, reason: 'rebalancing frozen' }
  let next: GateState = state
  let membershipChange: GateDecision['membershipChange']
  const workers = [...input.workerIds]
  if (state.membership === undefined || state.membership.join(',') !== workers.join(',')) {
    if (state.membership !== undefined) {
      const before = state.membership
      membershipChange = { workers, joined: workers.filter((w) => !before.includes(w)), left: before.filter((w) => !workers.includes(w)) }
    }
    next = { ...next, membership: workers, membershipChangedAt: now }
  }
  const stableForMs = now - next.membershipChangedAt
  // The hold only matters when some assigned worker is not (yet) seen in the registry.
  const unseen = input.owners.filter((worker) => !input.workerIds.includes(worker) && !input.departedIds.includes(worker))
  let massDisappearance: GateDecision['massDisappearance']
  // Most of the fleet vanishing at once looks like a registry that lost its data (a Redis
  // restart without persistence), not like mass death: wait one lease TTL for heartbeats.
  if (input.owners.length > 0 && unseen.length * 2 > input.owners.length && !next.massDisappearance) {
    next = { ...holdMoves(next, now, timing.leaseTtlMs), massDisappearance: true }
    massDisappearance = { unseen: unseen.length, owners: input.owners.length }
  } else if (unseen.length * 2 <= input.owners.length && next.massDisappearance) {
    next = { ...next, massDisappearance: false }
  }
  const holdMs = unseen.length > 0 ? next.holdUntil - now : 0
  const waitMs = Math.max(timing.debounceMs - stableForMs, holdMs)
  // While membership settles, partitions nobody mirrors (their owner left or died) are placed
  // at once; only moves between live workers wait for the debounce. During a hold (registry
  // data lost, takeover) nothing moves: owners may be alive but not yet seen.
  const mode: GateMode = waitMs <= 0 ? 'all' : holdMs <= 0 ? 'orphans-only' : 'none'
  const reason = mode === 'all' ? 'settled' : mode === 'orphans-only' ? 'membership settling' : 'holding for unseen owners'
  return { state: next, mode, waitMs, reason, ...(membershipChange ? { membershipChange } : {}), ...(massDisappearance ? { massDisappearance } : {}) }
}

/**
 * The plan a pass writes under `mode`: the full plan, the plan with no moves between live
 * workers (orphans placed), or null (no assignment written).
 */
export function gatedPlan(mode: GateMode, input: PlanInput, full: Plan): Plan | null {
  if (mode === 'none') return null
  return mode === 'orphans-only' ? planAssignments({ ...input, maxMovesPerPass: 0 }) : full
}
