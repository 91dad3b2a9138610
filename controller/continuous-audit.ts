/**
 * The continuous audit: for groups that ask for it (`audit: { intervalMinutes }` in the group's
 * spec), the leader audits the group every `intervalMinutes` (10 by default), like the on-demand
 * audit (controller/audit.ts: same record identity, same rule for missing, duplicated and
 * dead-lettered copies) but cheap enough to leave on: each run reads only what was appended to
 * both sides since the previous run. Per partition it remembers the source and target offsets it
 * reached (and the dead-letter topic's), in Redis with the rest of its state, so a new leader goes
 * on where the old one stopped.
 *
 * Buckets are the history's minutes, by record timestamp (Chaperone-style; a coarser step merges
 * them by adding). A record's copy on the target may be read several runs after the source record
 * (mirroring lag), so a bucket stays open, its figures rewritten at every run, until the first run
 * that starts `graceMinutes` (10 by default) after the bucket's end: that run writes it as final
 * and forgets its records. The rule, for an operator: a minute's `missing` is only meaningful once
 * the minute is final; a record mirrored more than the grace after its timestamp lands in its
 * minute as `late` (it is neither missing there nor a duplicate), as does a source record written
 * with a timestamp older than the grace.
 *
 * What is kept between runs is what cannot be settled yet: per open minute its counts, and the
 * identities read on one side and not yet balanced by the other (records in flight, missing or
 * duplicated ones; balanced identities are dropped at once), so the state is about the size of
 * the records mirrored within the grace that have not reached the target. Records with a
 * timestamp before the audit first ran are not audited.
 *
 * @example
 *   const audit = createContinuousAudit({ isLeader, groups, sides, state, history, logger })
 *   audit.start()   // runs each audited group when due, while this controller leads
 */
import type { Redis } from 'ioredis'
import { DEFAULT_AUDIT_INTERVAL_MINUTES, deadLetterTopicName, targetTopicName, type ClusterSpec, type TopicGroupSpec } from '../common/config.js'
import type { KafkaAdmin } from '../common/kafka/admin.js'
import type { KafkaReadClients } from '../common/kafka/port.js'
import type { Keys } from '../common/keys.js'
import { errorMessage } from '../common/errors.js'
import type { SourceRecord } from '../common/kafka/source-consumer.js'
import type { Logger } from '../common/logger.js'
import { recordIdentity } from '../common/record-identity.js'
import { bucketStart, compareCopies, deadLetterIdentity, readRanges, type ReadRange } from './audit.js'
import { discoverPartitions } from './discovery.js'
import { MINUTE_MS, minuteOf, type AuditMinute, type AuditWrite, type HistoryStore } from './history.js'

export type AuditSide = 'source' | 'target'

/** A partition's offsets as the audit needs them. */
export interface PartitionEnds {
  partition: number
  /** First offset still kept. */
  low: number
  /** Last stable offset: where read_committed reading ends now. */
  stable: number
}

/** How the audit reads one group's clusters (the port's admin and source consumer in production; a fake in unit tests). */
export interface AuditSides {
  /** The source topics the group covers now. */
  topics(): Promise<string[]>
  /** The target topic of a source topic. */
  targetTopic(topic: string): string
  /** The group's dead-letter topic (on the target). */
  deadLetterTopic: string
  /** Offsets of each partition of `topic` on `side`; empty when the topic does not exist. */
  ends(side: AuditSide, topic: string): Promise<PartitionEnds[]>
  /** Per partition, the first offset with a timestamp at or after `ms` (the end when there is none). */
  offsetsForTime(side: AuditSide, topic: string, ms: number): Promise<Map<number, number>>
  /** Calls `onRecord` for each record of the ranges, in offset order per partition. */
  read(side: AuditSide, topic: string, ranges: readonly ReadRange[], onRecord: (partition: number, record: SourceRecord) => void): Promise<void>
}

/** The copies read so far of one identity not yet balanced: [minute start, source, target, dead-lettered]. */
type Copies = [number, number, number, number]

interface TopicState {
  /** Next offset to read, by partition. */
  source: Map<number, number>
  target: Map<number, number>
  /** Records read so far in each open minute. */
  minutes: Map<number, { source: number; target: number }>
  /** Identities read on one side and not (yet) balanced by the other, in open minutes. */
  open: Map<string, Copies>
}

