/**
 * End-to-end latency in fixed buckets: each mirrored record adds one count (time the target
 * acknowledged it minus its source timestamp), an integer increment, cheap enough per record.
 * Bucket counts from many partitions and workers add up, so percentiles can be computed for a
 * whole group from what workers report.
 */

/** Upper bounds of the buckets, in milliseconds; the last bucket is open-ended. */
export const LATENCY_BOUNDS_MS: readonly number[] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000]

export interface LatencySummary {
  records: number
  /** Upper bound of the bucket holding the percentile; null when there is no record. */
  p50Ms: number | null
  p99Ms: number | null
  maxMs: number | null
}

export function emptyLatencyCounts(): number[] {
  return new Array<number>(LATENCY_BOUNDS_MS.length + 1).fill(0)
}

export function recordLatency(counts: number[], latencyMs: number): void {
  let index = LATENCY_BOUNDS_MS.findIndex((bound) => latencyMs <= bound)
  if (index < 0) index = LATENCY_BOUNDS_MS.length
  counts[index] = (counts[index] ?? 0) + 1
}

export function addLatencyCounts(into: number[], from: readonly number[]): void {
  from.forEach((n, i) => {
    into[i] = (into[i] ?? 0) + n
  })
}

export function summariseLatency(counts: readonly number[], maxMs: number | null): LatencySummary {
  const records = counts.reduce((a, b) => a + b, 0)
  const percentile = (q: number): number | null => {
    if (records === 0) return null
    let seen = 0
    for (const [i, n] of counts.entries()) {
      seen += n
      if (seen >= q * records) return LATENCY_BOUNDS_MS[i] ?? maxMs
    }
    return maxMs
  }
  return { records, p50Ms: percentile(0.5), p99Ms: percentile(0.99), maxMs: records === 0 ? null : maxMs }
}
