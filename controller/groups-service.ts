/**
 * The topic-group use cases, once, for every way in: the /v1 API, the uReplicator-compatible
 * API and the dashboard (which reads the /v1 views). Each change records its event and
 * triggers the reconciler here, so no path can forget either; each view (group status with
 * lag, the assignment of a topic, ideal vs served, partitions without progress, workload) is
 * computed here and only here.
 *
 * @example
 *   const groups = createGroupsService({ store, redis, keys, admins, events, logger, reconciler })
 *   await groups.create({ spec, start: true, via: 'ureplicator' })   // event + reconcile
 *   const view = await groups.view('orders')                          // per-partition lag
 */
import type { Redis } from 'ioredis'
import { targetTopicName, type TopicGroupSpec } from '../common/config.js'
import { FerryError, HTTP_STATUS_BY_CODE, errorMessage, isProgrammerError } from '../common/errors.js'
import type { Keys } from '../common/keys.js'
import type { Logger } from '../common/logger.js'
import { listInstances, type InstanceRecord } from '../common/registry.js'
import { partitionKey as commonPartitionKey, type PartitionReport } from '../common/worker-report.js'
import type { AssignedPartition, GroupRecord, GroupState, Store } from '../common/store.js'
import type { ClusterAdmins } from '../common/kafka/cluster-admins.js'
import type { StableOffsets } from '../common/kafka/admin.js'
import type { GroupView, NoProgressRow, PartitionRow, WorkerWorkload } from '../common/api-schemas.js'
import { addLatencyCounts, emptyLatencyCounts, summariseLatency } from '../common/latency.js'
import { auditGroup, type AuditReport } from './audit.js'
import { discoverPartitions } from './discovery.js'
import type { EventLog } from './events.js'
import { checkTargetEnds } from './target-check.js'
import { findMirrorLoop, isReverse, mirrorLoopError } from './mirror-loops.js'
import { createProgressTracker, type ProgressTracker } from './progress.js'
import { DRIFT_GRACE_MS, classifyServed, countDrift, createNotServedTracker, emptyDriftCounts, mayBeStalled, type DriftCounts, type ServedKind } from './served.js'

/** A partition's report (common/worker-report.ts) with the worker that sent it. */
export type WorkerReport = PartitionReport & { worker: string }

/** Which interface a change came through (it is in the event and the log line). */
export type Via = 'api' | 'ureplicator'

export function partitionKey(p: { group: string; topic: string; partition: number }): string {
  return commonPartitionKey(p, p.group)
}

/** Worker reports by partition key (parsed where the registry read them: common/worker-report.ts). */
export function workerReports(instances: readonly InstanceRecord[]): Map<string, WorkerReport> {
  const reports = new Map<string, WorkerReport>()
  for (const instance of instances) {
    if (instance.role !== 'worker') continue
    for (const report of instance.metrics?.partitions ?? []) reports.set(partitionKey(report), { ...report, worker: instance.id })
  }
  return reports
}

/** Every worker's report of each partition, by partition key (a stale owner may report one next to its new owner). */
export function reportsByPartition(instances: readonly InstanceRecord[]): Map<string, WorkerReport[]> {
  const reports = new Map<string, WorkerReport[]>()
  for (const instance of instances) {
    for (const report of workerReports([instance]).values()) {
      const key = partitionKey(report)
      reports.set(key, [...(reports.get(key) ?? []), report])
    }
  }
  return reports
}

// The views this service answers with are the API's response types (common/api-schemas.ts).
export type { GroupView, NoProgressRow, PartitionRow, WorkerWorkload } from '../common/api-schemas.js'

/** One assigned partition: who should serve it (Ferry's assignment) and what that worker reports. */
export interface ServingRow {
  group: string
  topic: string
  partition: number
  /** The worker the assignment gives it to. */
  idealWorker: string
  /** The worker that serves it (reports it `mirroring`): the assigned one when it does, else another (a stale owner), else null. */
  actualWorker: string | null
  /** Every worker that reports it, in id order (more than one: a stale owner has not let go yet). */
  reportedBy: string[]
  /** The assigned worker's reported state ('mirroring', 'retrying', ...), or null when it reports nothing for it. */
  state: string | null
  position: number | null
}

