/**
 * The /v1 API and the operations routes (probes, metrics, the OpenAPI document), one declaration
 * each (controller/route.ts): what each takes, what it answers and how. Group use cases are the
 * groups service's; these handlers only translate between HTTP and it.
 *
 * @example
 *   registerRoutes(app, V1_ROUTES, ctx)
 */
import { z } from 'zod'
import {
  assignmentsSchema,
  auditSchema,
  clustersSchema,
  clusterViewSchema,
  consumerOffsetsSchema,
  failoverSchema,
  eventsSchema,
  groupStateChangeSchema,
  groupsSchema,
  groupSummarySchema,
  groupViewSchema,
  historySchema,
  nodesSchema,
  readySchema,
  rebalanceSchema,
  workersSchema,
} from '../common/api-schemas.js'
import { checkTopicGroup, clusterSchema, nameSchema, redactCluster, topicGroupFieldsSchema } from '../common/config.js'
import { withinMs } from '../common/deadline.js'
import { FerryError, errorMessage } from '../common/errors.js'
import { listInstances } from '../common/registry.js'
import { DEFAULT_EVENT_CAPACITY, type EventType } from './events.js'
import { MINUTE_MS } from './history.js'
import { openApiDocument, openApiDocumentSchema } from './openapi.js'
import { defineRoute, jsonOk, type ApiRoute } from './route.js'

/** `work`, or a failure once `ms` passed (ZooKeeper calls wait for a reconnect without a session). */
function within<T>(work: Promise<T>, ms: number): Promise<T> {
  return withinMs(work, ms, () => new Error(`no answer within ${ms} ms (reconnecting?)`))
}

const nameParam = z.object({ name: nameSchema.openapi({ description: 'Cluster or topic-group name' }) })
const wholeNumber = /^\d+$/
/** A time in a query: milliseconds since the epoch or an ISO-8601 time, as milliseconds. */
const timeText = z
  .string()
  .refine((t) => wholeNumber.test(t) || Number.isFinite(Date.parse(t)), 'must be milliseconds since the epoch or an ISO-8601 time')
  .transform((t) => (wholeNumber.test(t) ? Number(t) : Date.parse(t)))
  .openapi({ description: 'Milliseconds since the epoch or an ISO-8601 time', example: '2026-01-31T12:00:00Z' })
const clusterBody = clusterSchema.openapi('Cluster', { description: 'A Kafka cluster. Inline SASL passwords are accepted but never returned (prefer passwordFile or passwordEnv).' })
const groupBody = topicGroupFieldsSchema
  .extend({ start: z.boolean({ invalid_type_error: 'must be true or false' }).optional().openapi({ description: 'Start mirroring right away (default true)' }) })
  .superRefine(checkTopicGroup)
  .openapi('TopicGroupRequest', { description: 'A topic group; exactly one of topics or topicPattern.' })
const eventLimit = z
  .string()
  .regex(wholeNumber, `must be a whole number from 1 to ${DEFAULT_EVENT_CAPACITY}`)
  .transform(Number)
  .refine((n) => n >= 1 && n <= DEFAULT_EVENT_CAPACITY, `must be a whole number from 1 to ${DEFAULT_EVENT_CAPACITY}`)

/** A history step: whole milliseconds, or a number of seconds, minutes or hours ("5m"); whole minutes. */
const STEP = /^(\d+)(ms|s|m|h)?$/
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60000, h: 3600000 }
const historyStep = z
  .string()
  .regex(STEP, 'must be milliseconds or a duration such as 60s, 5m or 1h')
  .transform((t) => {
    const [, n, unit] = STEP.exec(t) as RegExpExecArray
    return Number(n) * (UNIT_MS[unit ?? 'ms'] ?? 1)
  })
  .refine((ms) => ms >= MINUTE_MS && ms % MINUTE_MS === 0, 'must be a whole number of minutes (60000 ms, 1m, ...)')
  .openapi({ description: 'Width of each point: milliseconds or a duration (60s, 5m, 1h); a whole number of minutes, default 1m', example: '5m' })
