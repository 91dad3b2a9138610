/**
 * Per-partition retries of a mirror task: how many times in a row each partition failed (for
 * the backoff), and the timers that resume a paused partition at its position once its delay is
 * over. A resume the consumer cannot take yet is tried again after `againMs`.
 *
 * @example
 *   const retries = createPartitionRetries({ againMs: 1000 })
 *   const attempt = retries.failed(key)
 *   retries.resumeLater(key, backoffMs(attempt, bounds), () => consumer.resumeAt(topic, partition, position))
 *   retries.cancelAll()   // the consumer stops: its timers must not touch the next one
 */
export interface PartitionRetries {
  /** Counts a failure of `key`; returns the attempt number (1 for the first of a run). */
  failed(key: string): number
  /** `key` mirrors again: its next failure starts from attempt 1. */
  recovered(key: string): void
  /** After `delayMs`, calls `resume` (again every `againMs` while it answers false), unless cancelled. */
  resumeLater(key: string, delayMs: number, resume: () => boolean): void
  /** Cancels the timers of these keys (partitions that moved away) and forgets their failures. */
  cancel(keys: readonly string[]): void
  cancelAll(): void
}

export function createPartitionRetries(options: { againMs: number }): PartitionRetries {
  const attempts = new Map<string, number>()
  const timers = new Map<string, NodeJS.Timeout>()
  return {
    failed(key) {
      const attempt = (attempts.get(key) ?? 0) + 1
      attempts.set(key, attempt)
      return attempt
    },
    recovered: (key) => void attempts.delete(key),
    resumeLater(key, delayMs, resume) {
      clearTimeout(timers.get(key))
      const attempt = (): void => {
        timers.delete(key)
        if (!resume()) timers.set(key, setTimeout(attempt, options.againMs))
      }
      timers.set(key, setTimeout(attempt, delayMs))
    },
    cancel(keys) {
      for (const key of keys) {
        clearTimeout(timers.get(key))
        timers.delete(key)
        attempts.delete(key)
      }
    },
    cancelAll() {
      for (const timer of timers.values()) clearTimeout(timer)
      timers.clear()
    },
  }
}
