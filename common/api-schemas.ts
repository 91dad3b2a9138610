/**
 * What the controller's REST API answers, as zod schemas: the route declarations
 * (controller/api-routes.ts, controller/ureplicator.ts) document their responses with these, the
 * contract test parses real responses with them, and the clients (cli/, the dashboard in ui/)
 * import the types below, type-only, instead of declaring their own copies. This module imports
 * nothing but zod and common/config.ts so that the dashboard's browser build can type-check it.
 *
 * @example
 *   import type { GroupView } from '../common/api-schemas.js'
 *   const view = await api.get<GroupView>('/v1/groups/orders')
 */
import { extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi'
import { z } from 'zod'
import { securityProtocols, topicGroupFieldsSchema } from './config.js'

extendZodWithOpenApi(z)

export const errorBodySchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'INVALID_INPUT' }),
      message: z.string(),
      details: z.array(z.object({ field: z.string(), message: z.string() })).optional().openapi({ description: 'Every problem, by the field it is about (body fields as dotted paths, or a parameter, header or "(body)")' }),
    }),
  })
  .openapi('Error')

const problemSchema = z.object({ code: z.string(), message: z.string() })
export const assignedPartitionSchema = z.object({ group: z.string(), topic: z.string(), partition: z.number().int() })
const groupStateSchema = z.enum(['running', 'stopped'])
const topicGroupView = topicGroupFieldsSchema.openapi('TopicGroup')

/** How an assigned partition is served (controller/served.ts holds the same list as SERVED_KINDS). */
export const servedKindSchema = z.enum(['serving', 'not_reported', 'reported_by_other', 'no_progress'])

export const partitionRowSchema = z.object({
  topic: z.string(),
  partition: z.number().int(),
  targetTopic: z.string(),
  worker: z.string(),
  state: z.string(),
  position: z.number().int().nullable(),
  deadLettered: z.number().int(),
  /** Records of this partition mirrored so far, by every owner (carried in the checkpoints). */
  recordsMirrored: z.number().int(),
  recordsPerSec: z.number(),
  bytesPerSec: z.number(),
  error: problemSchema.optional(),
  targetEnd: z.number().int().optional(),
  targetHighWatermark: z.number().int().nullable().optional(),
  highWatermark: z.number().int().nullable().optional(),
  lag: z.number().int().nullable().optional(),
  served: servedKindSchema.openapi({ description: 'serving: the assigned worker mirrors it, position advancing or caught up; not_reported: no worker reports it; reported_by_other: another worker (a stale owner) reports it; no_progress: the assigned worker reports it but is not mirroring, or its position stands still while the source has records past it' }),
  sinceMs: z.number().int().optional().openapi({ description: 'How long it has not been served, as this controller watched it (absent when serving)' }),
})

export const groupSummarySchema = z.object({ name: z.string(), state: groupStateSchema, spec: topicGroupView })

export const groupsSchema = z.object({ groups: z.array(groupSummarySchema) })

export const groupViewSchema = groupSummarySchema
  .extend({
    createdAt: z.string(),
    updatedAt: z.string(),
    status: z.object({
      healthy: z.boolean(),
      error: problemSchema.optional(),
      lagError: problemSchema.optional(),
      observedAt: z.string().nullable(),
      topics: z.record(z.number().int()),
      droppedTopics: z.array(z.string()).optional(),
      quarantined: z.array(z.object({ worker: z.string(), reason: z.string(), since: z.string(), until: z.string() })).optional().openapi({ description: 'Workers kept away from the group for holding its partitions without progress' }),
      followErrors: z
        .array(z.object({ kind: z.enum(['config', 'acl']), topic: z.string().optional(), targetTopic: z.string().optional(), config: z.string().optional(), principal: z.string().optional(), message: z.string() }))
        .optional()
        .openapi({ description: 'Topic configs and ACLs the follow sync could not carry to the target at its last run (docs/disaster-recovery.md); they do not make the group unhealthy' }),
      assignedPartitions: z.number().int(),
      /** Sum of recordsMirrored over the partitions' current owners. */
      recordsMirrored: z.number().int(),
      lag: z.number().int().nullable(),
      drift: z.object({ not_reported: z.number().int(), reported_by_other: z.number().int(), no_progress: z.number().int() }).openapi({ description: "Assigned partitions per kind of drift (see the partitions' served)" }),
      unservedPastGrace: z.number().int().openapi({ description: "Partitions not served for longer than the controller's drift grace; any makes the group unhealthy" }),
    }),
    partitions: z.array(partitionRowSchema),
  })
  .openapi('GroupStatus')

