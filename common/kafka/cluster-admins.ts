/**
 * One admin client per registered cluster definition, shared by discovery and the API, and
 * replaced when the definition changes (e.g. a fixed CA path).
 */
import type { ClusterSpec } from '../config.js'
import type { KafkaAdmin, KafkaReadClients } from './port.js'
import type { Logger } from '../logger.js'

export interface ClusterAdmins {
  get(cluster: ClusterSpec): KafkaAdmin
  /** The client library the admins come from, for other reads (an audit's source consumer). */
  readonly clients: KafkaReadClients
  closeAll(): Promise<void>
}

/** `clients` is the port's client library (kafkajs: `kafkajsReadClients`). */
export function createClusterAdmins(clientId: string, logger: Logger, clients: KafkaReadClients): ClusterAdmins {
  const admins = new Map<string, { fingerprint: string; admin: KafkaAdmin }>()
  return {
    get(cluster) {
      const fingerprint = JSON.stringify(cluster)
      const existing = admins.get(cluster.name)
      if (existing && existing.fingerprint === fingerprint) return existing.admin
      void existing?.admin.disconnect()
      const admin = clients.admin(cluster, { clientId, logger })
      admins.set(cluster.name, { fingerprint, admin })
      return admin
    },
    clients,
    async closeAll() {
      await Promise.all([...admins.values()].map((a) => a.admin.disconnect()))
      admins.clear()
    },
  }
}
