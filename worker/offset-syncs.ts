/**
 * Offset syncs: where each mirrored source record landed on the target, kept on the target so a
 * consumer group can be moved there exactly (controller/consumer-offsets.ts translates with them).
 *
 * Every acknowledged write tells where its records went (the port's `Placement`s). Per source
 * partition the writer gathers, between flushes (every second), one sync:
 *
 *   key   `<group>/<topic>/<partition>`
 *   value { "from": F, "to": T, "end": E, "runs": [[s, t, n], ...] }
 *
 * meaning: every source offset in [F, T) was handled (mirrored, or not a record: a transaction
 * marker, an aborted record, an offset compaction removed, a dead-lettered record); records at
 * source offsets s..s+n-1 are at target offsets t..t+n-1 of the same partition of the group's
 * target topic; E is the target offset after the last record mirrored so far (null before any).
 * Consecutive syncs of one owner chain (the next `from` is this `to`). A write whose placement is
 * unknown (a partly acknowledged send) breaks the chain: the range it covered has no sync, and a
 * translation into it falls back to a position before it (re-reading, never skipping).
 *
 * Syncs are written after the target acknowledged the data (exactly-once: after the commit), on
 * the task's at-least-once producer. A sync lost to a crash leaves a gap like a broken chain.
 * The topic deletes by time (OFFSET_SYNC_TOPIC_CONFIGS): a busy partition adds at most one sync a
 * second (about 100 bytes plus 20 per gap in the source), so at most 86,400 a day.
 *
 * @example
 *   const syncs = createOffsetSyncWriter({ group, producer, topic: offsetSyncTopicName('prod'), log })
 *   syncs.begin('orders', 3, 1200)
 *   syncs.note('orders', 3, [1200, 1201, 1203], 1204, placements)
 */
import { targetTopicName, type TopicGroupSpec } from '../common/config.js'
import { errorMessage } from '../common/errors.js'
import type { KafkaAdmin, Placement, TargetProducer, TargetRecord } from '../common/kafka/port.js'
import type { Logger } from '../common/logger.js'
import type { OffsetSync, Run } from '../common/offset-translation.js'
export { offsetSyncTopicName } from '../common/offset-translation.js'
import { partitionKey } from '../common/worker-report.js'

export function offsetSyncKey(group: string, topic: string, partition: number): string {
  return partitionKey({ topic, partition }, group)
}

/** Deleted after a day: a translation needs syncs from a group's committed offset on (see the file comment for the size). */
export const OFFSET_SYNC_TOPIC_CONFIGS: Readonly<Record<string, string>> = {
  'cleanup.policy': 'delete',
  'retention.ms': String(24 * 60 * 60 * 1000),
  'segment.ms': String(60 * 60 * 1000),
  'segment.bytes': String(64 * 1024 * 1024),
}

/** A sync with more runs than this is flushed at once (its record stays well under 1 MB). */
const MAX_RUNS_PER_SYNC = 4096

/**
 * The runs of one write: `sourceOffsets` (ascending) are the records written, `placements` where
 * they went, in order. Undefined when the two do not match (the placement is not known).
 */
export function runsOf(sourceOffsets: readonly number[], placements: readonly Placement[]): Run[] | undefined {
  let placed = 0
  for (const p of placements) placed += p.count
  if (placed !== sourceOffsets.length) return undefined
  const runs: Run[] = []
  let k = 0
  let last: Run | undefined
  for (const p of placements) {
    for (let i = 0; i < p.count; i++, k++) {
      const source = sourceOffsets[k] as number
      const target = p.baseOffset + i
      if (last !== undefined && source === last[0] + last[2] && target === last[1] + last[2]) last[2]++
      else {
        last = [source, target, 1]
        runs.push(last)
      }
    }
  }
  return runs
}

