/**
 * Provenance for active-active mirroring (a group with `provenance: true`): every record a group
 * mirrors carries a `ferry.origin` header naming the cluster it was first written to, and a
 * record whose origin is the group's target cluster is not mirrored (it came from there).
 *
 * - The origin is the Kafka cluster id (from the cluster's metadata, as `kafka-cluster.sh
 *   cluster-id` prints it), not Ferry's name for the cluster: one cluster registered under two
 *   names (a TLS and a plaintext listener, or two Ferry deployments that name it differently) is
 *   still one origin, and the id is the same for every Ferry deployment that mirrors it.
 * - A record without the header gets one whose value is the source cluster's id (UTF-8),
 *   appended after its own headers, which stay exactly as they were (order, repeated keys, null
 *   values). A record that already carries the header keeps it unchanged: its origin is where a
 *   producer first wrote it, however many hops ago.
 * - A record whose (first) `ferry.origin` header names the target cluster is dropped. A record
 *   without the header is never dropped: it was first written to the source.
 *
 * @example
 *   const provenance = createProvenance({ group: 'ab', sourceAdmin, targetAdmin, dropped })
 *   const admitted = await provenance.admit(batch)   // a batch with the records to write, stamped
 */
import type { Counter } from 'prom-client'
import type { KafkaAdmin, RecordHeader, RecordHeaders, SourceBatch, SourceRecord } from '../common/kafka/port.js'

/** The provenance header's key. */
export const ORIGIN_HEADER = 'ferry.origin'

/** The origin a record's headers name (the first `ferry.origin` header, as UTF-8), if any. */
export function originOf(headers: RecordHeaders): string | undefined {
  const header = headers.find((h) => h.key === ORIGIN_HEADER)
  return header === undefined ? undefined : (header.value?.toString('utf8') ?? '')
}

/** The cluster ids a group mirrors between. */
export interface Origins {
  source: string
  target: string
}

/**
 * The records of `records` to mirror, stamped: those whose origin is `origins.target` are left
 * out, those without an origin get `ferry.origin: <source id>` after their own headers.
 */
export function stampRecords(records: readonly SourceRecord[], origins: Origins): { kept: SourceRecord[]; dropped: number } {
  const kept: SourceRecord[] = []
  const stamp: RecordHeader = { key: ORIGIN_HEADER, value: Buffer.from(origins.source, 'utf8') }
  let dropped = 0
  for (const record of records) {
    const origin = originOf(record.headers)
    if (origin === undefined) kept.push({ ...record, headers: [...record.headers, stamp] })
    else if (origin === origins.target) dropped++
    else kept.push(record)
  }
  return { kept, dropped }
}

export interface ProvenanceDeps {
  group: string
  sourceAdmin: Pick<KafkaAdmin, 'clusterId'>
  targetAdmin: Pick<KafkaAdmin, 'clusterId'>
  /** Records left out because they came from the target (`ferry_worker_records_loop_dropped_total`). */
  dropped: Counter<'group'>
}

export interface Provenance {
  /**
   * The batch with only the records to write, stamped (the same offsets, so what follows the
   * last kept record is for the caller to step past). Reads both cluster ids on first use; a
   * failure to read them rejects (the batch is retried like any failed write).
   */
  admit(batch: SourceBatch): Promise<SourceBatch>
}

export function createProvenance(deps: ProvenanceDeps): Provenance {
  let origins: Promise<Origins> | undefined
  const read = (): Promise<Origins> => {
    origins ??= Promise.all([deps.sourceAdmin.clusterId(), deps.targetAdmin.clusterId()]).then(
      ([source, target]) => ({ source, target }),
      (error: unknown) => {
        // Read again next time: a cluster that was unreachable once is not so for ever.
        origins = undefined
        throw error
      },
    )
    return origins
  }
  return {
    async admit(batch) {
      const { kept, dropped } = stampRecords(batch.records, await read())
      // Counted when looked at: a batch retried after a failed write counts its dropped records again.
      if (dropped > 0) deps.dropped.inc({ group: deps.group }, dropped)
      return { ...batch, records: kept }
    },
  }
}
