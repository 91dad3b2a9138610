/**
 * What a worker reports about itself, one schema for every hop: the worker sends it to bootstrap
 * (IPC, every second), bootstrap adds its own fields and keeps it in the instance's lease in
 * Redis, the controller reads it from there (status views, load-aware weights). Each reader
 * parses it once where it comes in (`parseWorkerReport`, `parseInstanceMetrics`) and uses typed
 * fields after; a partition entry that does not parse is dropped on its own (an older or newer
 * worker's other entries still count). Also the one partition key (`partitionKey`).
 *
 * @example
 *   const metrics = parseInstanceMetrics(JSON.parse(fields.metrics))   // null when not an object
 *   for (const p of metrics?.partitions ?? []) weights.set(partitionKey(p, p.group), p.bytesPerSec)
 */
import { z } from 'zod'

/**
 * The key of a source partition: `topic/partition` within one group, `group/topic/partition`
 * when `group` is passed (explicitly: a `group` field of `p` is not looked at, so a record with
 * one cannot change the format by accident). Group and topic names hold no "/" (both are
 * validated), so keys never collide.
 */
export function partitionKey(p: { readonly topic: string; readonly partition: number }, group?: string): string {
  return group === undefined ? `${p.topic}/${p.partition}` : `${group}/${p.topic}/${p.partition}`
}

export const PARTITION_STATES = ['starting', 'mirroring', 'retrying', 'failed'] as const
export type PartitionState = (typeof PARTITION_STATES)[number]

const count = z.number().finite().nonnegative()

/** One partition a worker mirrors. Counters an older worker may lack default to zero. */
export const partitionReportSchema = z.object({
  group: z.string().min(1),
  topic: z.string().min(1),
  partition: z.number().int().nonnegative(),
  targetTopic: z.string(),
  state: z.enum(PARTITION_STATES),
  /** Next source offset to mirror (everything before it is on the target). */
  position: count.optional(),
  /** Records of the partition mirrored so far, by every owner (carried in the checkpoints). */
  recordsMirrored: count.default(0),
  /** Records the target refused that went to the dead-letter topic. */
  deadLettered: count.default(0),
  /** End-to-end latency counts per bucket (see common/latency.ts), and the largest seen, ms. */
  latencyCounts: z.array(count).default([]),
  latencyMaxMs: count.default(0),
  /** Smoothed rates over recent reports. */
  bytesPerSec: count.default(0),
  recordsPerSec: count.default(0),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  /**
   * Target offset after the last record of this partition the target acknowledged (when
   * partitions are kept): the controller checks the target's log still reaches it.
   */
  targetEnd: count.optional(),
})

export type PartitionReport = z.output<typeof partitionReportSchema>

/** Entries that parse as partition reports; the others are dropped one by one. */
const partitionList = z.array(z.unknown()).transform((list) =>
  list.flatMap((entry) => {
    const parsed = partitionReportSchema.safeParse(entry)
    return parsed.success ? [parsed.data] : []
  }),
)

/** What the worker process sends to bootstrap. */
export const workerReportSchema = z.object({
  id: z.string(),
  assignmentEpoch: z.number().nullable(),
  partitions: partitionList,
})

export type WorkerReport = z.output<typeof workerReportSchema>

/** What bootstrap keeps in an instance's lease: its own fields, and a worker's report. */
export const instanceMetricsSchema = z.object({
  childPid: z.number().nullable().optional(),
  childStartedAt: z.string().nullable().optional(),
  restarts: z.number().optional(),
  fences: z.number().optional(),
  state: z.string().optional(),
  bootstrapRssBytes: z.number().optional(),
  uptimeSeconds: z.number().optional(),
  id: z.string().optional(),
  assignmentEpoch: z.number().nullable().optional(),
  /** Absent from a controller's metrics (and a worker's before its first report). */
  partitions: partitionList.optional(),
})
  // Fields of other versions are kept: /v1/workers shows the metrics as reported.
  .passthrough()

export type InstanceMetrics = z.output<typeof instanceMetricsSchema>

/** A worker's report, or null when `value` is not one (an older or broken child). */
export function parseWorkerReport(value: unknown): WorkerReport | null {
  const parsed = workerReportSchema.safeParse(value)
  return parsed.success ? parsed.data : null
}

/** An instance's metrics from its lease, or null when there are none or they are not an object of this shape. */
export function parseInstanceMetrics(value: unknown): InstanceMetrics | null {
  const parsed = instanceMetricsSchema.safeParse(value)
  return parsed.success ? parsed.data : null
}
