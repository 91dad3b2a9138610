/**
 * Progress of each partition as seen from consecutive worker reports: when did the reported
 * position of a partition on a worker last change. Workers report their positions to Redis with
 * every heartbeat; the controller samples those reports (see groups-service.ts) and this keeps,
 * per worker and partition, the position and since when it has been that. A partition that moves
 * to another worker starts afresh (its new owner has not been watched yet).
 *
 * The clock starts when this controller first sees a position: after a controller restart a
 * partition counts as stalled only once it has been watched unchanged for the threshold.
 *
 * @example
 *   const progress = createProgressTracker({ now: Date.now })
 *   progress.observe(reports)                 // every sample
 *   progress.stalledForMs(p, 'w1')            // 0 when it just advanced
 */
export interface ProgressSample {
  group: string
  topic: string
  partition: number
  worker: string
  position?: number
}

export interface ProgressTracker {
  observe(reports: Iterable<ProgressSample>): void
  /** How long the position reported by `worker` for `p` has been unchanged; 0 if never seen. */
  stalledForMs(p: { group: string; topic: string; partition: number }, worker: string): number
}

/** Entries not refreshed for this long are forgotten (the partition left the worker). Default 10 min. */
const FORGET_AFTER_MS = 600000

export function createProgressTracker(options: { now: () => number; forgetAfterMs?: number }): ProgressTracker {
  const seen = new Map<string, { position: number; since: number; lastSeen: number }>()
  const forgetAfterMs = options.forgetAfterMs ?? FORGET_AFTER_MS
  const keyOf = (p: { group: string; topic: string; partition: number }, worker: string): string => JSON.stringify([worker, p.group, p.topic, p.partition])
  return {
    observe(reports) {
      const now = options.now()
      for (const r of reports) {
        if (typeof r.position !== 'number') continue
        const key = keyOf(r, r.worker)
        const entry = seen.get(key)
        if (entry === undefined || entry.position !== r.position) seen.set(key, { position: r.position, since: now, lastSeen: now })
        else entry.lastSeen = now
      }
      for (const [key, entry] of seen) if (now - entry.lastSeen > forgetAfterMs) seen.delete(key)
    },
    stalledForMs(p, worker) {
      const entry = seen.get(keyOf(p, worker))
      return entry === undefined ? 0 : options.now() - entry.since
    },
  }
}
