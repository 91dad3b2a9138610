/**
 * One declaration per REST route: method, path, the zod schemas of its path parameters, query,
 * body and responses, and its handler. From the list of declarations come express's routes
 * ({@link registerRoutes}), the checks that run before any body is read ({@link validateRequest}),
 * the OpenAPI document (controller/openapi.ts) and, through common/api-schemas.ts, the types the
 * CLI and the dashboard read responses with. A handler gets its parameters, query and body
 * already parsed (the schemas' output types) and answers with one of its declared statuses and
 * a body of that status's schema; the compiler holds it to both.
 *
 * @example
 *   export const showCluster = defineRoute({
 *     method: 'get', path: '/v1/clusters/:name', tag: 'clusters', summary: 'Show a cluster',
 *     params: z.object({ name: nameSchema }),
 *     responses: { 200: { description: 'The cluster', schema: clusterViewSchema } },
 *     handler: async ({ params }, ctx) => ({ status: 200, body: await ctx.clusters.show(params.name) }),
 *   })
 *   registerRoutes(app, [showCluster], ctx)
 */
import express, { type Express, type NextFunction, type Request, type RequestHandler, type Response } from 'express'
import { z } from 'zod'
import { parseOrThrow } from '../common/config.js'
import { FerryError, HTTP_STATUS_BY_CODE } from '../common/errors.js'
import type { ApiContext } from './api-context.js'

export type HttpMethod = 'get' | 'post' | 'put' | 'delete'

/** Largest request body read, JSON or text. */
export const BODY_LIMIT = '256kb'

export interface ResponseSpec {
  description: string
  /** The body's schema; absent for an empty body (204). */
  schema?: z.ZodTypeAny
  /** Default application/json. */
  mediaType?: 'text/plain'
}

/** `{ 200: JSON of schema }`, the usual success. */
export const jsonOk = <S extends z.ZodTypeAny>(description: string, schema: S) => ({ 200: { description, schema } })

/** `{ 200: plain text }`. */
export const textOk = (description: string) => ({ 200: { description, mediaType: 'text/plain' as const, schema: z.string() } })

/** The statuses a handler may answer with; refusals are errors thrown (FerryError, TextRefusal). */
export type ReplyStatus = 200 | 201 | 204 | 503

export type Responses = { readonly [S in ReplyStatus]?: ResponseSpec }

/**
 * A handler's answer: a declared status with a body of that status's schema (none without one).
 * Statuses are the literal union ReplyStatus, not `number`, so that `{ status: 200 }` in a
 * handler keeps its literal type while the declaration's types are being inferred.
 */
export type Reply<R extends Responses> = {
  [S in keyof R & ReplyStatus]: R[S] extends { schema: z.ZodTypeAny } ? { status: S; body: z.input<R[S]['schema']>; contentType?: string } : { status: S }
}[keyof R & ReplyStatus]

type Parsed<S> = S extends z.ZodTypeAny ? z.output<S> : undefined

/** What a handler is given: the parsed parameters, query and body, and the request itself. */
export interface RouteInput<P, Q, B> {
  params: Parsed<P>
  query: Parsed<Q>
  body: Parsed<B>
  req: Request
  res: Response
}

interface RouteInfo {
  method: HttpMethod
  /** Express syntax: `/v1/groups/:name`. */
  path: string
  summary: string
  tag: string
  /** No token needed even when tokens are configured (controller/auth.ts lists the same paths). */
  open?: boolean
  /** What the body is, for error messages: `invalid <bodyName>: field: problem`. Default "body". */
  bodyName?: string
  /** Body media type when not JSON: any type, read as text (the uReplicator API). */
  bodyMediaType?: '*/*'
  /** Statuses whose refusal may come as plain text ({@link TextRefusal}); a 404 among them turns every 404 of the route into text. */
  textRefusals?: readonly number[]
}

export interface RouteDeclaration<P extends z.AnyZodObject | undefined, Q extends z.AnyZodObject | undefined, B extends z.ZodTypeAny | undefined, R extends Responses> extends RouteInfo {
  params?: P
  query?: Q
  body?: B
  responses: R
  // NoInfer: R comes from `responses` alone, so a reply is checked against it (and keeps its literal status).
  handler: (input: RouteInput<P, Q, B>, ctx: ApiContext) => Promise<NoInfer<Reply<R>>>
}

