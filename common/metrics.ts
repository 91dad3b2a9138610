/**
 * One prom-client registry per process, with Node's default metrics. Components create their
 * own metrics on it (`ferry_<component>_<what>_<unit>`); nothing is recorded per message.
 *
 * @example
 *   const registry = createMetricsRegistry({ role: 'worker', instance: id })
 *   new Counter({ name: 'ferry_worker_records_total', help: '...', registers: [registry] })
 */
import { Registry, collectDefaultMetrics } from 'prom-client'

export function createMetricsRegistry(labels: Record<string, string> = {}): Registry {
  const registry = new Registry()
  registry.setDefaultLabels(labels)
  collectDefaultMetrics({ register: registry, prefix: 'ferry_process_' })
  return registry
}
