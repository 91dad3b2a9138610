/**
 * A token bucket for a group's byte-rate limit: `take(n)` waits until n bytes may pass.
 * Bursts up to one second's worth; a single batch larger than that waits proportionally.
 */
export interface RateLimiter {
  take(bytes: number): Promise<void>
}

export function createRateLimiter(bytesPerSec: number, now: () => number = Date.now): RateLimiter {
  let tokens = bytesPerSec
  let last = now()
  let queue: Promise<void> = Promise.resolve()
  return {
    take(bytes) {
      const turn = queue.then(async () => {
        const t = now()
        tokens = Math.min(bytesPerSec, tokens + ((t - last) / 1000) * bytesPerSec)
        last = t
        tokens -= bytes
        if (tokens < 0) {
          const waitMs = Math.ceil((-tokens / bytesPerSec) * 1000)
          await new Promise((resolve) => setTimeout(resolve, waitMs))
        }
      })
      queue = turn
      return turn
    },
  }
}
