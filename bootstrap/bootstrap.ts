/**
 * The bootstrap wrapper: starts a Ferry process (worker or controller) as a child, registers
 * it in Redis with a token-checked lease renewed by heartbeats that carry the child's latest
 * status, restarts the child on crash with jittered backoff, and on SIGTERM/SIGINT drains the
 * child (it stops its tasks and checkpoints) before deregistering.
 *
 * Child → parent messages over the IPC channel: { type: 'ready', url? } and
 * { type: 'status', status }. A child whose parent disappears stops itself (see cli/main.ts).
 */
import { fork, type ChildProcess } from 'node:child_process'
import { hostname } from 'node:os'
import { Redis } from 'ioredis'
import { errorMessage } from '../common/errors.js'
import { createKeys } from '../common/keys.js'
import type { Logger } from '../common/logger.js'
import type { ProcessConfig } from '../common/process-config.js'
import { createRegistration, type InstanceInfo, type Registration } from '../common/registry.js'

export type ChildRole = 'worker' | 'controller'
export type BootstrapState = 'starting' | 'running' | 'restarting' | 'stopping' | 'stopped'

export interface BootstrapOptions {
  role: ChildRole
  config: ProcessConfig
  /** Module that runs the child (the compiled CLI). */
  childModule: string
  /** Arguments after the role, passed to the child as they were given to bootstrap. */
  childArgs: readonly string[]
  logger: Logger
  version: string
  /** Longest a draining child may take before SIGKILL; default 30000 ms. */
  drainTimeoutMs?: number
  /** Restart backoff bounds; defaults 500 and 30000 ms. */
  minRestartDelayMs?: number
  maxRestartDelayMs?: number
}

export interface Bootstrap {
  state(): BootstrapState
  childPid(): number | undefined
  stop(): Promise<void>
}

interface ChildMessage {
  type: 'ready' | 'status'
  url?: string
  status?: unknown
}

export async function startBootstrap(options: BootstrapOptions): Promise<Bootstrap> {
  const { config, logger } = options
  const minDelayMs = options.minRestartDelayMs ?? 500
  const maxDelayMs = options.maxRestartDelayMs ?? 30000
  const redis = new Redis(config.redis, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 3000 })
  redis.on('error', (error) => logger.debug({ event: 'bootstrap.redis_error', err: errorMessage(error) }, 'redis error'))
  const keys = createKeys(config.deployment)
  let state: BootstrapState = 'starting'
  let child: ChildProcess | undefined
  let lastStatus: unknown = null
  let restarts = 0
  let consecutiveFailures = 0
  let childStartedAt = 0
  let restartTimer: NodeJS.Timeout | undefined
  let registration: Registration | undefined
  let url: string | undefined

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
    startedAt: new Date().toISOString(),
    ...(config.zone ? { zone: config.zone } : {}),
    ...(config.dc ? { dc: config.dc } : {}),
    ...(url ? { url } : {}),
  })

  const register = async (): Promise<void> => {
    if (registration) return
    registration = createRegistration({
      redis,
      keys,
      id: config.id,
      info: info(),
      ttlMs: config.leaseTtlMs,
      logger,
      getMetrics: () => ({ childPid: child?.pid ?? null, restarts, ...(typeof lastStatus === 'object' && lastStatus !== null ? lastStatus : {}) }),
    })
    await registration.start()
  }

  const deregister = async (): Promise<void> => {
    const current = registration
    registration = undefined
    await current?.stop()
  }

  const spawnChild = (): void => {
    childStartedAt = Date.now()
    const created = fork(options.childModule, [options.role, ...options.childArgs], {
      env: { ...process.env, FERRY_ID: config.id, FERRY_SUPERVISED: '1' },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    child = created
    logger.info({ event: 'bootstrap.child_started', childPid: created.pid, restarts }, `${options.role} started`)
    created.on('message', (message: ChildMessage) => {
      if (message.type === 'status') lastStatus = message.status
      if (message.type === 'ready') {
        url = message.url
        consecutiveFailures = 0
        setState('running')
        // Register once the child can work: the controller must not assign to a worker still starting.
        void register().catch((error: unknown) => logger.error({ event: 'bootstrap.register_failed', err: errorMessage(error) }, 'could not register in Redis; retrying on the next heartbeat'))
      }
    })
    created.on('exit', (code, signal) => {
      if (child === created) child = undefined
      if (state === 'stopping' || state === 'stopped') return
      const ranMs = Date.now() - childStartedAt
      consecutiveFailures = ranMs > 60000 ? 1 : consecutiveFailures + 1
      restarts++
      const base = Math.min(maxDelayMs, minDelayMs * 2 ** Math.min(consecutiveFailures - 1, 10))
      const delayMs = Math.round(base / 2 + Math.random() * (base / 2))
      logger.error({ event: 'bootstrap.child_exited', code, signal, ranMs, restarts, delayMs }, `${options.role} exited; restarting`)
      setState('restarting')
      // A child that keeps failing is not alive in any useful sense: let its partitions move.
      if (consecutiveFailures >= 3) void deregister()
      restartTimer = setTimeout(() => {
        restartTimer = undefined
        if (state === 'restarting') spawnChild()
      }, delayMs)
    })
  }

  spawnChild()

  let stopping: Promise<void> | undefined
  return {
    state: () => state,
    childPid: () => child?.pid,
    stop() {
      stopping ??= (async () => {
        setState('stopping')
        if (restartTimer) clearTimeout(restartTimer)
        const current = child
        if (current && current.exitCode === null && current.signalCode === null) {
          const exited = new Promise<void>((resolve) => current.once('exit', () => resolve()))
          current.kill('SIGTERM')
          const drainTimeoutMs = options.drainTimeoutMs ?? 30000
          const timer = setTimeout(() => {
            logger.warn({ event: 'bootstrap.drain_timeout', drainTimeoutMs }, 'child did not stop in time; killing it')
            current.kill('SIGKILL')
          }, drainTimeoutMs)
          await exited
          clearTimeout(timer)
        }
        await deregister()
        redis.disconnect()
        setState('stopped')
      })()
      return stopping
    },
  }
}
