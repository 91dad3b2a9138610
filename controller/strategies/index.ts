/**
 * Distribution strategies, chosen per topic group by name.
 *
 * @example
 *   const owners = STRATEGIES.balanced({ partitions, workers, current, load })
 */
import { balanced } from './balanced.js'
import type { Strategy } from './types.js'

export { balanced }
export { partitionRefKey, comparePartitions } from './types.js'
export type { PartitionRef, WorkerRef, PartitionOwners, Strategy, StrategyInput } from './types.js'

export const STRATEGIES: Readonly<Record<'balanced', Strategy>> = Object.freeze({ balanced })
