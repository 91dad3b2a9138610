/**
 * What identifies a mirrored record on both sides without any marker in the data: a hash of
 * its partition (kept on the target), timestamp (kept), key, value and headers. Used by the
 * audit to match records, and carried in dead-letter records so the audit can account for them.
 */
import { createHash } from 'node:crypto'
import type { SourceRecord } from './kafka/source-consumer.js'

function headerText(headers: SourceRecord['headers']): string {
  return Object.keys(headers)
    .sort()
    .map((name) => {
      const value = headers[name]
      const list = Array.isArray(value) ? value : [value]
      return `${name}=${list.map((v) => (v === undefined ? '' : Buffer.from(v).toString('base64'))).join(',')}`
    })
    .join(';')
}

/** What identifies a mirrored record on both sides. */
export function recordIdentity(partition: number, record: Pick<SourceRecord, 'timestamp' | 'key' | 'value' | 'headers'>): string {
  return createHash('sha1')
    .update(`${partition}|${record.timestamp}|`)
    .update(record.key ?? Buffer.from('∅k'))
    .update('|')
    .update(record.value ?? Buffer.from('∅v'))
    .update(`|${headerText(record.headers)}`)
    .digest('base64')
}

