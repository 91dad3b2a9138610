/** Inputs and outputs shared by every distribution strategy (pure functions over plain data). */

export interface PartitionRef {
  group: string
  topic: string
  partition: number
}

export interface WorkerRef {
  id: string
  zone?: string
  dc?: string
}

/** Partition key (see `partitionRefKey`) → worker id. */
export type PartitionOwners = ReadonlyMap<string, string>

export interface StrategyInput {
  /** The partitions of ONE topic group. */
  partitions: readonly PartitionRef[]
  /** Workers allowed to take them (constraints already applied). */
  workers: readonly WorkerRef[]
  /** Who owns what now (may name workers that are gone). */
  current: PartitionOwners
  /** Partitions each worker holds across all groups already placed; used to break ties. */
  load: ReadonlyMap<string, number>
  /**
   * Reported weight of each partition (key → bytes/s + 1), for load-aware placement. Missing
   * partitions weigh 1.
   */
  weights?: ReadonlyMap<string, number>
  /** load-aware: a worker above this multiple of the mean load sheds partitions; default 1.2. */
  overloadRatio?: number
}

export type Strategy = (input: StrategyInput) => Map<string, string>

/**
 * What a strategy computes on, in the form the planner holds it: partitions by position
 * rather than by string key, so that a pass over 100,000 partitions builds no key per
 * partition (building and hashing those keys was most of the planner's time).
 */
export interface Placement {
  /** The partitions of ONE topic group, distinct and in `comparePartitions` order. */
  partitions: readonly PartitionRef[]
  /** `owners[i]` holds `partitions[i]` now (possibly a worker that is gone); undefined: nobody. */
  owners: ReadonlyArray<string | undefined>
  /** Ids of the workers allowed to take them, distinct and sorted. */
  workers: readonly string[]
  /** Partitions each worker holds across all groups already placed; used to break ties. */
  load: ReadonlyMap<string, number>
  /** As in `StrategyInput`: partition key → weight; missing partitions weigh 1. */
  weights?: ReadonlyMap<string, number>
  /** As in `StrategyInput`; default 1.2. */
  overloadRatio?: number
}

/** The worker for each of `placement.partitions`, by position (undefined: not placed). */
export type Placer = (placement: Placement) => Array<string | undefined>

export function partitionRefKey(p: PartitionRef): string {
  return `${p.group}/${p.topic}/${p.partition}`
}

const SLASH = 0x2f

/**
 * The order of the partitions' `partitionRefKey` strings (UTF-16 code units, as the default
 * string sort), without building them: at 100,000 moves the keys and their garbage were a
 * tenth of a pass. Relies on names holding no "/" (group and topic names cannot).
 */
export function compareKeys(a: PartitionRef, b: PartitionRef): number {
  return compareSegments(a.group, b.group) || compareSegments(a.topic, b.topic) || compareStrings(String(a.partition), String(b.partition))
}

/** The order of `x + '/'` and `y + '/'`. */
function compareSegments(x: string, y: string): number {
  if (x === y) return 0
  const shared = Math.min(x.length, y.length)
  for (let i = 0; i < shared; i++) {
    const byUnit = x.charCodeAt(i) - y.charCodeAt(i)
    if (byUnit !== 0) return byUnit
  }
  // One is a prefix of the other: the shorter one goes on with "/".
  return x.length < y.length ? SLASH - y.charCodeAt(shared) : x.charCodeAt(shared) - SLASH
}

function compareStrings(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0
}

export function comparePartitions(a: PartitionRef, b: PartitionRef): number {
  // The identity checks skip the collator in the common case: neighbours in the same topic.
  return compareNames(a.group, b.group) || compareNames(a.topic, b.topic) || a.partition - b.partition
}

function compareNames(a: string, b: string): number {
  return a === b ? 0 : a.localeCompare(b)
}

/**
 * `partitions` sorted by `comparePartitions`, each once. Bucketed by group and topic so that
 * the collator compares each distinct name a few times rather than every pair of partitions
 * (same order: group and topic names are validated ASCII, and two different ones never
 * collate equal).
 */
export function sortedPartitions(partitions: readonly PartitionRef[]): PartitionRef[] {
  const groups = new Map<string, Map<string, PartitionRef[]>>()
  for (const p of partitions) {
    let topics = groups.get(p.group)
    if (topics === undefined) groups.set(p.group, (topics = new Map()))
    const bucket = topics.get(p.topic)
    if (bucket === undefined) topics.set(p.topic, [p])
    else bucket.push(p)
  }
  const sorted: PartitionRef[] = []
  for (const group of [...groups.keys()].sort(compareNames)) {
    const topics = groups.get(group) as Map<string, PartitionRef[]>
    for (const topic of [...topics.keys()].sort(compareNames)) {
      let last: number | undefined
      for (const p of (topics.get(topic) as PartitionRef[]).sort((a, b) => a.partition - b.partition)) {
        if (p.partition !== last) sorted.push(p)
        last = p.partition
      }
    }
  }
  return sorted
}

/** Distinct worker ids, sorted. */
export function workerIds(workers: readonly WorkerRef[]): string[] {
  return [...new Set(workers.map((w) => w.id))].sort()
}

/**
 * A `Strategy` (maps keyed by partition key, any order) from a `Placer`: the form the unit
 * tables and callers outside the planner use.
 */
export function keyedStrategy(place: Placer): Strategy {
  return ({ partitions, workers, current, load, weights, overloadRatio }) => {
    const sorted = sortedPartitions(partitions)
    const owners = place({
      partitions: sorted,
      owners: sorted.map((p) => current.get(partitionRefKey(p))),
      workers: workerIds(workers),
      load,
      ...(weights ? { weights } : {}),
      ...(overloadRatio ? { overloadRatio } : {}),
    })
    const result = new Map<string, string>()
    sorted.forEach((p, i) => {
      const owner = owners[i]
      if (owner !== undefined) result.set(partitionRefKey(p), owner)
    })
    return result
  }
}