/** A declaration with its types erased, as lists of routes hold it. */
export interface ApiRoute extends RouteInfo {
  params?: z.AnyZodObject
  query?: z.AnyZodObject
  body?: z.ZodTypeAny
  responses: Responses
  // A method, so that each declaration's narrower input is accepted here (parameter bivariance).
  handler(input: { params: unknown; query: unknown; body: unknown; req: Request; res: Response }, ctx: ApiContext): Promise<{ status: ReplyStatus; body?: unknown; contentType?: string }>
}

export function defineRoute<R extends Responses, P extends z.AnyZodObject | undefined = undefined, Q extends z.AnyZodObject | undefined = undefined, B extends z.ZodTypeAny | undefined = undefined>(route: RouteDeclaration<P, Q, B, R>): ApiRoute {
  return route
}

/** A refusal worded for clients that read plain text (uReplicator's scripts): status and text as they expect. */
export class TextRefusal extends Error {
  constructor(
    readonly status: number,
    readonly text: string,
  ) {
    super(text)
    this.name = 'TextRefusal'
  }
}

function send(res: Response, route: ApiRoute, reply: { status: ReplyStatus; body?: unknown; contentType?: string }): void {
  const spec = route.responses[reply.status]
  if (spec === undefined) throw new FerryError('INTERNAL', `${route.method.toUpperCase()} ${route.path} answered ${reply.status}, which it does not declare`)
  res.status(reply.status)
  if (spec.schema === undefined) res.end()
  else if (spec.mediaType === 'text/plain') res.type(reply.contentType ?? 'text/plain').send(String(reply.body))
  else res.json(reply.body)
}

/** The handler chain express runs for `route`: parse, call the handler, write its reply or pass its error on. */
function routeHandlers(route: ApiRoute, ctx: ApiContext): RequestHandler[] {
  const run = (req: Request, res: Response, next: NextFunction): void => {
    const answer = async (): Promise<void> => {
      const input = {
        params: route.params ? parseOrThrow(route.params, req.params, 'path parameter') : undefined,
        query: route.query ? parseOrThrow(route.query, req.query, 'query') : undefined,
        body: route.body ? parseOrThrow(route.body, req.body, route.bodyName ?? 'body') : undefined,
        req,
        res,
      }
      send(res, route, await route.handler(input, ctx))
    }
    answer().catch((error: unknown) => {
      if (error instanceof TextRefusal) {
        res.status(error.status).type('text/plain').send(error.text)
      } else if (error instanceof FerryError && HTTP_STATUS_BY_CODE[error.code] === 404 && route.textRefusals?.includes(404)) {
        res.status(404).type('text/plain').send(error.message)
      } else {
        next(error)
      }
    })
  }
  // uReplicator's clients post JSON as form data, text or with no content type (curl -d): read any body as text.
  return route.bodyMediaType === '*/*' ? [express.text({ type: () => true, limit: BODY_LIMIT }), run] : [run]
}

/** Registers every route on `app`, in order. */
export function registerRoutes(app: Express, routes: readonly ApiRoute[], ctx: ApiContext): void {
  for (const route of routes) app[route.method](route.path, ...routeHandlers(route, ctx))
}

interface CompiledRoute {
  route: ApiRoute
  segments: string[]
}

const compiledRoutes = new WeakMap<readonly ApiRoute[], CompiledRoute[]>()

/** The route a request matches (as express would: case-insensitive, trailing slash ignored), with its decoded parameters. */
export function matchRoute(routes: readonly ApiRoute[], method: string, path: string): { route: ApiRoute; params: Record<string, string> } | undefined {
  let compiled = compiledRoutes.get(routes)
  if (compiled === undefined) {
    compiled = routes.map((route) => ({ route, segments: route.path.split('/').filter((s) => s !== '') }))
    compiledRoutes.set(routes, compiled)
  }
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
 * Middleware, before the body parser: checks the path parameters, query and body media type of
 * the route a request is for against its declaration, so a name with `../`, a control character
 * or a slash is a 400 naming the parameter (and a form body to a JSON route a 415) before the
 * body is read or any handler runs. The route's own handler chain parses the same schemas again
 * to hand their typed output to the handler.
 */
export function validateRequest(routes: readonly ApiRoute[]): (req: Request, _res: Response, next: NextFunction) => void {
  return (req, _res, next) => {
    try {
      const match = matchRoute(routes, req.method, req.path)
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
