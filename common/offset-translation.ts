/**
 * Translating a consumer group's committed source offset into a target offset, from the offset
 * syncs the workers write (worker/offset-syncs.ts). The rule: the target offset of the first
 * mirrored record at or after the committed offset C, so the group reads on the target exactly
 * what it had not committed on the source; never a position past a record it has not read.
 *
 * Syncs of one source partition are given in the order they were written. Where a record was
 * mirrored more than once (at-least-once, after a crash), the latest copy counts: everything after
 * it was written after it, in order. Where no sync says where C's records went (a sync lost, or
 * older than the kept ones), the answer falls back to a position before them: the group re-reads
 * some records, and the result says why (`exact: false`).
 *
 * @example
 *   translateOffset(syncs, 1200)   // { offset: 5310, exact: true, reason: 'exact' }
 */

/** The target topic where a deployment's workers write offset syncs (worker/offset-syncs.ts). */
export function offsetSyncTopicName(deployment: string): string {
  return `_ferry.${deployment}.offset-syncs`
}

/** Source offsets s..s+n-1 are at target offsets t..t+n-1: [s, t, n]. */
export type Run = [number, number, number]

/** One sync (see worker/offset-syncs.ts): source offsets [from, to) handled, mirrored ones in runs. */
export interface OffsetSync {
  from: number
  to: number
  /** Target offset after the last record mirrored so far; null before any. */
  end: number | null
  runs: Run[]
}

export interface Translation {
  /** The target offset to commit; undefined: the target's current end (nothing mirrored yet) or log start, per `fallback`. */
  offset: number | undefined
  /** Where `offset` is undefined: which end of the target partition to use. */
  fallback?: 'target-end' | 'target-start'
  /** True when the group resumes at its first uncommitted record exactly (it re-reads only what it read after its last commit). */
  exact: boolean
  reason: string
}

const REASON_EXACT = 'exact: the target offset of the committed source offset'

/** The first mirrored record at or after `c` in `sync`: its target offset, or undefined. */
function firstAtOrAfter(sync: OffsetSync, c: number): { offset: number; source: number } | undefined {
  for (const [s, t, n] of sync.runs) {
    if (s + n <= c) continue
    const source = Math.max(c, s)
    return { offset: t + (source - s), source }
  }
  return undefined
}

export function translateOffset(syncs: readonly OffsetSync[], c: number): Translation {
  const t = translateBySyncs(syncs, c)
  if (t.offset === undefined) return t
  // The answer follows one chain; another may hold the only (or latest) copy of a later record
  // before it: a chain restarted and not yet past what the crashed one wrote, or an old owner's
  // late sync. Never skip those: start at the first of them.
  const first = firstLatestCopy(syncs, c)
  if (first === undefined || first >= t.offset) return t
  return {
    offset: first,
    exact: !copiesBeforeAt(syncs, c, first),
    reason: 'a later record\'s latest copy lies before the target offset of the committed one (a restarted chain not yet past what an earlier one wrote, or an old owner\'s late writes): the first such copy',
  }
}

/** Where the latest copies of records at or after `c` begin on the target (as skippedRecords counts them), or undefined. */
function firstLatestCopy(syncs: readonly OffsetSync[], c: number): number | undefined {
  const covered: Array<[number, number]> = []
  let first: number | undefined
  for (let i = syncs.length - 1; i >= 0; i--) {
    const runs = (syncs[i] as OffsetSync).runs
    for (let r = runs.length - 1; r >= 0; r--) {
      const [s, t, n] = runs[r] as Run
      for (const [from] of uncovered(covered, Math.max(s, c), s + n)) {
        const at = t + (from - s)
        if (first === undefined || at < first) first = at
      }
      cover(covered, Math.max(s, c), s + n)
    }
  }
  return first
}

