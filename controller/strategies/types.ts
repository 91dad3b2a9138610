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

export function partitionRefKey(p: PartitionRef): string {
  return `${p.group}/${p.topic}/${p.partition}`
}

export function comparePartitions(a: PartitionRef, b: PartitionRef): number {
  return a.group.localeCompare(b.group) || a.topic.localeCompare(b.topic) || a.partition - b.partition
}
