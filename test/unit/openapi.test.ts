/**
 * The REST contract without servers: the OpenAPI document and express's router list the same
 * routes (both ways), the document's schemas are the validation schemas, path parameters with
 * traversal or control characters are refused by name, and the token parsing and matching of
 * controller/auth.ts.
 */
import SwaggerParser from '@apidevtools/swagger-parser'
import { expect } from 'chai'
import type express from 'express'
import { Registry } from 'prom-client'
import { API_ROUTES, createApi, type ApiDeps } from '../../controller/api.js'
import { findToken, needsToken, parseApiTokens, loadApiTokens } from '../../controller/auth.js'
import { openApiDocument, openApiPath } from '../../controller/openapi.js'
import { matchRoute } from '../../controller/route.js'
import { FerryError } from '../../common/errors.js'
import { silentLogger } from '../../common/logger.js'

interface RouterLayer {
  route?: { path: string; methods: Record<string, boolean> }
  handle?: { stack?: RouterLayer[] }
  slash?: boolean
  name?: string
}

/** METHOD path for every route express serves, descending into routers mounted at the root. */
function expressRoutes(app: express.Express): Set<string> {
  const found = new Set<string>()
  const walk = (stack: RouterLayer[]): void => {
    for (const layer of stack) {
      if (layer.route) {
        for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') found.add(`${method.toUpperCase()} ${layer.route.path}`)
      } else if (layer.handle?.stack && layer.slash === true) {
        walk(layer.handle.stack)
      }
    }
  }
  walk((app as unknown as { router: { stack: RouterLayer[] } }).router.stack)
  return found
}

/** Routes outside the API: the dashboard's entry redirect (its files are under the /ui router). */
const NOT_API = new Set(['GET /'])

