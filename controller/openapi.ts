/**
 * The REST contract: one table of every route with the zod schemas of its path parameters,
 * query and body (the same schemas the handlers parse with, from common/config.ts), turned into
 * the OpenAPI 3 document served at /v1/openapi.json, and into a middleware that validates path
 * parameters and query strings before any handler runs. test/unit/openapi.test.ts checks that
 * this table and express's router list the same routes, both ways.
 *
 * @example
 *   app.use(validateRequest())                       // 400 naming the bad parameter
 *   app.get('/v1/openapi.json', (_req, res) => res.json(openApiDocument()))
 */
import { OpenAPIRegistry, OpenApiGeneratorV3, extendZodWithOpenApi } from '@asteasolutions/zod-to-openapi'
import type { NextFunction, Request, Response } from 'express'
import { z } from 'zod'
import { clusterSchema, nameSchema, parseOrThrow, topicGroupSchema, topicNameSchema } from '../common/config.js'
import { FerryError } from '../common/errors.js'
import { DRIFT_GRACE_MS, SERVED_KINDS } from './served.js'

extendZodWithOpenApi(z)

export type HttpMethod = 'get' | 'post' | 'put' | 'delete'

export interface ApiRoute {
  method: HttpMethod
  /** Express syntax: `/v1/groups/:name`. */
  path: string
  summary: string
  tag: string
  /** No token needed even when tokens are configured. */
  open?: boolean
  params?: z.AnyZodObject
  query?: z.AnyZodObject
  body?: z.ZodTypeAny
  /** Body media type when not JSON (the uReplicator API takes any). */
  bodyMediaType?: string
  /** Statuses whose refusal may come as uReplicator's plain text instead of the JSON error. */
  textRefusals?: readonly number[]
  /** Success responses: status → description (and schema when it is worth stating). */
  responses: Record<number, { description: string; schema?: z.ZodTypeAny; mediaType?: string }>
}

const errorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'INVALID_INPUT' }),
      message: z.string(),
      details: z.array(z.object({ field: z.string(), message: z.string() })).optional().openapi({ description: 'Every problem, by the field it is about (body fields as dotted paths, or a parameter, header or "(body)")' }),
    }),
  })
  .openapi('Error')

const nameParam = z.object({ name: nameSchema.openapi({ description: 'Cluster or topic-group name' }) })
const topicParam = z.object({ topic: topicNameSchema.openapi({ description: 'Source topic name' }) })
const timeText = z
  .string()
  .refine((t) => /^\d+$/.test(t) || Number.isFinite(Date.parse(t)), 'must be milliseconds since the epoch or an ISO-8601 time')
  .openapi({ description: 'Milliseconds since the epoch or an ISO-8601 time', example: '2026-01-31T12:00:00Z' })
const clusterBody = clusterSchema.openapi('Cluster', { description: 'A Kafka cluster. Inline SASL passwords are accepted but never returned (prefer passwordFile or passwordEnv).' })
const groupBody = topicGroupSchema
  .innerType()
  .extend({ start: z.boolean().optional().openapi({ description: 'Start mirroring right away (default true)' }) })
  .openapi('TopicGroupRequest', { description: 'A topic group; exactly one of topics or topicPattern.' })
const topicGroup = topicGroupSchema.innerType().openapi('TopicGroup')
const ureplicatorTopicBody = z
  .object({
    topic: topicNameSchema,
    numPartitions: z.union([z.number().int().positive(), z.string().regex(/^\d+$/, 'must be a positive whole number')]).optional(),
  })
  .passthrough()
  .openapi('UReplicatorTopic', { description: 'As uReplicator takes it (any content type, JSON text). numPartitions is informational: Ferry reads the partition count from the source.' })

