/**
 * The pure heart of a reconcile pass: from groups (with their discovered partitions), live
 * workers and the current assignment, compute the desired assignment and the minimal set of
 * per-worker znode changes. A settled world yields no changes.
 */
import type { AssignedPartition, AssignmentRecord, Versioned } from '../common/store.js'
import type { TopicGroupSpec } from '../common/config.js'
import { PartitionTable } from './partition-table.js'
import { PLACERS, compareKeys, comparePartitions, partitionRefKey, sortedPartitions, workerIds, type PartitionRef, type WorkerRef } from './strategies/index.js'

export interface PlanGroup {
  spec: TopicGroupSpec
  running: boolean
  /** Partitions to mirror; for a group whose discovery failed, pass what it has now. */
  partitions: readonly PartitionRef[]
  /**
   * Live workers that must not hold this group's partitions (quarantined by the healer, see
   * healer.ts): their partitions of the group are placed elsewhere at once, like a dead worker's,
   * whatever the move budget. Ignored when it would leave the group no eligible worker.
   */
  excluded?: ReadonlySet<string>
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
  /** In partition-key (`partitionRefKey`) order. */
  moves: Move[]
  /** Groups that cannot be placed, and why. */
  unplaced: Map<string, string>
  /**
   * Partition key → its desired worker. Built when first read: the reconciler never reads it,
   * and 100,000 string keys would be a fifth of a pass.
   */
  readonly owners: Map<string, string>
  /** Moves held back by maxMovesPerPass, for a later pass. */
  deferred: number
}

/** A group placed in this pass: its partitions in order, who holds each now, who should. */
interface PlacedGroup {
  partitions: readonly PartitionRef[]
  from: ReadonlyArray<string | undefined>
  to: Array<string | undefined>
  /** Workers the group was kept away from (see PlanGroup.excluded). */
  excluded?: ReadonlySet<string>
}

/** Who holds each partition now, by the current records (a partition listed twice: the last). */
function currentOwners(current: PlanInput['current']): PartitionTable<string> {
  const owners = new PartitionTable<string>()
  for (const [worker, record] of current) {
    for (const p of record.value.partitions) owners.set(p, worker)
  }
  return owners
}

function samePartitions(a: readonly PartitionRef[], b: readonly PartitionRef[]): boolean {
  return a.length === b.length && a.every((p, i) => p.group === b[i]?.group && p.topic === b[i]?.topic && p.partition === b[i]?.partition)
}