describe('OpenAPI document and routes', () => {
  // Building the app registers routes only; no dependency is called until a request arrives.
  const unused = new Proxy({}, { get: () => { throw new Error('not used while building routes') } })
  const deps = { registry: new Registry(), logger: silentLogger(), store: unused, zk: unused, redis: unused, keys: unused, election: unused, reconciler: unused, admins: unused, events: unused } as unknown as ApiDeps
  const app = createApi(deps)
  const doc = openApiDocument(API_ROUTES) as { openapi: string; paths: Record<string, Record<string, { parameters?: Array<{ name: string; in: string; schema: { pattern?: string } }>; requestBody?: { content: Record<string, { schema: unknown }> }; security?: unknown[] }>>; components: { schemas: Record<string, { properties?: Record<string, unknown>; additionalProperties?: boolean; required?: string[] }>; securitySchemes: Record<string, unknown> } }
  const documented = new Set<string>()
  for (const [path, methods] of Object.entries(doc.paths)) for (const method of Object.keys(methods)) documented.add(`${method.toUpperCase()} ${path}`)

  it('is OpenAPI 3 with a bearer security scheme', () => {
    expect(doc.openapi).to.match(/^3\.0\./)
    expect(doc.components.securitySchemes).to.have.property('bearerAuth')
    expect(documented.size).to.equal(API_ROUTES.length)
  })

  it('is a valid OpenAPI document (swagger-parser validation, every $ref resolved)', async () => {
    // validate() dereferences in place: give it a copy.
    const api = await SwaggerParser.validate(JSON.parse(JSON.stringify(doc)) as never)
    expect(Object.keys(api.paths ?? {})).to.have.length(Object.keys(doc.paths).length)
  })

  it('documents every route express serves', () => {
    const served = [...expressRoutes(app)].filter((r) => !NOT_API.has(r))
    expect(served.length).to.be.greaterThan(20)
    const undocumented = served.filter((r) => { const [m, p] = r.split(' ') as [string, string]; return !documented.has(`${m} ${openApiPath(p)}`) })
    expect(undocumented, 'routes missing from /v1/openapi.json').to.deep.equal([])
  })

  it('registers on express exactly the declared routes, each once', () => {
    const served = [...expressRoutes(app)].filter((r) => !NOT_API.has(r)).sort()
    const declared = API_ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path}`).sort()
    expect(declared.length).to.be.greaterThan(20)
    expect(served).to.deep.equal(declared)
  })

  it('serves every route the document lists', () => {
    const served = new Set([...expressRoutes(app)].map((r) => { const [m, p] = r.split(' ') as [string, string]; return `${m} ${openApiPath(p)}` }))
    const missing = [...documented].filter((r) => !served.has(r))
    expect(missing, 'documented routes express does not serve').to.deep.equal([])
  })

  it('takes its body schemas from common/config.ts, strict, with their required fields', () => {
    const cluster = doc.components.schemas.Cluster
    expect(cluster?.additionalProperties).to.equal(false)
    expect(cluster?.required).to.include.members(['name', 'bootstrapServers'])
    expect(cluster?.properties).to.include.keys('securityProtocol', 'tls', 'sasl', 'dc', 'zone')
    const group = doc.components.schemas.TopicGroupRequest
    expect(group?.additionalProperties).to.equal(false)
    expect(group?.properties).to.include.keys('sourceCluster', 'targetCluster', 'topics', 'topicPattern', 'delivery', 'start')
    // Topic configs and ACLs follow (controller/topic-follow.ts): the group's fields and the status field of its failures.
    expect(group?.properties).to.include.keys('topicConfigs', 'acls')
    expect(JSON.stringify(doc.components.schemas)).to.contain('"followErrors"')
    const post = doc.paths['/v1/groups']?.post
    expect(JSON.stringify(post?.requestBody)).to.contain('#/components/schemas/TopicGroupRequest')
  })

  it('declares path parameters with the name pattern, and open probes without security', () => {
    const params = doc.paths['/v1/groups/{name}']?.get?.parameters ?? []
    expect(params.map((p) => `${p.in}:${p.name}`)).to.deep.equal(['path:name'])
    expect(params[0]?.schema.pattern).to.be.a('string')
    expect(doc.paths['/healthz']?.get?.security).to.deep.equal([])
    expect(doc.paths['/v1/groups']?.get?.security).to.deep.equal([{ bearerAuth: [] }])
  })

  it('matches requests like express and validates path parameters by name', () => {
    expect(matchRoute(API_ROUTES, 'GET', '/v1/groups/orders')?.route.path).to.equal('/v1/groups/:name')
    expect(matchRoute(API_ROUTES, 'post', '/V1/Groups/orders/start/')?.route.path).to.equal('/v1/groups/:name/start')
    expect(matchRoute(API_ROUTES, 'GET', '/v1/nothing')).to.equal(undefined)
    expect(matchRoute(API_ROUTES, 'GET', '/v1/groups/..%2F..%2Fetc')?.params.name).to.equal('../../etc')
    expect(() => matchRoute(API_ROUTES, 'GET', '/v1/groups/%E0%A4%A')).to.throw(FerryError).with.property('code', 'INVALID_INPUT')
  })
})

describe('API tokens', () => {
  it('parses lines from a file or FERRY_API_TOKENS with comments and ";" separators', () => {
    const tokens = parseApiTokens('# operators\nalice admin s3cret-token-1\n\n  bob read s3cret-token-2  \n', 'tokens.txt')
    expect(tokens.map((t) => `${t.name}:${t.role}`)).to.deep.equal(['alice:admin', 'bob:read'])
    const inline = loadApiTokens({ env: { FERRY_API_TOKENS: 'ci admin tok-aaaaaaaa; dash read tok-bbbbbbbb' } })
    expect(inline.map((t) => t.name)).to.deep.equal(['ci', 'dash'])
    expect(loadApiTokens({ env: {} })).to.deep.equal([])
  })

  it('refuses bad lines naming the entry, never echoing a token', () => {
    const secret = 'tok-very-secret-value'
    const attempts = [`alice ${secret} admin`, `alice admin`, `alice admin short`, `alice admin ${secret}; alice read other-token-1`, `a admin ${secret}; b read ${secret}`]
    for (const text of attempts) {
      let error: unknown
      try {
        parseApiTokens(text, 'FERRY_API_TOKENS')
      } catch (e) {
        error = e
      }
      expect(error, text).to.be.instanceOf(FerryError)
      expect((error as FerryError).message).to.match(/FERRY_API_TOKENS entry \d/)
      expect((error as FerryError).message).not.to.contain(secret)
      expect(JSON.stringify((error as FerryError).details)).not.to.contain(secret)
    }
  })

  it('finds the token by its digest and nothing else', () => {
    const tokens = parseApiTokens('alice admin token-alice-1; bob read token-bob-22', 'x')
    expect(findToken(tokens, 'token-bob-22')?.name).to.equal('bob')
    expect(findToken(tokens, 'token-bob-2')).to.equal(undefined)
    expect(findToken(tokens, '')).to.equal(undefined)
    expect(tokens.every((t) => !JSON.stringify(t).includes('token-'))).to.equal(true)
  })

  it('leaves only probes and dashboard files open, however the path is spelled', () => {
    for (const open of ['/healthz', '/readyz', '/ui', '/ui/', '/ui/app.js', '/']) expect(needsToken(open), open).to.equal(false)
    for (const closed of ['/metrics', '/METRICS', '/metrics/', '/v1/groups', '/V1/groups/', '/v1/openapi.json', '/topics', '/topics/t', '/healthz/x', '/anything']) expect(needsToken(closed), closed).to.equal(true)
  })
})