/** What the audit of one group keeps between runs (in Redis, as {@link encodeAuditState}). */
export interface ContinuousAuditState {
  /** Records with an earlier timestamp are not audited (the audit's first run). */
  startMs: number
  /** Minutes starting before this are final. */
  finalBeforeMs: number
  /** When the last run started. */
  lastRunMs: number
  /** Next offset to read in the dead-letter topic, by partition. */
  deadLetter: Map<number, number>
  topics: Map<string, TopicState>
}

export function emptyAuditState(startMs: number): ContinuousAuditState {
  const minute = minuteOf(startMs)
  return { startMs: minute, finalBeforeMs: minute, lastRunMs: 0, deadLetter: new Map(), topics: new Map() }
}

const STATE_FORMAT = 1

export function encodeAuditState(state: ContinuousAuditState): string {
  return JSON.stringify({
    v: STATE_FORMAT,
    startMs: state.startMs,
    finalBeforeMs: state.finalBeforeMs,
    lastRunMs: state.lastRunMs,
    deadLetter: [...state.deadLetter],
    topics: [...state.topics].map(([topic, t]) => [topic, { source: [...t.source], target: [...t.target], minutes: [...t.minutes].map(([m, c]) => [m, c.source, c.target]), open: [...t.open] }]),
  })
}

/** The state, or null for a missing or unreadable one (another format: the audit starts afresh). */
export function decodeAuditState(text: string | null): ContinuousAuditState | null {
  if (text === null) return null
  try {
    const raw = JSON.parse(text) as {
      v: number
      startMs: number
      finalBeforeMs: number
      lastRunMs: number
      deadLetter: Array<[number, number]>
      topics: Array<[string, { source: Array<[number, number]>; target: Array<[number, number]>; minutes: Array<[number, number, number]>; open: Array<[string, Copies]> }]>
    }
    if (raw.v !== STATE_FORMAT) return null
    return {
      startMs: raw.startMs,
      finalBeforeMs: raw.finalBeforeMs,
      lastRunMs: raw.lastRunMs,
      deadLetter: new Map(raw.deadLetter),
      topics: new Map(raw.topics.map(([topic, t]) => [topic, { source: new Map(t.source), target: new Map(t.target), minutes: new Map(t.minutes.map(([m, s, tg]) => [m, { source: s, target: tg }])), open: new Map(t.open) }])),
    }
  } catch {
    return null
  }
}

function topicState(state: ContinuousAuditState, topic: string): TopicState {
  let t = state.topics.get(topic)
  if (t === undefined) {
    t = { source: new Map(), target: new Map(), minutes: new Map(), open: new Map() }
    state.topics.set(topic, t)
  }
  return t
}

/** Late records of one run: by topic, then minute. */
export type LateCounts = Map<string, Map<number, number>>

/**
 * Counts one copy of a record (source, target or dead-letter) into the state: into its open minute
 * and its identity's copies, or as late when its minute is final. Balanced identities are dropped.
 */
export function countCopy(state: ContinuousAuditState, late: LateCounts, topic: string, kind: 'source' | 'target' | 'dead', id: string, timestamp: string): void {
  const ts = Number(timestamp)
  if (!(ts >= state.startMs)) return
  const minute = bucketStart(ts, MINUTE_MS)
  if (minute < state.finalBeforeMs) {
    const byMinute = late.get(topic) ?? new Map<number, number>()
    byMinute.set(minute, (byMinute.get(minute) ?? 0) + 1)
    late.set(topic, byMinute)
    return
  }
  const t = topicState(state, topic)
  const counts = t.minutes.get(minute) ?? { source: 0, target: 0 }
  if (kind === 'source') counts.source++
  if (kind === 'target') counts.target++
  t.minutes.set(minute, counts)
  const copies: Copies = t.open.get(id) ?? [minute, 0, 0, 0]
  copies[kind === 'source' ? 1 : kind === 'target' ? 2 : 3]++
  // Balanced and nothing dead-lettered: no later copy can change what it adds (compareCopies is additive there).
  if (copies[1] === copies[2] && copies[3] === 0) t.open.delete(id)
  else t.open.set(id, copies)
}

/** One minute's figures for one topic (or the group, summed). */
export interface AuditMinuteFigures extends AuditMinute {
  minuteMs: number
}

/** The figures of every open minute of a topic, from its counts and unbalanced identities. */
export function openMinutes(t: TopicState): Map<number, AuditMinuteFigures> {
  const figures = new Map<number, AuditMinuteFigures>()
  for (const [minuteMs, c] of t.minutes) figures.set(minuteMs, { minuteMs, source: c.source, target: c.target, missing: 0, duplicates: 0, deadLettered: 0, late: 0, final: false })
  for (const [minute, s, tg, dead] of t.open.values()) {
    const f = figures.get(minute)
    if (f === undefined) continue
    const copies = compareCopies(s, tg, dead)
    f.missing += copies.missing
    f.duplicates += copies.duplicates
    f.deadLettered += copies.deadLettered
  }
  return figures
}

