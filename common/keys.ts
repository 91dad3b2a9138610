/**
 * The only place that builds Redis keys. Layout under `ferry:<deployment>:`:
 *   instances            set of instance ids that registered (cleaned of expired leases by readers)
 *   instance:<id>        lease: JSON { token, info, metrics }, with a TTL renewed by heartbeats
 *   events               capped list of recent events for operators
 *
 * @example
 *   const keys = createKeys('prod')
 *   keys.instance('worker-1')   // 'ferry:prod:instance:worker-1'
 */
export interface Keys {
  instances: string
  instance(id: string): string
  events: string
}

export function createKeys(deployment: string): Keys {
  const prefix = `ferry:${deployment}`
  return {
    instances: `${prefix}:instances`,
    instance: (id) => `${prefix}:instance:${id}`,
    events: `${prefix}:events`,
  }
}
