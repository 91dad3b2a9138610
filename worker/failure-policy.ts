/**
 * What the mirror task does when mirroring a partition fails: one table from the failure to an
 * action, and one backoff for partition retries and task restarts alike.
 *
 * - `retry`: the partition waits a backoff, then resumes at its position (the task goes on).
 * - `stop`: the partition waits at the failed record (state failed) and is tried again only at
 *   the slowest pace: a refused record is refused again until an operator changes something.
 * - `restart-task`: the task stops its consumer and starts again from the checkpoints.
 *
 * @example
 *   const rule = partitionFailureRule(error.code, delivery.transactional('orders', 3))
 *   if (rule.action === 'retry') setTimeout(resume, backoffMs(attempt, bounds))
 */
import type { PartitionState } from '../common/worker-report.js'

export type FailureAction = 'retry' | 'stop' | 'restart-task'

export interface FailureRule {
  action: FailureAction
  /** The partition's state until it recovers. */
  state: Extract<PartitionState, 'retrying' | 'failed'>
  event: string
  level: 'warn' | 'error'
  msg: string
}

type FailureKind = 'fenced' | 'transaction' | 'rejected' | 'other'

const RULES: Readonly<Record<FailureKind, FailureRule>> = Object.freeze({
  // A newer owner holds this partition's transactional id: stop writing; the assignment (or the
  // restart, which fences in turn) decides what happens next.
  fenced: { action: 'restart-task', state: 'failed', event: 'worker.partition_fenced', level: 'warn', msg: 'fenced by a newer owner' },
  // Exactly-once: after a failed transaction neither the producer (kafkajs can stay stuck
  // mid-commit) nor our position (the commit may have landed) can be trusted. New producers
  // fence, and positions come again from the committed checkpoints.
  transaction: { action: 'restart-task', state: 'retrying', event: 'worker.transaction_failed', level: 'warn', msg: 'transaction failed; restarting the task from committed checkpoints' },
  rejected: { action: 'stop', state: 'failed', event: 'worker.partition_stopped', level: 'error', msg: 'a record cannot be written to the target; the partition waits at it (onRejectedRecord: stop)' },
  other: { action: 'retry', state: 'retrying', event: 'worker.partition_retry', level: 'warn', msg: 'mirroring a batch failed; retrying from the last checkpoint' },
})

/** The rule for a partition failure with error `code`; `transactional` when the partition writes in transactions. */
export function partitionFailureRule(code: string, transactional: boolean): FailureRule {
  if (code === 'FENCED') return RULES.fenced
  if (code === 'TARGET_REJECTED') return RULES.rejected
  return transactional ? RULES.transaction : RULES.other
}

export interface BackoffBounds {
  minMs: number
  maxMs: number
}

/** Exponential backoff with jitter: attempt n waits between half of and all of min × 2^n ms, capped at max. */
export function backoffMs(attempt: number, bounds: BackoffBounds, random: () => number = Math.random): number {
  const base = Math.min(bounds.maxMs, bounds.minMs * 2 ** Math.min(attempt, 10))
  return Math.round(base / 2 + random() * (base / 2))
}
