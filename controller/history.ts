/**
 * A group's history (and each of its topics'): records/s, bytes/s, lag and end-to-end latency in
 * 1-minute buckets, kept in Redis for 48 hours by default, so any controller can serve it and a
 * takeover loses nothing but the sample in flight. One bucket holds sums (samples, rates, lag,
 * latency counts), so partial buckets written by two leaders, or several buckets read at a
 * coarser step, merge by adding. The leader writes (controller/history-recorder.ts); every
 * controller reads.
 *
 * Layout: one sorted set per series (`keys.history(group[, topic])`), score = the minute's start
 * in ms, member = the encoded bucket (it carries its minute, so two equal minutes never share a
 * member). Every write replaces its minute, drops minutes older than the retention and renews
 * a TTL of one retention, so a series nobody writes any more (a deleted group, a topic gone)
 * disappears by itself: memory is bounded by 2880 buckets per live series (docs/operations.md
 * has the measured size).
 *
 * The continuous audit (controller/continuous-audit.ts) keeps its own series beside each one
 * (`keys.auditHistory`), same layout and retention, one member per minute by record timestamp:
 * `[1, minute, source, target, missing, duplicates, deadLettered, late, final]`. It is written
 * only for groups that have the audit on, and served on the points of the same history read.
 *
 * @example
 *   const history = createHistoryStore({ backend: redisHistoryBackend(redis), keys })
 *   await history.write([{ group: 'orders', minuteMs, bucket }])
 *   const series = await history.read('orders', { fromMs, toMs, stepMs: 60000 })
 */
import type { Redis } from 'ioredis'
import type { Keys } from '../common/keys.js'
import { LATENCY_BOUNDS_MS, addLatencyCounts, emptyLatencyCounts, summariseLatency } from '../common/latency.js'

export const MINUTE_MS = 60000
/** How long buckets are kept: 48 hours. */
export const DEFAULT_HISTORY_RETENTION_MS = 48 * 3600000

/** What one minute of one series holds: sums, so that buckets merge by adding. */
export interface HistoryBucket {
  /** Samples taken in the minute (each one a look at every worker's report). */
  samples: number
  /** Sums over the samples of the series' records/s and bytes/s. */
  recordsPerSecSum: number
  bytesPerSecSum: number
  /** Sum and count of the lag samples (lag needs the source's end offsets; a sample may lack it) and the largest. */
  lagSum: number
  lagSamples: number
  lagMax: number
  /** End-to-end latency counts of the records mirrored in the minute (buckets of common/latency.ts). */
  latencyCounts: number[]
}

/** One point of a series as served: averages over its bucket(s); null where nothing was sampled. */
export interface HistoryPoint {
  /** Start of the step, ms since the epoch. */
  t: number
  recordsPerSec: number | null
  bytesPerSec: number | null
  lag: number | null
  lagMax: number | null
  latencyP50Ms: number | null
  latencyP99Ms: number | null
  /** Records whose latency the step counted. */
  latencyRecords: number
  /** The continuous audit's figures of the step (its minutes added); null where it audited nothing. */
  audit?: AuditMinute | null
}

/** What the continuous audit found of the records timestamped in one minute (or a step: minutes added). */
export interface AuditMinute {
  /** Records read at the source and at the target. */
  source: number
  target: number
  /** Source records neither at the target nor dead-lettered; meaningful once `final`. */
  missing: number
  /** Copies at the target beyond the source's. */
  duplicates: number
  deadLettered: number
  /** Records (either side) read after the minute was final: not matched. */
  late: number
  /** The grace after the minute passed, so its figures no longer change (but for `late`); a step is final when all its minutes are. */
  final: boolean
}

const AUDIT_FORMAT = 1

export function encodeAuditMinute(minuteMs: number, m: AuditMinute): string {
  return JSON.stringify([AUDIT_FORMAT, minuteMs / MINUTE_MS, m.source, m.target, m.missing, m.duplicates, m.deadLettered, m.late, m.final ? 1 : 0])
}