/** Most points one history answer holds: a week at one per minute. */
const MAX_HISTORY_POINTS = 10080
/** Events drawn on a group's history: deployment-wide moves and membership, and the group's own. */
const HISTORY_EVENT_TYPES: ReadonlySet<EventType> = new Set(['rebalance', 'worker_joined', 'worker_left', 'worker_quarantined', 'group_error', 'group_created', 'group_started', 'group_stopped'])

const deleted = { 204: { description: 'Deleted' } }

const operations: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/healthz',
    tag: 'operations',
    open: true,
    summary: 'Liveness',
    responses: jsonOk('The process is up', z.object({ status: z.literal('ok') })),
    handler: async () => ({ status: 200, body: { status: 'ok' as const } }),
  }),
  defineRoute({
    method: 'get',
    path: '/readyz',
    tag: 'operations',
    open: true,
    summary: 'Readiness: ZooKeeper, Redis, leader, frozen rebalancing',
    responses: { ...jsonOk('Ready', readySchema), 503: { description: 'Not ready (body says why)', schema: readySchema } },
    handler: async (_input, ctx) => {
      const checks: Record<string, string> = {}
      let ready = true
      try {
        // Bounded: without a session a ZooKeeper call may wait for the reconnect.
        await within(ctx.zk.exists('/'), 1000)
        checks.zookeeper = 'ok'
      } catch (error) {
        checks.zookeeper = errorMessage(error)
        ready = false
      }
      try {
        await ctx.redis.ping()
        checks.redis = 'ok'
      } catch (error) {
        checks.redis = `unreachable: ${errorMessage(error)}`
        ready = false
      }
      const frozen = ctx.reconciler.frozenReason()
      if (frozen !== null) checks.rebalancing = frozen
      const leader = await within(ctx.election.leader(), 1000).catch(() => null)
      const isLeader = ctx.election.isLeader()
      return { status: ready ? 200 : 503, body: { ready, api: ctx.access, leader: leader?.id ?? null, isLeader, ...(isLeader ? { epoch: ctx.election.epoch() } : {}), checks } }
    },
  }),
  defineRoute({
    method: 'get',
    path: '/metrics',
    tag: 'operations',
    summary: 'Prometheus metrics',
    responses: { 200: { description: 'Prometheus text exposition', mediaType: 'text/plain', schema: z.string() } },
    handler: async (_input, ctx) => ({ status: 200, body: await ctx.registry.metrics(), contentType: ctx.registry.contentType }),
  }),
  defineRoute({
    method: 'get',
    path: '/v1/openapi.json',
    tag: 'operations',
    summary: 'This document',
    responses: jsonOk('OpenAPI 3 document', openApiDocumentSchema),
    handler: async (_input, ctx) => ({ status: 200, body: openApiDocument(ctx.routes) }),
  }),
]

