/**
 * What the REST API is built from (ApiDeps, given to createApi in controller/api.ts) and what its
 * route handlers (controller/api-routes.ts, controller/ureplicator.ts) work with (ApiContext,
 * built once by createApi and passed to every handler).
 */
import type { Gauge, Registry } from 'prom-client'
import type { Redis } from 'ioredis'
import type { ClusterAdmins } from '../common/kafka/cluster-admins.js'
import type { Keys } from '../common/keys.js'
import type { Logger } from '../common/logger.js'
import type { Store } from '../common/store.js'
import type { Zk } from '../common/zk.js'
import type { ApiAccess, ApiToken } from './auth.js'
import type { Election } from './election.js'
import type { EventLog } from './events.js'
import type { GroupsService } from './groups-service.js'
import type { ConsumerOffsets } from './consumer-offsets.js'
import type { HistoryStore } from './history.js'
import type { NodeStatusService } from './node-status.js'
import type { Reconciler } from './reconciler.js'
import type { ApiRoute } from './route.js'

/** What createApi is given. */
export interface ApiDeps {
  store: Store
  zk: Zk
  redis: Redis
  keys: Keys
  election: Election
  reconciler: Reconciler
  admins: ClusterAdmins
  registry: Registry
  logger: Logger
  /** Bearer tokens (controller/auth.ts); none configured = closed API unless `apiOpen`. */
  apiTokens?: readonly ApiToken[]
  /** Without tokens, admit anyone (--api-open); default false: the API is closed. */
  apiOpen?: boolean
  /** Default cluster pair of the uReplicator-compatible /topics API. */
  ureplicator?: { source?: string | undefined; target?: string | undefined }
  /** Recent events for operators (GET /v1/events, the dashboard). */
  events: EventLog
  /** Groups' 1-minute history in Redis (controller/history.ts); built on `redis` when not given. */
  history?: HistoryStore
  /** The group use cases; built from the other dependencies when not given. */
  groups?: GroupsService
  /** Consumer groups on the target (controller/consumer-offsets.ts); built from the other dependencies when not given. */
  consumerOffsets?: ConsumerOffsets
  /** Node checks (controller/node-status.ts); built on `redis` with a 10 s lease TTL when not given. */
  nodes?: NodeStatusService
}

/** What every handler is given: the dependencies, with the groups service and the rest built from them. */
export interface ApiContext extends Omit<ApiDeps, 'apiTokens' | 'apiOpen' | 'ureplicator' | 'groups' | 'history' | 'consumerOffsets' | 'nodes'> {
  groups: GroupsService
  consumerOffsets: ConsumerOffsets
  nodes: NodeStatusService
  history: HistoryStore
  /** How the API admits callers (on /readyz). */
  access: ApiAccess
  /** Every route served: the OpenAPI document is theirs. */
  routes: readonly ApiRoute[]
  /** Default cluster pair of the uReplicator-compatible API (--ureplicator-source / --ureplicator-target). */
  ureplicator: NonNullable<ApiDeps['ureplicator']>
  /** Gauges the audit route sets per group. */
  audit: { missing: Gauge; duplicates: Gauge }
}