const problem = z.object({ code: z.string(), message: z.string() })
const assigned = z.object({ group: z.string(), topic: z.string(), partition: z.number().int() })
const partitionRowSchema = z.object({
  topic: z.string(),
  partition: z.number().int(),
  targetTopic: z.string(),
  worker: z.string(),
  state: z.string(),
  position: z.number().int().nullable(),
  deadLettered: z.number().int(),
  recordsMirrored: z.number().int(),
  recordsPerSec: z.number(),
  bytesPerSec: z.number(),
  error: problem.optional(),
  targetEnd: z.number().int().optional(),
  targetHighWatermark: z.number().int().nullable().optional(),
  highWatermark: z.number().int().nullable().optional(),
  lag: z.number().int().nullable().optional(),
  served: z.enum(SERVED_KINDS).openapi({ description: 'serving: the assigned worker mirrors it, position advancing or caught up; not_reported: no worker reports it; reported_by_other: another worker (a stale owner) reports it; no_progress: the assigned worker reports it but is not mirroring, or its position stands still while the source has records past it' }),
  sinceMs: z.number().int().optional().openapi({ description: 'How long it has not been served, as this controller watched it (absent when serving)' }),
})
const groupViewSchema = z
  .object({
    name: z.string(),
    state: z.enum(['running', 'stopped']),
    spec: topicGroup,
    createdAt: z.string(),
    updatedAt: z.string(),
    status: z.object({
      healthy: z.boolean(),
      error: problem.optional(),
      lagError: problem.optional(),
      observedAt: z.string().nullable(),
      topics: z.record(z.number().int()),
      droppedTopics: z.array(z.string()).optional(),
      quarantined: z.array(z.object({ worker: z.string(), reason: z.string(), since: z.string(), until: z.string() })).optional(),
      assignedPartitions: z.number().int(),
      recordsMirrored: z.number().int(),
      lag: z.number().int().nullable(),
      drift: z.object({ not_reported: z.number().int(), reported_by_other: z.number().int(), no_progress: z.number().int() }).openapi({ description: 'Assigned partitions per kind of drift (see the partitions\' served)' }),
      unservedPastGrace: z.number().int().openapi({ description: `Partitions not served for longer than ${DRIFT_GRACE_MS / 1000} s; any makes the group unhealthy` }),
    }),
    partitions: z.array(partitionRowSchema),
  })
  .openapi('GroupStatus')
const instanceSchema = z
  .object({ id: z.string(), role: z.string(), host: z.string(), pid: z.number().int(), version: z.string(), startedAt: z.string(), lastHeartbeatAt: z.string(), zone: z.string().optional(), dc: z.string().optional(), url: z.string().optional(), metrics: z.unknown() })
  .passthrough()
const workersSchema = z
  .object({ workers: z.array(instanceSchema.extend({ load: z.object({ partitions: z.number().int(), bytesPerSec: z.number(), recordsPerSec: z.number() }) })), controllers: z.array(instanceSchema) })
  .openapi('Instances')
const assignmentsSchema = z.object({ assignments: z.record(z.object({ epoch: z.number().int(), leader: z.string(), partitions: z.array(assigned) })) }).openapi('Assignments')
const eventsSchema = z
  .object({
    events: z.array(z.object({ at: z.string(), type: z.string(), message: z.string(), controller: z.string(), group: z.string().optional(), worker: z.string().optional(), moves: z.number().int().optional(), deferred: z.number().int().optional(), code: z.string().optional() })),
  })
  .openapi('Events')
const readySchema = z
  .object({ ready: z.boolean(), api: z.enum(['tokens', 'open', 'closed']), leader: z.string().nullable(), isLeader: z.boolean(), epoch: z.number().int().optional(), checks: z.record(z.string()) })
  .openapi('Readiness')
const moveSchema = z.object({ partition: assigned, from: z.string().nullable(), to: z.string().nullable() })
const rebalanceSchema = z
  .object({ dryRun: z.boolean(), epoch: z.number().int().optional(), workers: z.array(z.string()).optional(), moves: z.union([z.array(moveSchema), z.number().int()]), deferred: z.number().int().optional(), unplaced: z.record(z.string()).optional(), assignments: z.record(z.array(assigned)).optional(), writes: z.number().int().optional(), skipped: z.string().optional() })
  .openapi('Rebalance')
