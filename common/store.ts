/**
 * Ferry's desired state in ZooKeeper: clusters, topic groups, assignments and the leader's
 * per-group status. Every multi-step change is one atomic multi-op, so a failure leaves
 * nothing half-written:
 *  - creating a group re-writes its clusters' znodes with a version check, bumping their
 *    versions, so a concurrent cluster delete (which removes at the version it read when it
 *    checked the cluster was unused) fails instead of orphaning the group;
 *  - assignment writes carry fencing checks supplied by the leader.
 * A cluster is written only if its secret references pass the controller's secret policy, and
 * with its inline password sealed (common/secrets.ts): ZooKeeper never holds one in clear.
 *
 * @example
 *   const store = createStore(zk, createPaths('prod'))
 *   await store.createGroup(spec, 'running')
 */
import { FerryError } from './errors.js'
import type { ClusterSpec, TopicGroupSpec } from './config.js'
import type { Paths } from './paths.js'
import { assertClusterSecretsAllowed, NO_SECRET_SOURCES, sealCluster, type SecretPolicy } from './secrets.js'
import { fromJsonBuffer, isZkCode, toJsonBuffer, ZK_CODES, type Watcher, type Zk, type ZkOp } from './zk.js'

export type GroupState = 'running' | 'stopped'

export interface GroupRecord {
  spec: TopicGroupSpec
  state: GroupState
  createdAt: string
  updatedAt: string
}

export interface AssignedPartition {
  group: string
  topic: string
  partition: number
}

export interface AssignmentRecord {
  /** Leader epoch that wrote it. */
  epoch: number
  leader: string
  partitions: AssignedPartition[]
}

export interface GroupStatusRecord {
  group: string
  observedAt: string
  /** Why the group cannot be (fully) mirrored right now, if it cannot. */
  error?: { code: string; message: string }
  /** Source topics the group currently covers, with their partition counts. */
  topics: Record<string, number>
  /** Topics the group mirrored that disappeared from the source (deleted), still absent. */
  droppedTopics?: string[]
  /**
   * Partition counts when the group was first discovered. Only these partitions start at the
   * group's startPosition; any partition or topic that appears later is new data and is
   * mirrored from its first offset.
   */
  baseline?: Record<string, number>
  /**
   * Workers the leader keeps away from the group for now because they held its partitions
   * without progress while other workers moved data between the same clusters (controller/healer.ts).
   */
  quarantined?: Array<{ worker: string; reason: string; since: string; until: string }>
  /** What the topic config and ACL sync could not do at its last run (controller/topic-follow.ts). */
  followErrors?: FollowError[]
}

/** A topic config or ACL the sync could not carry to the target, and why. */
export interface FollowError {
  kind: 'config' | 'acl'
  /** The source topic (absent: the whole group's sync failed, e.g. a cluster unreachable). */
  topic?: string
  targetTopic?: string
  /** The topic config (kind config). */
  config?: string
  /** The target principal (kind acl). */
  principal?: string
  message: string
}

/** Deployment-wide switches operators flip at run time (znode `settings`). */
export interface ControllerSettings {
  /**
   * Whether the reconciler may move partitions between live workers to even out counts or load
   * (uReplicator's auto-balancing). When false it still places partitions nobody serves (new ones,
   * and those of workers that left) and removes what is no longer mirrored. Default true.
   */
  autoBalancing: boolean
}

export const DEFAULT_SETTINGS: Readonly<ControllerSettings> = Object.freeze({ autoBalancing: true })

export interface Versioned<T> {
  value: T
  version: number
}

export interface Store {
  listClusters(): Promise<ClusterSpec[]>
  getCluster(name: string): Promise<Versioned<ClusterSpec> | null>
  createCluster(cluster: ClusterSpec): Promise<void>
  deleteCluster(name: string): Promise<void>
  listGroups(): Promise<Versioned<GroupRecord>[]>
  getGroup(name: string, watcher?: Watcher): Promise<Versioned<GroupRecord> | null>
  /**
   * Creates the group. `check` sees every other group and may throw to refuse: it runs after the
   * group's clusters were read, and the create bumps their versions, so a group of the same
   * clusters created meanwhile makes this one a CONFLICT (try again) rather than slip past it.
   */
  createGroup(spec: TopicGroupSpec, state: GroupState, check?: (groups: readonly GroupRecord[]) => Promise<void> | void): Promise<GroupRecord>
  setGroupState(name: string, state: GroupState): Promise<GroupRecord>
  deleteGroup(name: string): Promise<void>
  getAssignment(worker: string, watcher?: Watcher): Promise<Versioned<AssignmentRecord> | null>
  listAssignments(): Promise<Map<string, Versioned<AssignmentRecord>>>
  /** Operations that write `assignments` (null removes the worker's node); fenced by the caller. */
  assignmentOps(changes: ReadonlyMap<string, AssignmentRecord | null>, current: ReadonlyMap<string, Versioned<AssignmentRecord>>): ZkOp[]
  getStatus(group: string): Promise<GroupStatusRecord | null>
  statusOps(status: GroupStatusRecord, exists: boolean): ZkOp[]
  listStatuses(): Promise<Map<string, GroupStatusRecord>>
  /** The run-time switches, defaults filled in. */
  getSettings(): Promise<ControllerSettings>
  /** Changes some switches (a versioned write: concurrent changes do not overwrite each other); returns the result. */
  updateSettings(change: Partial<ControllerSettings>): Promise<ControllerSettings>
}

