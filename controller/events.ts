/**
 * The operators' event log: recent rebalances (with move counts), workers joining or leaving,
 * group errors, and groups created, started, stopped or deleted. It is a capped list in Redis
 * (`keys.events`), so every controller, leader or follower, records into and reads the same
 * log, and it outlives a controller restart. Recording is best effort: an event that cannot be
 * written (Redis down) is logged and dropped, never failing the operation it describes.
 *
 * @example
 *   const events = createEventLog({ redis, keys, logger, controller: 'c1' })
 *   events.record({ type: 'group_started', group: 'orders', message: 'topic group started' })
 *   const latest = await events.list(50)   // newest first
 */
import type { Redis } from 'ioredis'
import { FerryError, errorMessage } from '../common/errors.js'
import type { Keys } from '../common/keys.js'
import type { Logger } from '../common/logger.js'

export type EventType =
  | 'rebalance'
  | 'worker_joined'
  | 'worker_left'
  | 'worker_quarantined'
  | 'group_error'
  | 'group_created'
  | 'group_started'
  | 'group_stopped'
  | 'group_deleted'
  | 'topic_config_changed'
  | 'topic_config_failed'
  | 'acl_created'
  | 'acl_failed'

export interface FerryEvent {
  /** ISO-8601 time the controller recorded it. */
  at: string
  type: EventType
  message: string
  /** The controller that recorded it. */
  controller: string
  group?: string
  worker?: string
  /** Partitions whose owner changed (rebalance). */
  moves?: number
  /** Moves left for the next pass by the per-pass throttle (rebalance). */
  deferred?: number
  /** Error code (group_error). */
  code?: string
}

export type NewEvent = Omit<FerryEvent, 'at' | 'controller'>

export interface EventLog {
  /** Appends an event (fire and forget). */
  record(event: NewEvent): void
  /** Newest first, at most `limit` (1..capacity). */
  list(limit: number): Promise<FerryEvent[]>
  /** Resolves when every event recorded so far has been written (or dropped). */
  flush(): Promise<void>
}

export interface EventLogOptions {
  redis: Redis
  keys: Keys
  logger: Logger
  /** Id of the recording controller. */
  controller: string
  /** Events kept; default 500. */
  capacity?: number
  now?: () => number
}

export const DEFAULT_EVENT_CAPACITY = 500

export function createEventLog(options: EventLogOptions): EventLog {
  const capacity = options.capacity ?? DEFAULT_EVENT_CAPACITY
  const now = options.now ?? Date.now
  const key = options.keys.events
  // Writes are chained so events land in the order they were recorded.
  let pending: Promise<void> = Promise.resolve()
  return {
    record(event) {
      const full: FerryEvent = { at: new Date(now()).toISOString(), controller: options.controller, ...event }
      pending = pending.then(async () => {
        try {
          await options.redis.multi().lpush(key, JSON.stringify(full)).ltrim(key, 0, capacity - 1).exec()
        } catch (error) {
          options.logger.warn({ event: 'controller.event_dropped', type: full.type, err: errorMessage(error) }, 'could not record event in Redis')
        }
      })
    },
    async list(limit) {
      const count = Math.max(1, Math.min(capacity, Math.floor(limit)))
      let raw: string[]
      try {
        raw = await options.redis.lrange(key, 0, count - 1)
      } catch (error) {
        throw new FerryError('REDIS_ERROR', `the event log is in Redis, which cannot be read right now: ${errorMessage(error)}`, { retriable: true, cause: error })
      }
      const events: FerryEvent[] = []
      for (const line of raw) {
        try {
          events.push(JSON.parse(line) as FerryEvent)
        } catch {
          // A foreign or truncated entry: skip it rather than fail the whole list.
        }
      }
      return events
    },
    flush: () => pending,
  }
}
