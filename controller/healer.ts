/**
 * Healing of workers that are alive but do not serve what they hold (issue 14 point 1): a
 * worker whose consumer is wedged, whose producer hangs, or that cannot reach a cluster other
 * workers reach (a stale credential on its host) keeps its lease, so the membership gate never
 * moves its partitions. The leader watches every worker's reports and, when one holds partitions
 * of a group without progress while others demonstrably move data between the same two clusters,
 * quarantines that worker for that group: the planner then places the group's partitions on the
 * other eligible workers, as it places a dead worker's.
 *
 * A partition is stuck on its worker when, for at least `healAfterMs`:
 * - it is `retrying` (the worker's task keeps failing);
 * - or it is `mirroring` but its position stands still while the source has records past it
 *   (a frozen process reports nothing new, so its positions stand still too);
 * - or it is `starting` or not reported at all, `startGraceMs` longer (a task that was just
 *   (re)started connects, fences and reads checkpoints first).
 * `failed` is never stuck here: it is a record or topic the group's policy stops on, the same on
 * every worker, and moving it would only carry the failure around.
 *
 * What keeps this from making things worse:
 * - **Evidence first.** A worker is quarantined only while another worker advances partitions
 *   between the same source and target clusters (advances no further apart than `healAfterMs`).
 *   When a cluster is down for everyone, nobody advances and nothing moves.
 * - **Shared incidents.** When the worker got stuck before any other worker's current run of
 *   progress began (an outage that hit everyone, from which the others came back first), it is
 *   given `sharedGraceMs` from the others' recovery: its retry backoff may simply be longer.
 * - **The whole worker, not one partition.** A worker that advanced any partition of the group
 *   within the window is serving the group; a single stuck partition is then the partition's
 *   problem (an offline source partition), shown as drift but not moved.
 * - **Problems that follow a partition stay with it.** A partition moved away by healing does
 *   not count against its next owner for `followMemoryMs`: if it is stuck there too, the cause
 *   is the partition, not the worker.
 * - **Settling.** No worker is judged on a group whose assignment on it changed within
 *   `startGraceMs` for `starting`/unreported partitions.
 * - **Bounded.** A quarantine lasts `cooldownMs`, doubled for each repeat within
 *   `strikeMemoryMs` (up to `maxCooldownMs`); then the worker may be given the group's
 *   partitions again by ordinary balancing, and is judged again.
 * - The planner never empties a group's eligible workers for a quarantine (see plan.ts).
 *
 * The book lives in the leader's memory: a new leader starts with no quarantines and finds a
 * still-stuck worker again within `healAfterMs`.
 *
 * @example
 *   const healer = createHealer({ now: Date.now })
 *   healer.observe(sample)                       // every pass: assignment + reports
 *   const ends = await readEnds(healer.needsSourceEnd())
 *   const fresh = healer.decide(ends)            // new quarantines, to log and record
 *   planGroup.excluded = healer.excluded('orders')
 */
import type { PartitionRef } from './strategies/index.js'

/**
 * Defaults: stuck 5 s (counted from `retrying`; a worker's first report of a partition it cannot
 * read is `starting`), plus up to one reconcile interval (2 s) and the reports' delay, keeps
 * "loses them" within 10 s.
 * `sharedGraceMs` (45 s): the worker's longest retry backoff (30 s) plus the heal time, given to
 * a worker that got stuck in an incident that hit everyone (see `decide`).
 */
export const HEAL_DEFAULTS = Object.freeze({
  healAfterMs: 5000,
  startGraceMs: 8000,
  cooldownMs: 60000,
  maxCooldownMs: 900000,
  strikeMemoryMs: 1800000,
  followMemoryMs: 600000,
  sharedGraceMs: 45000,
})

export type HealOptions = { now: () => number } & Partial<Record<keyof typeof HEAL_DEFAULTS, number>>

export interface HealReport {
  worker: string
  state?: string | undefined
  position?: number | undefined
}

export interface HealSample {
  /** Live workers → the partitions the assignment gives them. */
  assignments: ReadonlyMap<string, readonly PartitionRef[]>
  /** Partition key (`group/topic/partition`) → every worker's report of it. */
  reports: ReadonlyMap<string, readonly HealReport[]>
  /** The cluster pair a group mirrors between (`source→target`); undefined for unknown groups. */
  pairOf: (group: string) => string | undefined
}