/** The minute's figures, or null for a member of another format. */
export function decodeAuditMinute(member: string): { minuteMs: number; minute: AuditMinute } | null {
  const parsed = memberNumbers(member, AUDIT_FORMAT)
  if (parsed === null || parsed.length !== 9 || !parsed.every(Number.isInteger)) return null
  const [, minute, source, target, missing, duplicates, deadLettered, late, final] = parsed as number[]
  return { minuteMs: (minute as number) * MINUTE_MS, minute: { source: source as number, target: target as number, missing: missing as number, duplicates: duplicates as number, deadLettered: deadLettered as number, late: late as number, final: final === 1 } }
}

/** Audit minutes added up per step of `stepMs` (from a step's start); steps without any are absent. */
export function auditSteps(minutes: ReadonlyArray<{ minuteMs: number; minute: AuditMinute }>, stepMs: number): Map<number, AuditMinute> {
  const steps = new Map<number, AuditMinute>()
  for (const { minuteMs, minute } of minutes) {
    const t = Math.floor(minuteMs / stepMs) * stepMs
    const s = steps.get(t)
    if (s === undefined) steps.set(t, { ...minute })
    else {
      s.source += minute.source
      s.target += minute.target
      s.missing += minute.missing
      s.duplicates += minute.duplicates
      s.deadLettered += minute.deadLettered
      s.late += minute.late
      s.final &&= minute.final
    }
  }
  return steps
}

export function emptyBucket(): HistoryBucket {
  return { samples: 0, recordsPerSecSum: 0, bytesPerSecSum: 0, lagSum: 0, lagSamples: 0, lagMax: 0, latencyCounts: emptyLatencyCounts() }
}

/** The start of the minute holding `ms`. */
export function minuteOf(ms: number): number {
  return Math.floor(ms / MINUTE_MS) * MINUTE_MS
}

/** `into` plus `from`, in place (returns `into`). */
export function mergeBucket(into: HistoryBucket, from: HistoryBucket): HistoryBucket {
  into.samples += from.samples
  into.recordsPerSecSum += from.recordsPerSecSum
  into.bytesPerSecSum += from.bytesPerSecSum
  into.lagSum += from.lagSum
  into.lagSamples += from.lagSamples
  into.lagMax = Math.max(into.lagMax, from.lagMax)
  addLatencyCounts(into.latencyCounts, from.latencyCounts)
  return into
}

const FORMAT = 1

/** The numbers of a member written in `format` (a JSON array of numbers, 0 or more, led by the format), or null for any other member. */
function memberNumbers(member: string, format: number): number[] | null {
  let parsed: unknown
  try {
    parsed = JSON.parse(member)
  } catch {
    return null
  }
  if (!Array.isArray(parsed) || parsed[0] !== format) return null
  if (!parsed.every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0)) return null
  return parsed as number[]
}

/**
 * `[1, minute, samples, recordsPerSecSum, bytesPerSecSum, lagSum, lagSamples, lagMax, ...latencyCounts]`
 * as JSON, the minute in minutes since the epoch and trailing zero counts left out: about 40-70
 * bytes a bucket.
 */
export function encodeBucket(minuteMs: number, b: HistoryBucket): string {
  const counts = [...b.latencyCounts]
  while (counts.length > 0 && counts[counts.length - 1] === 0) counts.pop()
  const round = (n: number): number => Math.round(n)
  return JSON.stringify([FORMAT, minuteMs / MINUTE_MS, b.samples, round(b.recordsPerSecSum), round(b.bytesPerSecSum), round(b.lagSum), b.lagSamples, round(b.lagMax), ...counts])
}