const auditCounts = { source: z.number().int(), target: z.number().int(), missing: z.number().int(), duplicates: z.number().int(), deadLettered: z.number().int() }
const auditSchema = z
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
const clusterView = z.object({ name: z.string(), bootstrapServers: z.array(z.string()) }).passthrough().openapi('ClusterView', { description: 'A cluster as registered, secrets hidden' })

const validationSchema = z
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
const workloadSchema = z
  .object({
    autoBalancingEnabled: z.boolean(),
    numOfExpectedWorkers: z.number().int(),
    numOfLaggingWorkers: z.number().int(),
    topicWorkload: z.object({ bytesPerSecond: z.number(), msgsPerSecond: z.number(), partitions: z.number().int() }),
    workerInstances: z.array(
      z.object({
        workerId: z.string(),
        numberOfTopicPartitions: z.number().int(),
        totalWorkload: z.object({ bytesPerSecond: z.number(), msgsPerSecond: z.number(), partitions: z.number().int() }),
        laggingTopicPartition: z.array(z.object({ topicName: z.string(), partitionId: z.number().int(), latestOffset: z.number().int(), commitOffset: z.number().int(), lag: z.number().int(), timeStamp: z.number().int() })),
      }),
    ),
  })
  .openapi('UReplicatorWorkload')
const workerStates = z.record(z.record(z.enum(['ONLINE', 'OFFLINE'])))
const topicViewSchema = z
  .object({ topic: z.string(), group: z.string(), idealState: workerStates, externalView: workerStates, serverToPartitionMapping: workerStates, serverToNumPartitionsMapping: z.record(z.number().int()) })
  .openapi('UReplicatorTopicView')
const noProgressSchema = z
  .object({
    topics: z
      .array(z.object({ group: z.string(), topic: z.string(), partition: z.number().int(), idealWorker: z.string(), actualWorker: z.string().nullable(), position: z.number().int(), highWatermark: z.number().int(), stalledMs: z.number().int() }))
      .optional(),
  })
  .openapi('UReplicatorNoProgress')

const ok = (description: string, schema?: z.ZodTypeAny) => ({ 200: { description, ...(schema ? { schema } : {}) } })
const text = (description: string) => ({ 200: { description, mediaType: 'text/plain', schema: z.string() } })