/**
 * Assigned partitions with who serves them, from every worker's report of each (not one report
 * per partition: a stale owner reporting a partition must not hide its assigned worker's report).
 */
export function servingRows(assignments: ReadonlyMap<string, readonly AssignedPartition[]>, reports: ReadonlyMap<string, readonly WorkerReport[]>, filter: (group: string) => boolean = () => true): ServingRow[] {
  const rows: ServingRow[] = []
  for (const [worker, partitions] of assignments) {
    for (const p of partitions) {
      if (!filter(p.group)) continue
      const all = reports.get(partitionKey(p)) ?? []
      const own = all.find((r) => r.worker === worker)
      const actual = own?.state === 'mirroring' ? own : all.find((r) => r.state === 'mirroring')
      rows.push({
        group: p.group,
        topic: p.topic,
        partition: p.partition,
        idealWorker: worker,
        actualWorker: actual?.worker ?? null,
        reportedBy: all.map((r) => r.worker).sort(),
        state: own?.state ?? null,
        position: typeof own?.position === 'number' ? own.position : null,
      })
    }
  }
  return rows.sort((a, b) => a.group.localeCompare(b.group) || a.topic.localeCompare(b.topic) || a.partition - b.partition)
}

export interface GroupsServiceDeps {
  store: Store
  redis: Redis
  keys: Keys
  admins: ClusterAdmins
  events: EventLog
  logger: Logger
  /** Called after a change (the reconciler's trigger). */
  changed: () => void
  /** Default 5000 ms: how often worker positions are sampled for no-progress detection (0: only on reads). */
  progressSampleMs?: number
  now?: () => number
}

export interface AuditWindow {
  fromMs: number
  toMs: number
  bucketMs: number
}

export interface GroupsService {
  list(): Promise<Array<{ name: string; state: GroupState; spec: TopicGroupSpec }>>
  get(name: string): Promise<GroupRecord>
  exists(name: string): Promise<boolean>
  create(request: { spec: TopicGroupSpec; start?: boolean; via: Via }): Promise<GroupRecord>
  setState(name: string, state: GroupState, via: Via): Promise<GroupRecord>
  delete(name: string, via: Via): Promise<void>
  /** The group with per-partition owner, position, high watermarks and lag, read live. */
  view(name: string): Promise<GroupView>
  audit(name: string, window: AuditWindow): Promise<AuditReport>
  /** Live instances (empty when Redis cannot be read). */
  instances(): Promise<InstanceRecord[]>
  /** Every assigned partition of the groups `filter` admits, with what its worker reports. */
  serving(filter?: (group: string) => boolean): Promise<ServingRow[]>
  /** Partitions whose position has not advanced for `thresholdMs` while the source has records past it. */
  noProgress(thresholdMs: number, filter?: (group: string) => boolean): Promise<NoProgressRow[]>
  /** Per worker: partitions, reported throughput, lagging partitions (uReplicator's workloadinfo). */
  workload(filter?: (group: string) => boolean): Promise<WorkerWorkload[]>
  /** Assigned partitions of every group per kind of drift (reads source ends only for stalled positions). */
  drift(): Promise<DriftCounts>
  stop(): void
}

