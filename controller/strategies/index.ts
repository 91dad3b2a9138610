/**
 * Distribution strategies, chosen per topic group by name.
 *
 * @example
 *   const owners = STRATEGIES.balanced({ partitions, workers, current, load })
 */
import { balanced } from './balanced.js'
import { loadAware } from './load-aware.js'
import type { Strategy } from './types.js'

export { balanced, loadAware }
export { partitionRefKey, comparePartitions } from './types.js'
export type { PartitionRef, WorkerRef, PartitionOwners, Strategy, StrategyInput } from './types.js'

/**
 * `zone-aware` places like `balanced`; what makes it zone-aware is the constraint the planner
 * applies to every strategy (only workers in the group's zone / dc are eligible), which this
 * strategy requires the group to declare.
 */
export const STRATEGIES: Readonly<Record<'balanced' | 'load-aware' | 'zone-aware', Strategy>> = Object.freeze({
  balanced,
  'load-aware': loadAware,
  'zone-aware': balanced,
})