/** Every route the controller serves under the API (the dashboard under /ui is not part of it). */
export const API_ROUTES: readonly ApiRoute[] = [
  { method: 'get', path: '/healthz', tag: 'operations', open: true, summary: 'Liveness', responses: ok('The process is up', z.object({ status: z.literal('ok') })) },
  { method: 'get', path: '/readyz', tag: 'operations', open: true, summary: 'Readiness: ZooKeeper, Redis, leader, frozen rebalancing', responses: { ...ok('Ready', readySchema), 503: { description: 'Not ready (body says why)', schema: readySchema } } },
  { method: 'get', path: '/metrics', tag: 'operations', summary: 'Prometheus metrics', responses: { 200: { description: 'Prometheus text exposition', mediaType: 'text/plain', schema: z.string() } } },
  { method: 'get', path: '/v1/openapi.json', tag: 'operations', summary: 'This document', responses: ok('OpenAPI 3 document', z.object({ openapi: z.string(), paths: z.record(z.unknown()) }).passthrough()) },

  { method: 'get', path: '/v1/clusters', tag: 'clusters', summary: 'List clusters (secrets hidden)', responses: ok('Clusters', z.object({ clusters: z.array(clusterView) })) },
  { method: 'post', path: '/v1/clusters', tag: 'clusters', summary: 'Register a cluster', body: clusterBody, responses: { 201: { description: 'Registered (secrets hidden)', schema: clusterView } } },
  { method: 'get', path: '/v1/clusters/:name', tag: 'clusters', summary: 'Show a cluster (secrets hidden)', params: nameParam, responses: ok('The cluster', clusterView) },
  { method: 'delete', path: '/v1/clusters/:name', tag: 'clusters', summary: 'Delete a cluster (409 while a group uses it)', params: nameParam, responses: { 204: { description: 'Deleted' } } },

  { method: 'get', path: '/v1/groups', tag: 'groups', summary: 'List topic groups', responses: ok('Groups', z.object({ groups: z.array(z.object({ name: z.string(), state: z.string(), spec: topicGroup })) })) },
  { method: 'post', path: '/v1/groups', tag: 'groups', summary: 'Create a topic group', body: groupBody, responses: { 201: { description: 'Created', schema: z.object({ name: z.string(), state: z.enum(['running', 'stopped']), spec: topicGroup }) } } },
  { method: 'get', path: '/v1/groups/:name', tag: 'groups', summary: 'Group status with per-partition worker, position, high watermark and lag', params: nameParam, responses: ok('Status', groupViewSchema) },
  { method: 'delete', path: '/v1/groups/:name', tag: 'groups', summary: 'Delete a topic group', params: nameParam, responses: { 204: { description: 'Deleted' } } },
  { method: 'post', path: '/v1/groups/:name/start', tag: 'groups', summary: 'Start a topic group', params: nameParam, responses: ok('Started', z.object({ name: z.string(), state: z.string() })) },
  { method: 'post', path: '/v1/groups/:name/stop', tag: 'groups', summary: 'Stop a topic group', params: nameParam, responses: ok('Stopped', z.object({ name: z.string(), state: z.string() })) },
  {
    method: 'get',
    path: '/v1/groups/:name/audit',
    tag: 'groups',
    summary: 'Audit: records at the source and the target per topic and time bucket',
    params: nameParam,
    query: z.object({ from: timeText.optional(), to: timeText.optional(), bucketMs: z.string().regex(/^\d+$/, 'must be a whole number of milliseconds').optional() }),
    responses: ok('Audit report', auditSchema),
  },

  { method: 'get', path: '/v1/workers', tag: 'workers', summary: 'Live workers and controllers with their load', responses: ok('Instances', workersSchema) },
  { method: 'get', path: '/v1/assignments', tag: 'workers', summary: 'Assignments per worker', responses: ok('Assignments', assignmentsSchema) },
  { method: 'get', path: '/v1/events', tag: 'workers', summary: 'Recent events (rebalances, workers joining or leaving, group changes and errors), newest first', query: z.object({ limit: z.string().regex(/^\d+$/, 'must be a whole number').optional() }), responses: ok('Events', eventsSchema) },
  { method: 'post', path: '/v1/rebalance', tag: 'workers', summary: 'Run a reconcile pass on the leader, or show its plan with dryRun=true', query: z.object({ dryRun: z.enum(['true', 'false']).optional() }), responses: ok('Plan or result', rebalanceSchema) },

  { method: 'get', path: '/topics', tag: 'ureplicator', summary: 'uReplicator: list mirrored topics ("Current serving topics: [...]")', responses: text('Topic list as uReplicator prints it') },
  { method: 'post', path: '/topics', tag: 'ureplicator', summary: 'uReplicator: add a topic to mirror between the default clusters', query: z.object({ src: nameSchema.optional(), dst: nameSchema.optional() }), body: ureplicatorTopicBody, bodyMediaType: '*/*', textRefusals: [400, 404], responses: text('Added') },
  { method: 'put', path: '/topics', tag: 'ureplicator', summary: 'uReplicator: expand a topic (Ferry follows partition changes by itself; 404 when not mirrored)', body: ureplicatorTopicBody, bodyMediaType: '*/*', textRefusals: [404], responses: text('Expanded') },
  { method: 'get', path: '/topics/:topic', tag: 'ureplicator', summary: 'uReplicator: assignment view of a topic (idealState, externalView, serverToPartitionMapping)', params: topicParam, textRefusals: [404], responses: ok('Topic view', topicViewSchema) },
  { method: 'post', path: '/topics/:topic', tag: 'ureplicator', summary: 'uReplicator: add a topic (body optional)', params: topicParam, query: z.object({ src: nameSchema.optional(), dst: nameSchema.optional() }), body: ureplicatorTopicBody.partial(), bodyMediaType: '*/*', textRefusals: [400, 404], responses: text('Added') },
  { method: 'delete', path: '/topics/:topic', tag: 'ureplicator', summary: 'uReplicator: stop mirroring a topic (deletes its topic group)', params: topicParam, textRefusals: [404], responses: text('Deleted') },
  { method: 'get', path: '/health', tag: 'ureplicator', open: true, summary: 'uReplicator: "OK" when ZooKeeper and Redis answer, else 503 "Unhealthy"', responses: { ...text('OK'), 503: { description: 'Unhealthy', mediaType: 'text/plain', schema: z.string() } } },
  { method: 'get', path: '/validation', tag: 'ureplicator', summary: 'uReplicator: ideal (assignment) vs actual (what workers report mirroring) per worker, with the partitions that differ', responses: ok('Validation', validationSchema) },
  { method: 'post', path: '/admin/enable_autobalancing', tag: 'ureplicator', summary: 'uReplicator: let the reconciler move partitions between live workers (persisted in ZooKeeper)', responses: ok('Switched', z.object({ opt: z.literal('enable_autobalancing'), auto_balancing: z.boolean() })) },
  { method: 'post', path: '/admin/disable_autobalancing', tag: 'ureplicator', summary: 'uReplicator: keep partitions on their live workers (unserved ones are still placed)', responses: ok('Switched', z.object({ opt: z.literal('disable_autobalancing'), auto_balancing: z.boolean() })) },
  { method: 'get', path: '/admin/autobalancing_status', tag: 'ureplicator', summary: 'uReplicator: whether auto-balancing is on', responses: ok('Status', z.object({ auto_balancing: z.boolean() })) },
  { method: 'get', path: '/admin/workloadinfo', tag: 'ureplicator', summary: 'uReplicator: per worker partitions, reported throughput and lagging partitions', responses: ok('Workload', workloadSchema) },
  {
    method: 'get',
    path: '/noprogress',
    tag: 'ureplicator',
    summary: 'uReplicator: assigned partitions whose reported position has not advanced for `seconds` (default 60) while the source has records past it',
    query: z.object({ seconds: z.string().regex(/^\d{1,6}$/, 'must be a whole number of seconds').optional() }),
    responses: ok('Stalled partitions ({} when none)', noProgressSchema),
  },
]

