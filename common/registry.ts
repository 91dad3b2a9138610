/**
 * The instance registry in Redis: who is alive. Each instance holds a lease, a hash
 * `instance:<id>` with a random token and a TTL. Renewal and removal are Lua scripts that
 * act only if the token is still ours, so an instance whose lease expired (and was perhaps
 * re-registered by its restarted self) can never extend or delete a lease it no longer owns.
 *
 * @example
 *   const reg = createRegistration({ redis, keys, id: 'worker-1', info, ttlMs: 10000, logger })
 *   await reg.start()            // registers and heartbeats every ttlMs / 3
 *   await reg.stop()             // deregisters
 *   const live = await listInstances(redis, keys)
 */
import { randomUUID } from 'node:crypto'
import type { Redis } from 'ioredis'
import { errorMessage } from './errors.js'
import type { Keys } from './keys.js'
import type { Logger } from './logger.js'
import { parseInstanceMetrics, type InstanceMetrics } from './worker-report.js'

export interface InstanceInfo {
  role: 'worker' | 'controller'
  host: string
  pid: number
  version: string
  zone?: string
  dc?: string
  /** Where the instance serves HTTP (controller API, worker metrics), if anywhere. */
  url?: string
  /** Bootstrap's probe listener (`/healthz`, `/readyz`), when it has one (--health-port). */
  healthUrl?: string
  startedAt: string
}

export interface InstanceRecord extends InstanceInfo {
  id: string
  lastHeartbeatAt: string
  /**
   * What the instance last reported (bootstrap's fields; a worker's per-partition progress and
   * load), parsed when read (common/worker-report.ts); null when absent or not of that shape.
   */
  metrics: InstanceMetrics | null
}

const RENEW_SCRIPT = `
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'lastHeartbeatAt', ARGV[3], 'metrics', ARGV[4], 'info', ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  -- A reader may have just dropped us from the index while we were between leases.
  redis.call('SADD', KEYS[2], ARGV[5])
  return 1
end
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
return 0`

const RELEASE_SCRIPT = `
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
  return 1
end
return 0`

/** How long a graceful departure stays known: longer than a leader's post-election hold (one TTL). */
const DEPARTED_TTL_FACTOR = 3

export interface RegistrationOptions {
  redis: Redis
  keys: Keys
  id: string
  /** Read at every registration and renewal, so a change (a restarted child's new URL) is seen. */
  info: InstanceInfo | (() => InstanceInfo)
  /** Lease time to live; default 10000 ms. */
  ttlMs?: number
  /** Default ttlMs / 3. */
  heartbeatIntervalMs?: number
  /** Called on each heartbeat; its JSON goes into the lease. */
  getMetrics?: () => unknown
  logger: Logger
  /** The lease was found expired or taken over (the instance was, for a while, considered dead). */
  onLeaseLost?: (loss: LeaseLoss) => void
  /**
   * Whether to register again at once after a loss; default always. Answering false leaves the
   * registration stopped (the caller fences itself and registers anew with a new registration).
   */
  shouldReacquire?: (loss: LeaseLoss) => boolean
  /** Called when a heartbeat could not reach Redis (for metrics). */
  onHeartbeatFailed?: (error: unknown) => void
}

export interface LeaseLoss {
  /** `expired`: the key is gone; `taken_over`: another process registered this id since. */
  reason: 'expired' | 'taken_over'
  /** Since the last successful renewal. */
  sinceRenewedMs: number
  /** Since the previous renewal attempt: longer than the TTL when this process was paused. */
  heartbeatGapMs: number
}

export interface Registration {
  start(): Promise<void>
  /** Renew now (also runs on a timer). Resolves true when the lease is held. */
  heartbeat(): Promise<boolean>
  /**
   * Stop renewing, keeping the lease: it lapses after its TTL unless stop() removes it first.
   * For a supervisor whose child stopped answering: nobody may vouch for it any more.
   */
  suspend(): void
  stop(): Promise<void>
  readonly token: string
}

