/**
 * The controller's REST API (JSON under /v1) plus /healthz, /readyz and /metrics. Any
 * controller, leader or not, can serve it: clusters and groups are written to ZooKeeper with
 * atomic, versioned operations, and only the leader's reconcile loop turns them into
 * assignments. Errors are `{ error: { code, message, details } }`; secrets are never returned.
 */
import express, { type NextFunction, type Request, type Response } from 'express'
import type { Registry } from 'prom-client'
import type { Redis } from 'ioredis'
import { parseCluster, parseTopicGroup, redactCluster } from '../common/config.js'
import { withinMs } from '../common/deadline.js'
import { FerryError, HTTP_STATUS_BY_CODE, errorMessage } from '../common/errors.js'
import type { Keys } from '../common/keys.js'
import type { Logger } from '../common/logger.js'
import { listInstances } from '../common/registry.js'
import type { Store } from '../common/store.js'
import type { Zk } from '../common/zk.js'
import type { ClusterAdmins } from '../common/kafka/cluster-admins.js'
import type { Election } from './election.js'
import type { Reconciler } from './reconciler.js'
import { DEFAULT_EVENT_CAPACITY, type EventLog } from './events.js'
import { dashboardRouter } from './dashboard.js'
import { Gauge } from 'prom-client'
import { createGroupsService, type GroupsService } from './groups-service.js'
import { apiAccess, createAuth, type ApiToken } from './auth.js'
import { openApiDocument, validateRequest } from './openapi.js'
import { createUReplicatorRouter } from './ureplicator.js'

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
  /** The group use cases; built from the other dependencies when not given. */
  groups?: GroupsService
}

type Handler = (req: Request, res: Response) => Promise<void>

function route(handler: Handler) {
  return (req: Request, res: Response, next: NextFunction): void => {
    handler(req, res).catch(next)
  }
}

/** `work`, or a failure once `ms` passed (ZooKeeper calls wait for a reconnect without a session). */
function within<T>(work: Promise<T>, ms: number): Promise<T> {
  return withinMs(work, ms, () => new Error(`no answer within ${ms} ms (reconnecting?)`))
}

function param(req: Request, name: string): string {
  const value = req.params[name]
  if (typeof value !== 'string') throw new FerryError('INVALID_INPUT', `missing path parameter ${name}`)
  return value
}

const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)/i

/** JSON is UTF-8 (RFC 8259): a body declared in another charset is a 415, not decoded and then a 400. */
function refuseNonUtf8Bodies(req: Request, _res: Response, next: NextFunction): void {
  const charset = CHARSET.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase()
  if (charset === undefined || charset === 'utf-8' || charset === 'utf8' || charset === 'us-ascii') {
    next()
    return
  }
  next(new FerryError('UNSUPPORTED_MEDIA_TYPE', `request bodies must be UTF-8, got charset "${charset.slice(0, 40)}"`, { details: [{ field: 'Content-Type', message: 'charset must be utf-8' }] }))
}

