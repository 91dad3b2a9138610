/**
 * `work`, or a rejection once `ms` passed: for calls that may wait indefinitely (a ZooKeeper call
 * without a session waits for the reconnect). The timer does not keep the process alive.
 *
 * @example
 *   await withinMs(zk.exists('/'), 1000, () => new Error('no answer within 1000 ms'))
 */
export function withinMs<T>(work: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(timeoutError()), ms)
    timer.unref()
  })
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer))
}