export function createGroupsService(deps: GroupsServiceDeps): GroupsService {
  const { store, logger } = deps
  const now = deps.now ?? Date.now
  const progress: ProgressTracker = createProgressTracker({ now })
  const notServed = createNotServedTracker({ now })
  const instances = async (): Promise<InstanceRecord[]> => {
    const list = await listInstances(deps.redis, deps.keys).catch(() => [] as InstanceRecord[])
    progress.observe(workerReports(list).values())
    return list
  }
  /**
   * Assigned partitions with every report of each, and the not-served clock updated from them.
   * A stalled position needs the source end to be told apart from an idle partition, so here it
   * counts as served: its time comes from the progress tracker instead.
   */
  const sampleServed = async (): Promise<{ assignments: Awaited<ReturnType<Store['listAssignments']>>; reports: Map<string, WorkerReport[]>; live: InstanceRecord[] }> => {
    const [assignments, live] = await Promise.all([store.listAssignments(), instances()])
    const reports = reportsByPartition(live)
    const rows: Array<{ group: string; topic: string; partition: number; kind: ServedKind }> = []
    for (const [worker, record] of assignments) {
      for (const p of record.value.partitions) {
        const kind = classifyServed({ assignedWorker: worker, reports: reports.get(partitionKey(p)) ?? [], stalledMs: 0, stallThresholdMs: DRIFT_GRACE_MS })
        rows.push({ group: p.group, topic: p.topic, partition: p.partition, kind })
      }
    }
    notServed.observe(rows)
    return { assignments, reports, live }
  }
  const sampleMs = deps.progressSampleMs ?? 5000
  // ZooKeeper being unreachable for a sample only delays the clocks; the next sample catches up.
  const timer = sampleMs > 0 ? setInterval(() => void sampleServed().catch(() => undefined), sampleMs) : undefined
  timer?.unref()

  const get = async (name: string): Promise<GroupRecord> => {
    const group = await store.getGroup(name)
    if (group === null) throw new FerryError('GROUP_NOT_FOUND', `topic group "${name}" does not exist`, { context: { group: name } })
    return group.value
  }

  /** Source end offsets per `topic/partition` of the given topics; throws what the cluster throws. */
  const sourceEnds = async (spec: TopicGroupSpec, topics: readonly string[]): Promise<Map<string, StableOffsets>> => {
    const source = await store.getCluster(spec.sourceCluster)
    if (source === null) throw new FerryError('CLUSTER_NOT_FOUND', `source cluster "${spec.sourceCluster}" is not registered`)
    const admin = deps.admins.get(source.value)
    const offsets = new Map<string, StableOffsets>()
    for (const topic of topics) for (const o of await admin.stableOffsets(topic)) offsets.set(commonPartitionKey({ topic, partition: o.partition }), o)
    return offsets
  }

  /**
   * Refuses a group that closes a mirror loop with a group going the other way unless both have
   * provenance (controller/mirror-loops.ts). A pattern is checked against the topics on both
   * clusters now too, when they can be listed (when not, against the names and patterns alone).
   */
  const refuseLoops = async (spec: TopicGroupSpec, groups: readonly GroupRecord[]): Promise<void> => {
    if (spec.failbackOf !== undefined) {
      // Fail back goes the other way of an existing group with provenance (docs/disaster-recovery.md).
      const forward = groups.find((g) => g.spec.name === spec.failbackOf)?.spec
      const refuse = (message: string, detail: string): FerryError => new FerryError('INVALID_INPUT', `failbackOf: ${message}`, { details: [{ field: 'failbackOf', message: detail }] })
      if (forward === undefined) throw refuse(`topic group "${spec.failbackOf}" does not exist`, 'names no existing group')
      if (!isReverse(spec, forward)) throw refuse(`topic group "${forward.name}" mirrors ${forward.sourceCluster} -> ${forward.targetCluster}; a fail back of it must mirror ${forward.targetCluster} -> ${forward.sourceCluster}`, 'must name a group going the other way')
      if (forward.provenance !== true) throw refuse(`topic group "${forward.name}" has no provenance: its copies on ${forward.targetCluster} cannot be told from records written there, and would be copied back`, 'the named group needs provenance: true')
    }
    const reverse = groups.map((g) => g.spec).filter((g) => isReverse(spec, g) && !(spec.provenance && g.provenance))
    if (reverse.length === 0) return
    let known = { onSource: [] as string[], onTarget: [] as string[] }
    if (spec.topicPattern !== undefined || reverse.some((g) => g.topicPattern !== undefined)) {
      const topicsOn = async (name: string): Promise<string[]> => {
        const cluster = await store.getCluster(name)
        return cluster === null ? [] : deps.admins.get(cluster.value).listTopics()
      }
      try {
        known = { onSource: await topicsOn(spec.sourceCluster), onTarget: await topicsOn(spec.targetCluster) }
      } catch (error) {
        logger.warn({ event: 'controller.loop_check_topics_unreadable', group: spec.name, err: errorMessage(error) }, 'cannot list topics for the mirror loop check; checking names and patterns only')
      }
    }
    for (const other of reverse) {
      const loop = findMirrorLoop(spec, other, known)
      if (loop !== undefined) throw mirrorLoopError(loop)
    }
  }

  const serving = async (filter: (group: string) => boolean = () => true): Promise<ServingRow[]> => {
    const [assignments, live] = await Promise.all([store.listAssignments(), instances()])
    return servingRows(new Map([...assignments].map(([worker, record]) => [worker, record.value.partitions])), reportsByPartition(live), filter)
  }

  const service: GroupsService = {
    async list() {
      return (await store.listGroups()).map((g) => ({ name: g.value.spec.name, state: g.value.state, spec: g.value.spec }))
    },
    get,
    async exists(name) {
      return (await store.getGroup(name)) !== null
    },
    async create({ spec, start, via }) {
      const record = await store.createGroup(spec, start === false ? 'stopped' : 'running', (groups) => refuseLoops(spec, groups))
      logger.info({ event: 'controller.group_created', group: spec.name, state: record.state, via }, 'topic group created')
      deps.events.record({ type: 'group_created', group: spec.name, message: `topic group created (${record.state})${via === 'ureplicator' ? ' through the uReplicator API' : ''}` })
      deps.changed()
      return record
    },
    async setState(name, state, via) {
      const record = await store.setGroupState(name, state)
      const verb = state === 'running' ? 'started' : 'stopped'
      logger.info({ event: `controller.group_${verb}`, group: name, via }, `topic group ${verb}`)
      deps.events.record({ type: state === 'running' ? 'group_started' : 'group_stopped', group: name, message: `topic group ${verb}${via === 'ureplicator' ? ' through the uReplicator API' : ''}` })
      deps.changed()
      return record
    },
    async delete(name, via) {
      await store.deleteGroup(name)
      logger.info({ event: 'controller.group_deleted', group: name, via }, 'topic group deleted')
      deps.events.record({ type: 'group_deleted', group: name, message: `topic group deleted${via === 'ureplicator' ? ' through the uReplicator API' : ''}` })
      deps.changed()
    },

    async view(name) {
      const group = await get(name)
      const [status, { assignments, reports }] = await Promise.all([store.getStatus(name), sampleServed()])
      const spec = group.spec
      const rows: PartitionRow[] = []
      for (const [worker, record] of assignments) {
        for (const p of record.value.partitions) {
          if (p.group !== name) continue
          const own = reports.get(partitionKey(p))?.find((r) => r.worker === worker)
          rows.push({
            topic: p.topic,
            partition: p.partition,
            targetTopic: targetTopicName(spec, p.topic),
            worker,
            state: own ? (own.state ?? 'unknown') : 'starting',
            position: own?.position ?? null,
            deadLettered: own?.deadLettered ?? 0,
            recordsMirrored: own?.recordsMirrored ?? 0,
            recordsPerSec: own?.recordsPerSec ?? 0,
            bytesPerSec: own?.bytesPerSec ?? 0,
            ...(own?.error ? { error: own.error } : {}),
            ...(typeof own?.targetEnd === 'number' ? { targetEnd: own.targetEnd } : {}),
            served: 'serving',
          })
        }
      }
      rows.sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)

      // Lag = source last stable offset (the end of what can be mirrored now) − mirrored position, read live.
      let lagError: { code: string; message: string } | undefined
      if (rows.length > 0 && (await store.getCluster(spec.sourceCluster)) !== null) {
        try {
          const offsets = await sourceEnds(spec, [...new Set(rows.map((r) => r.topic))])
          for (const row of rows) {
            const end = offsets.get(commonPartitionKey(row))
            // The end mirroring can reach now (equals the high watermark unless a source transaction is open), as the lag.
            row.highWatermark = end?.stable ?? null
            row.lag = end !== undefined && typeof row.position === 'number' ? Math.max(0, end.stable - row.position) : null
          }
        } catch (error) {
          const ferry = error instanceof FerryError ? error : new FerryError('KAFKA_ERROR', errorMessage(error))
          lagError = { code: ferry.code, message: ferry.message }
        }
      }
      const target = await store.getCluster(spec.targetCluster)
      if (target !== null && rows.length > 0) lagError ??= await checkTargetEnds(rows, deps.admins.get(target.value))
      for (const row of rows) {
        const p = { group: name, topic: row.topic, partition: row.partition }
        const stalledMs = progress.stalledForMs(p, row.worker)
        row.served = classifyServed({ assignedWorker: row.worker, reports: reports.get(partitionKey(p)) ?? [], stalledMs, sourceEnd: row.highWatermark, stallThresholdMs: DRIFT_GRACE_MS })
        if (row.served !== 'serving') row.sinceMs = Math.max(notServed.notServedForMs(p), row.served === 'no_progress' ? stalledMs : 0)
      }
      const unservedPastGrace = rows.filter((r) => (r.sinceMs ?? 0) > DRIFT_GRACE_MS).length
      const errors = [status?.error, lagError, ...rows.map((r) => r.error)].filter((e) => e !== undefined)
      const totalLag = rows.every((r) => typeof r.lag === 'number') ? rows.reduce((sum, r) => sum + Number(r.lag), 0) : null
      return {
        name,
        state: group.state,
        spec,
        createdAt: group.createdAt,
        updatedAt: group.updatedAt,
        status: {
          healthy: errors.length === 0 && unservedPastGrace === 0,
          ...(status?.error ? { error: status.error } : {}),
          ...(lagError ? { lagError } : {}),
          observedAt: status?.observedAt ?? null,
          topics: status?.topics ?? {},
          ...(status?.droppedTopics && status.droppedTopics.length > 0 ? { droppedTopics: status.droppedTopics } : {}),
          ...(status?.quarantined && status.quarantined.length > 0 ? { quarantined: status.quarantined } : {}),
          ...(status?.followErrors && status.followErrors.length > 0 ? { followErrors: status.followErrors } : {}),
          assignedPartitions: rows.length,
          recordsMirrored: rows.reduce((sum, r) => sum + r.recordsMirrored, 0),
          lag: totalLag,
          drift: countDrift(rows.map((r) => r.served)),
          unservedPastGrace,
        },
        partitions: rows,
      }
    },

    async audit(name, { fromMs, toMs, bucketMs }) {
      const spec = (await get(name)).spec
      const [source, target] = await Promise.all([store.getCluster(spec.sourceCluster), store.getCluster(spec.targetCluster)])
      if (source === null || target === null) throw new FerryError('CLUSTER_NOT_FOUND', `a cluster of group "${name}" is not registered`)
      let report: AuditReport
      try {
        // What the group covers on the source now, also when it is stopped.
        const topics = Object.keys((await discoverPartitions(spec, deps.admins.get(source.value))).topics)
        report = await auditGroup({
          group: spec,
          topics,
          source: { cluster: source.value, admin: deps.admins.get(source.value) },
          target: { cluster: target.value, admin: deps.admins.get(target.value) },
          sourceConsumer: deps.admins.clients.sourceConsumer,
          fromMs,
          toMs,
          bucketMs,
          logger,
        })
      } catch (error) {
        // A cluster that cannot be reached or read (down, misconfigured, refusing our credentials)
        // is a dependency failing, not a bug of ours: 503 with what went wrong.
        const ferry = error instanceof FerryError ? error : new FerryError('KAFKA_ERROR', errorMessage(error))
        if ((HTTP_STATUS_BY_CODE[ferry.code] ?? 500) < 500 || isProgrammerError(error)) throw error
        throw new FerryError('UNAVAILABLE', `cannot audit topic group "${name}": its clusters ("${spec.sourceCluster}", "${spec.targetCluster}") cannot be read now (${ferry.code}: ${ferry.message})`, { cause: error, details: { code: ferry.code } })
      }
      // Latency comes from the workers: they saw when the target acknowledged each record.
      const counts = emptyLatencyCounts()
      let maxMs: number | null = null
      for (const p of workerReports(await instances()).values()) {
        if (p.group !== name || !Array.isArray(p.latencyCounts)) continue
        addLatencyCounts(counts, p.latencyCounts)
        maxMs = Math.max(maxMs ?? 0, p.latencyMaxMs ?? 0)
      }
      report.latency = summariseLatency(counts, maxMs)
      logger.info({ event: 'controller.audit', group: name, source: report.source, target: report.target, missing: report.missing, duplicates: report.duplicates }, 'audit done')
      return report
    },

    instances,
    serving,

    async noProgress(thresholdMs, filter) {
      const rows = await serving(filter)
      const stalled = rows.filter((r) => r.position !== null && progress.stalledForMs(r, r.idealWorker) >= thresholdMs)
      if (stalled.length === 0) return []
      // Only where the source has records past the position: an idle partition is not stuck.
      const specs = new Map((await store.listGroups()).map((g) => [g.value.spec.name, g.value.spec]))
      const result: NoProgressRow[] = []
      const byGroup = new Map<string, ServingRow[]>()
      for (const r of stalled) byGroup.set(r.group, [...(byGroup.get(r.group) ?? []), r])
      for (const [group, groupRows] of byGroup) {
        const spec = specs.get(group)
        if (spec === undefined) continue
        let ends: Map<string, StableOffsets>
        try {
          ends = await sourceEnds(spec, [...new Set(groupRows.map((r) => r.topic))])
        } catch (error) {
          logger.warn({ event: 'controller.noprogress_source_unreadable', group, err: errorMessage(error) }, 'cannot read source end offsets for no-progress check')
          continue
        }
        for (const r of groupRows) {
          const end = ends.get(commonPartitionKey(r))
          if (end === undefined || r.position === null || end.stable <= r.position) continue
          result.push({ group, topic: r.topic, partition: r.partition, idealWorker: r.idealWorker, actualWorker: r.actualWorker, position: r.position, highWatermark: end.stable, stalledMs: progress.stalledForMs(r, r.idealWorker) })
        }
      }
      return result
    },

    async workload(filter = () => true) {
      const [assignments, live] = await Promise.all([store.listAssignments(), instances()])
      const reports = workerReports(live)
      const workers: WorkerWorkload[] = []
      for (const instance of live.filter((i) => i.role === 'worker')) {
        const assigned = (assignments.get(instance.id)?.value.partitions ?? []).filter((p) => filter(p.group))
        const own = [...reports.values()].filter((r) => r.worker === instance.id && filter(r.group))
        workers.push({
          workerId: instance.id,
          numberOfTopicPartitions: assigned.length,
          totalWorkload: {
            bytesPerSecond: own.reduce((sum, r) => sum + (r.bytesPerSec ?? 0), 0),
            msgsPerSecond: own.reduce((sum, r) => sum + (r.recordsPerSec ?? 0), 0),
            partitions: assigned.length,
          },
          laggingTopicPartition: [],
        })
      }
      return workers
    },

    async drift() {
      const { assignments, reports } = await sampleServed()
      const specs = new Map((await store.listGroups()).map((g) => [g.value.spec.name, g.value.spec]))
      const rows = [...assignments].flatMap(([worker, record]) =>
        record.value.partitions.map((p) => ({ p, input: { assignedWorker: worker, reports: reports.get(partitionKey(p)) ?? [], stalledMs: progress.stalledForMs(p, worker), stallThresholdMs: DRIFT_GRACE_MS } })),
      )
      // Source ends only for topics with a position that stood still (stuck or idle): a moving one needs none.
      const ends = new Map<string, StableOffsets>()
      const stalledByGroup = new Map<string, Set<string>>()
      for (const { p, input } of rows) if (mayBeStalled(input)) stalledByGroup.set(p.group, (stalledByGroup.get(p.group) ?? new Set()).add(p.topic))
      for (const [group, topics] of stalledByGroup) {
        const spec = specs.get(group)
        if (spec === undefined) continue
        try {
          for (const [key, end] of await sourceEnds(spec, [...topics])) ends.set(`${group}/${key}`, end)
        } catch (error) {
          logger.warn({ event: 'controller.drift_source_unreadable', group, err: errorMessage(error) }, 'cannot read source end offsets for the drift count')
        }
      }
      if (rows.length === 0) return emptyDriftCounts()
      return countDrift(rows.map(({ p, input }) => classifyServed({ ...input, sourceEnd: ends.get(partitionKey(p))?.stable })))
    },

    stop() {
      if (timer) clearInterval(timer)
    },
  }
  return service
}