/** The bucket and its minute, or null for a member of another format (an older or newer controller's, or foreign). */
export function decodeBucket(member: string): { minuteMs: number; bucket: HistoryBucket } | null {
  const parsed = memberNumbers(member, FORMAT)
  if (parsed === null || parsed.length < 8 || parsed.length > 8 + LATENCY_BOUNDS_MS.length + 1) return null
  const [, minute, samples, rec, bytes, lagSum, lagSamples, lagMax, ...counts] = parsed as number[]
  const latencyCounts = emptyLatencyCounts()
  counts.forEach((n, i) => (latencyCounts[i] = n))
  return { minuteMs: (minute as number) * MINUTE_MS, bucket: { samples: samples as number, recordsPerSecSum: rec as number, bytesPerSecSum: bytes as number, lagSum: lagSum as number, lagSamples: lagSamples as number, lagMax: lagMax as number, latencyCounts } }
}

/** What a bucket (or several merged) says, as a point at `t`. */
export function summariseBucket(t: number, b: HistoryBucket | undefined): HistoryPoint {
  if (b === undefined || b.samples === 0) return { t, recordsPerSec: null, bytesPerSec: null, lag: null, lagMax: null, latencyP50Ms: null, latencyP99Ms: null, latencyRecords: 0 }
  const latency = summariseLatency(b.latencyCounts, null)
  return {
    t,
    recordsPerSec: Math.round((b.recordsPerSecSum / b.samples) * 10) / 10,
    bytesPerSec: Math.round(b.bytesPerSecSum / b.samples),
    lag: b.lagSamples === 0 ? null : Math.round(b.lagSum / b.lagSamples),
    lagMax: b.lagSamples === 0 ? null : b.lagMax,
    // The open-ended last bucket has no bound: it is reported as the largest bound.
    latencyP50Ms: latency.p50Ms ?? (latency.records > 0 ? (LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1] ?? null) : null),
    latencyP99Ms: latency.p99Ms ?? (latency.records > 0 ? (LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1] ?? null) : null),
    latencyRecords: latency.records,
  }
}

/**
 * Dense points from `fromMs` (rounded down to a step) up to `toMs` (excluded), one per `stepMs`
 * (a whole number of minutes), each merging the minutes of its step; steps without data are
 * points of nulls, so a chart shows the gap.
 */
export function pointsOf(buckets: ReadonlyArray<{ minuteMs: number; bucket: HistoryBucket }>, window: { fromMs: number; toMs: number; stepMs: number }): HistoryPoint[] {
  const start = Math.floor(window.fromMs / window.stepMs) * window.stepMs
  const merged = new Map<number, HistoryBucket>()
  for (const { minuteMs, bucket } of buckets) {
    if (minuteMs < start || minuteMs >= window.toMs) continue
    const step = Math.floor(minuteMs / window.stepMs) * window.stepMs
    merged.set(step, mergeBucket(merged.get(step) ?? emptyBucket(), bucket))
  }
  const points: HistoryPoint[] = []
  for (let t = start; t < window.toMs; t += window.stepMs) points.push(summariseBucket(t, merged.get(t)))
  return points
}

/** The Redis commands the store needs (a fake stands in for it in unit tests). */
export interface HistoryBackend {
  /** Members of `key` with scores in [fromMs, toMs], in score order. */
  range(key: string, fromMs: number, toMs: number): Promise<string[]>
  /**
   * Per write: replace the member at `minuteMs` with `member`, drop members scored below
   * `keepFromMs`, and set the key's time to live to `ttlMs`. All writes of one call together.
   */
  write(writes: ReadonlyArray<{ key: string; minuteMs: number; member: string; keepFromMs: number; ttlMs: number }>, also?: { key: string; value: string; ttlMs: number }): Promise<void>
}

export function redisHistoryBackend(redis: Redis): HistoryBackend {
  return {
    range: (key, fromMs, toMs) => redis.zrangebyscore(key, fromMs, toMs),
    async write(writes, also) {
      if (writes.length === 0 && also === undefined) return
      const multi = redis.multi()
      if (also !== undefined) multi.set(also.key, also.value, 'PX', also.ttlMs)
      for (const w of writes) {
        multi.zremrangebyscore(w.key, w.minuteMs, w.minuteMs).zadd(w.key, w.minuteMs, w.member).zremrangebyscore(w.key, '-inf', `(${w.keepFromMs}`).pexpire(w.key, w.ttlMs)
      }
      const results = await multi.exec()
      const failed = results?.find(([error]) => error !== null)
      if (failed) throw failed[0] as Error
    },
  }
}

