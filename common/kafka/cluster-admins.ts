/**
 * One admin client per registered cluster definition, shared by discovery and the API, and
 * replaced when the definition changes (e.g. a fixed CA path).
 */
import type { ClusterSpec } from '../config.js'
import { createKafkaAdmin } from './admin.js'
import type { KafkaAdmin, KafkaClientFactory } from './port.js'
import type { Logger } from '../logger.js'

export interface ClusterAdmins {
  get(cluster: ClusterSpec): KafkaAdmin
  closeAll(): Promise<void>
}

/** `createAdmin` is the port factory's admin; default the kafkajs one. */
export function createClusterAdmins(clientId: string, logger: Logger, createAdmin: KafkaClientFactory['admin'] = createKafkaAdmin): ClusterAdmins {
  const admins = new Map<string, { fingerprint: string; admin: KafkaAdmin }>()
  return {
    get(cluster) {
      const fingerprint = JSON.stringify(cluster)
      const existing = admins.get(cluster.name)
      if (existing && existing.fingerprint === fingerprint) return existing.admin
      void existing?.admin.disconnect()
      const admin = createAdmin(cluster, { clientId, logger })
      admins.set(cluster.name, { fingerprint, admin })
      return admin
    },
    async closeAll() {
      await Promise.all([...admins.values()].map((a) => a.admin.disconnect()))
      admins.clear()
    },
  }
}