const clusters: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/v1/clusters',
    tag: 'clusters',
    summary: 'List clusters (secrets hidden)',
    responses: jsonOk('Clusters', clustersSchema),
    handler: async (_input, ctx) => ({ status: 200, body: { clusters: (await ctx.store.listClusters()).map(redactCluster) } }),
  }),
  defineRoute({
    method: 'post',
    path: '/v1/clusters',
    tag: 'clusters',
    summary: 'Register a cluster',
    body: clusterBody,
    bodyName: 'cluster',
    responses: { 201: { description: 'Registered (secrets hidden)', schema: clusterViewSchema } },
    handler: async ({ body }, ctx) => {
      await ctx.store.createCluster(body)
      ctx.logger.info({ event: 'controller.cluster_created', cluster: body.name }, 'cluster registered')
      return { status: 201, body: redactCluster(body) }
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/clusters/:name',
    tag: 'clusters',
    summary: 'Show a cluster (secrets hidden)',
    params: nameParam,
    responses: jsonOk('The cluster', clusterViewSchema),
    handler: async ({ params }, ctx) => {
      const cluster = await ctx.store.getCluster(params.name)
      if (cluster === null) throw new FerryError('CLUSTER_NOT_FOUND', `cluster "${params.name}" does not exist`)
      return { status: 200, body: redactCluster(cluster.value) }
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/v1/clusters/:name',
    tag: 'clusters',
    summary: 'Delete a cluster (409 while a group uses it)',
    params: nameParam,
    responses: deleted,
    handler: async ({ params }, ctx) => {
      await ctx.store.deleteCluster(params.name)
      return { status: 204 }
    },
  }),
]

// Topic groups: every use case is the groups service's (events, reconcile trigger, views).
const groups: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/v1/groups',
    tag: 'groups',
    summary: 'List topic groups',
    responses: jsonOk('Groups', groupsSchema),
    handler: async (_input, ctx) => ({ status: 200, body: { groups: await ctx.groups.list() } }),
  }),
  defineRoute({
    method: 'post',
    path: '/v1/groups',
    tag: 'groups',
    summary: 'Create a topic group',
    body: groupBody,
    bodyName: 'topic group',
    responses: { 201: { description: 'Created', schema: groupSummarySchema } },
    handler: async ({ body }, ctx) => {
      // `start` is a request option, not part of the group spec.
      const { start, ...spec } = body
      const record = await ctx.groups.create({ spec, ...(start === undefined ? {} : { start }), via: 'api' })
      return { status: 201, body: { name: record.spec.name, state: record.state, spec: record.spec } }
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/groups/:name',
    tag: 'groups',
    summary: 'Group status with per-partition worker, position, high watermark and lag',
    params: nameParam,
    responses: jsonOk('Status', groupViewSchema),
    handler: async ({ params }, ctx) => ({ status: 200, body: await ctx.groups.view(params.name) }),
  }),
  defineRoute({
    method: 'delete',
    path: '/v1/groups/:name',
    tag: 'groups',
    summary: 'Delete a topic group',
    params: nameParam,
    responses: deleted,
    handler: async ({ params }, ctx) => {
      await ctx.groups.delete(params.name, 'api')
      return { status: 204 }
    },
  }),
  ...(
    [
      ['start', 'running', 'Start a topic group', 'Started'],
      ['stop', 'stopped', 'Stop a topic group', 'Stopped'],
    ] as const
  ).map(([action, state, summary, description]) =>
    defineRoute({
      method: 'post',
      path: `/v1/groups/:name/${action}`,
      tag: 'groups',
      summary,
      params: nameParam,
      responses: jsonOk(description, groupStateChangeSchema),
      handler: async ({ params }, ctx) => {
        const record = await ctx.groups.setState(params.name, state, 'api')
        return { status: 200, body: { name: params.name, state: record.state } }
      },
    }),
  ),
  defineRoute({
    method: 'get',
    path: '/v1/groups/:name/audit',
    tag: 'groups',
    summary: 'Audit: records at the source and the target per topic and time bucket',
    params: nameParam,
    query: z.object({
      from: timeText.optional(),
      to: timeText.optional(),
      bucketMs: z
        .string()
        .regex(wholeNumber, 'must be a whole number of milliseconds')
        .transform(Number)
        .refine((ms) => ms >= 1000, 'must be at least 1000')
        .optional(),
    }),
    responses: jsonOk('Audit report', auditSchema),
    handler: async ({ params, query }, ctx) => {
      const now = Date.now()
      const window = { fromMs: query.from ?? now - 3600000, toMs: query.to ?? now, bucketMs: query.bucketMs ?? 60000 }
      if (window.toMs <= window.fromMs) throw new FerryError('INVALID_INPUT', `to (${window.toMs}) must be after from (${window.fromMs})`, { details: [{ field: 'to', message: 'must be after from' }] })
      const report = await ctx.groups.audit(params.name, window)
      ctx.audit.missing.set({ group: params.name }, report.missing)
      ctx.audit.duplicates.set({ group: params.name }, report.duplicates)
      return { status: 200, body: report }
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/groups/:name/history',
    tag: 'groups',
    summary: "History: records/s, bytes/s, lag and end-to-end latency per minute (48 h kept), with the events of the window",
    params: nameParam,
    query: z.object({
      from: timeText.optional().openapi({ description: 'Start (default 6 h before to)' }),
      to: timeText.optional().openapi({ description: 'End, excluded (default now)' }),
      step: historyStep.optional(),
      topic: z.string().regex(/^[a-zA-Z0-9._-]{1,249}$/, 'must be a Kafka topic name (letters, digits, ".", "_", "-")').optional().openapi({ description: "One topic's series instead of the group's" }),
    }),
    responses: jsonOk('History', historySchema),
    handler: async ({ params, query }, ctx) => {
      const toMs = query.to ?? Date.now()
      const fromMs = query.from ?? toMs - 6 * 3600000
      const stepMs = query.step ?? MINUTE_MS
      if (toMs <= fromMs) throw new FerryError('INVALID_INPUT', `to (${toMs}) must be after from (${fromMs})`, { details: [{ field: 'to', message: 'must be after from' }] })
      if ((toMs - fromMs) / stepMs > MAX_HISTORY_POINTS) {
        throw new FerryError('INVALID_INPUT', `from..to at this step is more than ${MAX_HISTORY_POINTS} points: use a larger step`, { details: [{ field: 'step', message: `too small for the window: at most ${MAX_HISTORY_POINTS} points` }] })
      }
      // 404 for a group that does not exist (its history, if any, goes with its key's TTL).
      await ctx.groups.get(params.name)
      const [points, events] = await Promise.all([
        ctx.history.read(params.name, { fromMs, toMs, stepMs, ...(query.topic === undefined ? {} : { topic: query.topic }) }),
        ctx.events.list(DEFAULT_EVENT_CAPACITY),
      ])
      const marks = events
        .filter((e) => HISTORY_EVENT_TYPES.has(e.type) && (e.group === undefined || e.group === params.name))
        .filter((e) => {
          const at = Date.parse(e.at)
          return at >= fromMs && at < toMs
        })
        .sort((a, b) => Date.parse(a.at) - Date.parse(b.at))
      return { status: 200, body: { group: params.name, ...(query.topic === undefined ? {} : { topic: query.topic }), fromMs, toMs, stepMs, retentionMs: ctx.history.retentionMs, points, events: marks } }
    },
  }),
]

const consumerGroupList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .pipe(z.array(z.string().min(1).max(255)).max(1000))

/** Consumer groups on the target (docs/disaster-recovery.md): translations, and the failover. */
const consumerOffsetRoutes: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/v1/groups/:name/consumer-offsets',
    tag: 'groups',
    summary: "Consumer groups' committed source offsets translated to target offsets (exact, from the workers' offset syncs), and the continuous sync's state",
    params: nameParam,
    query: z.object({ consumerGroup: consumerGroupList.optional().openapi({ description: "Consumer groups to translate (repeatable); default the group's consumerGroups" }) }),
    responses: jsonOk('Translations', consumerOffsetsSchema),
    handler: async ({ params, query }, ctx) => ({ status: 200, body: await ctx.consumerOffsets.translations(params.name, query.consumerGroup) }),
  }),
  defineRoute({
    method: 'post',
    path: '/v1/groups/:name/failover',
    tag: 'groups',
    summary: "Failover: commits the translated offsets of consumer groups on the target at once (all or nothing: refused while any has members on the target)",
    params: nameParam,
    body: z
      .object({
        consumerGroups: z.array(z.string().min(1).max(255)).max(1000).optional().openapi({ description: "Default the group's consumerGroups" }),
        dryRun: z.boolean().default(false),
      })
      .strict(),
    responses: jsonOk('What was (or, dry run, would be) committed per partition', failoverSchema),
    handler: async ({ params, body }, ctx) => ({ status: 200, body: await ctx.consumerOffsets.failover(params.name, { ...(body.consumerGroups === undefined ? {} : { consumerGroups: body.consumerGroups }), dryRun: body.dryRun }) }),
  }),
]