export interface StoreOptions {
  /** What registered clusters may reference, and the key that seals inline secrets; default nothing. */
  secrets?: SecretPolicy
}

/** Only the known switches with the right types; anything else in the znode is ignored. */
function settingsOf(value: unknown): Partial<ControllerSettings> {
  if (typeof value !== 'object' || value === null) return {}
  const autoBalancing = (value as { autoBalancing?: unknown }).autoBalancing
  return typeof autoBalancing === 'boolean' ? { autoBalancing } : {}
}

export function createStore(zk: Zk, paths: Paths, options: StoreOptions = {}): Store {
  const secrets = options.secrets ?? NO_SECRET_SOURCES
  const readJson = async <T>(path: string, watcher?: Watcher): Promise<Versioned<T> | null> => {
    const node = await zk.getData(path, watcher)
    return node === null ? null : { value: fromJsonBuffer<T>(node.data), version: node.version }
  }

  const readChildren = async <T>(parent: string, pathOf: (name: string) => string): Promise<Map<string, Versioned<T>>> => {
    const names = ((await zk.getChildren(parent)) ?? []).sort()
    const result = new Map<string, Versioned<T>>()
    const values = await Promise.all(names.map((name) => readJson<T>(pathOf(name))))
    names.forEach((name, index) => {
      const value = values[index]
      if (value) result.set(name, value)
    })
    return result
  }

  const store: Store = {
    async listClusters() {
      return [...(await readChildren<ClusterSpec>(paths.clusters, paths.cluster)).values()].map((v) => v.value)
    },
    getCluster: (name) => readJson<ClusterSpec>(paths.cluster(name)),
    async createCluster(cluster) {
      assertClusterSecretsAllowed(cluster, secrets)
      try {
        await zk.create(paths.cluster(cluster.name), toJsonBuffer(sealCluster(cluster, secrets)))
      } catch (error) {
        if (isZkCode(error, ZK_CODES.NODE_EXISTS)) {
          throw new FerryError('CLUSTER_EXISTS', `cluster "${cluster.name}" already exists`, { context: { cluster: cluster.name } })
        }
        throw error
      }
    },
    async deleteCluster(name) {
      const cluster = await store.getCluster(name)
      if (cluster === null) throw new FerryError('CLUSTER_NOT_FOUND', `cluster "${name}" does not exist`, { context: { cluster: name } })
      const users = (await store.listGroups())
        .filter((g) => g.value.spec.sourceCluster === name || g.value.spec.targetCluster === name)
        .map((g) => g.value.spec.name)
      if (users.length > 0) {
        throw new FerryError('CLUSTER_IN_USE', `cluster "${name}" is used by topic group(s) ${users.join(', ')}; delete them first`, { context: { cluster: name } })
      }
      try {
        await zk.remove(paths.cluster(name), cluster.version)
      } catch (error) {
        if (isZkCode(error, ZK_CODES.BAD_VERSION)) {
          throw new FerryError('CONFLICT', `cluster "${name}" changed while it was being deleted (a group may have started using it); try again`, { context: { cluster: name } })
        }
        throw error
      }
    },
    async listGroups() {
      return [...(await readChildren<GroupRecord>(paths.groups, paths.group)).values()]
    },
    getGroup: (name, watcher) => readJson<GroupRecord>(paths.group(name), watcher),
    async createGroup(spec, state, check) {
      const clusterNames = [...new Set([spec.sourceCluster, spec.targetCluster])]
      const clusters = await Promise.all(clusterNames.map((name) => store.getCluster(name)))
      const ops: ZkOp[] = []
      clusterNames.forEach((name, index) => {
        const cluster = clusters[index]
        if (cluster === null || cluster === undefined) {
          const field = name === spec.sourceCluster ? 'sourceCluster' : 'targetCluster'
          throw new FerryError('CLUSTER_NOT_FOUND', `${field}: cluster "${name}" does not exist; register it with POST /v1/clusters first`, {
            context: { cluster: name, field },
          })
        }
        ops.push({ op: 'set', path: paths.cluster(name), data: toJsonBuffer(cluster.value), version: cluster.version })
      })
      if (check !== undefined) await check((await store.listGroups()).map((g) => g.value).filter((g) => g.spec.name !== spec.name))
      const now = new Date().toISOString()
      const record: GroupRecord = { spec, state, createdAt: now, updatedAt: now }
      ops.push({ op: 'create', path: paths.group(spec.name), data: toJsonBuffer(record) })
      try {
        await zk.multi(ops)
      } catch (error) {
        if (isZkCode(error, ZK_CODES.NODE_EXISTS)) {
          throw new FerryError('GROUP_EXISTS', `topic group "${spec.name}" already exists`, { context: { group: spec.name } })
        }
        if (isZkCode(error, ZK_CODES.BAD_VERSION) || isZkCode(error, ZK_CODES.NO_NODE)) {
          throw new FerryError('CONFLICT', `a cluster of group "${spec.name}" changed or was deleted meanwhile; try again`, { context: { group: spec.name } })
        }
        throw error
      }
      return record
    },
    async setGroupState(name, state) {
      const current = await store.getGroup(name)
      if (current === null) throw new FerryError('GROUP_NOT_FOUND', `topic group "${name}" does not exist`, { context: { group: name } })
      if (current.value.state === state) return current.value
      const record: GroupRecord = { ...current.value, state, updatedAt: new Date().toISOString() }
      try {
        await zk.setData(paths.group(name), toJsonBuffer(record), current.version)
      } catch (error) {
        if (isZkCode(error, ZK_CODES.BAD_VERSION) || isZkCode(error, ZK_CODES.NO_NODE)) {
          throw new FerryError('CONFLICT', `topic group "${name}" changed meanwhile; try again`, { context: { group: name } })
        }
        throw error
      }
      return record
    },
    async deleteGroup(name) {
      // The leader's reconcile pass writes and removes status znodes on its own (a status left by
      // an earlier group of this name may vanish between our look and the delete): read again and
      // retry a few times before calling it a conflict.
      for (let attempt = 1; ; attempt++) {
        const current = await store.getGroup(name)
        if (current === null) throw new FerryError('GROUP_NOT_FOUND', `topic group "${name}" does not exist`, { context: { group: name } })
        const ops: ZkOp[] = [{ op: 'remove', path: paths.group(name), version: current.version }]
        if ((await zk.exists(paths.status(name))) !== null) ops.push({ op: 'remove', path: paths.status(name) })
        try {
          await zk.multi(ops)
          return
        } catch (error) {
          if (!isZkCode(error, ZK_CODES.BAD_VERSION) && !isZkCode(error, ZK_CODES.NO_NODE)) throw error
          if (attempt >= 5) throw new FerryError('CONFLICT', `topic group "${name}" changed meanwhile; try again`, { context: { group: name } })
        }
      }
    },
    getAssignment: (worker, watcher) => readJson<AssignmentRecord>(paths.assignment(worker), watcher),
    listAssignments: () => readChildren<AssignmentRecord>(paths.assignments, paths.assignment),
    assignmentOps(changes, current) {
      const ops: ZkOp[] = []
      for (const [worker, record] of [...changes].sort(([a], [b]) => a.localeCompare(b))) {
        const existing = current.get(worker)
        if (record === null) {
          if (existing) ops.push({ op: 'remove', path: paths.assignment(worker), version: existing.version })
        } else if (existing) {
          ops.push({ op: 'set', path: paths.assignment(worker), data: toJsonBuffer(record), version: existing.version })
        } else {
          ops.push({ op: 'create', path: paths.assignment(worker), data: toJsonBuffer(record) })
        }
      }
      return ops
    },
    async getStatus(group) {
      return (await readJson<GroupStatusRecord>(paths.status(group)))?.value ?? null
    },
    statusOps(status, exists) {
      return exists
        ? [{ op: 'set', path: paths.status(status.group), data: toJsonBuffer(status) }]
        : [{ op: 'create', path: paths.status(status.group), data: toJsonBuffer(status) }]
    },
    async listStatuses() {
      const result = new Map<string, GroupStatusRecord>()
      for (const [name, value] of await readChildren<GroupStatusRecord>(paths.statuses, paths.status)) result.set(name, value.value)
      return result
    },
    async getSettings() {
      const stored = await readJson<Partial<ControllerSettings>>(paths.settings)
      return { ...DEFAULT_SETTINGS, ...settingsOf(stored?.value) }
    },
    async updateSettings(change) {
      for (let attempt = 0; ; attempt++) {
        const stored = await readJson<Partial<ControllerSettings>>(paths.settings)
        const next: ControllerSettings = { ...DEFAULT_SETTINGS, ...settingsOf(stored?.value), ...change }
        try {
          if (stored === null) await zk.create(paths.settings, toJsonBuffer(next))
          else await zk.setData(paths.settings, toJsonBuffer(next), stored.version)
          return next
        } catch (error) {
          // Another controller changed them between our read and write: read again.
          const raced = isZkCode(error, ZK_CODES.BAD_VERSION) || isZkCode(error, ZK_CODES.NODE_EXISTS) || isZkCode(error, ZK_CODES.NO_NODE)
          if (!raced || attempt >= 5) throw raced ? new FerryError('CONFLICT', 'the settings changed meanwhile; try again') : error
        }
      }
    },
  }
  return store
}
