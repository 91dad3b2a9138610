/**
 * The OpenAPI 3 document of the route declarations (controller/route.ts), served at
 * /v1/openapi.json: each route's parameters, query, body and responses from its zod schemas,
 * plus the error responses every route can give (invalid input, tokens, size, media type).
 * test/unit/openapi.test.ts checks it against express's router, both ways.
 *
 * @example
 *   const doc = openApiDocument(API_ROUTES)
 */
import { OpenAPIRegistry, OpenApiGeneratorV3 } from '@asteasolutions/zod-to-openapi'
import { z } from 'zod'
import { errorBodySchema } from '../common/api-schemas.js'
import type { ApiRoute } from './route.js'

/** The document's outline, as GET /v1/openapi.json declares its response. */
export const openApiDocumentSchema = z.object({ openapi: z.string(), paths: z.record(z.unknown()) }).passthrough()
export type OpenApiDocument = z.infer<typeof openApiDocumentSchema>

/** `/v1/groups/:name` → `/v1/groups/{name}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

const documents = new WeakMap<readonly ApiRoute[], OpenApiDocument>()

/** The OpenAPI 3.0 document of `routes` (built once per list). */
export function openApiDocument(routes: readonly ApiRoute[], version = '0.1.0'): OpenApiDocument {
  const cached = documents.get(routes)
  if (cached) return cached
  const registry = new OpenAPIRegistry()
  const bearer = registry.registerComponent('securitySchemes', 'bearerAuth', { type: 'http', scheme: 'bearer', description: 'A token from --api-tokens-file / FERRY_API_TOKENS. read tokens may GET; writes need an admin token. Not needed when no tokens are configured.' })
  registry.register('Error', errorBodySchema)
  const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: errorBodySchema } } })
  for (const route of routes) {
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
        ...(route.body ? { body: { required: !route.body.isOptional(), content: { [route.bodyMediaType ?? 'application/json']: { schema: route.body } } } } : {}),
      },
      responses: responses as never,
    })
  }
  const generator = new OpenApiGeneratorV3(registry.definitions)
  const document = generator.generateDocument({
    openapi: '3.0.3',
    info: { title: 'Ferry controller API', version, description: 'Kafka mirroring: clusters, topic groups, workers, assignments, audit; a uReplicator-compatible /topics API. Errors are {"error":{"code","message","details"}}.' },
    servers: [{ url: '/' }],
  }) as unknown as OpenApiDocument
  documents.set(routes, document)
  return document
}
