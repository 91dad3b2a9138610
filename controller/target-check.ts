/**
 * Group status checks what workers report against the target itself: a worker's position says
 * how far it mirrored, but only the target's log says the records are there. Each worker
 * reports, per partition, the target offset after the last record the target acknowledged
 * (`targetEnd`); a target partition whose log ends before that has lost acknowledged records
 * (topic deleted or recreated, unclean leader election, truncation), and the status says so
 * instead of "lag 0, healthy".
 */
import { FerryError, errorMessage } from '../common/errors.js'
import type { KafkaAdmin } from '../common/kafka/admin.js'
import { partitionKey } from '../common/worker-report.js'

/** The fields of a group status row this check reads and writes. */
export interface TargetCheckedRow {
  targetTopic?: unknown
  partition?: unknown
  targetEnd?: unknown
  targetHighWatermark?: number | null
  error?: unknown
}

/**
 * Sets `targetHighWatermark` on every row, and an error `TARGET_BEHIND` on rows whose target
 * partition ends before the reported `targetEnd`. Returns the error of reading the target, if
 * that failed (the rows then keep no target figures).
 */
export async function checkTargetEnds(rows: TargetCheckedRow[], targetAdmin: Pick<KafkaAdmin, 'offsets'>): Promise<{ code: string; message: string } | undefined> {
  const ends = new Map<string, number>()
  try {
    for (const topic of new Set(rows.map((r) => String(r.targetTopic)))) {
      for (const o of await targetAdmin.offsets(topic)) ends.set(partitionKey({ topic, partition: o.partition }), o.high)
    }
  } catch (error) {
    const ferry = error instanceof FerryError ? error : new FerryError('KAFKA_ERROR', errorMessage(error))
    return { code: ferry.code, message: ferry.message }
  }
  for (const row of rows) {
    const high = ends.get(partitionKey({ topic: String(row.targetTopic), partition: Number(row.partition) }))
    row.targetHighWatermark = high ?? null
    if (typeof row.targetEnd !== 'number' || row.error !== undefined) continue
    if (high === undefined || high < row.targetEnd) {
      row.error = {
        code: 'TARGET_BEHIND',
        message: `target partition ${String(row.targetTopic)}[${String(row.partition)}] ends at offset ${high ?? 'none (missing)'} but the target acknowledged records up to ${row.targetEnd}: acknowledged records are gone from the target (topic deleted or recreated, unclean leader election, truncation); run the audit for this group`,
      }
    }
  }
  return undefined
}