/** `/v1/groups/:name` → `/v1/groups/{name}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

let cached: Record<string, unknown> | undefined

/** The OpenAPI 3.0 document of API_ROUTES. */
export function openApiDocument(version = '0.1.0'): Record<string, unknown> {
  if (cached) return cached
  const registry = new OpenAPIRegistry()
  const bearer = registry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', description: 'A token from --api-tokens-file / FERRY_API_TOKENS. read tokens may GET; writes need an admin token. Not needed when no tokens are configured.' })
  registry.register('Error', errorSchema)
  const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: errorSchema } } })
  for (const route of API_ROUTES) {
    const responses: Record<string, unknown> = {}
    for (const [status, r] of Object.entries(route.responses)) {
      responses[status] = { description: r.description, ...(r.schema ? { content: { [r.mediaType ?? 'application/json']: { schema: r.schema } } } : {}) }
    }
    if (route.params || route.query || route.body) responses['400'] = errorResponse('Invalid input; details name each field')
    if (!route.open) {
      responses['401'] = errorResponse('No or unknown bearer token (when tokens are configured)')
      if (route.method !== 'get') responses['403'] = errorResponse('A read token on a write')
      responses['503'] = errorResponse('ZooKeeper or Redis unreachable, or (for a leader-only action) this controller is not the leader')
    }
    if (route.params || route.textRefusals?.includes(404)) responses['404'] = errorResponse('Not found')
    // uReplicator's refusals are plain text: the same status may carry either body.
    for (const status of route.textRefusals ?? []) {
      const response = responses[String(status)] as { content?: Record<string, unknown> } | undefined
      if (response?.content) response.content['text/plain'] = { schema: z.string() }
    }
    if (route.body) {
      responses['413'] = errorResponse('Body larger than 256 KiB')
      if (!route.bodyMediaType) responses['415'] = errorResponse('Body is not application/json')
    }
    registry.registerPath({
      method: route.method,
      path: openApiPath(route.path),
      summary: route.summary,
      tags: [route.tag],
      security: route.open ? [] : [{ [bearer.name]: [] }],
      request: {
        ...(route.params ? { params: route.params } : {}),
        ...(route.query ? { query: route.query } : {}),
        ...(route.body ? { body: { required: route.method === 'post' && route.path !== '/topics/:topic', content: { [route.bodyMediaType ?? 'application/json']: { schema: route.body } } } } : {}),
      },
      responses: responses as never,
    })
  }
  const generator = new OpenApiGeneratorV3(registry.definitions)
  cached = generator.generateDocument({
    openapi: '3.0.3',
    info: { title: 'Ferry controller API', version, description: 'Kafka mirroring: clusters, topic groups, workers, assignments, audit; a uReplicator-compatible /topics API. Errors are {"error":{"code","message","details"}}.' },
    servers: [{ url: '/' }],
  }) as unknown as Record<string, unknown>
  return cached
}

