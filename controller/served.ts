/**
 * Drift between the assignment and what workers actually serve, per partition: the assignment
 * (ZooKeeper) says which worker should mirror a partition, the workers' reports (Redis) say what
 * they mirror and where their positions are. `classifyServed` is the pure rule; the not-served
 * tracker remembers since when a partition has not been served, as this controller watched it.
 *
 * Kinds:
 * - `serving`: the assigned worker reports it, state `mirroring`, and its position is advancing
 *   or caught up (not standing still for `stallThresholdMs` while the source has records past it);
 * - `not_reported`: no worker reports it (a new assignment not picked up yet, or a worker that
 *   lost it without telling);
 * - `reported_by_other`: the assigned worker does not report it but another worker does (a stale
 *   owner that has not let go);
 * - `no_progress`: the assigned worker reports it but is not mirroring it (`starting`,
 *   `retrying`, `failed`) or its position stands still while the source has records past it.
 *
 * A group is unhealthy once one of its partitions has not been served for longer than
 * `DRIFT_GRACE_MS` (a move, a worker start and a retry normally settle well within it).
 *
 * @example
 *   classifyServed({ assignedWorker: 'w1', reports: [{ worker: 'w1', state: 'mirroring', position: 5 }], stalledMs: 0, sourceEnd: 5, stallThresholdMs: DRIFT_GRACE_MS })
 *   // → 'serving'
 */

export const SERVED_KINDS = ['serving', 'not_reported', 'reported_by_other', 'no_progress'] as const
export type ServedKind = (typeof SERVED_KINDS)[number]
export const DRIFT_KINDS = ['not_reported', 'reported_by_other', 'no_progress'] as const
export type DriftKind = (typeof DRIFT_KINDS)[number]
export type DriftCounts = Record<DriftKind, number>

/**
 * 30 s: how long a partition may be not served before its group counts as unhealthy, and how
 * long a position may stand still while the source has records past it before it is `no_progress`.
 * Workers report every heartbeat and the controller samples every 5 s, so a moved partition
 * or a restarted worker shows `serving` again well within it.
 */
export const DRIFT_GRACE_MS = 30000

export interface ServedInput {
  /** The worker the assignment gives the partition to. */
  assignedWorker: string
  /** Every worker that reports the partition (usually one). */
  reports: ReadonlyArray<{ worker: string; state?: string; position?: number }>
  /** How long the assigned worker's reported position has stood still (0 if never seen). */
  stalledMs: number
  /** The source end mirroring can reach now; undefined or null when not read. */
  sourceEnd?: number | null
  stallThresholdMs: number
}

export function classifyServed(input: ServedInput): ServedKind {
  const own = input.reports.find((r) => r.worker === input.assignedWorker)
  if (own === undefined) return input.reports.length > 0 ? 'reported_by_other' : 'not_reported'
  if (own.state !== 'mirroring') return 'no_progress'
  const stuck = typeof own.position === 'number' && typeof input.sourceEnd === 'number' && input.stalledMs >= input.stallThresholdMs && input.sourceEnd > own.position
  return stuck ? 'no_progress' : 'serving'
}

/** Whether a partition could be stuck (so the source end is worth reading for it). */
export function mayBeStalled(input: Omit<ServedInput, 'sourceEnd'>): boolean {
  const own = input.reports.find((r) => r.worker === input.assignedWorker)
  return own?.state === 'mirroring' && typeof own.position === 'number' && input.stalledMs >= input.stallThresholdMs
}

export function emptyDriftCounts(): DriftCounts {
  return { not_reported: 0, reported_by_other: 0, no_progress: 0 }
}

export function countDrift(kinds: Iterable<ServedKind>): DriftCounts {
  const counts = emptyDriftCounts()
  for (const kind of kinds) if (kind !== 'serving') counts[kind]++
  return counts
}

export interface PartitionId {
  group: string
  topic: string
  partition: number
}

export interface NotServedTracker {
  /**
   * One sample of every assigned partition with its kind, as far as it can be told without
   * reading the source (a stalled position is timed by the progress tracker instead).
   * Partitions absent from the sample are forgotten.
   */
  observe(rows: Iterable<PartitionId & { kind: ServedKind }>): void
  /** How long the partition has not been served, as this controller watched it; 0 when served or never seen. */
  notServedForMs(p: PartitionId): number
}

/**
 * Since when each partition has not been served. Keyed by partition, not by worker: a partition
 * passed from one worker to another without being served keeps its clock.
 */
export function createNotServedTracker(options: { now: () => number }): NotServedTracker {
  const since = new Map<string, number>()
  const keyOf = (p: PartitionId): string => JSON.stringify([p.group, p.topic, p.partition])
  return {
    observe(rows) {
      const now = options.now()
      const seen = new Set<string>()
      for (const row of rows) {
        const key = keyOf(row)
        if (row.kind === 'serving') continue
        seen.add(key)
        if (!since.has(key)) since.set(key, now)
      }
      for (const key of since.keys()) if (!seen.has(key)) since.delete(key)
    },
    notServedForMs(p) {
      const at = since.get(keyOf(p))
      return at === undefined ? 0 : options.now() - at
    },
  }
}