export const groupStateChangeSchema = z.object({ name: z.string(), state: groupStateSchema })

/** A worker's own report of one partition, as it appears in a worker's `metrics.partitions` (see GET /v1/workers). */
export const workerPartitionReportSchema = z
  .object({
    group: z.string(),
    topic: z.string(),
    partition: z.number().int(),
    position: z.number().int().optional(),
    state: z.string().optional(),
    recordsMirrored: z.number().optional(),
    recordsPerSec: z.number().optional(),
    bytesPerSec: z.number().optional(),
  })
  .passthrough()

const instanceSchema = z
  .object({
    id: z.string(),
    role: z.string(),
    host: z.string(),
    pid: z.number().int(),
    version: z.string(),
    startedAt: z.string(),
    lastHeartbeatAt: z.string(),
    zone: z.string().optional(),
    dc: z.string().optional(),
    url: z.string().optional(),
    healthUrl: z.string().optional().openapi({ description: "Bootstrap's probe listener (/healthz, /readyz), when it has one" }),
    metrics: z.unknown().openapi({ description: "What the instance last reported; a worker's has `partitions`, each as WorkerPartitionReport" }),
  })
  .passthrough()
export const workersSchema = z
  .object({ workers: z.array(instanceSchema.extend({ load: z.object({ partitions: z.number().int(), bytesPerSec: z.number(), recordsPerSec: z.number() }) })), controllers: z.array(instanceSchema) })
  .openapi('Instances')

export const assignmentsSchema = z.object({ assignments: z.record(z.object({ epoch: z.number().int(), leader: z.string(), partitions: z.array(assignedPartitionSchema) })) }).openapi('Assignments')

export const eventSchema = z.object({ at: z.string(), type: z.string(), message: z.string(), controller: z.string(), group: z.string().optional(), worker: z.string().optional(), moves: z.number().int().optional(), deferred: z.number().int().optional(), code: z.string().optional() })
export const eventsSchema = z.object({ events: z.array(eventSchema) }).openapi('Events')

export const historyPointSchema = z
  .object({
    t: z.number().int().openapi({ description: 'Start of the step, ms since the epoch' }),
    recordsPerSec: z.number().nullable().openapi({ description: 'Average over the samples of the step; null where nothing was sampled (no leader, Redis away, before the history began)' }),
    bytesPerSec: z.number().nullable(),
    lag: z.number().nullable().openapi({ description: 'Average lag (source last stable offset minus mirrored position, summed over partitions); null when the source could not be read' }),
    lagMax: z.number().nullable(),
    latencyP50Ms: z.number().nullable().openapi({ description: 'End-to-end latency of the records mirrored in the step, upper bound of the latency bucket holding the percentile' }),
    latencyP99Ms: z.number().nullable(),
    latencyRecords: z.number().int(),
    audit: z
      .object({
        source: z.number().int(),
        target: z.number().int(),
        missing: z.number().int().openapi({ description: 'Source records neither at the target nor dead-lettered; meaningful once final' }),
        duplicates: z.number().int(),
        deadLettered: z.number().int(),
        late: z.number().int().openapi({ description: 'Records read after the step was final (mirrored, or written at the source, more than the grace after their timestamp)' }),
        final: z.boolean().openapi({ description: 'Every minute of the step is past the grace: its figures no longer change but for late' }),
      })
      .nullable()
      .optional()
      .openapi({ description: "The continuous audit's figures of the records timestamped in the step (groups with `audit` on); null where it audited nothing" }),
  })
  .openapi('HistoryPoint')
export const historySchema = z
  .object({
    group: z.string(),
    topic: z.string().optional(),
    fromMs: z.number().int(),
    toMs: z.number().int(),
    stepMs: z.number().int(),
    retentionMs: z.number().int().openapi({ description: 'How far back the history reaches (48 h by default)' }),
    points: z.array(historyPointSchema),
    events: z.array(eventSchema).openapi({ description: 'Rebalances, workers joining or leaving, and this group\'s errors and state changes in the window, oldest first (as far back as the event log reaches)' }),
  })
  .openapi('GroupHistory')

const nodeCheckSchema = z.object({
  check: z.enum(['reachable', 'process', 'probe']),
  ok: z.boolean().nullable().openapi({ description: 'null: could not be checked (no probe port registered)' }),
  reason: z.string().openapi({ description: 'What was found, in words', example: 'probe /readyz timed out after 2 s' }),
})
export const nodeStatusSchema = z
  .object({
    id: z.string(),
    role: z.enum(['worker', 'controller']),
    host: z.string(),
    pid: z.number().int(),
    url: z.string().optional(),
    healthUrl: z.string().optional(),
    lastHeartbeatAt: z.string(),
    registered: z.boolean().openapi({ description: 'Whether it holds a lease in Redis now (false: remembered from an earlier round, its lease lapsed)' }),
    status: z.enum(['ok', 'failing', 'unknown']),
    checks: z.array(nodeCheckSchema),
  })
  .openapi('NodeStatus')