/** What one run found and what it leaves for the next. */
export interface AuditRun {
  state: ContinuousAuditState
  /** Figures of the minutes the run saw open or closed, by topic ('' is the group). */
  minutes: Map<string, AuditMinuteFigures[]>
  /** Records read after their minute was final, by topic, then minute. */
  late: LateCounts
  /** Records read (both sides and the dead-letter topic) and their key, value and header bytes. */
  recordsRead: number
  bytesRead: number
}

function recordBytes(record: SourceRecord): number {
  let n = (record.key?.length ?? 0) + (record.value?.length ?? 0)
  for (const h of record.headers) n += h.key.length + (h.value?.length ?? 0)
  return n
}

/**
 * One run of a group's audit at `nowMs`: reads each side from where the previous run stopped up
 * to the last stable offsets now (a partition seen for the first time from the first offset at or
 * after the audit's start), and closes the minutes that ended `graceMs` before `nowMs`.
 * `previous` is changed in place (and returned as the run's state); null starts the audit now.
 */
export async function runAudit(previous: ContinuousAuditState | null, sides: AuditSides, nowMs: number, graceMs: number): Promise<AuditRun> {
  const state = previous ?? emptyAuditState(nowMs)
  const late: LateCounts = new Map()
  let recordsRead = 0
  let bytesRead = 0
  const rangesOf = async (side: AuditSide, topic: string, next: Map<number, number>): Promise<ReadRange[]> => {
    const ends = await sides.ends(side, topic)
    // A partition new to the audit, or whose log now ends before where the audit stopped (the
    // topic was deleted and created again), is read from the audit's start by timestamp.
    const known = (e: PartitionEnds): number | undefined => {
      const at = next.get(e.partition)
      return at !== undefined && at <= e.stable ? at : undefined
    }
    const starts = ends.some((e) => known(e) === undefined) ? await sides.offsetsForTime(side, topic, state.startMs) : new Map<number, number>()
    const ranges = ends.map((e) => ({ partition: e.partition, from: Math.max(known(e) ?? starts.get(e.partition) ?? e.stable, e.low), to: e.stable }))
    // Where the next run starts, also for partitions with nothing new.
    for (const r of ranges) next.set(r.partition, Math.max(r.from, r.to))
    return ranges
  }
  const read = async (side: AuditSide, topic: string, ranges: readonly ReadRange[], onRecord: (partition: number, record: SourceRecord) => void): Promise<void> => {
    await sides.read(side, topic, ranges, (partition, record) => {
      recordsRead++
      bytesRead += recordBytes(record)
      onRecord(partition, record)
    })
  }

  const deadRanges = await rangesOf('target', sides.deadLetterTopic, state.deadLetter)
  // A topic the group no longer covers is still read while it has open minutes, so they can close.
  const stillOpen = [...state.topics].filter(([, t]) => t.minutes.size > 0).map(([topic]) => topic)
  const topics = [...new Set([...(await sides.topics()), ...stillOpen])].sort()
  const ranges = await Promise.all(
    topics.map(async (topic) => {
      const t = topicState(state, topic)
      return { topic, source: await rangesOf('source', topic, t.source), target: await rangesOf('target', sides.targetTopic(topic), t.target) }
    }),
  )
  await read('target', sides.deadLetterTopic, deadRanges, (_partition, record) => {
    const dead = deadLetterIdentity(record)
    if (dead !== null && topics.includes(dead.topic)) countCopy(state, late, dead.topic, 'dead', dead.id, dead.timestamp)
  })
  for (const r of ranges) {
    await Promise.all([
      read('source', r.topic, r.source, (partition, record) => countCopy(state, late, r.topic, 'source', recordIdentity(partition, record), record.timestamp)),
      read('target', sides.targetTopic(r.topic), r.target, (partition, record) => countCopy(state, late, r.topic, 'target', recordIdentity(partition, record), record.timestamp)),
    ])
  }

  const finalBeforeMs = Math.max(state.finalBeforeMs, minuteOf(nowMs - graceMs))
  const minutes = new Map<string, AuditMinuteFigures[]>()
  const group = new Map<number, AuditMinuteFigures>()
  for (const [topic, t] of state.topics) {
    const figures = [...openMinutes(t).values()].sort((a, b) => a.minuteMs - b.minuteMs)
    for (const f of figures) {
      f.final = f.minuteMs < finalBeforeMs
      const g = group.get(f.minuteMs) ?? { minuteMs: f.minuteMs, source: 0, target: 0, missing: 0, duplicates: 0, deadLettered: 0, late: 0, final: f.final }
      g.source += f.source
      g.target += f.target
      g.missing += f.missing
      g.duplicates += f.duplicates
      g.deadLettered += f.deadLettered
      group.set(f.minuteMs, g)
    }
    if (figures.length > 0) minutes.set(topic, figures)
    // A final minute is forgotten: what it held is written, and later copies of it are late.
    for (const minute of t.minutes.keys()) if (minute < finalBeforeMs) t.minutes.delete(minute)
    for (const [id, copies] of t.open) if (copies[0] < finalBeforeMs) t.open.delete(id)
  }
  if (group.size > 0) minutes.set('', [...group.values()].sort((a, b) => a.minuteMs - b.minuteMs))
  const groupLate = new Map<number, number>()
  for (const byMinute of late.values()) for (const [m, n] of byMinute) groupLate.set(m, (groupLate.get(m) ?? 0) + n)
  if (groupLate.size > 0) late.set('', groupLate)
  state.finalBeforeMs = finalBeforeMs
  state.lastRunMs = nowMs
  return { state, minutes, late, recordsRead, bytesRead }
}