/** Whether some copy of a record before `c` lies at or after target offset `at` (the group would read it again). */
function copiesBeforeAt(syncs: readonly OffsetSync[], c: number, at: number): boolean {
  for (const sync of syncs) {
    for (const [s, t, n] of sync.runs) {
      const before = Math.min(n, c - s)
      if (before > 0 && t + before - 1 >= at) return true
    }
  }
  return false
}

function translateBySyncs(syncs: readonly OffsetSync[], c: number): Translation {
  // Records before c not mirrored yet land past the answer when they are: read again, not skipped.
  if (syncs.length === 0) return { offset: undefined, fallback: 'target-end', exact: false, reason: 'nothing of this partition is mirrored yet: the target end (records before the committed offset mirrored later are read again)' }
  // The latest-written sync that handled offset c.
  for (let i = syncs.length - 1; i >= 0; i--) {
    const covering = syncs[i] as OffsetSync
    if (!(covering.from <= c && c < covering.to)) continue
    let sync = covering
    let index = i
    for (;;) {
      const found = firstAtOrAfter(sync, c)
      if (found !== undefined) {
        return { offset: found.offset, exact: true, reason: found.source === c ? REASON_EXACT : 'exact: the committed offset holds no mirrored record (a transaction marker, an aborted or compacted-away record): the next mirrored one' }
      }
      // Nothing at or after c in this sync: its chain goes on in a later sync starting where it ended.
      let next = -1
      for (let j = syncs.length - 1; j > index; j--) if ((syncs[j] as OffsetSync).from === sync.to) next = j
      if (next < 0) return endOf(sync, syncs, 'exact: nothing at or after the committed offset is mirrored yet: the end of the mirrored data')
      index = next
      sync = syncs[next] as OffsetSync
    }
  }
  let maxTo = -Infinity
  let minFrom = Infinity
  for (const s of syncs) {
    maxTo = Math.max(maxTo, s.to)
    minFrom = Math.min(minFrom, s.from)
  }
  if (c >= maxTo) {
    const last = [...syncs].reverse().find((s) => s.to === maxTo) as OffsetSync
    if (c === maxTo) return endOf(last, syncs, 'exact: nothing at or after the committed offset is mirrored yet: the end of the mirrored data')
    const behind = endOf(last, syncs, `the mirror has handled this partition only up to ${maxTo}: the end of the mirrored data (records from ${maxTo} to the committed offset, mirrored later, are read again)`)
    return { ...behind, exact: false }
  }
  if (c < minFrom) return { offset: undefined, fallback: 'target-start', exact: false, reason: 'the committed offset is older than every offset sync kept: the target log start (the group re-reads everything before its position)' }
  // A range no sync covers (a write whose placement is unknown, or a lost sync): the end of what was mirrored before it.
  let best: OffsetSync | undefined
  for (const s of syncs) if (s.to <= c && s.end !== null && (best === undefined || (best.end as number) <= s.end)) best = s
  if (best === undefined) return { offset: undefined, fallback: 'target-start', exact: false, reason: 'no offset sync covers the committed offset and none before it says where mirroring ended: the target log start' }
  return { offset: best.end as number, exact: false, reason: 'no offset sync covers the committed offset (a write whose placement was not known, or a sync lost in a crash): the end of the data mirrored before it, so the group re-reads some records' }
}

/**
 * The end of the mirrored data as `sync` knows it. A sync of a chain that has written nothing yet
 * (a restarted task that only passed over markers or dropped records) does not know it: then the
 * latest end any sync knows, and the target's current end only when nothing was ever mirrored
 * (records others wrote to the target since would be skipped otherwise).
 */
function endOf(sync: OffsetSync, syncs: readonly OffsetSync[], reason: string): Translation {
  if (sync.end !== null) return { offset: sync.end, exact: true, reason }
  for (let i = syncs.length - 1; i >= 0; i--) {
    const end = (syncs[i] as OffsetSync).end
    if (end !== null) return { offset: end, exact: true, reason }
  }
  return { offset: undefined, fallback: 'target-end', exact: true, reason }
}

