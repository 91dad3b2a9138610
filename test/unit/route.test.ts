/**
 * The route declarations (controller/route.ts) without servers of Ferry's: express runs a
 * declaration's handler with its parameters, query and body parsed by the declared schemas,
 * writes the reply as declared (JSON, text, empty), refuses a reply with an undeclared status,
 * and turns text refusals into plain text. The compiler holds handlers to their declared
 * responses (the @ts-expect-error lines fail the build if it stops doing so).
 */
import type { AddressInfo } from 'node:net'
import { expect } from 'chai'
import express, { type NextFunction, type Request, type Response } from 'express'
import { z } from 'zod'
import { servedKindSchema } from '../../common/api-schemas.js'
import { FerryError, HTTP_STATUS_BY_CODE } from '../../common/errors.js'
import type { ApiContext } from '../../controller/api-context.js'
import { API_ROUTES } from '../../controller/api.js'
import { needsToken } from '../../controller/auth.js'
import { TextRefusal, defineRoute, registerRoutes, validateRequest, type ApiRoute } from '../../controller/route.js'
import { SERVED_KINDS } from '../../controller/served.js'

const seen: unknown[] = []
const routes: ApiRoute[] = [
  defineRoute({
    method: 'post',
    path: '/things/:id',
    tag: 'test',
    summary: 'parsed input',
    params: z.object({ id: z.string().regex(/^\d+$/).transform(Number) }),
    query: z.object({ twice: z.enum(['true', 'false']).transform((v) => v === 'true').optional() }),
    body: z.object({ name: z.string() }),
    bodyName: 'thing',
    responses: { 201: { description: 'made', schema: z.object({ id: z.number(), name: z.string(), twice: z.boolean() }) } },
    handler: async ({ params, query, body }) => {
      seen.push(params.id, query.twice, body.name)
      return { status: 201, body: { id: params.id * (query.twice === true ? 2 : 1), name: body.name, twice: query.twice === true } }
    },
  }),
  defineRoute({
    method: 'get',
    path: '/text/:what',
    tag: 'test',
    summary: 'text replies and refusals',
    params: z.object({ what: z.string() }),
    textRefusals: [400, 404],
    responses: { 200: { description: 'text', mediaType: 'text/plain', schema: z.string() } },
    handler: async ({ params }) => {
      if (params.what === 'refuse') throw new TextRefusal(400, 'Failed, as uReplicator says it')
      if (params.what === 'missing') throw new FerryError('GROUP_NOT_FOUND', 'no such group')
      if (params.what === 'undeclared') return { status: 503, body: 'x' } as unknown as { status: 200; body: string }
      return { status: 200, body: `hello ${params.what}` }
    },
  }),
  defineRoute({
    method: 'delete',
    path: '/json/:what',
    tag: 'test',
    summary: 'a 404 stays JSON without a text refusal',
    params: z.object({ what: z.string() }),
    responses: { 204: { description: 'gone' } },
    handler: async ({ params }) => {
      if (params.what === 'missing') throw new FerryError('GROUP_NOT_FOUND', 'no such group')
      return { status: 204 }
    },
  }),
  defineRoute({
    method: 'put',
    path: '/any',
    tag: 'test',
    summary: 'any body as text',
    body: z.string(),
    bodyMediaType: '*/*',
    responses: { 200: { description: 'echo', schema: z.object({ got: z.string() }) } },
    handler: async ({ body }) => ({ status: 200, body: { got: body } }),
  }),
]

// Compile-time checks: each handler below must be a type error, or the build fails ("unused directive").
const typed = { method: 'get', path: '/typed', tag: 'test', summary: 'wrong replies do not compile', responses: { 200: { description: 'ok', schema: z.object({ n: z.number() }) } } } as const
// The right reply compiles.
defineRoute({ ...typed, handler: async () => ({ status: 200, body: { n: 1 } }) })
defineRoute({
  ...typed,
  // @ts-expect-error 201 is not a declared status
  handler: async () => ({ status: 201, body: { n: 1 } }),
})
defineRoute({
  ...typed,
  // @ts-expect-error the body does not fit the 200 schema
  handler: async () => ({ status: 200, body: { n: 'one' } }),
})
defineRoute({
  ...typed,
  params: z.object({ id: z.string().transform(Number) }),
  // @ts-expect-error params.id is the schema's output, a number
  handler: async ({ params }) => ({ status: 200, body: { n: params.id.length } }),
})