/** Where a group's audit state lives (Redis in production, a map in unit tests). */
export interface AuditStateStore {
  load(group: string): Promise<ContinuousAuditState | null>
  /** Saves the state together with the run's history writes, as one (a crash leaves neither or both). */
  commit(group: string, state: ContinuousAuditState, run: AuditRun): Promise<void>
}

/** The group's clusters read through the port (what the on-demand audit reads with). */
export function portAuditSides(options: {
  group: TopicGroupSpec
  source: { cluster: ClusterSpec; admin: KafkaAdmin }
  target: { cluster: ClusterSpec; admin: KafkaAdmin }
  sourceConsumer: KafkaReadClients['sourceConsumer']
  logger: Logger
  /** Longest reading one topic of one side may take; default 120000 ms. */
  readTimeoutMs?: number
}): AuditSides {
  const { group } = options
  const sideOf = (side: AuditSide): { cluster: ClusterSpec; admin: KafkaAdmin } => (side === 'source' ? options.source : options.target)
  return {
    topics: async () => Object.keys((await discoverPartitions(group, options.source.admin)).topics),
    targetTopic: (topic) => targetTopicName(group, topic),
    deadLetterTopic: deadLetterTopicName(group),
    async ends(side, topic) {
      const { admin } = sideOf(side)
      if (!(await admin.partitionCounts([topic])).has(topic)) return []
      return (await admin.stableOffsets(topic)).map((o) => ({ partition: o.partition, low: o.low, stable: o.stable }))
    },
    offsetsForTime: (side, topic, ms) => sideOf(side).admin.offsetsForTime(topic, ms),
    read: (side, topic, ranges, onRecord) => readRanges(sideOf(side).cluster, topic, ranges, options, onRecord),
  }
}

/** How long an untouched state is kept: a group whose audit stopped running starts afresh after it. */
export const AUDIT_STATE_TTL_MS = 48 * 3600000

/**
 * The state in Redis (`keys.auditState(group)`), committed in the same transaction as the run's
 * audit minutes (the history store), so a leader that dies between the two cannot count a
 * record twice. Late records are added to their final minute as stored.
 */
export function redisAuditStateStore(redis: Pick<Redis, 'get'>, keys: Pick<Keys, 'auditState'>, history: Pick<HistoryStore, 'auditMinute' | 'writeAudit'>): AuditStateStore {
  return {
    async load(group) {
      return decodeAuditState(await redis.get(keys.auditState(group)))
    },
    async commit(group, state, run) {
      const writes: AuditWrite[] = []
      for (const [topic, figures] of run.minutes) {
        for (const { minuteMs, ...minute } of figures) writes.push({ group, ...(topic === '' ? {} : { topic }), minuteMs, minute })
      }
      for (const [topic, byMinute] of run.late) {
        for (const [minuteMs, n] of byMinute) {
          const stored = (await history.auditMinute(group, topic === '' ? undefined : topic, minuteMs)) ?? { source: 0, target: 0, missing: 0, duplicates: 0, deadLettered: 0, late: 0, final: true }
          writes.push({ group, ...(topic === '' ? {} : { topic }), minuteMs, minute: { ...stored, late: stored.late + n } })
        }
      }
      await history.writeAudit(writes, { key: keys.auditState(group), value: encodeAuditState(state), ttlMs: AUDIT_STATE_TTL_MS })
    },
  }
}

