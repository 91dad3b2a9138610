/**
 * A deployment started as an operator starts it (bootstrap processes), for tests that watch
 * mirroring under load from outside: the leader's URL from the registry, and a steady load.
 *
 * @example
 *   const url = await leaderUrl(redis, keys)
 *   const load = steadyLoad(() => producer.send(30), 100)   // about 300 records/s
 *   await load.stop()
 */
import type { Redis } from 'ioredis'
import type { Keys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import { http, waitFor } from './harness.js'

/** The URL of the controller that answers /readyz as leader. */
export function leaderUrl(redis: Redis, keys: Keys, timeoutMs = 60000): Promise<string> {
  return waitFor('a leader', async () => {
    const controller = (await listInstances(redis, keys)).find((i) => i.role === 'controller' && i.url)
    return controller && (await http('GET', `${controller.url as string}/readyz`).catch(() => undefined))?.body?.isLeader ? (controller.url as string) : undefined
  }, timeoutMs)
}

/** Calls `send` every `everyMs` (failures ignored) until stopped. */
export function steadyLoad(send: () => Promise<unknown>, everyMs: number): { stop: () => Promise<void> } {
  let running = true
  const loop = (async () => {
    while (running) {
      await send().catch(() => undefined)
      await new Promise((resolve) => setTimeout(resolve, everyMs))
    }
  })()
  return {
    stop: async () => {
      running = false
      await loop
    },
  }
}