interface CompiledRoute {
  route: ApiRoute
  segments: string[]
}

const compiled: CompiledRoute[] = API_ROUTES.map((route) => ({ route, segments: route.path.split('/').filter((s) => s !== '') }))

/** The route a request matches (as express would: case-insensitive, trailing slash ignored), with its decoded parameters. */
export function matchRoute(method: string, path: string): { route: ApiRoute; params: Record<string, string> } | undefined {
  const parts = path.split('/').filter((s) => s !== '')
  const m = method.toLowerCase() === 'head' ? 'get' : method.toLowerCase()
  for (const { route, segments } of compiled) {
    if (route.method !== m || segments.length !== parts.length) continue
    const params: Record<string, string> = {}
    let matched = true
    for (let i = 0; i < segments.length && matched; i++) {
      const seg = segments[i] as string
      const part = parts[i] as string
      if (seg.startsWith(':')) {
        let decoded: string
        try {
          decoded = decodeURIComponent(part)
        } catch {
          throw new FerryError('INVALID_INPUT', `path parameter ${seg.slice(1)} is not valid percent-encoding`, { details: [{ field: seg.slice(1), message: 'is not valid percent-encoding' }] })
        }
        params[seg.slice(1)] = decoded
      } else if (seg.toLowerCase() !== part.toLowerCase()) matched = false
    }
    if (matched) return { route, params }
  }
  return undefined
}

/**
 * Middleware: validates the path parameters and query of every API route against its schemas,
 * so a name with `../`, a control character or a slash is a 400 naming the parameter before any
 * handler (or ZooKeeper path) sees it. Bodies are validated by the handlers with the same schemas.
 */
export function validateRequest(): (req: Request, _res: Response, next: NextFunction) => void {
  return (req, _res, next) => {
    try {
      const match = matchRoute(req.method, req.path)
      if (match?.route.params) parseOrThrow(match.route.params, match.params, 'path parameter')
      if (match?.route.query) parseOrThrow(match.route.query.passthrough(), req.query, 'query')
      const hasBody = req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] ?? '0') !== '0'
      if (match?.route.body && !match.route.bodyMediaType && hasBody && req.is('application/json') === false) {
        throw new FerryError('UNSUPPORTED_MEDIA_TYPE', `the body must be application/json, got "${String(req.headers['content-type'] ?? 'none').slice(0, 100)}"`, { details: [{ field: 'Content-Type', message: 'must be application/json' }] })
      }
      next()
    } catch (error) {
      next(error)
    }
  }
}
