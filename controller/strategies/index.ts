/**
 * Distribution strategies, chosen per topic group by name.
 *
 * @example
 *   const owners = STRATEGIES.balanced({ partitions, workers, current, load })
 *   // The planner's form, by position over sorted partitions (see `Placement`):
 *   const byPosition = PLACERS.balanced({ partitions: sorted, owners, workers: ids, load })
 */
import { balanced, placeBalanced } from './balanced.js'
import { loadAware, placeLoadAware } from './load-aware.js'
import type { Placer, Strategy } from './types.js'

export { balanced, loadAware, placeBalanced, placeLoadAware }
export { partitionRefKey, comparePartitions, compareKeys, sortedPartitions, workerIds, keyedStrategy } from './types.js'
export type { PartitionRef, WorkerRef, PartitionOwners, Strategy, StrategyInput, Placement, Placer } from './types.js'

type StrategyName = 'balanced' | 'load-aware' | 'zone-aware'

/**
 * `zone-aware` places like `balanced`; what makes it zone-aware is the constraint the planner
 * applies to every strategy (only workers in the group's zone / dc are eligible), which this
 * strategy requires the group to declare.
 */
export const PLACERS: Readonly<Record<StrategyName, Placer>> = Object.freeze({
  balanced: placeBalanced,
  'load-aware': placeLoadAware,
  'zone-aware': placeBalanced,
})

/** The same strategies over maps keyed by partition key (`partitionRefKey`). */
export const STRATEGIES: Readonly<Record<StrategyName, Strategy>> = Object.freeze({
  balanced,
  'load-aware': loadAware,
  'zone-aware': balanced,
})