/**
 * Fail back: where a group committed at `c` on a cluster that an earlier group mirrored into
 * (`syncs` are that group's) resumes on the cluster the records came from: the original offset of
 * the first mirrored copy at or after `c`, or undefined when no copy lies at or after `c`.
 */
export function translateBack(syncs: readonly OffsetSync[], c: number): number | undefined {
  let best: number | undefined
  for (const sync of syncs) {
    for (const [s, t, n] of sync.runs) {
      if (t + n <= c) continue
      const original = s + Math.max(0, c - t)
      if (best === undefined || original < best) best = original
    }
  }
  return best
}

/**
 * Records of the syncs that the group would skip from `target`: mirrored records at or after `c`
 * whose latest copy lies before `target`. The check behind "skipped: 0" (it must be 0).
 */
export function skippedRecords(syncs: readonly OffsetSync[], c: number, target: number): number {
  // Latest copies first: a source range already seen in a later run has its copy there.
  const covered: Array<[number, number]> = []
  let skipped = 0
  for (let i = syncs.length - 1; i >= 0; i--) {
    const runs = (syncs[i] as OffsetSync).runs
    for (let r = runs.length - 1; r >= 0; r--) {
      const [s, t, n] = runs[r] as Run
      for (const [from, to] of uncovered(covered, Math.max(s, c), s + n)) {
        // Source offsets [from, to) are at target t + (from - s) ...: count those before `target`.
        skipped += Math.max(0, Math.min(to, target - t + s) - from)
      }
      cover(covered, Math.max(s, c), s + n)
    }
  }
  return skipped
}

/** Parts of [from, to) not in `covered` (sorted, disjoint half-open intervals). */
function uncovered(covered: ReadonlyArray<[number, number]>, from: number, to: number): Array<[number, number]> {
  const parts: Array<[number, number]> = []
  let at = from
  for (const [a, b] of covered) {
    if (b <= at) continue
    if (a >= to) break
    if (a > at) parts.push([at, a])
    at = Math.max(at, b)
  }
  if (at < to) parts.push([at, to])
  return parts
}

function cover(covered: Array<[number, number]>, from: number, to: number): void {
  if (from >= to) return
  covered.push([from, to])
  covered.sort((x, y) => x[0] - y[0])
  const merged: Array<[number, number]> = []
  for (const [a, b] of covered) {
    const last = merged[merged.length - 1]
    if (last !== undefined && a <= last[1]) last[1] = Math.max(last[1], b)
    else merged.push([a, b])
  }
  covered.splice(0, covered.length, ...merged)
}

/** Appends `sync` to a partition's list, merging it into the previous one when it continues it (bounded by `maxRuns` in all). */
export function appendSync(list: OffsetSync[], sync: OffsetSync, maxRuns = 100_000): void {
  const last = list[list.length - 1]
  if (last !== undefined && last.to === sync.from && (sync.end === null || last.end === null || sync.end >= last.end)) {
    for (const run of sync.runs) {
      const tail = last.runs[last.runs.length - 1]
      if (tail !== undefined && run[0] === tail[0] + tail[2] && run[1] === tail[1] + tail[2]) tail[2] += run[2]
      else last.runs.push([run[0], run[1], run[2]])
    }
    last.to = sync.to
    if (sync.end !== null) last.end = sync.end
  } else {
    list.push({ from: sync.from, to: sync.to, end: sync.end, runs: sync.runs.map((r) => [r[0], r[1], r[2]] as Run) })
  }
  let runs = 0
  for (const s of list) runs += s.runs.length + 1
  // The oldest go first: a group committed that far back gets the log start (re-reading, never skipping).
  while (runs > maxRuns && list.length > 1) runs -= (list.shift() as OffsetSync).runs.length + 1
  while (runs > maxRuns && (list[0] as OffsetSync).runs.length > 1) {
    const first = list[0] as OffsetSync
    first.runs.shift()
    first.from = (first.runs[0] as Run)[0]
    runs--
  }
}
