/**
 * The leader's history writer: every `sampleMs` (15 s by default) it reads what the workers
 * report in the registry (the same reports the group status reads), the source's end offsets of
 * the reported topics (for lag), adds one sample to the current minute's bucket of each group and
 * each of its topics, and writes those buckets to the history store (controller/history.ts).
 * A follower samples nothing. A new leader, and a leader writing a new minute, first reads the
 * minute's bucket back from Redis, so a takeover mid-minute adds to what the old leader wrote
 * instead of replacing it; the bucket in memory is written whole each time, so a Redis that
 * restarted empty gets the current minute back at the next sample.
 *
 * @example
 *   const recorder = createHistoryRecorder({ history, isLeader, groups, instances, sourceEnds, logger })
 *   recorder.start()     // samples every 15 s while this controller leads
 *   await recorder.stop()
 */
import type { TopicGroupSpec } from '../common/config.js'
import { errorMessage } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import type { InstanceRecord } from '../common/registry.js'
import { emptyBucket, mergeBucket, minuteOf, type HistoryBucket, type HistoryStore } from './history.js'
import { partitionKey, workerReports, type WorkerReport } from './groups-service.js'

/** Default time between samples. */
export const DEFAULT_HISTORY_SAMPLE_MS = 15000

/** The key of a series: the group, or group and topic. */
export function seriesKey(group: string, topic?: string): string {
  return topic === undefined ? group : `${group}\u0000${topic}`
}

export interface SampleInput {
  /** Groups that exist now: each gets a sample (zero rates when none of its partitions is reported). */
  groups: readonly string[]
  /** One report per partition (the reporting owner's). */
  reports: readonly WorkerReport[]
  /** Source end offset (last stable offset) by `group/topic/partition`, where it could be read. */
  ends: ReadonlyMap<string, number>
  /** Each worker's cumulative latency counts of a partition at the previous sample, by `worker/group/topic/partition`. */
  baselines: ReadonlyMap<string, readonly number[]>
}

/**
 * One sample as buckets (samples = 1) by series key, and the latency baselines for the next one.
 * Latency counts are cumulative per worker and partition: a sample counts what was added since
 * the previous one; without a previous one (a task new to this controller's eyes, or a new
 * leader) it only takes the baseline; counts that went down (the task restarted) count whole.
 * Lag is the sum over the series' reported partitions, only when there are some and every one of
 * them has both a position and a source end.
 */
export function sampleBuckets(input: SampleInput): { buckets: Map<string, HistoryBucket>; baselines: Map<string, number[]> } {
  const buckets = new Map<string, HistoryBucket>()
  const lagKnown = new Map<string, boolean>()
  const baselines = new Map<string, number[]>()
  const bucketOf = (key: string): HistoryBucket => {
    let b = buckets.get(key)
    if (b === undefined) {
      b = { ...emptyBucket(), samples: 1, lagSamples: 1 }
      buckets.set(key, b)
    }
    return b
  }
  const groups = new Set(input.groups)
  for (const group of groups) bucketOf(seriesKey(group))
  for (const r of input.reports) {
    if (!groups.has(r.group)) continue
    const end = input.ends.get(partitionKey(r))
    const lag = end !== undefined && typeof r.position === 'number' ? Math.max(0, end - r.position) : undefined
    const baselineKey = `${r.worker}/${partitionKey(r)}`
    const previous = input.baselines.get(baselineKey)
    const counts = r.latencyCounts
    baselines.set(baselineKey, [...counts])
    let added: number[] | undefined
    if (previous !== undefined) {
      const wentDown = counts.some((n, i) => n < (previous[i] ?? 0))
      added = wentDown ? [...counts] : counts.map((n, i) => n - (previous[i] ?? 0))
    }
    for (const key of [seriesKey(r.group), seriesKey(r.group, r.topic)]) {
      const b = bucketOf(key)
      b.recordsPerSecSum += r.recordsPerSec
      b.bytesPerSecSum += r.bytesPerSec
      if (lag === undefined) lagKnown.set(key, false)
      else {
        b.lagSum += lag
        if (!lagKnown.has(key)) lagKnown.set(key, true)
      }
      if (added !== undefined) added.forEach((n, i) => (b.latencyCounts[i] = (b.latencyCounts[i] ?? 0) + n))
    }
  }
  for (const [key, b] of buckets) {
    if (lagKnown.get(key) === true) b.lagMax = b.lagSum
    else {
      b.lagSum = 0
      b.lagSamples = 0
    }
  }
  return { buckets, baselines }
}