export const nodesSchema = z
  .object({
    checkedAt: z.string(),
    checkedBy: z.string().openapi({ description: 'The controller that ran the checks' }),
    intervalMs: z.number().int().openapi({ description: "Time between the leader's rounds" }),
    nodes: z.array(nodeStatusSchema),
  })
  .openapi('Nodes')

export const readySchema = z
  .object({ ready: z.boolean(), api: z.enum(['tokens', 'open', 'closed']), leader: z.string().nullable(), isLeader: z.boolean(), epoch: z.number().int().optional(), checks: z.record(z.string()) })
  .openapi('Readiness')

const moveSchema = z.object({ partition: assignedPartitionSchema, from: z.string().nullable(), to: z.string().nullable() })
export const rebalanceSchema = z
  .object({
    dryRun: z.boolean(),
    epoch: z.number().int().optional(),
    workers: z.array(z.string()).optional(),
    moves: z.union([z.array(moveSchema), z.number().int()]),
    deferred: z.number().int().optional(),
    unplaced: z.record(z.string()).optional(),
    assignments: z.record(z.array(assignedPartitionSchema)).optional(),
    writes: z.number().int().optional(),
    skipped: z.string().optional(),
  })
  .openapi('Rebalance')

const auditCounts = { source: z.number().int(), target: z.number().int(), missing: z.number().int(), duplicates: z.number().int(), deadLettered: z.number().int() }
export const auditSchema = z
  .object({
    group: z.string(),
    fromMs: z.number().int(),
    toMs: z.number().int(),
    bucketMs: z.number().int(),
    ...auditCounts,
    topics: z.array(z.object({ topic: z.string(), targetTopic: z.string(), ...auditCounts, buckets: z.array(z.object({ start: z.number().int(), ...auditCounts })) })),
    latency: z.object({ records: z.number().int(), p50Ms: z.number().nullable(), p99Ms: z.number().nullable(), maxMs: z.number().nullable() }).optional(),
  })
  .openapi('AuditReport')

export const clusterViewSchema = z
  .object({ name: z.string(), bootstrapServers: z.array(z.string()), securityProtocol: z.enum(securityProtocols).optional(), dc: z.string().optional(), zone: z.string().optional() })
  .passthrough()
  .openapi('ClusterView', { description: 'A cluster as registered, secrets hidden' })
export const clustersSchema = z.object({ clusters: z.array(clusterViewSchema) })

export const validationSchema = z
  .object({
    numTopics: z.number().int(),
    numTopicPartitions: z.number().int(),
    numOnlineTopicPartitions: z.number().int(),
    numOfflineTopicPartitions: z.number().int(),
    numErrorTopicPartitions: z.number().int(),
    numErrorTopics: z.number().int(),
    IdealState: z.record(z.number().int()),
    ExternalView: z.record(z.number().int()),
    mismatches: z.array(z.object({ group: z.string(), topic: z.string(), partition: z.number().int(), idealWorker: z.string(), actualWorker: z.string().nullable(), reportedBy: z.array(z.string()).openapi({ description: 'Every worker that reports the partition (a stale owner may report it beside its assigned worker)' }), state: z.string().nullable() })),
  })
  .openapi('UReplicatorValidation')

const workloadFigures = z.object({ bytesPerSecond: z.number(), msgsPerSecond: z.number(), partitions: z.number().int() })
export const workerWorkloadSchema = z.object({
  workerId: z.string(),
  numberOfTopicPartitions: z.number().int(),
  totalWorkload: workloadFigures,
  laggingTopicPartition: z.array(z.object({ topicName: z.string(), partitionId: z.number().int(), latestOffset: z.number().int(), commitOffset: z.number().int(), lag: z.number().int(), timeStamp: z.number().int() })),
})
export const workloadSchema = z
  .object({ autoBalancingEnabled: z.boolean(), numOfExpectedWorkers: z.number().int(), numOfLaggingWorkers: z.number().int(), topicWorkload: workloadFigures, workerInstances: z.array(workerWorkloadSchema) })
  .openapi('UReplicatorWorkload')

