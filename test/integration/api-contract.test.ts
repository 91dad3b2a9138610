/**
 * The REST contract against a real controller (real ZooKeeper and Redis): every route in
 * /v1/openapi.json is served and answers with a status the document lists, and malformed or
 * hostile requests (wrong types, 2 MB bodies, unknown fields, `../` and control characters in
 * names, invalid JSON, wrong content types, hostile query strings) get a 4xx whose error names
 * the field — never a 5xx — and leave the controller healthy.
 */
import { expect } from 'chai'
import type { LocalStack } from '../../deploy/local-stack.js'
import { FerryProcess, sharedStack, uniqueName, waitFor } from './harness.js'
import { API_ROUTES } from '../../controller/api.js'
import type { ReplyStatus } from '../../controller/route.js'
import { createTopic, createSampleProducer } from './kafka-helpers.js'
import { rawPathRequest, request, startController, type ApiResult } from './api-client.js'
import type { ClusterSpec } from '../../common/config.js'
import { silentLogger } from '../../common/logger.js'
import { kafkajsClients } from '../../worker/kafka-clients.js'

interface OpenApiDoc {
  openapi: string
  paths: Record<string, Record<string, { responses: Record<string, unknown> }>>
}

describe('REST contract and hostile input (real controller)', function () {
  this.timeout(180000)
  let stack: LocalStack
  let proc: FerryProcess
  let url = ''
  const deployment = uniqueName('contract')
  const cluster = uniqueName('src')
  const target = uniqueName('dst')

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    const started = await startController('contract-controller', ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--id', 'contract-c1'])
    proc = started.proc
    url = started.url
    for (const [name, servers] of [[cluster, stack.source.plaintext], [target, stack.target.plaintext]] as const) {
      expect((await request('POST', `${url}/v1/clusters`, { json: { name, bootstrapServers: [servers] } })).status).to.equal(201)
    }
  })

  after(async () => {
    await proc.stop()
  })

  it('serves every documented route, with a documented status', async () => {
    const doc = (await request('GET', `${url}/v1/openapi.json`)).body as OpenApiDoc
    expect(doc.openapi).to.match(/^3\./)
    const checked: string[] = []
    for (const [template, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        // Names that are valid but exist nowhere: the route must answer for itself, not the 404 fallback.
        const path = template.replace(/\{name\}/g, 'no-such-name').replace(/\{topic\}/g, 'no-such-topic')
        const res = await request(method.toUpperCase(), `${url}${path}`)
        const label = `${method.toUpperCase()} ${template} -> ${res.status} ${res.text.slice(0, 200)}`
        expect(res.status < 500 || res.status === 503, label).to.equal(true)
        expect(res.status === 404 && res.body?.error?.code === 'NOT_FOUND', `${label}: not routed`).to.equal(false)
        expect(Object.keys(operation.responses), label).to.include(String(res.status))
        checked.push(label)
      }
    }
    expect(checked.length).to.be.greaterThan(20)
    // And nothing outside the document is routed under /v1.
    const stray = await request('GET', `${url}/v1/no-such-route`)
    expect(stray.status).to.equal(404)
    expect(stray.body.error.code).to.equal('NOT_FOUND')
  })

  const twoMegabytes = JSON.stringify({ name: 'big', bootstrapServers: ['h:1'], dc: 'x'.repeat(2 * 1024 * 1024) })
  const deep = `${'['.repeat(60000)}${']'.repeat(60000)}`
  const validCluster = { name: 'c-ok', bootstrapServers: ['127.0.0.1:9092'] }
  const validGroup = { name: 'g-ok', sourceCluster: 'a', targetCluster: 'b', topics: ['t'] }
  type Case = [what: string, method: string, path: string, options: Parameters<typeof request>[2], status: number, field: string | RegExp]
  const cases: Case[] = [
    ['wrong types in a cluster', 'POST', '/v1/clusters', { json: { name: 42, bootstrapServers: 'h:1', securityProtocol: true } }, 400, 'name'],
    ['wrong types in a group', 'POST', '/v1/groups', { json: { ...validGroup, topics: 'orders', maxBytesPerSec: 'fast', start: 'yes' } }, 400, 'start'],
    ['wrong nested types', 'POST', '/v1/groups', { json: { ...validGroup, rename: { map: { a: 5 } } } }, 400, 'rename.map.a'],
    ['number out of range', 'POST', '/v1/groups', { raw: JSON.stringify(validGroup).replace('}', ',"maxBytesPerSec":1e400}'), contentType: 'application/json' }, 400, 'maxBytesPerSec'],
    ['unknown field in a cluster', 'POST', '/v1/clusters', { json: { ...validCluster, admin: true } }, 400, 'admin'],
    ['unknown nested field', 'POST', '/v1/clusters', { json: { ...validCluster, securityProtocol: 'SSL', tls: { caFile: '/x', evil: 1 } } }, 400, 'tls.evil'],
    ['__proto__ key', 'POST', '/v1/groups', { raw: '{"__proto__":{"isAdmin":true},"name":"g","sourceCluster":"a","targetCluster":"b","topics":["t"]}', contentType: 'application/json' }, 400, '__proto__'],
    ['2 MB JSON body', 'POST', '/v1/clusters', { raw: twoMegabytes, contentType: 'application/json' }, 413, '(body)'],
    ['2 MB body to the uReplicator API', 'POST', '/topics', { raw: twoMegabytes, contentType: 'application/x-www-form-urlencoded' }, 413, '(body)'],
    ['2 MB body on a group action', 'POST', '/v1/groups/g-ok/start', { raw: twoMegabytes, contentType: 'application/json' }, 413, '(body)'],
    ['deeply nested JSON', 'POST', '/v1/groups', { raw: deep, contentType: 'application/json' }, 400, '(body)'],
    ['invalid JSON', 'POST', '/v1/clusters', { raw: '{"name": "a", ', contentType: 'application/json' }, 400, '(body)'],
    ['JSON null', 'POST', '/v1/clusters', { raw: 'null', contentType: 'application/json' }, 400, '(body)'],
    ['JSON array', 'POST', '/v1/groups', { raw: '[1,2]', contentType: 'application/json' }, 400, '(body)'],
    ['text/plain body', 'POST', '/v1/clusters', { raw: JSON.stringify(validCluster), contentType: 'text/plain' }, 415, 'Content-Type'],
    ['form body', 'POST', '/v1/groups', { raw: 'name=g&sourceCluster=a', contentType: 'application/x-www-form-urlencoded' }, 415, 'Content-Type'],
    ['body without a content type', 'POST', '/v1/clusters', { raw: new TextEncoder().encode(JSON.stringify(validCluster)) }, 415, 'Content-Type'],
    ['unsupported charset', 'POST', '/v1/clusters', { raw: JSON.stringify(validCluster), contentType: 'application/json; charset=ebcdic' }, 415, 'Content-Type'],
    ['unsupported content encoding', 'POST', '/v1/clusters', { raw: JSON.stringify(validCluster), contentType: 'application/json', headers: { 'content-encoding': 'x-evil' } }, 415, 'Content-Encoding'],
    ['corrupt gzip body', 'POST', '/v1/clusters', { raw: 'not gzip at all', contentType: 'application/json', headers: { 'content-encoding': 'gzip' } }, 400, '(body)'],
    ['../ in a group name (path)', 'GET', '/v1/groups/..%2F..%2Fetc%2Fpasswd', {}, 400, 'name'],
    ['.. as a cluster name (path)', 'DELETE', '/v1/clusters/..', {}, 400, 'name'],
    ['%2e%2e as a group name (path)', 'POST', '/v1/groups/%2e%2e/start', {}, 400, 'name'],
    ['NUL in a group name (path)', 'POST', '/v1/groups/a%00b/stop', {}, 400, 'name'],
    ['newline in a group name (path)', 'GET', '/v1/groups/a%0Ab/audit', {}, 400, 'name'],
    ['bad percent-encoding (path)', 'GET', '/v1/clusters/%E0%A4%A', {}, 400, 'name'],
    ['ZooKeeper path in a name (path)', 'DELETE', '/v1/groups/%2Fferry%2Fdefault%2Fleader', {}, 400, 'name'],
    ['101-character name (path)', 'GET', `/v1/groups/${'a'.repeat(101)}`, {}, 400, 'name'],
    ['../ in a topic (path)', 'GET', '/topics/..%2F..%2Fx', {}, 400, 'topic'],
    ['../ in a name (body)', 'POST', '/v1/groups', { json: { ...validGroup, name: '../../etc' } }, 400, 'name'],
    ['control characters in a name (body)', 'POST', '/v1/clusters', { json: { ...validCluster, name: 'a\u0000b\u001b[31m' } }, 400, 'name'],
    ['trailing newline in a name (body)', 'POST', '/v1/clusters', { json: { ...validCluster, name: 'abc\n' } }, 400, 'name'],
    ['unicode look-alike in a name (body)', 'POST', '/v1/groups', { json: { ...validGroup, name: 'оrders' } }, 400, 'name'],
    ['../ in a topic (body)', 'POST', '/v1/groups', { json: { ...validGroup, topics: ['../x'] } }, 400, 'topics.0'],
    ['../ in a topic (uReplicator body)', 'POST', '/topics', { raw: '{"topic":"../../x","numPartitions":1}', contentType: 'application/x-www-form-urlencoded' }, 400, 'topic'],
    ['wrong numPartitions (uReplicator)', 'POST', '/topics', { raw: '{"topic":"t","numPartitions":"many"}' }, 400, 'numPartitions'],
    ['invalid JSON (uReplicator)', 'POST', '/topics', { raw: '{"topic":' }, 400, '(body)'],
    ['array body (uReplicator)', 'PUT', '/topics', { raw: '["t"]' }, 400, '(body)'],
    ['bad query time', 'GET', `/v1/groups/g-ok/audit?from=yesterday`, {}, 400, 'from'],
    ['query given twice', 'POST', '/v1/rebalance?dryRun=true&dryRun=false', {}, 400, 'dryRun'],
    ['query as an array', 'GET', '/v1/events?limit=1&limit=2', {}, 400, 'limit'],
    ['bad query enum', 'POST', '/v1/rebalance?dryRun=maybe', {}, 400, 'dryRun'],
    ['../ in uReplicator src', 'POST', '/topics/t?src=..%2Fx&dst=b', {}, 400, 'src'],
  ]

  for (const [what, method, path, options, status, field] of cases) {
    it(`${what}: ${status} naming ${String(field)}`, async () => {
      let res: ApiResult
      try {
        res = /\.\.|%2e/i.test(path) && options?.raw === undefined && options?.json === undefined ? await rawPathRequest(method, url, path) : await request(method, `${url}${path}`, options)
      } catch (error) {
        // Only acceptable for the 2 MB bodies if the server closed early; it must still have answered 413.
        throw new Error(`request failed: ${(error as Error).message}`)
      }
      expect(res.status, res.text.slice(0, 300)).to.equal(status)
      const fields = ((res.body?.error?.details ?? []) as Array<{ field: string }>).map((d) => d.field)
      if (typeof field === 'string') expect(fields, res.text.slice(0, 300)).to.include(field)
      else expect(fields.some((f) => field.test(f)), res.text.slice(0, 300)).to.equal(true)
      expect(res.body.error.message).to.be.a('string').and.not.equal('internal error')
    })
  }

  it('stayed healthy, wrote nothing for the hostile requests, and logged no request failure', async () => {
    expect((await request('GET', `${url}/healthz`)).status).to.equal(200)
    const clusters = (await request('GET', `${url}/v1/clusters`)).body.clusters as Array<{ name: string }>
    expect(clusters.map((c) => c.name).sort()).to.deep.equal([cluster, target].sort())
    expect((await request('GET', `${url}/v1/groups`)).body.groups).to.deep.equal([])
    expect(proc.log()).not.to.contain('controller.request_failed')
  })

  it('answers every route with its documented response schema (real responses, a worker mirroring)', async function () {
    this.timeout(240000)
    const worker = new FerryProcess('contract-worker', ['bootstrap', '--role', 'worker', '--id', 'contract-w1', '--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment])
    try {
      const topic = uniqueName('contract-t')
      const urTopic = uniqueName('contract-ur')
      await createTopic(stack.source.plaintext, topic, 2)
      await createTopic(stack.source.plaintext, urTopic, 1)
      const producer = createSampleProducer(stack.source.plaintext, topic, 2)
      await producer.send(20)
      await producer.close()
      const group = uniqueName('contract-g')
      const extra = uniqueName('contract-c')
      const covered = new Set<string>()
      const check = async (method: string, template: string, path: string, options: Parameters<typeof request>[2] = {}): Promise<ApiResult> => {
        const res = await request(method, `${url}${path}`, options)
        const route = API_ROUTES.find((r) => r.method === method.toLowerCase() && r.path === template)
        const label = `${method} ${template} -> ${res.status} ${res.text.slice(0, 300)}`
        expect(route, `${method} ${template} is not documented`).to.not.equal(undefined)
        const documented = route?.responses[res.status as ReplyStatus]
        expect(documented, `${label}: status not documented as a response`).to.not.equal(undefined)
        if (documented?.schema !== undefined) {
          if (documented.mediaType === 'text/plain') expect(res.headers.get('content-type'), label).to.match(/^text\/plain/)
          const parsed = documented.schema.safeParse(documented.mediaType === 'text/plain' ? res.text : res.body)
          expect(parsed.success, `${label}: ${parsed.success ? '' : JSON.stringify(parsed.error.issues.slice(0, 5))}`).to.equal(true)
        }
        covered.add(`${method.toLowerCase()} ${template}`)
        return res
      }
      await check('GET', '/healthz', '/healthz')
      await check('GET', '/readyz', '/readyz')
      await check('GET', '/metrics', '/metrics')
      await check('GET', '/v1/openapi.json', '/v1/openapi.json')
      await check('POST', '/v1/clusters', '/v1/clusters', { json: { name: extra, bootstrapServers: [stack.target.plaintext] } })
      await check('GET', '/v1/clusters', '/v1/clusters')
      await check('GET', '/v1/clusters/:name', `/v1/clusters/${extra}`)
      await check('POST', '/v1/groups', '/v1/groups', { json: { name: group, sourceCluster: cluster, targetCluster: target, topics: [topic], startPosition: 'earliest' } })
      await waitFor('both partitions mirrored with a position and lag', async () => {
        const view = (await request('GET', `${url}/v1/groups/${group}`)).body as { partitions: Array<{ position: number | null; lag?: number | null }> }
        return view.partitions.length === 2 && view.partitions.every((p) => p.position !== null && p.lag === 0) ? true : undefined
      }, 120000, 500)
      await check('GET', '/v1/groups', '/v1/groups')
      await check('GET', '/v1/groups/:name', `/v1/groups/${group}`)
      await check('GET', '/v1/groups/:name/audit', `/v1/groups/${group}/audit`)
      await check('GET', '/v1/groups/:name/history', `/v1/groups/${group}/history?step=5m`)
      // A consumer group committed on the source: its translation, and a dry-run failover.
      const app = uniqueName('contract-app')
      const sourceAdmin = kafkajsClients.admin({ name: 'contract-src', bootstrapServers: [stack.source.plaintext] } as ClusterSpec, { clientId: 'ferry-contract-test', logger: silentLogger() })
      await sourceAdmin.setGroupOffsets(app, [{ topic, partition: 1, offset: 3 }]).finally(() => sourceAdmin.disconnect())
      await check('GET', '/v1/groups/:name/consumer-offsets', `/v1/groups/${group}/consumer-offsets?consumerGroup=${app}`)
      await check('POST', '/v1/groups/:name/failover', `/v1/groups/${group}/failover`, { json: { consumerGroups: [app], dryRun: true } })
      await check('GET', '/v1/workers', '/v1/workers')
      await check('GET', '/v1/nodes', '/v1/nodes?fresh=true')
      await check('GET', '/v1/nodes', '/v1/nodes')
      await check('GET', '/v1/assignments', '/v1/assignments')
      await check('GET', '/v1/events', '/v1/events')
      await check('POST', '/v1/rebalance', '/v1/rebalance?dryRun=true')
      await check('POST', '/v1/rebalance', '/v1/rebalance')
      await check('POST', '/v1/groups/:name/stop', `/v1/groups/${group}/stop`)
      await check('POST', '/v1/groups/:name/start', `/v1/groups/${group}/start`)
      const pair = `src=${cluster}&dst=${target}`
      await check('POST', '/topics', `/topics?${pair}`, { raw: JSON.stringify({ topic: urTopic, numPartitions: '1' }) })
      await check('GET', '/topics', '/topics')
      await check('PUT', '/topics', '/topics', { raw: JSON.stringify({ topic: urTopic, numPartitions: '1' }) })
      await check('GET', '/topics/:topic', `/topics/${urTopic}`)
      await check('DELETE', '/topics/:topic', `/topics/${urTopic}`)
      await check('POST', '/topics/:topic', `/topics/${urTopic}?${pair}`)
      await check('DELETE', '/topics/:topic', `/topics/${urTopic}`)
      await check('GET', '/health', '/health')
      await check('GET', '/validation', '/validation')
      await check('POST', '/admin/disable_autobalancing', '/admin/disable_autobalancing')
      await check('GET', '/admin/autobalancing_status', '/admin/autobalancing_status')
      await check('POST', '/admin/enable_autobalancing', '/admin/enable_autobalancing')
      await check('GET', '/admin/workloadinfo', '/admin/workloadinfo')
      await check('GET', '/noprogress', '/noprogress?seconds=0')
      await check('DELETE', '/v1/groups/:name', `/v1/groups/${group}`)
      await check('DELETE', '/v1/clusters/:name', `/v1/clusters/${extra}`)
      const missing = API_ROUTES.map((r) => `${r.method} ${r.path}`).filter((r) => !covered.has(r))
      expect(missing, 'routes without a real response checked against their schema').to.deep.equal([])
    } finally {
      await worker.stop()
    }
  })
})