export function createApi(deps: ApiDeps): express.Express {
  const { store, logger } = deps
  const groups = deps.groups ?? createGroupsService({ store, redis: deps.redis, keys: deps.keys, admins: deps.admins, events: deps.events, logger, changed: () => deps.reconciler.trigger(), progressSampleMs: 0 })
  const app = express()
  app.disable('x-powered-by')
  // Before the body parser: unauthenticated or malformed requests are refused unread.
  const access = apiAccess(deps.apiTokens ?? [], deps.apiOpen === true)
  app.use(createAuth({ tokens: deps.apiTokens ?? [], open: deps.apiOpen === true, logger }))
  app.use(validateRequest())
  app.use(refuseNonUtf8Bodies)
  app.use(express.json({ limit: '256kb' }))

  app.use('/ui', dashboardRouter())
  app.get('/', (_req, res) => {
    res.redirect('/ui/')
  })

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' })
  })

  app.get(
    '/readyz',
    route(async (_req, res) => {
      const checks: Record<string, string> = {}
      let ready = true
      try {
        // Bounded: without a session a ZooKeeper call may wait for the reconnect.
        await within(deps.zk.exists('/'), 1000)
        checks.zookeeper = 'ok'
      } catch (error) {
        checks.zookeeper = errorMessage(error)
        ready = false
      }
      try {
        await deps.redis.ping()
        checks.redis = 'ok'
      } catch (error) {
        checks.redis = `unreachable: ${errorMessage(error)}`
        ready = false
      }
      const frozen = deps.reconciler.frozenReason()
      if (frozen !== null) checks.rebalancing = frozen
      const leader = await within(deps.election.leader(), 1000).catch(() => null)
      res.status(ready ? 200 : 503).json({ ready, api: access, leader: leader?.id ?? null, isLeader: deps.election.isLeader(), ...(deps.election.isLeader() ? { epoch: deps.election.epoch() } : {}), checks })
    }),
  )

  app.get(
    '/metrics',
    route(async (_req, res) => {
      res.type(deps.registry.contentType).send(await deps.registry.metrics())
    }),
  )

  // Clusters
  app.get(
    '/v1/clusters',
    route(async (_req, res) => {
      res.json({ clusters: (await store.listClusters()).map(redactCluster) })
    }),
  )
  app.post(
    '/v1/clusters',
    route(async (req, res) => {
      const cluster = parseCluster(req.body)
      await store.createCluster(cluster)
      logger.info({ event: 'controller.cluster_created', cluster: cluster.name }, 'cluster registered')
      res.status(201).json(redactCluster(cluster))
    }),
  )
  app.get(
    '/v1/clusters/:name',
    route(async (req, res) => {
      const name = param(req, 'name')
      const cluster = await store.getCluster(name)
      if (cluster === null) throw new FerryError('CLUSTER_NOT_FOUND', `cluster "${name}" does not exist`)
      res.json(redactCluster(cluster.value))
    }),
  )
  app.delete(
    '/v1/clusters/:name',
    route(async (req, res) => {
      await store.deleteCluster(param(req, 'name'))
      res.status(204).end()
    }),
  )

  // Topic groups: every use case is the service's (events, reconcile trigger, views).
  app.get(
    '/v1/groups',
    route(async (_req, res) => {
      res.json({ groups: await groups.list() })
    }),
  )
  app.post(
    '/v1/groups',
    route(async (req, res) => {
      const body: unknown = req.body
      const isObject = typeof body === 'object' && body !== null && !Array.isArray(body)
      // `start` is a request option, not part of the group spec.
      const { start, ...spec } = (isObject ? body : {}) as Record<string, unknown>
      if (start !== undefined && typeof start !== 'boolean') {
        throw new FerryError('INVALID_INPUT', 'invalid topic group: start: must be true or false', { details: [{ field: 'start', message: 'must be true or false' }] })
      }
      const record = await groups.create({ spec: parseTopicGroup(isObject ? spec : body), ...(start === undefined ? {} : { start }), via: 'api' })
      res.status(201).json({ name: record.spec.name, state: record.state, spec: record.spec })
    }),
  )
  const auditMissing = new Gauge({ name: 'ferry_audit_missing_records', help: 'Records at the source missing at the target, by the last audit of the group', labelNames: ['group'], registers: [deps.registry] })
  const auditDuplicates = new Gauge({ name: 'ferry_audit_duplicate_records', help: 'Extra copies at the target, by the last audit of the group', labelNames: ['group'], registers: [deps.registry] })
  const timeParam = (req: Request, name: string, fallback: number): number => {
    const raw = req.query[name]
    if (raw === undefined) return fallback
    const text = String(raw)
    const value = /^\d+$/.test(text) ? Number(text) : Date.parse(text)
    if (!Number.isFinite(value)) {
      throw new FerryError('INVALID_INPUT', `${name} must be milliseconds since the epoch or an ISO-8601 time, got "${text}"`, { details: [{ field: name, message: 'not a time' }] })
    }
    return value
  }
  app.get(
    '/v1/groups/:name/audit',
    route(async (req, res) => {
      const name = param(req, 'name')
      const now = Date.now()
      const fromMs = timeParam(req, 'from', now - 3600000)
      const toMs = timeParam(req, 'to', now)
      const bucketMs = timeParam(req, 'bucketMs', 60000)
      if (toMs <= fromMs) throw new FerryError('INVALID_INPUT', `to (${toMs}) must be after from (${fromMs})`, { details: [{ field: 'to', message: 'must be after from' }] })
      if (bucketMs < 1000) throw new FerryError('INVALID_INPUT', 'bucketMs must be at least 1000', { details: [{ field: 'bucketMs', message: 'must be at least 1000' }] })
      const report = await groups.audit(name, { fromMs, toMs, bucketMs })
      auditMissing.set({ group: name }, report.missing)
      auditDuplicates.set({ group: name }, report.duplicates)
      res.json(report)
    }),
  )
  app.get(
    '/v1/groups/:name',
    route(async (req, res) => {
      res.json(await groups.view(param(req, 'name')))
    }),
  )
  for (const [action, state] of [['start', 'running'], ['stop', 'stopped']] as const) {
    app.post(
      `/v1/groups/:name/${action}`,
      route(async (req, res) => {
        const name = param(req, 'name')
        const record = await groups.setState(name, state, 'api')
        res.json({ name, state: record.state })
      }),
    )
  }
  app.delete(
    '/v1/groups/:name',
    route(async (req, res) => {
      await groups.delete(param(req, 'name'), 'api')
      res.status(204).end()
    }),
  )

  // Workers and assignments
  app.get(
    '/v1/workers',
    route(async (_req, res) => {
      const instances = await listInstances(deps.redis, deps.keys)
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
      res.json({ workers: withLoad, controllers: instances.filter((i) => i.role === 'controller') })
    }),
  )
  app.post(
    '/v1/rebalance',
    route(async (req, res) => {
      const dryRun = req.query.dryRun
      if (dryRun !== undefined && dryRun !== 'true' && dryRun !== 'false') {
        throw new FerryError('INVALID_INPUT', `dryRun must be "true" or "false", got "${String(dryRun)}"`, { details: [{ field: 'dryRun', message: 'must be true or false' }] })
      }
      if (dryRun === 'true') {
        res.json({ dryRun: true, ...(await deps.reconciler.dryRun()) })
        return
      }
      if (!deps.election.isLeader()) {
        const leader = await within(deps.election.leader(), 1000).catch(() => null)
        throw new FerryError('NOT_LEADER', `this controller is not the leader; send the request to ${leader?.url ?? 'the leader (none elected yet)'}`, {
          details: { leader: leader?.id ?? null, url: leader?.url ?? null },
        })
      }
      res.json({ dryRun: false, ...(await deps.reconciler.pass()) })
    }),
  )
  app.get(
    '/v1/events',
    route(async (req, res) => {
      const raw = req.query.limit
      const text = raw === undefined ? '100' : String(raw)
      if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > DEFAULT_EVENT_CAPACITY) {
        throw new FerryError('INVALID_INPUT', `limit must be a whole number from 1 to ${DEFAULT_EVENT_CAPACITY}, got "${text}"`, { details: [{ field: 'limit', message: `must be 1..${DEFAULT_EVENT_CAPACITY}` }] })
      }
      res.json({ events: await deps.events.list(Number(text)) })
    }),
  )
  app.get(
    '/v1/assignments',
    route(async (_req, res) => {
      const assignments = await store.listAssignments()
      res.json({ assignments: Object.fromEntries([...assignments].map(([worker, record]) => [worker, record.value])) })
    }),
  )

  app.get('/v1/openapi.json', (_req, res) => {
    res.json(openApiDocument())
  })
  const healthy = async (): Promise<boolean> => {
    await Promise.all([deps.zk.exists('/'), deps.redis.ping()])
    return true
  }
  app.use(createUReplicatorRouter({ store, groups, admins: deps.admins, logger, healthy, defaultSource: deps.ureplicator?.source, defaultTarget: deps.ureplicator?.target }))

  app.use((req, _res, next) => {
    next(new FerryError('NOT_FOUND', `no route for ${req.method} ${req.path}`))
  })
  // express needs the four-argument signature to treat this as the error handler.
  app.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    let ferry: FerryError
    if (error instanceof FerryError) ferry = error
    else if ((error as { type?: string }).type === 'entity.parse.failed') ferry = new FerryError('INVALID_INPUT', 'request body is not valid JSON', { details: [{ field: '(body)', message: 'is not valid JSON' }] })
    else if ((error as { type?: string }).type === 'entity.too.large') ferry = new FerryError('PAYLOAD_TOO_LARGE', 'request body is larger than 256 KiB', { details: [{ field: '(body)', message: 'is larger than 256 KiB' }] })
    else if ((error as { type?: string }).type === 'charset.unsupported') ferry = new FerryError('UNSUPPORTED_MEDIA_TYPE', errorMessage(error), { details: [{ field: 'Content-Type', message: errorMessage(error) }] })
    else if ((error as { type?: string }).type === 'encoding.unsupported') ferry = new FerryError('UNSUPPORTED_MEDIA_TYPE', errorMessage(error), { details: [{ field: 'Content-Encoding', message: errorMessage(error) }] })
    // Any other body-parser refusal (aborted or short body, bad inflation): the client's fault.
    else if ((error as { expose?: boolean; status?: number }).expose === true && ((error as { status?: number }).status ?? 500) < 500) ferry = new FerryError('INVALID_INPUT', errorMessage(error), { details: [{ field: '(body)', message: errorMessage(error) }] })
    else ferry = new FerryError('INTERNAL', 'internal error', { cause: error })
    const status = HTTP_STATUS_BY_CODE[ferry.code] ?? 500
    if (status >= 500) logger.error({ event: 'controller.request_failed', method: req.method, path: req.path, code: ferry.code, err: errorMessage(error) }, 'request failed')
    res.status(status).json({ error: { code: ferry.code, message: ferry.message, ...(ferry.details === undefined ? {} : { details: ferry.details }) } })
  })
  return app
}