describe('route declarations on express', () => {
  let server: ReturnType<express.Express['listen']>
  let base = ''

  before(async () => {
    const app = express()
    app.use(validateRequest(routes))
    app.use(express.json())
    registerRoutes(app, routes, {} as ApiContext)
    app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => {
      const ferry = error instanceof FerryError ? error : new FerryError('INTERNAL', 'internal error')
      res.status(HTTP_STATUS_BY_CODE[ferry.code] ?? 500).json({ error: { code: ferry.code, message: ferry.message, details: ferry.details } })
    })
    server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })

  after(() => {
    server.close()
  })

  it('hands the handler the schemas’ output (numbers, booleans) and writes the declared status', async () => {
    seen.length = 0
    const res = await fetch(`${base}/things/21?twice=true`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'a' }) })
    expect(res.status).to.equal(201)
    expect(await res.json()).to.deep.equal({ id: 42, name: 'a', twice: true })
    expect(seen).to.deep.equal([21, true, 'a'])
  })

  it('refuses bad parameters, queries and bodies by field before the handler runs', async () => {
    seen.length = 0
    const cases: Array<[string, unknown, string]> = [
      ['/things/x', { name: 'a' }, 'id'],
      ['/things/1?twice=maybe', { name: 'a' }, 'twice'],
      ['/things/1', { name: 5 }, 'name'],
    ]
    for (const [path, body, field] of cases) {
      const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      const json = (await res.json()) as { error: { code: string; message: string; details: Array<{ field: string }> } }
      expect(res.status, path).to.equal(400)
      expect(json.error.details.map((d) => d.field), path).to.include(field)
    }
    const named = await fetch(`${base}/things/1`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
    expect(((await named.json()) as { error: { message: string } }).error.message).to.match(/^invalid thing: name/)
    expect(seen).to.deep.equal([])
  })

  it('writes text replies as text, text refusals as text, and every 404 as text where declared', async () => {
    const hello = await fetch(`${base}/text/world`)
    expect([hello.status, hello.headers.get('content-type'), await hello.text()]).to.deep.equal([200, 'text/plain; charset=utf-8', 'hello world'])
    const refused = await fetch(`${base}/text/refuse`)
    expect([refused.status, refused.headers.get('content-type'), await refused.text()]).to.deep.equal([400, 'text/plain; charset=utf-8', 'Failed, as uReplicator says it'])
    const missing = await fetch(`${base}/text/missing`)
    expect([missing.status, await missing.text()]).to.deep.equal([404, 'no such group'])
    const json404 = await fetch(`${base}/json/missing`, { method: 'DELETE' })
    expect(json404.status).to.equal(404)
    expect(((await json404.json()) as { error: { code: string } }).error.code).to.equal('GROUP_NOT_FOUND')
    const gone = await fetch(`${base}/json/x`, { method: 'DELETE' })
    expect([gone.status, await gone.text()]).to.deep.equal([204, ''])
  })

  it('refuses to send a status the route does not declare', async () => {
    const res = await fetch(`${base}/text/undeclared`)
    expect(res.status).to.equal(500)
    expect(((await res.json()) as { error: { code: string } }).error.code).to.equal('INTERNAL')
  })

  it('reads any body as text on a route that takes any media type', async () => {
    const res = await fetch(`${base}/any`, { method: 'PUT', body: new TextEncoder().encode('{"topic":"t"}') })
    expect(res.status).to.equal(200)
    expect(await res.json()).to.deep.equal({ got: '{"topic":"t"}' })
  })
})

describe('the API declarations', () => {
  it('are open exactly where the auth middleware lets requests through without a token', () => {
    const sample = (path: string): string => path.replace(/:[A-Za-z]+/g, 'x')
    const disagree = API_ROUTES.filter((r) => needsToken(sample(r.path)) === (r.open === true)).map((r) => `${r.method} ${r.path}`)
    expect(API_ROUTES.filter((r) => r.open === true).length).to.be.greaterThan(0)
    expect(disagree).to.deep.equal([])
  })

  it('list the served kinds the controller classifies partitions into', () => {
    expect(servedKindSchema.options).to.deep.equal([...SERVED_KINDS])
  })

  it('are each a distinct method and path, with a response for every declared status', () => {
    const keys = API_ROUTES.map((r) => `${r.method} ${r.path}`)
    expect(new Set(keys).size).to.equal(keys.length)
    for (const route of API_ROUTES) expect(Object.keys(route.responses).length, `${route.method} ${route.path}`).to.be.greaterThan(0)
  })
})