export function createRegistration(options: RegistrationOptions): Registration {
  const ttlMs = options.ttlMs ?? 10000
  const intervalMs = options.heartbeatIntervalMs ?? Math.max(100, Math.floor(ttlMs / 3))
  const key = options.keys.instance(options.id)
  let token = randomUUID()
  let timer: NodeJS.Timeout | undefined
  let stopped = false
  let suspended = false
  let lastOkAt = 0
  /** When the last renewal attempt finished: a long gap since then means this process was paused. */
  let lastAttemptEndAt = 0

  const metricsJson = (): string => {
    try {
      return JSON.stringify(options.getMetrics?.() ?? null)
    } catch (error) {
      options.logger.warn({ event: 'registry.metrics_failed', err: errorMessage(error) }, 'could not serialise metrics')
      return 'null'
    }
  }

  const infoJson = (): string => JSON.stringify(typeof options.info === 'function' ? options.info() : options.info)

  const acquire = async (): Promise<void> => {
    token = randomUUID()
    const now = new Date().toISOString()
    await options.redis
      .multi()
      .del(key)
      .hset(key, {
        token,
        info: infoJson(),
        lastHeartbeatAt: now,
        metrics: metricsJson(),
      })
      .pexpire(key, ttlMs)
      .sadd(options.keys.instances, options.id)
      .del(options.keys.departed(options.id))
      .exec()
    lastOkAt = Date.now()
    lastAttemptEndAt = lastOkAt
    options.logger.info({ event: 'registry.registered', instance: options.id, ttlMs }, 'registered in Redis')
  }

  const registration: Registration = {
    get token() {
      return token
    },
    async start() {
      stopped = false
      suspended = false
      await acquire()
      const tick = (): void => {
        if (stopped || suspended) return
        void registration.heartbeat().finally(() => {
          if (!stopped && !suspended) timer = setTimeout(tick, intervalMs)
        })
      }
      timer = setTimeout(tick, intervalMs)
    },
    async heartbeat() {
      // Measured from the end of the previous attempt, so a slow Redis (commands timing out) does
      // not look like a paused process.
      const heartbeatGapMs = Date.now() - lastAttemptEndAt
      try {
        const renewed = (await options.redis.eval(RENEW_SCRIPT, 2, key, options.keys.instances, token, String(ttlMs), new Date().toISOString(), metricsJson(), options.id, infoJson())) as number
        if (renewed === 1) {
          lastOkAt = Date.now()
          return true
        }
        if (stopped) return false
        const loss: LeaseLoss = { reason: renewed === -1 ? 'taken_over' : 'expired', sinceRenewedMs: Date.now() - lastOkAt, heartbeatGapMs }
        options.onLeaseLost?.(loss)
        if (options.shouldReacquire?.(loss) === false) {
          stopped = true
          if (timer) clearTimeout(timer)
          options.logger.warn({ event: 'registry.lease_lost', instance: options.id, ...loss }, 'lease expired or taken over; not registering again')
          return false
        }
        options.logger.warn({ event: 'registry.lease_lost', instance: options.id, ...loss }, 'lease expired or taken over; registering again')
        await acquire()
        return true
      } catch (error) {
        // Redis unreachable: keep trying; once a whole TTL passed without renewal the lease is gone.
        const sinceOkMs = Date.now() - lastOkAt
        options.onHeartbeatFailed?.(error)
        options.logger.warn({ event: 'registry.heartbeat_failed', err: errorMessage(error), sinceOkMs }, 'heartbeat failed')
        return false
      } finally {
        lastAttemptEndAt = Date.now()
      }
    },
    suspend() {
      if (suspended || stopped) return
      suspended = true
      if (timer) clearTimeout(timer)
      options.logger.warn({ event: 'registry.renewal_suspended', instance: options.id, ttlMs }, 'lease renewal suspended; the lease lapses unless removed first')
    },
    async stop() {
      if (stopped) return
      stopped = true
      if (timer) clearTimeout(timer)
      try {
        await options.redis.eval(RELEASE_SCRIPT, 3, key, options.keys.instances, options.keys.departed(options.id), token, options.id, new Date().toISOString(), String(ttlMs * DEPARTED_TTL_FACTOR))
        options.logger.info({ event: 'registry.deregistered', instance: options.id }, 'deregistered from Redis')
      } catch (error) {
        // The lease expires by itself; nothing is lost by failing here.
        options.logger.warn({ event: 'registry.deregister_failed', err: errorMessage(error) }, 'could not deregister; the lease will expire')
      }
    },
  }
  return registration
}

/**
 * Which of `ids` deregistered gracefully (in the last few lease TTLs) and have not registered
 * since: known gone, unlike an instance whose lease merely cannot be seen.
 */
export async function listDeparted(redis: Redis, keys: Keys, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return []
  const markers = await redis.mget(...ids.map((id) => keys.departed(id)))
  return ids.filter((_id, index) => markers[index] !== null && markers[index] !== undefined)
}

/** Live instances (unexpired leases). Ids whose lease expired are dropped from the index. */
/**
 * Ids of the instances whose lease exists now, sorted: one SMEMBERS and one EXISTS per id, cheap
 * enough to poll (listInstances also reads every instance's reported metrics).
 */
export async function listLiveIds(redis: Redis, keys: Keys): Promise<string[]> {
  const ids = (await redis.smembers(keys.instances)).sort()
  if (ids.length === 0) return []
  const pipeline = redis.pipeline()
  for (const id of ids) pipeline.exists(keys.instance(id))
  const results = (await pipeline.exec()) ?? []
  return ids.filter((_id, index) => {
    const [error, exists] = results[index] ?? [null, 0]
    return error === null && exists === 1
  })
}

export async function listInstances(redis: Redis, keys: Keys): Promise<InstanceRecord[]> {
  const ids = (await redis.smembers(keys.instances)).sort()
  if (ids.length === 0) return []
  const pipeline = redis.pipeline()
  for (const id of ids) pipeline.hgetall(keys.instance(id))
  const results = (await pipeline.exec()) ?? []
  const live: InstanceRecord[] = []
  const expired: string[] = []
  ids.forEach((id, index) => {
    const [error, hash] = results[index] ?? [null, {}]
    const fields = (error ? {} : hash) as Record<string, string>
    if (fields.token === undefined || fields.info === undefined) {
      expired.push(id)
      return
    }
    live.push({
      id,
      ...(JSON.parse(fields.info) as InstanceInfo),
      lastHeartbeatAt: fields.lastHeartbeatAt ?? '',
      metrics: fields.metrics ? parseInstanceMetrics(JSON.parse(fields.metrics)) : null,
    })
  })
  if (expired.length > 0) await redis.srem(keys.instances, ...expired)
  return live
}

/**
 * The registry reads the controller's reconcile loop makes, bound to one Redis and deployment:
 * a seam, so the loop can be driven over an in-memory registry in unit tests.
 */
export interface InstanceReads {
  /** See listInstances. */
  listInstances(): Promise<InstanceRecord[]>
  /** See listDeparted. */
  listDeparted(ids: readonly string[]): Promise<string[]>
  /** See listLiveIds. */
  listLiveIds(): Promise<string[]>
}

/** The registry reads over Redis (the functions above). */
export function redisInstanceReads(redis: Redis, keys: Keys): InstanceReads {
  return {
    listInstances: () => listInstances(redis, keys),
    listDeparted: (ids) => listDeparted(redis, keys, ids),
    listLiveIds: () => listLiveIds(redis, keys),
  }
}