export interface Quarantine {
  worker: string
  group: string
  /** What was seen, for the log, the event and the group status. */
  reason: string
  since: number
  until: number
  /** 1 for the first time within strikeMemoryMs, 2 for the next (cooldown doubled), ... */
  strike: number
  /** The stuck partitions that made the decision. */
  partitions: PartitionRef[]
}

export interface Healer {
  observe(sample: HealSample): void
  /** Partitions whose verdict depends on the source end: `mirroring` with a position standing still. */
  needsSourceEnd(): PartitionRef[]
  /**
   * Quarantines started now, given source end offsets by partition key (missing: unknown,
   * which never counts as stuck).
   */
  decide(sourceEnds: ReadonlyMap<string, number>): Quarantine[]
  /** Workers quarantined for the group now. */
  excluded(group: string): ReadonlySet<string>
  /** Every quarantine in force, by group then worker. */
  active(): Quarantine[]
}

const keyOf = (p: { group: string; topic: string; partition: number }): string => `${p.group}/${p.topic}/${p.partition}`

interface Clock {
  state: string | undefined
  position: number | undefined
  /** When the state last changed (or the partition was first seen on this worker). */
  stateSince: number
  /** When the position last changed; undefined until it has changed while watched. */
  advancedAt: number | undefined
  /** When the position was first seen at its current value. */
  positionSince: number
  seenAt: number
}