export function planAssignments(input: PlanInput): Plan {
  const owners = currentOwners(input.current)
  const liveIds = new Set(input.workers.map((w) => w.id))
  const unplaced = new Map<string, string>()
  const load = new Map<string, number>()
  // In group-name order. Partitions are handled by position throughout: a string key per
  // partition is built only for the few that move (see `Placement`).
  const placed: PlacedGroup[] = []
  // Whether the groups' partitions, one group after the other, are in `comparePartitions` order
  // (they are when each partition names its own group): then each worker's list is too.
  let inOrder = true

  for (const group of [...input.groups].sort((a, b) => a.spec.name.localeCompare(b.spec.name))) {
    if (!group.running || group.partitions.length === 0) continue
    const { zone, dc } = group.spec
    let eligible = input.workers.filter((w) => (zone === undefined || w.zone === zone) && (dc === undefined || w.dc === dc))
    const excluded = group.excluded !== undefined && group.excluded.size > 0 && eligible.some((w) => !group.excluded?.has(w.id)) ? group.excluded : undefined
    if (excluded !== undefined) eligible = eligible.filter((w) => !excluded.has(w.id))
    if (eligible.length === 0) {
      const pinned = [zone === undefined ? '' : `zone "${zone}"`, dc === undefined ? '' : `dc "${dc}"`].filter(Boolean).join(' and ')
      unplaced.set(group.spec.name, pinned === '' ? 'no live worker is registered' : `no live worker in ${pinned} (the group is pinned there; nothing is assigned elsewhere)`)
      continue
    }
    const partitions = sortedPartitions(group.partitions)
    const last = placed.at(-1)?.partitions.at(-1)
    if (last !== undefined && partitions[0] !== undefined && comparePartitions(last, partitions[0]) >= 0) inOrder = false
    // Taken out of `owners`, which is left with the partitions that no placed group has.
    const from = partitions.map((p) => owners.take(p))
    const to = PLACERS[group.spec.strategy]({
      partitions,
      owners: from,
      workers: workerIds(eligible),
      load,
      ...(input.weights ? { weights: input.weights } : {}),
      ...(input.overloadRatio ? { overloadRatio: input.overloadRatio } : {}),
    })
    for (const worker of to) if (worker !== undefined) load.set(worker, (load.get(worker) ?? 0) + 1)
    placed.push({ partitions, from, to, ...(excluded ? { excluded } : {}) })
  }

  // Throttle: moves between two live workers beyond the budget wait for a later pass, spent in
  // partition-key order. Moves off a quarantined worker are not throttled: nobody serves those.
  let deferred = 0
  if (input.maxMovesPerPass !== undefined) {
    let budget = input.maxMovesPerPass
    const between: Array<{ partition: PartitionRef; group: PlacedGroup; index: number }> = []
    for (const group of placed) {
      group.partitions.forEach((partition, index) => {
        const from = group.from[index]
        const to = group.to[index]
        if (to !== undefined && from !== undefined && from !== to && liveIds.has(from) && group.excluded?.has(from) !== true) between.push({ partition, group, index })
      })
    }
    for (const { group, index } of between.sort((a, b) => compareKeys(a.partition, b.partition))) {
      if (budget > 0) budget--
      else {
        group.to[index] = group.from[index]
        deferred++
      }
    }
  }

  // The desired partitions of each worker, in partition order (groups are in name order).
  const byWorker = new Map<string, PartitionRef[]>()
  for (const { partitions, to } of placed) {
    partitions.forEach((p, i) => {
      const worker = to[i]
      if (worker === undefined) return
      const list = byWorker.get(worker)
      if (list === undefined) byWorker.set(worker, [p])
      else list.push(p)
    })
  }

  const changes = new Map<string, AssignmentRecord | null>()
  const workers = new Set([...byWorker.keys(), ...input.current.keys()])
  for (const worker of [...workers].sort()) {
    const next = byWorker.get(worker) ?? []
    if (!inOrder) next.sort(comparePartitions)
    const existing = input.current.get(worker)
    if (!liveIds.has(worker)) {
      if (existing) changes.set(worker, null)
      continue
    }
    const now = existing?.value.partitions ?? []
    if (existing !== undefined && samePartitions(now, next)) continue
    if (existing === undefined && next.length === 0) continue
    const partitions = next.map((p) => ({ group: p.group, topic: p.topic, partition: p.partition }))
    changes.set(worker, { epoch: input.epoch, leader: input.leader, partitions })
  }

  // Moves: placed partitions whose owner changes, and held ones that no placed group has.
  const moves: Move[] = []
  const move = (p: PartitionRef, from: string | undefined, to: string | undefined): void => {
    moves.push({ partition: { group: p.group, topic: p.topic, partition: p.partition }, from: from ?? null, to: to ?? null })
  }
  for (const { partitions, from, to } of placed) {
    partitions.forEach((p, i) => {
      if (from[i] !== to[i]) move(p, from[i], to[i])
    })
  }
  owners.forEach((worker, p) => move(p, worker, undefined))
  moves.sort((a, b) => compareKeys(a.partition, b.partition))

  let ownersByKey: Map<string, string> | undefined
  return {
    changes,
    moves,
    unplaced,
    deferred,
    get owners() {
      ownersByKey ??= new Map(placed.flatMap(({ partitions, to }) => partitions.flatMap((p, i) => (to[i] === undefined ? [] : [[partitionRefKey(p), to[i]] as [string, string]]))))
      return ownersByKey
    },
  }
}
