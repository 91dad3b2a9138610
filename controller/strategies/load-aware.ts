/**
 * `load-aware`: balances the load workers report (bytes/s per partition, from Redis) instead of
 * partition counts, in the manner of uReplicator's overloaded-worker rebalancing. Partitions
 * stay where they are unless their owner is gone or overloaded: a worker whose load exceeds
 * `overloadRatio` × the mean sheds its hottest partition that the least-loaded worker can take
 * without becoming the new hot spot.
 * Deterministic: everything is sorted before use; ties between partitions of equal weight go
 * by partition order (`comparePartitions`).
 */
import { keyedStrategy, partitionRefKey, type Placer } from './types.js'

/** Moves at most this many partitions per call, so one pass never churns the whole fleet. */
const MAX_SHEDS = 10000

/** One eligible worker while placing: its load in this group and what it holds, by position. */
interface Bin {
  id: string
  /** Its place in id order. */
  rank: number
  load: number
  /** Partitions it holds over all groups placed so far, this one included. */
  count: number
  owned: number[]
}

export const placeLoadAware: Placer = ({ partitions, owners, workers: ids, load, weights, overloadRatio = 1.2 }) => {
  const result = new Array<string | undefined>(partitions.length).fill(undefined)
  if (ids.length === 0 || partitions.length === 0) return result
  // Weights by position: a key per partition is built only when some load is reported.
  const weight = weights !== undefined && weights.size > 0 ? partitions.map((p) => weights.get(partitionRefKey(p)) ?? 1) : []
  const weightOf = (i: number): number => weight[i] ?? 1
  const bins: Bin[] = ids.map((id, rank) => ({ id, rank, load: 0, count: load.get(id) ?? 0, owned: [] }))
  const binOf = new Map(bins.map((bin) => [bin.id, bin]))
  const place = (i: number, bin: Bin): void => {
    result[i] = bin.id
    bin.load += weightOf(i)
    bin.count++
    bin.owned.push(i)
  }
  // Ties between equally loaded workers go to the one holding fewer partitions overall, then
  // the lower id.
  const lighter = (a: Bin, b: Bin): boolean => (a.load !== b.load ? a.load < b.load : a.count !== b.count ? a.count < b.count : a.rank < b.rank)
  const lightest = (): Bin => bins.reduce((best, bin) => (lighter(bin, best) ? bin : best))
  const heaviest = (): Bin => bins.reduce((best, bin) => (bin.load > best.load ? bin : best))

  const orphans: number[] = []
  owners.forEach((owner, i) => {
    const bin = owner === undefined ? undefined : binOf.get(owner)
    if (bin !== undefined) place(i, bin)
    else orphans.push(i)
  })
  // Heaviest first onto the lightest worker: the classic greedy for balancing weights. A heap
  // keeps it O(P log W); a scan per partition was seconds at 100,000 partitions × 500 workers.
  orphans.sort((a, b) => weightOf(b) - weightOf(a) || a - b)
  const heap = [...bins].sort((a, b) => (lighter(a, b) ? -1 : lighter(b, a) ? 1 : 0))
  // The top just took a partition, so it now belongs near the bottom: move the hole at the top
  // down along the lighter children to a leaf, then the old top up from there (one comparison a
  // level on the way down instead of two). `lighter` is a strict order, so the heap's top, and
  // with it every placement, is the same as with a plain sift-down.
  const reseatTop = (): void => {
    const top = heap[0] as Bin
    let index = 0
    for (;;) {
      const left = 2 * index + 1
      if (left >= heap.length) break
      const right = left + 1
      const child = right < heap.length && lighter(heap[right] as Bin, heap[left] as Bin) ? right : left
      heap[index] = heap[child] as Bin
      index = child
    }
    while (index > 0) {
      const parent = (index - 1) >> 1
      if (!lighter(top, heap[parent] as Bin)) break
      heap[index] = heap[parent] as Bin
      index = parent
    }
    heap[index] = top
  }
  for (const i of orphans) {
    place(i, heap[0] as Bin)
    reseatTop()
  }

  const total = bins.reduce((sum, bin) => sum + bin.load, 0)
  const mean = total / bins.length
  const overloaded = mean * overloadRatio
  // The mirror image of overload: a worker far below the mean (typically one that just joined)
  // pulls load, or it would sit idle until someone else crossed the threshold.
  const underloaded = mean / overloadRatio
  for (let shed = 0; shed < MAX_SHEDS; shed++) {
    const hot = heaviest()
    const cold = lightest()
    if (hot.load <= overloaded && cold.load >= underloaded) break
    const gap = hot.load - cold.load
    // The partition whose move lowers the hotter of the two the most; ties shed the hottest,
    // then the first in partition order.
    const after = (i: number): number => Math.max(hot.load - weightOf(i), cold.load + weightOf(i))
    const sheddingOrder = (a: number, b: number): number => after(a) - after(b) || weightOf(b) - weightOf(a) || a - b
    let candidate: number | undefined
    for (const i of hot.owned) {
      if (weightOf(i) < gap && (candidate === undefined || sheddingOrder(i, candidate) < 0)) candidate = i
    }
    if (candidate === undefined || cold === hot) break
    const moving = candidate
    hot.owned = hot.owned.filter((i) => i !== moving)
    hot.load -= weightOf(moving)
    hot.count--
    place(moving, cold)
  }
  return result
}

export const loadAware = keyedStrategy(placeLoadAware)