export function createHealer(options: HealOptions): Healer {
  const o: Record<keyof typeof HEAL_DEFAULTS, number> = { ...HEAL_DEFAULTS, ...Object.fromEntries(Object.entries(options).filter(([k, v]) => k !== 'now' && v !== undefined)) }
  const now = options.now
  /** worker → partition key → clock. */
  const clocks = new Map<string, Map<string, Clock>>()
  /** `worker\0group` → signature of the worker's partitions of the group, and since when. */
  const assignedSince = new Map<string, { signature: string; since: number }>()
  /** Partition key → until when it is not evidence against its owner (it was healed away). */
  const followed = new Map<string, number>()
  const quarantines = new Map<string, Quarantine>()
  /** worker → cluster pair → its current run of progress: first and last advance, gaps ≤ healAfterMs. */
  const runs = new Map<string, Map<string, { since: number; last: number }>>()
  /**
   * `worker\0pair` → when the worker's last run of progress of at least the heal time ended: when
   * it stopped serving (a step or two after a task restart is not a run of serving).
   */
  const servedUntil = new Map<string, number>()
  /** Cluster pair → the last decide() pass that found its partitions waiting with data and none of them moving. */
  const sharedStallAt = new Map<string, number>()
  /** `worker\0group` → the last quarantine's strike and end. */
  const history = new Map<string, { strike: number; until: number }>()
  let sample: HealSample = { assignments: new Map(), reports: new Map(), pairOf: () => undefined }

  const wg = (worker: string, group: string): string => `${worker}\0${group}`

  /** Whether the worker advanced the partition within the heal time. */
  const advancedLately = (worker: string, p: PartitionRef, t: number): boolean => {
    const clock = clocks.get(worker)?.get(keyOf(p))
    return clock?.advancedAt !== undefined && t - clock.advancedAt <= o.healAfterMs
  }

  const ownReport = (worker: string, p: PartitionRef): HealReport | undefined => sample.reports.get(keyOf(p))?.find((r) => r.worker === worker)

  return {
    observe(next) {
      sample = next
      const t = now()
      // Clocks for what each live worker reports (of its own assignment or not: a stale owner's
      // reports say the worker is moving data all the same).
      const seenWorkers = new Set<string>()
      for (const [key, reports] of next.reports) {
        for (const r of reports) {
          seenWorkers.add(r.worker)
          let byKey = clocks.get(r.worker)
          if (byKey === undefined) clocks.set(r.worker, (byKey = new Map()))
          const clock = byKey.get(key)
          if (clock === undefined) {
            byKey.set(key, { state: r.state, position: r.position, stateSince: t, advancedAt: undefined, positionSince: t, seenAt: t })
            continue
          }
          if (clock.state !== r.state) {
            clock.state = r.state
            clock.stateSince = t
          }
          if (r.position !== clock.position) {
            if (typeof r.position === 'number' && typeof clock.position === 'number' && r.position > clock.position) clock.advancedAt = t
            clock.position = r.position
            clock.positionSince = t
          }
          clock.seenAt = t
        }
      }
      for (const [worker, byKey] of clocks) {
        if (!seenWorkers.has(worker) && !next.assignments.has(worker)) {
          clocks.delete(worker)
          runs.delete(worker)
          for (const k of [...servedUntil.keys()]) if (k.startsWith(`${worker}\u0000`)) servedUntil.delete(k)
          continue
        }
        for (const [key, clock] of byKey) if (clock.seenAt !== t) byKey.delete(key)
        // Runs of progress per cluster pair.
        let byPair = runs.get(worker)
        if (byPair === undefined) runs.set(worker, (byPair = new Map()))
        for (const [key, clock] of byKey) {
          if (clock.advancedAt !== t) continue
          const pair = next.pairOf(key.slice(0, key.indexOf('/')))
          if (pair === undefined) continue
          const run = byPair.get(pair)
          if (run !== undefined && t - run.last <= o.healAfterMs) run.last = t
          else byPair.set(pair, { since: t, last: t })
        }
        for (const [pair, run] of byPair) {
          if (t - run.last <= o.healAfterMs) continue
          if (run.last - run.since >= o.healAfterMs) servedUntil.set(`${worker}\u0000${pair}`, run.last)
          byPair.delete(pair)
        }
      }
      // When each worker's share of each group last changed.
      const current = new Map<string, string[]>()
      for (const [worker, partitions] of next.assignments) {
        for (const p of partitions) {
          const k = wg(worker, p.group)
          const list = current.get(k)
          if (list === undefined) current.set(k, [keyOf(p)])
          else list.push(keyOf(p))
        }
      }
      for (const [k, keys] of current) {
        const signature = keys.sort().join('\n')
        if (assignedSince.get(k)?.signature !== signature) assignedSince.set(k, { signature, since: t })
      }
      for (const k of assignedSince.keys()) if (!current.has(k)) assignedSince.delete(k)
      for (const [key, until] of followed) if (until <= t) followed.delete(key)
      for (const [k, q] of quarantines) if (q.until <= t || !next.assignments.has(q.worker)) quarantines.delete(k)
    },

    needsSourceEnd() {
      const t = now()
      const list: PartitionRef[] = []
      for (const [worker, partitions] of sample.assignments) {
        const byKey = clocks.get(worker)
        // Groups the worker advanced lately are served: their idle partitions need no look.
        const serving = new Set(partitions.filter((p) => advancedLately(worker, p, t)).map((p) => p.group))
        for (const p of partitions) {
          const clock = byKey?.get(keyOf(p))
          if (!serving.has(p.group) && clock?.state === 'mirroring' && typeof clock.position === 'number' && t - clock.positionSince >= o.healAfterMs) list.push(p)
        }
      }
      return list
    },

    decide(sourceEnds) {
      const t = now()
      /** Whether the partition is stuck on the worker, why, and since when (undefined: it is not). */
      const stuckFor = (worker: string, p: PartitionRef): { why: string; since: number } | undefined => {
        const key = keyOf(p)
        if (followed.has(key)) return undefined
        const clock = clocks.get(worker)?.get(key)
        const settledAt = assignedSince.get(wg(worker, p.group))?.since ?? t
        if (clock === undefined) {
          return t - settledAt >= o.healAfterMs + o.startGraceMs && ownReport(worker, p) === undefined ? { why: 'not reported', since: settledAt } : undefined
        }
        if (clock.state === 'retrying') return t - clock.stateSince >= o.healAfterMs ? { why: 'retrying', since: clock.stateSince } : undefined
        if (clock.state === 'starting') {
          const since = Math.max(clock.stateSince, settledAt)
          return t - since >= o.healAfterMs + o.startGraceMs ? { why: 'starting', since } : undefined
        }
        if (clock.state === 'mirroring') {
          const end = sourceEnds.get(key)
          const still = t - clock.positionSince
          return still >= o.healAfterMs && typeof clock.position === 'number' && end !== undefined && end > clock.position ? { why: `position ${clock.position} still for ${Math.round(still / 1000)} s, source end ${end}`, since: clock.positionSince } : undefined
        }
        return undefined
      }
      /** The other worker with the longest current run of progress between the pair's clusters. */
      const witnessFor = (worker: string, pair: string): { worker: string; since: number } | undefined => {
        let best: { worker: string; since: number } | undefined
        for (const [other, byPair] of runs) {
          const run = byPair.get(pair)
          if (other === worker || run === undefined || t - run.last > o.healAfterMs) continue
          if (best === undefined || run.since < best.since) best = { worker: other, since: run.since }
        }
        return best
      }
      // A pass where partitions of a cluster pair wait with data while none of the pair's moves
      // is an incident that hit everyone (the target down, say): the shared grace runs from the
      // last such pass, however each worker's clocks and runs were reset meanwhile.
      const advancing = new Set<string>()
      const stalled = new Set<string>()
      for (const [worker, partitions] of sample.assignments) {
        for (const p of partitions) {
          const pair = sample.pairOf(p.group)
          if (pair === undefined) continue
          if (advancedLately(worker, p, t)) advancing.add(pair)
          else if (stuckFor(worker, p) !== undefined) stalled.add(pair)
        }
      }
      for (const pair of stalled) if (!advancing.has(pair)) sharedStallAt.set(pair, t)
      const fresh: Quarantine[] = []
      for (const [worker, partitions] of sample.assignments) {
        const byGroup = new Map<string, PartitionRef[]>()
        for (const p of partitions) {
          const list = byGroup.get(p.group)
          if (list === undefined) byGroup.set(p.group, [p])
          else list.push(p)
        }
        for (const [group, held] of byGroup) {
          const k = wg(worker, group)
          if (quarantines.has(k)) continue
          const pair = sample.pairOf(group)
          if (pair === undefined) continue
          // Serving the group: any of its partitions advanced on this worker lately.
          if (held.some((p) => advancedLately(worker, p, t))) continue
          const stuck = held.flatMap((p) => { const found = stuckFor(worker, p); return found === undefined ? [] : [{ p, ...found }] })
          if (stuck.length === 0) continue
          const witness = witnessFor(worker, pair)
          if (witness === undefined) continue
          // Stuck, or done serving, before the others' progress began: an incident that hit
          // everyone; wait longer. (A task restarted after the incident resets the worker's clocks,
          // so its recovery is judged from when it stopped serving, not from its last step.)
          const stuckSince = Math.min(...stuck.map((s) => s.since))
          const served = servedUntil.get(`${worker}\u0000${pair}`)
          if ((stuckSince < witness.since || (served !== undefined && served < witness.since)) && t - witness.since < o.sharedGraceMs) continue
          if (t - (sharedStallAt.get(pair) ?? -Infinity) < o.sharedGraceMs) continue
          const last = history.get(k)
          const strike = last !== undefined && t - last.until < o.strikeMemoryMs ? last.strike + 1 : 1
          const cooldown = Math.min(o.maxCooldownMs, o.cooldownMs * 2 ** (strike - 1))
          const first = stuck[0] as { p: PartitionRef; why: string }
          const reason = `${stuck.length} of its ${held.length} partition${held.length === 1 ? '' : 's'} of the group without progress (${first.p.topic}/${first.p.partition}: ${first.why}) while ${witness.worker} moves data between the same clusters`
          const q: Quarantine = { worker, group, reason, since: t, until: t + cooldown, strike, partitions: stuck.map((s) => s.p) }
          quarantines.set(k, q)
          history.set(k, { strike, until: q.until })
          for (const { p } of stuck) followed.set(keyOf(p), t + o.followMemoryMs)
          fresh.push(q)
        }
      }
      return fresh
    },

    excluded(group) {
      const t = now()
      const set = new Set<string>()
      for (const q of quarantines.values()) if (q.group === group && q.until > t) set.add(q.worker)
      return set
    },

    active() {
      const t = now()
      return [...quarantines.values()].filter((q) => q.until > t).sort((a, b) => a.group.localeCompare(b.group) || a.worker.localeCompare(b.worker))
    },
  }
}
