/**
 * What route handlers (controller/api-routes.ts, controller/ureplicator.ts) work with: the
 * controller's parts, built once by createApi (controller/api.ts) and passed to every handler.
 */
import type { Gauge, Registry } from 'prom-client'
import type { Redis } from 'ioredis'
import type { ClusterAdmins } from '../common/kafka/cluster-admins.js'
import type { Keys } from '../common/keys.js'
import type { Logger } from '../common/logger.js'
import type { Store } from '../common/store.js'
import type { Zk } from '../common/zk.js'
import type { ApiAccess } from './auth.js'
import type { Election } from './election.js'
import type { EventLog } from './events.js'
import type { GroupsService } from './groups-service.js'
import type { Reconciler } from './reconciler.js'
import type { ApiRoute } from './route.js'

export interface ApiContext {
  store: Store
  zk: Zk
  redis: Redis
  keys: Keys
  election: Election
  reconciler: Reconciler
  admins: ClusterAdmins
  registry: Registry
  logger: Logger
  events: EventLog
  groups: GroupsService
  /** How the API admits callers (on /readyz). */
  access: ApiAccess
  /** Every route served: the OpenAPI document is theirs. */
  routes: readonly ApiRoute[]
  /** Default cluster pair of the uReplicator-compatible API (--ureplicator-source / --ureplicator-target). */
  ureplicator: { source?: string | undefined; target?: string | undefined }
  /** Gauges the audit route sets per group. */
  audit: { missing: Gauge; duplicates: Gauge }
}