export interface HistoryRecorderDeps {
  history: HistoryStore
  isLeader: () => boolean
  /** The topic groups that exist. */
  groups: () => Promise<Array<{ name: string; spec: TopicGroupSpec }>>
  /** Live instances with their parsed reports (the registry). */
  instances: () => Promise<InstanceRecord[]>
  /** Last stable offset of each partition of `topics` on the group's source, by `topic/partition`; throws when the source cannot be read. */
  sourceEnds: (spec: TopicGroupSpec, topics: readonly string[]) => Promise<Map<string, number>>
  logger: Logger
  /** Default 15000 ms. */
  sampleMs?: number
  now?: () => number
}

export interface HistoryRecorder {
  start(): void
  /** One sample now (when leading); resolves when it is written. */
  sample(): Promise<void>
  stop(): Promise<void>
}

export function createHistoryRecorder(deps: HistoryRecorderDeps): HistoryRecorder {
  const now = deps.now ?? Date.now
  const sampleMs = deps.sampleMs ?? DEFAULT_HISTORY_SAMPLE_MS
  const { history, logger } = deps
  /** This minute's bucket of each series as this leader has written it. */
  const current = new Map<string, { group: string; topic?: string; minuteMs: number; bucket: HistoryBucket }>()
  let baselines = new Map<string, number[]>()
  let leading = false
  let failing = false
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()

  const sampleOnce = async (): Promise<void> => {
    if (!deps.isLeader()) {
      leading = false
      return
    }
    if (!leading) {
      // Another leader may have written this minute meanwhile: read every bucket back first,
      // and take latency baselines afresh (counting a whole task's latency into one minute would be wrong).
      current.clear()
      baselines = new Map()
      leading = true
    }
    const at = now()
    const minuteMs = minuteOf(at)
    const [groups, live] = await Promise.all([deps.groups(), deps.instances()])
    const reports = [...workerReports(live).values()]
    const ends = new Map<string, number>()
    for (const { name, spec } of groups) {
      const topics = [...new Set(reports.filter((r) => r.group === name).map((r) => r.topic))]
      if (topics.length === 0) continue
      try {
        for (const [key, end] of await deps.sourceEnds(spec, topics)) ends.set(`${name}/${key}`, end)
      } catch (error) {
        logger.debug({ event: 'controller.history_source_unreadable', group: name, err: errorMessage(error) }, 'no lag in this history sample: the source cannot be read')
      }
    }
    const sample = sampleBuckets({ groups: groups.map((g) => g.name), reports, ends, baselines })
    baselines = sample.baselines
    for (const [key, entry] of current) if (entry.minuteMs !== minuteMs) current.delete(key)
    const writes: Array<{ group: string; topic?: string; minuteMs: number; bucket: HistoryBucket }> = []
    for (const [key, added] of sample.buckets) {
      let entry = current.get(key)
      if (entry === undefined) {
        const [group, topic] = key.split('\u0000') as [string, string | undefined]
        const stored = await history.bucket(group, topic, minuteMs)
        entry = { group, ...(topic === undefined ? {} : { topic }), minuteMs, bucket: stored ?? emptyBucket() }
        current.set(key, entry)
      }
      mergeBucket(entry.bucket, added)
      writes.push(entry)
    }
    // Leadership may have gone while we read: a deposed leader must not write.
    if (!deps.isLeader()) return
    await history.write(writes)
  }

  const sample = (): Promise<void> => {
    running = running.then(async () => {
      try {
        await sampleOnce()
        if (failing) logger.info({ event: 'controller.history_recovered' }, 'history samples are written again')
        failing = false
      } catch (error) {
        // Redis or ZooKeeper away: this sample is lost (the minute's bucket in memory keeps what was added).
        if (!failing) logger.warn({ event: 'controller.history_sample_failed', err: errorMessage(error) }, 'could not record a history sample; retrying at the next one')
        failing = true
      }
    })
    return running
  }

  return {
    start() {
      if (timer !== undefined || sampleMs <= 0) return
      timer = setInterval(() => void sample(), sampleMs)
      timer.unref()
    },
    sample,
    async stop() {
      if (timer !== undefined) clearInterval(timer)
      timer = undefined
      await running
    },
  }
}
