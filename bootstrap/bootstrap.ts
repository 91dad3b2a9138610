/**
 * The bootstrap wrapper: starts a Ferry process (worker or controller) as a child, registers
 * it in Redis with a token-checked lease renewed by heartbeats that carry the instance's
 * metadata and the child's latest status, restarts the child on crash with jittered
 * exponential backoff (and gives up after a crash loop), fences the child when its lease
 * lapsed, and on SIGTERM/SIGINT drains the child within a grace period before deregistering.
 *
 * Child → parent messages over the IPC channel: { type: 'ready', url? }, { type: 'status', status }
 * and { type: 'pong', seq } answering bootstrap's { type: 'ping', seq }. A child whose parent
 * disappears stops itself (see cli/main.ts).
 *
 * Liveness: bootstrap pings the child over IPC and the child answers from its event loop. A
 * child that answered once (or said it was ready) and then stays silent for
 * `config.childLivenessTimeoutMs` (default 5000 ms) has a blocked event loop or is frozen: its
 * lease renewal stops at once (nobody may vouch for it), it gets SIGKILL (it cannot drain, and
 * a SIGTERM handler would run only when it wakes, as the owner of partitions that moved on); once
 * it is gone the lease is removed and it is started again like a crashed child.
 *
 * @example
 *   const boot = await startBootstrap({ role: 'worker', config, childModule, childArgs, logger, version })
 *   process.on('SIGTERM', () => void boot.stop())   // drain, then deregister at once
 */
import { fork, type ChildProcess } from 'node:child_process'
import { hostname } from 'node:os'
import { Redis } from 'ioredis'
import { errorMessage } from '../common/errors.js'
import { createKeys } from '../common/keys.js'
import type { Logger } from '../common/logger.js'
import type { ProcessConfig } from '../common/process-config.js'
import { createRegistration, type InstanceInfo, type LeaseLoss, type Registration } from '../common/registry.js'
import { startHealthServer, type HealthServer } from './health-server.js'
import { Counter } from 'prom-client'
import { createMetricsRegistry } from '../common/metrics.js'
import { parseWorkerReport, type InstanceMetrics, type WorkerReport } from '../common/worker-report.js'

export type ChildRole = 'worker' | 'controller'
export type BootstrapState = 'starting' | 'running' | 'restarting' | 'fencing' | 'stopping' | 'stopped' | 'failed'

export interface BootstrapOptions {
  role: ChildRole
  config: ProcessConfig
  /** Module that runs the child (the compiled CLI). */
  childModule: string
  /** Arguments after the role, passed to the child as they were given to bootstrap. */
  childArgs: readonly string[]
  logger: Logger
  version: string
  /** Longest a draining child may take before SIGKILL; default `config.gracePeriodMs` (30000 ms). */
  drainTimeoutMs?: number
  /** Restart backoff bounds; defaults 500 and 30000 ms. */
  minRestartDelayMs?: number
  maxRestartDelayMs?: number
  /** A run at least this long resets the crash count; default 60000 ms. */
  healthyRunMs?: number
  /** Silence (no IPC answer) after which the child is killed; default `config.childLivenessTimeoutMs`, 0 = off. */
  livenessTimeoutMs?: number
  /** Called once bootstrap gave up (crash loop): it has deregistered; the process should exit non-zero. */
  onFailed?: (reason: string) => void
}

export interface Bootstrap {
  state(): BootstrapState
  childPid(): number | undefined
  /** The health listener's URL when `config.healthPort` is set. */
  healthUrl(): string | undefined
  stop(): Promise<void>
}

interface ChildMessage {
  type: 'ready' | 'status' | 'pong'
  url?: string
  status?: unknown
  seq?: number
}

/**
 * Whether a child is unresponsive: it was heard from (a pong, status or ready message) and has
 * been silent since for longer than the timeout. Never before the first word (a child still
 * loading), never with the check off (timeout 0).
 */
export function childUnresponsive(lastHeardAt: number | undefined, now: number, timeoutMs: number): boolean {
  return timeoutMs > 0 && lastHeardAt !== undefined && now - lastHeardAt > timeoutMs
}

/** Jittered exponential backoff: between half and all of min·2^(failures-1), capped at max. */
export function restartDelayMs(consecutiveFailures: number, minDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(Math.max(consecutiveFailures - 1, 0), 20))
  return Math.round(base / 2 + random() * (base / 2))
}

