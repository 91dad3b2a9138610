/**
 * The pure heart of a reconcile pass: from groups (with their discovered partitions), live
 * workers and the current assignment, compute the desired assignment and the minimal set of
 * per-worker znode changes. A settled world yields no changes.
 */
import type { AssignedPartition, AssignmentRecord, Versioned } from '../common/store.js'
import type { TopicGroupSpec } from '../common/config.js'
import { STRATEGIES, comparePartitions, partitionRefKey, type PartitionRef, type WorkerRef } from './strategies/index.js'

export interface PlanGroup {
  spec: TopicGroupSpec
  running: boolean
  /** Partitions to mirror; for a group whose discovery failed, pass what it has now. */
  partitions: readonly PartitionRef[]
}

export interface PlanInput {
  groups: readonly PlanGroup[]
  workers: readonly WorkerRef[]
  current: ReadonlyMap<string, Versioned<AssignmentRecord>>
  epoch: number
  leader: string
  /** Reported load per partition key (bytes/s + 1), for load-aware groups. */
  weights?: ReadonlyMap<string, number>
  /** load-aware overload threshold as a multiple of the mean; default 1.2. */
  overloadRatio?: number
  /**
   * At most this many partitions move between live workers in one pass (default unlimited).
   * Partitions with no live owner are always placed at once: nobody is mirroring them.
   */
  maxMovesPerPass?: number
}

export interface Move {
  partition: AssignedPartition
  from: string | null
  to: string | null
}

export interface Plan {
  /** Worker → new record (null: remove its node). Only workers whose partitions change. */
  changes: Map<string, AssignmentRecord | null>
  moves: Move[]
  /** Groups that cannot be placed, and why. */
  unplaced: Map<string, string>
  owners: Map<string, string>
  /** Moves held back by maxMovesPerPass, for a later pass. */
  deferred: number
}

export function currentOwners(current: PlanInput['current']): Map<string, string> {
  const owners = new Map<string, string>()
  for (const [worker, record] of current) {
    for (const p of record.value.partitions) owners.set(partitionRefKey(p), worker)
  }
  return owners
}

function sameList(a: readonly AssignedPartition[], b: readonly AssignedPartition[]): boolean {
  return a.length === b.length && a.every((p, i) => comparePartitions(p, b[i] as AssignedPartition) === 0)
}

export function planAssignments(input: PlanInput): Plan {
  const owners = currentOwners(input.current)
  const liveIds = new Set(input.workers.map((w) => w.id))
  const desired = new Map<string, string>()
  const unplaced = new Map<string, string>()
  const load = new Map<string, number>()

  for (const group of [...input.groups].sort((a, b) => a.spec.name.localeCompare(b.spec.name))) {
    if (!group.running || group.partitions.length === 0) continue
    const { zone, dc } = group.spec
    const eligible = input.workers.filter((w) => (zone === undefined || w.zone === zone) && (dc === undefined || w.dc === dc))
    if (eligible.length === 0) {
      const pinned = [zone === undefined ? '' : `zone "${zone}"`, dc === undefined ? '' : `dc "${dc}"`].filter(Boolean).join(' and ')
      unplaced.set(group.spec.name, pinned === '' ? 'no live worker is registered' : `no live worker in ${pinned} (the group is pinned there; nothing is assigned elsewhere)`)
      continue
    }
    const strategy = STRATEGIES[group.spec.strategy]
    const placed = strategy({
      partitions: group.partitions,
      workers: eligible,
      current: owners,
      load,
      ...(input.weights ? { weights: input.weights } : {}),
      ...(input.overloadRatio ? { overloadRatio: input.overloadRatio } : {}),
    })
    for (const [key, worker] of placed) {
      desired.set(key, worker)
      load.set(worker, (load.get(worker) ?? 0) + 1)
    }
  }

  // Throttle: moves between two live workers beyond the budget wait for a later pass.
  let deferred = 0
  if (input.maxMovesPerPass !== undefined) {
    let budget = input.maxMovesPerPass
    for (const key of [...desired.keys()].sort()) {
      const from = owners.get(key)
      const to = desired.get(key)
      if (from === undefined || from === to || !liveIds.has(from)) continue
      if (budget > 0) budget--
      else {
        desired.set(key, from)
        deferred++
      }
    }
  }

  // Group the desired owners by worker, as sorted partition lists.
  const refs = new Map<string, PartitionRef>()
  for (const g of input.groups) for (const p of g.partitions) refs.set(partitionRefKey(p), p)
  const byWorker = new Map<string, AssignedPartition[]>()
  for (const [key, worker] of desired) {
    const ref = refs.get(key)
    if (ref === undefined) continue
    const list = byWorker.get(worker) ?? []
    list.push({ group: ref.group, topic: ref.topic, partition: ref.partition })
    byWorker.set(worker, list)
  }

  const changes = new Map<string, AssignmentRecord | null>()
  const workers = new Set([...byWorker.keys(), ...input.current.keys()])
  for (const worker of [...workers].sort()) {
    const next = (byWorker.get(worker) ?? []).sort(comparePartitions)
    const existing = input.current.get(worker)
    if (!liveIds.has(worker)) {
      if (existing) changes.set(worker, null)
      continue
    }
    const now = existing?.value.partitions ?? []
    if (existing !== undefined && sameList(now, next)) continue
    if (existing === undefined && next.length === 0) continue
    changes.set(worker, { epoch: input.epoch, leader: input.leader, partitions: next })
  }

  const moves: Move[] = []
  const keys = new Set([...owners.keys(), ...desired.keys()])
  for (const key of [...keys].sort()) {
    const from = owners.get(key) ?? null
    const to = desired.get(key) ?? null
    if (from === to) continue
    const ref = refs.get(key)
    const [group = '', topic = '', partition = '0'] = ref ? [ref.group, ref.topic, String(ref.partition)] : splitKey(key)
    moves.push({ partition: { group, topic, partition: Number(partition) }, from, to })
  }
  return { changes, moves, unplaced, owners: desired, deferred }
}

function splitKey(key: string): [string, string, string] {
  const first = key.indexOf('/')
  const last = key.lastIndexOf('/')
  return [key.slice(0, first), key.slice(first + 1, last), key.slice(last + 1)]
}
