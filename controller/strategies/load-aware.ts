/**
 * `load-aware`: balances the load workers report (bytes/s per partition, from Redis) instead of
 * partition counts, in the manner of uReplicator's overloaded-worker rebalancing. Partitions
 * stay where they are unless their owner is gone or overloaded: a worker whose load exceeds
 * `overloadRatio` × the mean sheds its hottest partition that the least-loaded worker can take
 * without becoming the new hot spot.
 * Deterministic: everything is sorted before use.
 */
import { comparePartitions, partitionRefKey, type Strategy } from './types.js'

/** Moves at most this many partitions per call, so one pass never churns the whole fleet. */
const MAX_SHEDS = 10000

export const loadAware: Strategy = ({ partitions, workers, current, load, weights, overloadRatio = 1.2 }) => {
  const result = new Map<string, string>()
  const ids = [...new Set(workers.map((w) => w.id))].sort()
  if (ids.length === 0 || partitions.length === 0) return result
  const weightOf = (key: string): number => weights?.get(key) ?? 1
  const keys = [...partitions].sort(comparePartitions).map(partitionRefKey)
  const workerLoad = new Map<string, number>(ids.map((id) => [id, 0]))
  const owned = new Map<string, string[]>(ids.map((id) => [id, []]))
  const place = (key: string, id: string): void => {
    result.set(key, id)
    workerLoad.set(id, (workerLoad.get(id) ?? 0) + weightOf(key))
    owned.get(id)?.push(key)
  }
  // Ties between equally loaded workers go to the one holding fewer partitions overall, then
  // the lower id. A linear scan: this runs once per placed partition (100,000s of times).
  const lighter = (a: string, b: string): boolean => {
    const byLoad = (workerLoad.get(a) ?? 0) - (workerLoad.get(b) ?? 0)
    if (byLoad !== 0) return byLoad < 0
    const byCount = (load.get(a) ?? 0) + (owned.get(a)?.length ?? 0) - ((load.get(b) ?? 0) + (owned.get(b)?.length ?? 0))
    return byCount !== 0 ? byCount < 0 : a < b
  }
  const lightest = (): string => ids.reduce((best, id) => (lighter(id, best) ? id : best))
  const heaviest = (): string => ids.reduce((best, id) => ((workerLoad.get(id) ?? 0) > (workerLoad.get(best) ?? 0) ? id : best))

  const orphans: string[] = []
  for (const key of keys) {
    const owner = current.get(key)
    if (owner !== undefined && workerLoad.has(owner)) place(key, owner)
    else orphans.push(key)
  }
  // Heaviest first onto the lightest worker: the classic greedy for balancing weights. A heap
  // keeps it O(P log W); a scan per partition was seconds at 100,000 partitions × 500 workers.
  orphans.sort((a, b) => weightOf(b) - weightOf(a) || a.localeCompare(b))
  const heap = [...ids].sort((a, b) => (lighter(a, b) ? -1 : lighter(b, a) ? 1 : 0))
  const siftDown = (index: number): void => {
    for (;;) {
      const left = 2 * index + 1
      const right = left + 1
      let smallest = index
      if (left < heap.length && lighter(heap[left] as string, heap[smallest] as string)) smallest = left
      if (right < heap.length && lighter(heap[right] as string, heap[smallest] as string)) smallest = right
      if (smallest === index) return
      ;[heap[index], heap[smallest]] = [heap[smallest] as string, heap[index] as string]
      index = smallest
    }
  }
  for (const key of orphans) {
    place(key, heap[0] as string)
    siftDown(0)
  }

  const total = [...workerLoad.values()].reduce((a, b) => a + b, 0)
  const mean = total / ids.length
  const overloaded = mean * overloadRatio
  // The mirror image of overload: a worker far below the mean (typically one that just joined)
  // pulls load, or it would sit idle until someone else crossed the threshold.
  const underloaded = mean / overloadRatio
  for (let shed = 0; shed < MAX_SHEDS; shed++) {
    const hottest = heaviest()
    const hot = workerLoad.get(hottest) ?? 0
    const cold = lightest()
    if (hot <= overloaded && (workerLoad.get(cold) ?? 0) >= underloaded) break
    const gap = hot - (workerLoad.get(cold) ?? 0)
    // The partition whose move lowers the hotter of the two the most; ties shed the hottest.
    const coldLoad = workerLoad.get(cold) ?? 0
    const after = (key: string): number => Math.max(hot - weightOf(key), coldLoad + weightOf(key))
    const candidate = (owned.get(hottest) ?? [])
      .filter((key) => weightOf(key) < gap)
      .sort((a, b) => after(a) - after(b) || weightOf(b) - weightOf(a) || a.localeCompare(b))[0]
    if (candidate === undefined || cold === hottest) break
    owned.set(hottest, (owned.get(hottest) ?? []).filter((key) => key !== candidate))
    workerLoad.set(hottest, hot - weightOf(candidate))
    place(candidate, cold)
  }
  return result
}
