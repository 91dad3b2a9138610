/**
 * Logs failures once per incident instead of once per retry. An incident is a run of failures
 * of one thing (a partition, a task) with the same error code: its first failure is logged, the
 * next ones are counted, a reminder with the count is logged every `remindAfterMs`, and the
 * recovery is logged with the count and how long it lasted. A different code starts a new
 * incident.
 *
 * @example
 *   const incidents = createIncidentLog({ logger })
 *   incidents.failure('orders/3', { event: 'worker.partition_retry', code, msg: 'mirroring failed', fields: { topic, partition } })
 *   incidents.recovered('orders/3', { topic, partition })
 */
import type { Logger } from '../common/logger.js'

export interface IncidentFailure {
  event: string
  code: string
  msg: string
  level?: 'warn' | 'error'
  /** Logged with the first failure and the reminders (topic, partition, err, delay, ...). */
  fields?: Record<string, unknown>
}

export interface IncidentLog {
  /** Counts a failure of `key`; logs it when it starts an incident or a reminder is due. */
  failure(key: string, failure: IncidentFailure): void
  /** `key` works again: logs the incident's end (with its count) if one was open. */
  recovered(key: string, fields?: Record<string, unknown>): void
  /** Failures counted in the open incident of `key` (0 when none). */
  count(key: string): number
}

export interface IncidentLogOptions {
  logger: Logger
  /** How often an incident that goes on is logged again; default 600000 (10 min). */
  remindAfterMs?: number
  clock?: () => number
}

interface Incident {
  code: string
  count: number
  sinceMs: number
  loggedAtMs: number
}

export function createIncidentLog(options: IncidentLogOptions): IncidentLog {
  const clock = options.clock ?? Date.now
  const remindAfterMs = options.remindAfterMs ?? 600000
  const open = new Map<string, Incident>()
  return {
    failure(key, failure) {
      const now = clock()
      const current = open.get(key)
      const level = failure.level ?? 'warn'
      if (current === undefined || current.code !== failure.code) {
        open.set(key, { code: failure.code, count: 1, sinceMs: now, loggedAtMs: now })
        options.logger[level]({ event: failure.event, code: failure.code, failures: 1, ...failure.fields }, failure.msg)
        return
      }
      current.count++
      if (now - current.loggedAtMs < remindAfterMs) return
      current.loggedAtMs = now
      options.logger[level]({ event: failure.event, code: failure.code, failures: current.count, sinceMs: now - current.sinceMs, ...failure.fields }, `${failure.msg} (still failing: ${current.count} failures since the incident began)`)
    },
    recovered(key, fields) {
      const current = open.get(key)
      if (current === undefined) return
      open.delete(key)
      options.logger.info({ event: 'worker.recovered', code: current.code, failures: current.count, durationMs: clock() - current.sinceMs, ...fields }, `recovered after ${current.count} failure(s)`)
    },
    count: (key) => open.get(key)?.count ?? 0,
  }
}