const workers: ApiRoute[] = [
  defineRoute({
    method: 'get',
    path: '/v1/workers',
    tag: 'workers',
    summary: 'Live workers and controllers with their load',
    responses: jsonOk('Instances', workersSchema),
    handler: async (_input, ctx) => {
      const instances = await listInstances(ctx.redis, ctx.keys)
      const withLoad = instances
        .filter((i) => i.role === 'worker')
        .map((i) => {
          const partitions = i.metrics?.partitions ?? []
          return {
            ...i,
            load: {
              partitions: partitions.length,
              bytesPerSec: Math.round(partitions.reduce((sum, p) => sum + p.bytesPerSec, 0)),
              recordsPerSec: Math.round(partitions.reduce((sum, p) => sum + p.recordsPerSec, 0)),
            },
          }
        })
      return { status: 200, body: { workers: withLoad, controllers: instances.filter((i) => i.role === 'controller').map((i) => ({ ...i })) } }
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/nodes',
    tag: 'workers',
    summary: "Node status: per worker and controller, reachable, process running, probe answered, with the reason when not",
    query: z.object({
      fresh: z.enum(['true', 'false']).optional().openapi({ description: "true: check now on this controller instead of answering the leader's last round" }),
    }),
    responses: jsonOk('Nodes', nodesSchema),
    handler: async ({ query }, ctx) => ({ status: 200, body: await ctx.nodes.view({ fresh: query.fresh === 'true' }) }),
  }),
  defineRoute({
    method: 'get',
    path: '/v1/assignments',
    tag: 'workers',
    summary: 'Assignments per worker',
    responses: jsonOk('Assignments', assignmentsSchema),
    handler: async (_input, ctx) => {
      const assignments = await ctx.store.listAssignments()
      return { status: 200, body: { assignments: Object.fromEntries([...assignments].map(([worker, record]) => [worker, record.value])) } }
    },
  }),
  defineRoute({
    method: 'get',
    path: '/v1/events',
    tag: 'workers',
    summary: 'Recent events (rebalances, workers joining or leaving, group changes and errors), newest first',
    query: z.object({ limit: eventLimit.optional() }),
    responses: jsonOk('Events', eventsSchema),
    handler: async ({ query }, ctx) => ({ status: 200, body: { events: await ctx.events.list(query.limit ?? 100) } }),
  }),
  defineRoute({
    method: 'post',
    path: '/v1/rebalance',
    tag: 'workers',
    summary: 'Run a reconcile pass on the leader, or show its plan with dryRun=true',
    query: z.object({ dryRun: z.enum(['true', 'false']).optional() }),
    responses: jsonOk('Plan or result', rebalanceSchema),
    handler: async ({ query }, ctx) => {
      if (query.dryRun === 'true') return { status: 200, body: { dryRun: true, ...(await ctx.reconciler.dryRun()) } }
      if (!ctx.election.isLeader()) {
        const leader = await within(ctx.election.leader(), 1000).catch(() => null)
        throw new FerryError('NOT_LEADER', `this controller is not the leader; send the request to ${leader?.url ?? 'the leader (none elected yet)'}`, {
          details: { leader: leader?.id ?? null, url: leader?.url ?? null },
        })
      }
      return { status: 200, body: { dryRun: false, ...(await ctx.reconciler.pass()) } }
    },
  }),
]

/** The operations routes and the /v1 API, in the order of the OpenAPI document. */
export const V1_ROUTES: readonly ApiRoute[] = [...operations, ...clusters, ...groups, ...consumerOffsetRoutes, ...workers]
