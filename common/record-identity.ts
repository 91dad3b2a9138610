/**
 * What identifies a mirrored record on both sides without any marker in the data: a hash of
 * its partition (kept on the target), timestamp (kept), key, value and headers. Used by the
 * audit to match records, and carried in dead-letter records so the audit can account for them.
 */
import { createHash } from 'node:crypto'
import type { SourceRecord } from './kafka/source-consumer.js'

/** Headers in their order, each value's length and bytes, so null, empty and reordered differ. */
function headerText(headers: SourceRecord['headers']): string {
  return headers.map((h) => `${JSON.stringify(h.key)}=${h.value === null ? '-' : `${h.value.length}:${h.value.toString('base64')}`}`).join(';')
}

/** What identifies a mirrored record on both sides. */
export function recordIdentity(partition: number, record: Pick<SourceRecord, 'timestamp' | 'key' | 'value' | 'headers'>): string {
  return createHash('sha1')
    .update(`${partition}|${record.timestamp}|${record.key === null ? '-' : record.key.length}|${record.value === null ? '-' : record.value.length}|`)
    .update(record.key ?? Buffer.alloc(0))
    .update('|')
    .update(record.value ?? Buffer.alloc(0))
    .update(`|${headerText(record.headers)}`)
    .digest('base64')
}