/**
 * Fence on a lost lease only when this process let it lapse (it did not even try to renew for
 * a whole TTL: paused, swapped out, frozen VM), or someone else holds our id. A lease that
 * vanished while we kept renewing means Redis lost its data, and one that expired while Redis
 * was unreachable means the controller could not read Redis either (it freezes rebalancing),
 * so in both cases our partitions cannot have moved: register again and keep mirroring.
 */
export function shouldFence(loss: LeaseLoss, ttlMs: number): boolean {
  return loss.reason === 'taken_over' || loss.heartbeatGapMs >= ttlMs
}

export async function startBootstrap(options: BootstrapOptions): Promise<Bootstrap> {
  const { config, logger } = options
  const minDelayMs = options.minRestartDelayMs ?? 500
  const maxDelayMs = options.maxRestartDelayMs ?? 30000
  const healthyRunMs = options.healthyRunMs ?? 60000
  const drainTimeoutMs = options.drainTimeoutMs ?? config.gracePeriodMs
  const livenessTimeoutMs = options.livenessTimeoutMs ?? config.childLivenessTimeoutMs
  const pingIntervalMs = Math.max(100, Math.floor(livenessTimeoutMs / 5))
  const redis = new Redis(config.redis, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 3000 })
  redis.on('error', (error) => logger.debug({ event: 'bootstrap.redis_error', err: errorMessage(error) }, 'redis error'))
  const keys = createKeys(config.deployment)
  const startedAt = new Date().toISOString()
  let state: BootstrapState = 'starting'
  let child: ChildProcess | undefined
  let childReady = false
  /** The worker's last report, parsed as it came in (common/worker-report.ts). */
  let lastStatus: WorkerReport | null = null
  let badStatusLogged = false
  let restarts = 0
  let fences = 0
  // Served on the health listener's /metrics (the child serves its own: controller on its API port, worker on --metrics-port).
  const metricsRegistry = createMetricsRegistry({ role: 'bootstrap', instance: config.id, child: options.role })
  new Counter({ name: 'ferry_bootstrap_child_restarts_total', help: 'Times the supervised process was started again after it exited or was fenced', registers: [metricsRegistry], collect() { this.reset(); this.inc(restarts) } })
  new Counter({ name: 'ferry_bootstrap_child_fences_total', help: 'Times the supervised process was stopped because the lease lapsed (self-fencing)', registers: [metricsRegistry], collect() { this.reset(); this.inc(fences) } })
  const heartbeatFailures = new Counter({ name: 'ferry_bootstrap_heartbeat_failures_total', help: 'Heartbeats (lease renewals in Redis) that failed', registers: [metricsRegistry] })
  let consecutiveFailures = 0
  let childStartedAt = 0
  let restartTimer: NodeJS.Timeout | undefined
  let registration: Registration | undefined
  let url: string | undefined
  let failedReason: string | undefined
  let health: HealthServer | undefined

  const setState = (next: BootstrapState): void => {
    if (next === state) return
    logger.info({ event: 'bootstrap.state', from: state, to: next }, `bootstrap ${next}`)
    state = next
  }

  const info = (): InstanceInfo => ({
    role: options.role,
    host: hostname(),
    pid: process.pid,
    version: options.version,
    startedAt,
    ...(config.zone ? { zone: config.zone } : {}),
    ...(config.dc ? { dc: config.dc } : {}),
    ...(url ? { url } : {}),
    // Registered so the controller can probe this instance (controller/node-status.ts).
    ...(health ? { healthUrl: health.url } : {}),
  })

  const liveMetrics = (): InstanceMetrics => {
    const memory = process.memoryUsage()
    return {
      childPid: child?.pid ?? null,
      childStartedAt: childStartedAt === 0 ? null : new Date(childStartedAt).toISOString(),
      restarts,
      fences,
      state,
      bootstrapRssBytes: memory.rss,
      uptimeSeconds: Math.round(process.uptime()),
      ...lastStatus,
    }
  }

  const killChild = (current: ChildProcess, why: string, graceMs = drainTimeoutMs): Promise<void> => {
    if (current.exitCode !== null || current.signalCode !== null) return Promise.resolve()
    const exited = new Promise<void>((resolve) => current.once('exit', () => resolve()))
    if (graceMs <= 0) {
      current.kill('SIGKILL')
      return exited
    }
    current.kill('SIGTERM')
    const timer = setTimeout(() => {
      logger.warn({ event: 'bootstrap.drain_timeout', drainTimeoutMs: graceMs, why }, 'child did not drain within the grace period; killing it')
      current.kill('SIGKILL')
    }, graceMs)
    return exited.finally(() => clearTimeout(timer))
  }

  const fence = (loss: LeaseLoss): void => {
    if (state !== 'running' && state !== 'starting') return
    fences++
    logger.error({ event: 'bootstrap.fenced', ...loss, ttlMs: config.leaseTtlMs }, 'lease lapsed: stopping the child before registering again')
    registration = undefined
    setState('fencing')
    const current = child
    if (current) void killChild(current, 'fencing')
  }

  const register = async (): Promise<void> => {
    if (registration) return
    const created = createRegistration({
      redis,
      keys,
      id: config.id,
      // A function: a child restarted on a new port (--port 0) is found at its new URL.
      info,
      ttlMs: config.leaseTtlMs,
      logger,
      getMetrics: liveMetrics,
      onHeartbeatFailed: () => heartbeatFailures.inc(),
      shouldReacquire: (loss) => !shouldFence(loss, config.leaseTtlMs),
      onLeaseLost: (loss) => {
        if (shouldFence(loss, config.leaseTtlMs)) fence(loss)
      },
    })
    registration = created
    try {
      await created.start()
    } catch (error) {
      if (registration === created) registration = undefined
      throw error
    }
  }

  const deregister = async (): Promise<void> => {
    const current = registration
    registration = undefined
    await current?.stop()
  }

  const fail = async (reason: string): Promise<void> => {
    failedReason = reason
    setState('failed')
    logger.fatal({ event: 'bootstrap.crash_loop', reason, restarts, maxRestarts: config.maxRestarts }, reason)
    await deregister()
    await health?.close()
    redis.disconnect()
    options.onFailed?.(reason)
  }

  /** The child killed for being unresponsive, whose exit must also remove the lease. */
  let unresponsiveChild: ChildProcess | undefined

  const watchLiveness = (created: ChildProcess): void => {
    if (livenessTimeoutMs <= 0) return
    let lastHeardAt: number | undefined
    let lastTickAt = Date.now()
    let seq = 0
    created.on('message', () => {
      lastHeardAt = Date.now()
    })
    const timer = setInterval(() => {
      const now = Date.now()
      // Bootstrap itself was paused (its own timers ran late): the silence is not the child's.
      if (now - lastTickAt > livenessTimeoutMs / 2 && lastHeardAt !== undefined) lastHeardAt = now
      lastTickAt = now
      if (child !== created || created.exitCode !== null || created.signalCode !== null) {
        clearInterval(timer)
        return
      }
      if (state !== 'running' && state !== 'starting') return
      if (childUnresponsive(lastHeardAt, now, livenessTimeoutMs)) {
        clearInterval(timer)
        unresponsive(created, now - (lastHeardAt ?? now))
        return
      }
      if (created.connected) created.send({ type: 'ping', seq: ++seq }, (error) => {
        if (error) logger.debug({ event: 'bootstrap.ping_failed', err: errorMessage(error) }, 'could not ping the child')
      })
    }, pingIntervalMs)
    timer.unref()
    created.once('exit', () => clearInterval(timer))
  }

  const unresponsive = (created: ChildProcess, silentMs: number): void => {
    unresponsiveChild = created
    logger.error({ event: 'bootstrap.child_unresponsive', childPid: created.pid, silentMs, livenessTimeoutMs }, `${options.role} has not answered for ${silentMs} ms (blocked event loop or frozen): lease renewal stopped, killing it`)
    // Stop vouching for it at once; the lease is removed once the child is surely gone.
    registration?.suspend()
    childReady = false
    // A frozen or blocked process cannot drain (a SIGTERM handler would only run once it wakes,
    // and then write as the owner of partitions that have moved on): SIGKILL at once, which also
    // ends a stopped process. The lease goes as soon as it is gone, and its partitions move.
    void killChild(created, 'unresponsive', 0)
  }

  const spawnChild = (): void => {
    childStartedAt = Date.now()
    childReady = false
    const created = fork(options.childModule, [options.role, ...options.childArgs], {
      env: { ...process.env, FERRY_ID: config.id, FERRY_SUPERVISED: '1' },
      execArgv: childExecArgv(options.role),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    child = created
    logger.info({ event: 'bootstrap.child_started', childPid: created.pid, restarts }, `${options.role} started`)
    watchLiveness(created)
    created.on('message', (message: ChildMessage) => {
      if (child !== created) return
      if (message.type === 'status') {
        lastStatus = parseWorkerReport(message.status)
        if (lastStatus === null && !badStatusLogged) logger.warn({ event: 'bootstrap.bad_status' }, `the ${options.role}'s status report does not parse; it is not reported`)
        badStatusLogged ||= lastStatus === null
      }
      if (message.type === 'ready') {
        url = message.url
        childReady = true
        setState('running')
        // Register once the child can work: the controller must not assign to a worker still starting.
        const retry = (): void => {
          if (child !== created || state !== 'running' || registration) return
          register().catch((error: unknown) => {
            logger.error({ event: 'bootstrap.register_failed', err: errorMessage(error) }, 'could not register in Redis; retrying')
            setTimeout(retry, Math.max(500, Math.floor(config.leaseTtlMs / 3))).unref()
          })
        }
        retry()
      }
    })
    created.on('exit', (code, signal) => {
      if (child === created) child = undefined
      childReady = false
      const wasUnresponsive = unresponsiveChild === created
      if (wasUnresponsive) {
        unresponsiveChild = undefined
        // Gone for sure now: let its partitions move at once; the next child registers anew when ready.
        void deregister()
      }
      if (state === 'stopping' || state === 'stopped' || state === 'failed') return
      const ranMs = Date.now() - childStartedAt
      if (state === 'fencing') {
        // Our own doing, not a crash: restart at once, without counting it against the child.
        logger.info({ event: 'bootstrap.child_fenced', code, signal, ranMs }, `${options.role} stopped after fencing; starting it again`)
        restarts++
        setState('restarting')
        restartTimer = setTimeout(() => {
          restartTimer = undefined
          if (state === 'restarting') spawnChild()
        }, minDelayMs)
        return
      }
      consecutiveFailures = ranMs >= healthyRunMs ? 1 : consecutiveFailures + 1
      if (consecutiveFailures > config.maxRestarts) {
        void fail(`${options.role} failed ${consecutiveFailures} times in a row (each run shorter than ${healthyRunMs} ms; last exit code ${code ?? 'none'}, signal ${signal ?? 'none'}): giving up`)
        return
      }
      restarts++
      const delayMs = restartDelayMs(consecutiveFailures, minDelayMs, maxDelayMs)
      logger.error({ event: 'bootstrap.child_exited', code, signal, ranMs, restarts, consecutiveFailures, delayMs }, `${options.role} exited; restarting`)
      setState('restarting')
      // A child that keeps failing is not alive in any useful sense: let its partitions move.
      if (consecutiveFailures >= 3) void deregister()
      restartTimer = setTimeout(() => {
        restartTimer = undefined
        if (state === 'restarting') spawnChild()
      }, delayMs)
    })
  }

  if (config.healthPort !== undefined) {
    health = await startHealthServer({
      host: config.host,
      port: config.healthPort,
      logger,
      // Alive while bootstrap supervises (a crash loop ends the process, so the probe never has to).
      live: () => ({ ok: state !== 'failed', details: { state, restarts, ...(failedReason ? { reason: failedReason } : {}) } }),
      ready: () => ({
        ok: state === 'running' && childReady && registration !== undefined,
        details: { state, childReady, registered: registration !== undefined, id: config.id },
      }),
      registry: metricsRegistry,
    })
  }

  spawnChild()

  let stopping: Promise<void> | undefined
  return {
    state: () => state,
    childPid: () => child?.pid,
    healthUrl: () => health?.url,
    stop() {
      stopping ??= (async () => {
        if (state === 'failed') return
        const startedStopAt = Date.now()
        setState('stopping')
        if (restartTimer) clearTimeout(restartTimer)
        // Drain first (the child finishes in-flight batches and checkpoints them), then
        // deregister at once so the controller moves the partitions without waiting for the TTL.
        if (child) await killChild(child, 'stopping')
        await deregister()
        logger.info({ event: 'bootstrap.drained', drainMs: Date.now() - startedStopAt, gracePeriodMs: drainTimeoutMs }, 'drained and deregistered')
        await health?.close()
        redis.disconnect()
        setState('stopped')
      })()
      return stopping
    },
  }
}

/**
 * Node flags for the child. A worker decodes and re-encodes every record, so almost everything it
 * allocates dies young: a 16 MiB young generation (V8's default is a few MiB) halves the
 * scavenges, which showed as p99 latency (docs/benchmarks.md, W2). An explicit
 * --max-semi-space-size in NODE_OPTIONS or the bootstrap's own flags wins.
 */
export function childExecArgv(role: string, inherited: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): string[] {
  const setByOperator = [...inherited, nodeOptions].some((flag) => flag.includes('--max-semi-space-size'))
  return role === 'worker' && !setByOperator ? [...inherited, '--max-semi-space-size=16'] : [...inherited]
}