export interface OffsetSyncWriter {
  /**
   * A partition's mirroring (re)starts at `offset`: a new chain begins there. `targetEnd`: the
   * target partition's end before this chain writes anything, written at the next flush as the
   * chain's first sync, so a translation never needs the target's current end (records mirrored
   * since, whose syncs are not written yet, lie past it).
   */
  begin(topic: string, partition: number, offset: number, targetEnd?: number): void
  /**
   * Records at `sourceOffsets` were written to the group's target topic (same partition) at
   * `placements` (undefined: not known), and the partition continues at `next`.
   */
  note(topic: string, partition: number, sourceOffsets: readonly number[], next: number, placements: readonly Placement[] | undefined): void
  /** Writes what was gathered. */
  flush(): Promise<void>
  /** Begins flushing every `intervalMs`. */
  start(): void
  /** Flushes, then forgets these partitions (they moved away). */
  release(partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<void>
  /** Stops the timer and flushes. */
  close(): Promise<void>
}

export interface OffsetSyncWriterDeps {
  group: Pick<TopicGroupSpec, 'name' | 'rename'>
  producer: TargetProducer
  topic: string
  /** Creates the topic before the first write. */
  admin: Pick<KafkaAdmin, 'createTopic'>
  log: Logger
  /** Default 1000 ms. */
  intervalMs?: number
}

interface Chain {
  topic: string
  partition: number
  /** Where the pending sync starts, or undefined when the chain waits for `begin`. */
  from: number | undefined
  to: number
  end: number | null
  runs: Run[]
  /** The chain's start is written even before it handled anything (it carries a known end). */
  announce: boolean
}

export function createOffsetSyncWriter(deps: OffsetSyncWriterDeps): OffsetSyncWriter {
  const chains = new Map<string, Chain>()
  /** Syncs of chains that ended (a restart, a write of unknown placement), for the next flush. */
  const ended: TargetRecord[] = []
  let writing: Promise<void> = Promise.resolve()
  let timer: NodeJS.Timeout | undefined
  let created = false

  /** The pending sync of `c` as a record (undefined when it has nothing), and the chain goes on after it. */
  const takeChain = (c: Chain): TargetRecord | undefined => {
    if (c.from === undefined || (c.to <= c.from && !c.announce)) return undefined
    const sync: OffsetSync = { from: c.from, to: c.to, end: c.end, runs: c.runs }
    c.from = c.to
    c.runs = []
    c.announce = false
    return { topic: deps.topic, key: offsetSyncKey(deps.group.name, c.topic, c.partition), value: JSON.stringify(sync) }
  }

  const take = (): TargetRecord[] => {
    const records = ended.splice(0, ended.length)
    for (const c of chains.values()) {
      const record = takeChain(c)
      if (record !== undefined) records.push(record)
    }
    return records
  }

  /** Ends `chain` now: its pending sync is taken at once (a flush takes what is pending only when it runs). */
  const end = (chain: Chain): void => {
    const record = takeChain(chain)
    if (record === undefined) return
    ended.push(record)
    void flush()
  }

  const flush = (): Promise<void> => {
    writing = writing.then(async () => {
      const records = take()
      if (records.length === 0) return
      try {
        if (!created) await deps.admin.createTopic({ topic: deps.topic, partitions: 1, configs: { ...OFFSET_SYNC_TOPIC_CONFIGS } })
        created = true
        await deps.producer.send(records)
      } catch (error) {
        // Those ranges have no sync now: translations into them fall back to an earlier position.
        deps.log.warn({ event: 'worker.offset_sync_failed', syncs: records.length, err: errorMessage(error) }, 'writing offset syncs failed; consumer offsets translated into these ranges will re-read more')
      }
    })
    return writing
  }

  return {
    begin(topic, partition, offset, targetEnd) {
      const key = partitionKey({ topic, partition })
      const previous = chains.get(key)
      // What the previous chain gathered is kept for the next flush (it is written data).
      if (previous !== undefined) end(previous)
      chains.set(key, { topic, partition, from: offset, to: offset, end: targetEnd ?? previous?.end ?? null, runs: [], announce: targetEnd !== undefined })
    },
    note(topic, partition, sourceOffsets, next, placements) {
      const key = partitionKey({ topic, partition })
      let chain = chains.get(key)
      if (chain === undefined) {
        chain = { topic, partition, from: undefined, to: next, end: null, runs: [], announce: false }
        chains.set(key, chain)
      }
      const runs = placements === undefined ? undefined : runsOf(sourceOffsets, placements)
      if (runs === undefined || chain.from === undefined) {
        // Not known where these went: the chain breaks, and a new one starts after them.
        end(chain)
        chain.from = next
        chain.to = next
        chain.runs = []
        return
      }
      for (const run of runs) {
        const last = chain.runs[chain.runs.length - 1]
        if (last !== undefined && run[0] === last[0] + last[2] && run[1] === last[1] + last[2]) last[2] += run[2]
        else chain.runs.push(run)
      }
      const lastRun = runs[runs.length - 1]
      if (lastRun !== undefined) chain.end = lastRun[1] + lastRun[2]
      chain.to = next
      if (chain.runs.length >= MAX_RUNS_PER_SYNC) void flush()
    },
    flush,
    start() {
      if (timer) clearInterval(timer)
      timer = setInterval(() => void flush(), deps.intervalMs ?? 1000)
      timer.unref?.()
    },
    async release(partitions) {
      await flush()
      for (const p of partitions) chains.delete(partitionKey(p))
    },
    async close() {
      if (timer) clearInterval(timer)
      timer = undefined
      await flush()
    },
  }
}

/**
 * Each partition's end on the target before a chain begins (`topic/partition` of the source →
 * high watermark of its target partition), for `begin`. A topic whose offsets cannot be read is
 * left out: its chains begin without a known end, as before.
 */
export async function targetEndsAtStart(admin: Pick<KafkaAdmin, 'offsets'>, group: Pick<TopicGroupSpec, 'rename'>, starts: ReadonlyArray<{ topic: string; partition: number }>): Promise<Map<string, number>> {
  const ends = new Map<string, number>()
  for (const topic of new Set(starts.map((s) => s.topic))) {
    const offsets = await Promise.resolve()
      .then(() => admin.offsets(targetTopicName(group, topic)))
      .catch(() => [])
    for (const o of offsets) ends.set(partitionKey({ topic, partition: o.partition }), o.high)
  }
  return ends
}