export interface ContinuousAuditDeps {
  isLeader: () => boolean
  /** The topic groups that exist. */
  groups: () => Promise<Array<{ name: string; spec: TopicGroupSpec }>>
  /** How to read a group's clusters; throws when a cluster is not registered. */
  sides: (spec: TopicGroupSpec) => Promise<AuditSides>
  state: AuditStateStore
  logger: Logger
  now?: () => number
  /** Most time between two looks at which groups are due (less when a group's interval is shorter); default 5000 ms. */
  tickMs?: number
  /** Called after each run (for metrics and benchmarks). */
  onRun?: (group: string, run: AuditRun) => void
}

export interface ContinuousAudit {
  start(): void
  /** Runs every audited group that is due now (all of them with `force`), while leading. */
  tick(force?: boolean): Promise<void>
  stop(): Promise<void>
}

export function createContinuousAudit(deps: ContinuousAuditDeps): ContinuousAudit {
  const now = deps.now ?? Date.now
  const maxTickMs = deps.tickMs ?? 5000
  const { logger } = deps
  const failing = new Set<string>()
  /** When this controller last ran each group's audit. */
  const lastRuns = new Map<string, number>()
  let timer: NodeJS.Timeout | undefined
  let stopped = true
  let nextTickMs = maxTickMs
  let running: Promise<void> = Promise.resolve()

  const runGroup = async (name: string, spec: TopicGroupSpec, force: boolean): Promise<void> => {
    const audit = spec.audit
    if (audit === undefined) return
    const intervalMs = audit.intervalMinutes * MINUTE_MS
    // Not due by this controller's own last run: no need to load (and parse) the state.
    if (!force && now() - (lastRuns.get(name) ?? -Infinity) < intervalMs) return
    const previous = await deps.state.load(name)
    const at = now()
    // Another leader may have run it since.
    if (!force && previous !== null && at - previous.lastRunMs < intervalMs) return
    const run = await runAudit(previous, await deps.sides(spec), at, audit.graceMinutes * MINUTE_MS)
    // Leadership may have gone while we read: a deposed leader must not write.
    if (!deps.isLeader()) return
    await deps.state.commit(name, run.state, run)
    lastRuns.set(name, at)
    const group = run.minutes.get('') ?? []
    logger.info(
      { event: 'controller.continuous_audit', group: name, recordsRead: run.recordsRead, bytesRead: run.bytesRead, missing: group.filter((m) => m.final).reduce((n, m) => n + m.missing, 0), duplicates: group.filter((m) => m.final).reduce((n, m) => n + m.duplicates, 0) },
      'continuous audit run done',
    )
    deps.onRun?.(name, run)
  }

  const tick = (force = false): Promise<void> => {
    running = running.then(async () => {
      if (!deps.isLeader()) return
      let groups: Array<{ name: string; spec: TopicGroupSpec }>
      try {
        groups = (await deps.groups()).filter((g) => g.spec.audit !== undefined)
      } catch (error) {
        logger.warn({ event: 'controller.continuous_audit_failed', err: errorMessage(error) }, 'could not list the groups to audit; retrying at the next tick')
        return
      }
      nextTickMs = Math.max(1000, Math.min(maxTickMs, ...groups.map((g) => (g.spec.audit?.intervalMinutes ?? DEFAULT_AUDIT_INTERVAL_MINUTES) * MINUTE_MS)))
      for (const { name, spec } of groups) {
        try {
          await runGroup(name, spec, force)
          if (failing.delete(name)) logger.info({ event: 'controller.continuous_audit_recovered', group: name }, 'continuous audit runs again')
        } catch (error) {
          // A cluster or Redis away: nothing was saved, so the next run reads the same records again.
          if (!failing.has(name)) logger.warn({ event: 'controller.continuous_audit_failed', group: name, err: errorMessage(error) }, 'continuous audit run failed; retrying at the next tick')
          failing.add(name)
        }
      }
    })
    return running
  }

  const schedule = (): void => {
    if (stopped) return
    timer = setTimeout(() => {
      void tick().then(schedule)
    }, nextTickMs)
    timer.unref()
  }

  return {
    start() {
      if (!stopped) return
      stopped = false
      schedule()
    },
    tick,
    async stop() {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
      await running
    },
  }
}