export interface HistoryWrite {
  group: string
  /** Absent: the group's own series. */
  topic?: string
  minuteMs: number
  bucket: HistoryBucket
}

export interface HistoryStore {
  readonly retentionMs: number
  /** The stored bucket of a minute of a series, or null. */
  bucket(group: string, topic: string | undefined, minuteMs: number): Promise<HistoryBucket | null>
  /** Replaces each minute's bucket, trimming its series to the retention (measured from that minute). */
  write(writes: readonly HistoryWrite[]): Promise<void>
  /** Dense points of a series (see {@link pointsOf}), each with the continuous audit's figures of its step. */
  read(group: string, window: { fromMs: number; toMs: number; stepMs: number; topic?: string }): Promise<HistoryPoint[]>
  /** The stored audit figures of a minute of a series, or null. */
  auditMinute(group: string, topic: string | undefined, minuteMs: number): Promise<AuditMinute | null>
  /** Replaces each audit minute (trimming its series to the retention), and sets `also` in the same transaction. */
  writeAudit(writes: readonly AuditWrite[], also?: { key: string; value: string; ttlMs: number }): Promise<void>
}

export interface AuditWrite {
  group: string
  /** Absent: the group's own series. */
  topic?: string
  minuteMs: number
  minute: AuditMinute
}

export interface HistoryStoreOptions {
  backend: HistoryBackend
  keys: Pick<Keys, 'history' | 'auditHistory'>
  /** Default 48 h. */
  retentionMs?: number
}

export function createHistoryStore(options: HistoryStoreOptions): HistoryStore {
  const retentionMs = options.retentionMs ?? DEFAULT_HISTORY_RETENTION_MS
  const { backend, keys } = options
  return {
    retentionMs,
    async bucket(group, topic, minuteMs) {
      for (const member of await backend.range(keys.history(group, topic), minuteMs, minuteMs)) {
        const decoded = decodeBucket(member)
        if (decoded !== null && decoded.minuteMs === minuteMs) return decoded.bucket
      }
      return null
    },
    async write(writes) {
      await backend.write(
        writes.map((w) => ({
          key: keys.history(w.group, w.topic),
          minuteMs: w.minuteMs,
          member: encodeBucket(w.minuteMs, w.bucket),
          // The newest minute and the `retentionMs` before it.
          keepFromMs: w.minuteMs - retentionMs,
          ttlMs: retentionMs + MINUTE_MS,
        })),
      )
    },
    async read(group, window) {
      const from = Math.floor(window.fromMs / window.stepMs) * window.stepMs
      const [members, audited] = await Promise.all([backend.range(keys.history(group, window.topic), from, window.toMs), backend.range(keys.auditHistory(group, window.topic), from, window.toMs)])
      const audit = auditSteps(
        audited.map(decodeAuditMinute).filter((m): m is NonNullable<typeof m> => m !== null && m.minuteMs < window.toMs),
        window.stepMs,
      )
      return pointsOf(members.map(decodeBucket).filter((b) => b !== null), window).map((p) => ({ ...p, audit: audit.get(p.t) ?? null }))
    },
    async auditMinute(group, topic, minuteMs) {
      for (const member of await backend.range(keys.auditHistory(group, topic), minuteMs, minuteMs)) {
        const decoded = decodeAuditMinute(member)
        if (decoded !== null && decoded.minuteMs === minuteMs) return decoded.minute
      }
      return null
    },
    async writeAudit(writes, also) {
      await backend.write(
        writes.map((w) => ({ key: keys.auditHistory(w.group, w.topic), minuteMs: w.minuteMs, member: encodeAuditMinute(w.minuteMs, w.minute), keepFromMs: w.minuteMs - retentionMs, ttlMs: retentionMs + MINUTE_MS })),
        also,
      )
    },
  }
}
