/**
 * The controller's REST API (JSON under /v1) plus /healthz, /readyz and /metrics, and the
 * uReplicator-compatible API. Any controller, leader or not, can serve it: clusters and groups
 * are written to ZooKeeper with atomic, versioned operations, and only the leader's reconcile
 * loop turns them into assignments. Errors are `{ error: { code, message, details } }`; secrets
 * are never returned. Every route is one declaration (controller/api-routes.ts,
 * controller/ureplicator.ts): this module puts them, and what all requests go through, on express.
 *
 * @example
 *   const app = createApi({ store, zk, redis, keys, election, reconciler, admins, registry, logger, events })
 *   app.listen(8080)
 */
import express, { type NextFunction, type Request, type Response } from 'express'
import { Gauge } from 'prom-client'
import { FerryError, HTTP_STATUS_BY_CODE, errorMessage } from '../common/errors.js'
import type { ApiContext, ApiDeps } from './api-context.js'
import { V1_ROUTES } from './api-routes.js'
import { dashboardRouter } from './dashboard.js'
import { createGroupsService } from './groups-service.js'
import { consumerOffsetsOnStore } from './consumer-offsets.js'
import { createHistoryStore, redisHistoryBackend } from './history.js'
import { createNodeStatus } from './node-status.js'
import { listDeparted, listInstances } from '../common/registry.js'
import { apiAccess, createAuth } from './auth.js'
import { BODY_LIMIT, registerRoutes, validateRequest, type ApiRoute } from './route.js'
import { UREPLICATOR_ROUTES } from './ureplicator.js'

/** Every route of the API, in the order of the OpenAPI document. */
export const API_ROUTES: readonly ApiRoute[] = [...V1_ROUTES, ...UREPLICATOR_ROUTES]

export type { ApiDeps } from './api-context.js'

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
  const { apiTokens = [], apiOpen = false, ureplicator = {}, groups: given, history, consumerOffsets, nodes, ...parts } = deps
  const { logger } = parts
  const ctx: ApiContext = {
    ...parts,
    groups: given ?? createGroupsService({ store: parts.store, redis: parts.redis, keys: parts.keys, admins: parts.admins, events: parts.events, logger, changed: () => parts.reconciler.trigger(), progressSampleMs: 0 }),
    history: history ?? createHistoryStore({ backend: redisHistoryBackend(parts.redis), keys: parts.keys }),
    consumerOffsets: consumerOffsets ?? consumerOffsetsOnStore({ store: parts.store, admins: parts.admins, isLeader: () => parts.election.isLeader(), deployment: () => parts.keys.deployment, logger, events: parts.events }),
    nodes:
      nodes ??
      createNodeStatus({
        instances: () => listInstances(parts.redis, parts.keys),
        departed: (ids) => listDeparted(parts.redis, parts.keys, ids),
        redis: parts.redis,
        keys: parts.keys,
        isLeader: () => parts.election.isLeader(),
        id: 'api',
        leaseTtlMs: 10000,
        logger,
      }),
    access: apiAccess(apiTokens, apiOpen),
    routes: API_ROUTES,
    ureplicator,
    audit: {
      missing: new Gauge({ name: 'ferry_audit_missing_records', help: 'Records at the source missing at the target, by the last audit of the group', labelNames: ['group'], registers: [parts.registry] }),
      duplicates: new Gauge({ name: 'ferry_audit_duplicate_records', help: 'Extra copies at the target, by the last audit of the group', labelNames: ['group'], registers: [parts.registry] }),
    },
  }
  const app = express()
  app.disable('x-powered-by')
  // Before the body parser: unauthenticated or malformed requests are refused unread.
  app.use(createAuth({ tokens: apiTokens, open: apiOpen, logger }))
  app.use(validateRequest(API_ROUTES))
  app.use(refuseNonUtf8Bodies)
  app.use(express.json({ limit: BODY_LIMIT }))

  app.use('/ui', dashboardRouter())
  app.get('/', (_req, res) => {
    res.redirect('/ui/')
  })
  registerRoutes(app, API_ROUTES, ctx)

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