const workerStates = z.record(z.record(z.enum(['ONLINE', 'OFFLINE'])))
export const topicViewSchema = z
  .object({ topic: z.string(), group: z.string(), idealState: workerStates, externalView: workerStates, serverToPartitionMapping: workerStates, serverToNumPartitionsMapping: z.record(z.number().int()) })
  .openapi('UReplicatorTopicView')

export const noProgressRowSchema = z.object({
  group: z.string(),
  topic: z.string(),
  partition: z.number().int(),
  idealWorker: z.string(),
  actualWorker: z.string().nullable(),
  position: z.number().int(),
  highWatermark: z.number().int(),
  /** How long the reported position has not changed, as far as this controller has watched. */
  stalledMs: z.number().int(),
})
export const noProgressSchema = z.object({ topics: z.array(noProgressRowSchema).optional() }).openapi('UReplicatorNoProgress')

export const autoBalancingSchema = z.object({ auto_balancing: z.boolean() })

const offsetTranslationRowSchema = z.object({
  consumerGroup: z.string(),
  topic: z.string(),
  partition: z.number().int(),
  sourceOffset: z.number().int().openapi({ description: "The consumer group's committed offset on the source (the next record it reads)" }),
  targetTopic: z.string(),
  targetOffset: z.number().int().openapi({ description: 'The target offset of the first mirrored record at or after sourceOffset' }),
  exact: z.boolean().openapi({ description: 'True: the group resumes at its first uncommitted record (it re-reads only what it read after its last commit); false: it also re-reads records before it (see reason)' }),
  reason: z.string(),
  skipped: z.number().int().openapi({ description: 'Records the group would skip at targetOffset: always 0 (checked; a failover refuses otherwise)' }),
  targetCommitted: z.number().int().optional().openapi({ description: "The group's committed offset on the target now" }),
})
export const consumerOffsetsSchema = z
  .object({
    group: z.string(),
    consumerGroups: z.array(z.string()),
    partitions: z.array(offsetTranslationRowSchema),
    sync: z.array(z.object({ consumerGroup: z.string(), state: z.enum(['synced', 'has-members', 'failed']), message: z.string(), at: z.string() })).openapi({ description: "The continuous sync's last result per consumer group (on the leader)" }),
  })
  .openapi('ConsumerOffsets')
export const failoverSchema = z
  .object({
    group: z.string(),
    dryRun: z.boolean(),
    consumerGroups: z.array(z.string()),
    partitions: z.array(offsetTranslationRowSchema),
    skipped: z.number().int(),
    inexact: z.number().int().openapi({ description: 'Partitions whose translation is not exact' }),
    written: z.boolean(),
  })
  .openapi('Failover')

export type ErrorBody = z.infer<typeof errorBodySchema>
export type AssignedPartitionView = z.infer<typeof assignedPartitionSchema>
export type ServedKindView = z.infer<typeof servedKindSchema>
export type PartitionRow = z.infer<typeof partitionRowSchema>
export type GroupSummary = z.infer<typeof groupSummarySchema>
export type GroupsView = z.infer<typeof groupsSchema>
export type GroupView = z.infer<typeof groupViewSchema>
export type GroupStateChange = z.infer<typeof groupStateChangeSchema>
export type WorkerPartitionReport = z.infer<typeof workerPartitionReportSchema>
export type WorkersView = z.infer<typeof workersSchema>
export type InstanceView = WorkersView['controllers'][number] & { load?: WorkersView['workers'][number]['load'] }
export type AssignmentsView = z.infer<typeof assignmentsSchema>
export type FerryEventView = z.infer<typeof eventSchema>
export type EventsView = z.infer<typeof eventsSchema>
export type Readiness = z.infer<typeof readySchema>
export type NodeStatusView = z.infer<typeof nodeStatusSchema>
export type NodesView = z.infer<typeof nodesSchema>
export type HistoryPointView = z.infer<typeof historyPointSchema>
export type HistoryView = z.infer<typeof historySchema>
export type RebalanceView = z.infer<typeof rebalanceSchema>
export type AuditView = z.infer<typeof auditSchema>
export type ClusterView = z.infer<typeof clusterViewSchema>
export type ClustersView = z.infer<typeof clustersSchema>
export type ValidationView = z.infer<typeof validationSchema>
export type WorkerWorkload = z.infer<typeof workerWorkloadSchema>
export type WorkloadView = z.infer<typeof workloadSchema>
export type TopicView = z.infer<typeof topicViewSchema>
export type NoProgressRow = z.infer<typeof noProgressRowSchema>
export type NoProgressView = z.infer<typeof noProgressSchema>
export type ConsumerOffsetsView = z.infer<typeof consumerOffsetsSchema>
export type FailoverView = z.infer<typeof failoverSchema>
