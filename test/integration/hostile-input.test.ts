/**
 * What a caller of the REST API must not be able to do (issue 13), on the real stack: hang the
 * controller with a topic pattern, change anything on a controller without tokens that was not
 * opened explicitly, or confuse Ferry with names that are also Object keys (`constructor`,
 * `__proto__`, `toString`, `hasOwnProperty`), in the API and on the data path. Plus the smaller
 * refusals: audit of an unreachable cluster is a 503, too-long target names, unsafe integers,
 * oversized headers, non-UTF-8 bodies, and status znodes left by deleted groups.
 */
import { expect } from 'chai'
import http from 'node:http'
import { Redis } from 'ioredis'
import { createKeys } from '../../common/keys.js'
import { silentLogger } from '../../common/logger.js'
import { createPaths } from '../../common/paths.js'
import { listInstances } from '../../common/registry.js'
import { createStore } from '../../common/store.js'
import { connectZk, type Zk } from '../../common/zk.js'
import type { LocalStack } from '../../deploy/local-stack.js'
import { request, startController } from './api-client.js'
import { FerryProcess, sharedStack, uniqueName, waitFor } from './harness.js'
import { createTopic } from './kafka-helpers.js'
import { awaitMirror } from './mirror-setup.js'
import { countRecords, describeComparison, oracleDump, oracleProduce, type OracleRecord } from './oracle.js'

/** Sends one request with a header of `size` bytes over a raw socket; resolves status and body, or the socket error. */
function bigHeaderRequest(url: string, size: number): Promise<{ status: number; text: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.request(`${url}/v1/groups`, { method: 'GET', headers: { 'x-padding': 'a'.repeat(size) } }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
      res.on('error', (error) => resolve({ error: (error as NodeJS.ErrnoException).code ?? error.message }))
    })
    req.on('error', (error) => resolve({ error: (error as NodeJS.ErrnoException).code ?? error.message }))
    req.end()
  })
}

describe('hostile API input (real controller, real Kafka)', function () {
  this.timeout(240000)
  let stack: LocalStack
  let redis: Redis
  let zk: Zk
  const deployment = uniqueName('hostile')
  const keys = createKeys(deployment)
  const paths = createPaths(deployment)
  const procs: FerryProcess[] = []
  let url = ''
  const api = (method: string, path: string, json?: unknown) => request(method, `${url}${path}`, json === undefined ? {} : { json })
  const common = (): string[] => ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment]

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    redis = new Redis(stack.redis.url)
    zk = await connectZk({ connect: stack.zookeeper.connect, sessionTimeoutMs: 10000, logger: silentLogger() })
    procs.push(new FerryProcess('hostile-controller', ['bootstrap', '--role', 'controller', '--id', 'c1', '--port', '0', '--rebalance-debounce-ms', '500', ...common()]))
    procs.push(new FerryProcess('hostile-worker', ['bootstrap', '--role', 'worker', '--id', 'w1', ...common()]))
    url = await waitFor('controller and worker registered', async () => {
      const instances = await listInstances(redis, keys)
      const controller = instances.find((i) => i.role === 'controller' && i.url)
      return controller && instances.some((i) => i.id === 'w1') ? (controller.url as string) : undefined
    }, 90000)
    await waitFor('the controller to lead', async () => (await api('GET', '/readyz')).body?.isLeader === true, 30000)
  })

  after(async function () {
    this.timeout(60000)
    await Promise.all(procs.map((p) => p.stop(20000)))
    redis?.disconnect()
    await zk?.close()
  })

  it('keeps /healthz answering within 100 ms while the leader matches catastrophic patterns against a topic of forty a and a dash', async () => {
    const src = uniqueName('re-src')
    const dst = uniqueName('re-dst')
    expect((await api('POST', '/v1/clusters', { name: src, bootstrapServers: [stack.source.plaintext] })).status).to.equal(201)
    expect((await api('POST', '/v1/clusters', { name: dst, bootstrapServers: [stack.target.plaintext] })).status).to.equal(201)
    await createTopic(stack.source.plaintext, `${'a'.repeat(40)}-`, 1)
    const groups = [uniqueName('redos-nested'), uniqueName('redos-repeat')]
    const patterns = ['(a+)+$', '(.*a){25}']
    for (const [index, name] of groups.entries()) {
      // RE2 runs both in linear time: accepted, and matching nothing here.
      const created = await api('POST', '/v1/groups', { name, sourceCluster: src, targetCluster: dst, topicPattern: patterns[index] })
      expect(created.status, created.text).to.equal(201)
    }
    const slowest = { ms: 0 }
    const probe = async (): Promise<void> => {
      const started = Date.now()
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) })
      expect(res.status).to.equal(200)
      slowest.ms = Math.max(slowest.ms, Date.now() - started)
    }
    // Probe while the leader discovers and matches, until both groups have a status (a pass
    // matched the patterns against every source topic, the hostile one included)...
    await waitFor('both groups reconciled with /healthz probed throughout', async () => {
      await probe()
      const observed = await Promise.all(groups.map(async (g) => (await api('GET', `/v1/groups/${g}`, undefined)).body?.status?.observedAt))
      return observed.every((at) => typeof at === 'string')
    }, 60000, 20)
    // ...then through more passes run on request, probing while each runs.
    for (let i = 0; i < 3; i++) {
      const pass = request('POST', `${url}/v1/rebalance`, { headers: {} })
      const probes = (async () => {
        for (let j = 0; j < 10; j++) await probe()
      })()
      const [result] = await Promise.all([pass, probes])
      expect(result.status, result.text).to.equal(200)
    }
    expect(slowest.ms, 'slowest /healthz').to.be.below(100)
    const view = (await api('GET', `/v1/groups/${groups[1]}`)).body
    expect(view.status.topics).to.deep.equal({})
  })

  it('refuses patterns RE2 cannot run in linear time, and overlong ones, naming topicPattern', async () => {
    for (const [pattern, why] of [['(a)\\1', /linear time/], ['(?=a)b', /linear time/], ['a'.repeat(1001), /at most 1000/]] as const) {
      const res = await api('POST', '/v1/groups', { name: uniqueName('bad-re'), sourceCluster: 'a', targetCluster: 'b', topicPattern: pattern })
      expect(res.status, pattern).to.equal(400)
      const problem = (res.body.error.details as Array<{ field: string; message: string }>).find((d) => d.field === 'topicPattern')
      expect(problem?.message, pattern).to.match(why)
    }
  })

  it('walks the API with names that are Object keys (clusters, groups, a rename map over such source topics)', async () => {
    const names = ['constructor', 'toString', 'hasOwnProperty']
    // `__proto__` cannot be a cluster or group name (names start with a letter or digit): a 400, not a silent drop.
    const refused = await api('POST', '/v1/clusters', { name: '__proto__', bootstrapServers: [stack.source.plaintext] })
    expect(refused.status).to.equal(400)
    expect(refused.body.error.details[0].field).to.equal('name')
    expect((await api('POST', '/v1/clusters', { name: 'constructor', bootstrapServers: [stack.source.plaintext] })).status).to.equal(201)
    expect((await api('POST', '/v1/clusters', { name: 'toString', bootstrapServers: [stack.target.plaintext] })).status).to.equal(201)
    expect((await api('POST', '/v1/clusters', { name: 'constructor', bootstrapServers: [stack.source.plaintext] })).status, 'a second constructor is a conflict').to.equal(409)
    expect((await api('GET', '/v1/clusters/hasOwnProperty')).status).to.equal(404)
    expect((await api('GET', '/v1/clusters/constructor')).body.name).to.equal('constructor')

    const sources = [...names, '__proto__']
    const suffix = uniqueName('m')
    const map = Object.fromEntries(sources.map((t) => [t, `${t}.${suffix}`]))
    for (const topic of sources) {
      // Fixed names on the shared source cluster: created once per stack.
      await createTopic(stack.source.plaintext, topic, 1).catch((error: unknown) => {
        if (!String(error).includes('exists')) throw error
      })
    }
    const created = await api('POST', '/v1/groups', { name: 'constructor', sourceCluster: 'constructor', targetCluster: 'toString', topics: sources, rename: { map } })
    expect(created.status, created.text).to.equal(201)
    expect(Object.keys(created.body.spec.rename.map).sort(), '__proto__ kept as a map key').to.deep.equal([...sources].sort())
    expect(created.body.spec.rename.map.__proto__).to.equal(`__proto__.${suffix}`)
    expect((await api('POST', '/v1/groups', { name: 'hasOwnProperty', sourceCluster: 'constructor', targetCluster: 'toString', topics: ['toString'], start: false })).status).to.equal(201)

    // The data path is walked, record for record, in the next test.
    const view = await waitFor('the group to cover its four source topics', async () => {
      const body = (await api('GET', '/v1/groups/constructor')).body
      return Object.keys(body?.status?.topics ?? {}).length === sources.length || body?.status?.error ? body : undefined
    }, 60000)
    expect(view.status.error, JSON.stringify(view.status)).to.equal(undefined)
    await waitFor('every source partition assigned', async () => ((await api('GET', '/v1/groups/constructor')).body.partitions as unknown[]).length === sources.length, 60000)
    const assigned = (await api('GET', '/v1/groups/constructor')).body
    expect((assigned.partitions as Array<{ topic: string; targetTopic: string }>).map((p) => [p.topic, p.targetTopic]).sort()).to.deep.equal(sources.map((t) => [t, `${t}.${suffix}`]).sort())
    expect(Object.keys(view.status.topics).sort()).to.deep.equal([...sources].sort())
    const listed = ((await api('GET', '/v1/groups')).body.groups as Array<{ name: string; state: string }>).map((g) => `${g.name}:${g.state}`)
    expect(listed).to.include.members(['constructor:running', 'hasOwnProperty:stopped'])
    expect((await api('GET', '/v1/groups/toString')).status).to.equal(404)
    expect((await api('GET', '/v1/assignments')).status).to.equal(200)

    expect((await api('DELETE', '/v1/clusters/constructor')).status, 'in use').to.equal(409)
    expect((await api('DELETE', '/v1/groups/constructor')).status).to.equal(204)
    expect((await api('DELETE', '/v1/groups/hasOwnProperty')).status).to.equal(204)
    expect((await api('DELETE', '/v1/clusters/constructor')).status).to.equal(204)
    expect((await api('DELETE', '/v1/clusters/toString')).status).to.equal(204)
    expect((await api('GET', '/v1/clusters')).body.clusters.map((c: { name: string }) => c.name)).to.not.include.members(['constructor', 'toString'])
  })

  it('mirrors topics named like Object members, record for record, at-least-once and exactly-once (judged by the Java clients)', async () => {
    const src = uniqueName('obj-src')
    const dst = uniqueName('obj-dst')
    expect((await api('POST', '/v1/clusters', { name: src, bootstrapServers: [stack.source.plaintext] })).status).to.equal(201)
    expect((await api('POST', '/v1/clusters', { name: dst, bootstrapServers: [stack.target.plaintext] })).status).to.equal(201)
    const plain = uniqueName('plain')
    // Every target name is an Object member too, each written by one group only; the
    // exactly-once group writes the identical names (`__proto__` through the transactional
    // producer), the at-least-once group renames, `plain` to `valueOf` among them.
    const routes: Array<[source: string, atLeastOnce: string, exactlyOnce: string]> = [
      ['constructor', 'isPrototypeOf', 'constructor'],
      ['toString', 'toLocaleString', 'toString'],
      ['hasOwnProperty', 'propertyIsEnumerable', 'hasOwnProperty'],
      ['__proto__', '__defineGetter__', '__proto__'],
      ['valueOf', '__lookupSetter__', '__lookupGetter__'],
      [plain, 'valueOf', plain],
    ]
    const sources = routes.map(([source]) => source)
    for (const topic of sources) {
      // Fixed names on the shared source cluster: the API walk above may have made them already.
      await createTopic(stack.source.plaintext, topic, 2).catch((error: unknown) => {
        if (!String(error).includes('exists')) throw error
      })
    }
    // Kafka's Java producer writes and its consumer reads both sides: kafkajs is the client under test.
    const expected = new Map<string, Map<number, OracleRecord[]>>()
    for (const [index, topic] of sources.entries()) {
      await oracleProduce(stack.source.plaintext, topic, { profile: 'shapes', seed: 1300 + index, count: 60 })
      const records = await oracleDump(stack.source.plaintext, topic)
      expect(countRecords(records), `${topic} holds records`).to.be.greaterThan(0)
      expected.set(topic, records)
    }
    for (const [delivery, column, mode] of [
      ['at-least-once', 1, 'at-least-once'],
      ['exactly-once', 2, 'exact'],
    ] as const) {
      const name = uniqueName(`obj-${delivery}`)
      const map = Object.fromEntries(routes.map((route) => [route[0], route[column]]))
      const created = await api('POST', '/v1/groups', { name, sourceCluster: src, targetCluster: dst, topics: sources, rename: { map }, delivery })
      expect(created.status, created.text).to.equal(201)
      const failures: string[] = []
      // One deadline for the group: a broken mirror fails with its diffs, not the test's timeout.
      const deadline = Date.now() + 90000
      for (const route of routes) {
        const [source, target] = [route[0], route[column]]
        const comparison = await awaitMirror(stack.target.plaintext, target, expected.get(source) as Map<number, OracleRecord[]>, mode, Math.max(5000, deadline - Date.now()))
        if (comparison.missing > 0 || comparison.problems.length > 0) failures.push(`${source} -> ${target}: ${describeComparison(comparison)}`)
      }
      const view = (await api('GET', `/v1/groups/${name}`)).body as { partitions: Array<{ topic: string; partition: number; state: string; error?: { code: string; message: string } }> }
      const errors = view.partitions.filter((p) => p.error !== undefined).map((p) => `${p.topic}[${p.partition}] ${p.state} ${JSON.stringify(p.error)}`)
      expect(failures, `${delivery}:\n${failures.join('\n\n')}\n${errors.join('\n')}`).to.deep.equal([])
      expect(errors, delivery).to.deep.equal([])
      expect([...new Set(view.partitions.map((p) => p.topic))].sort(), delivery).to.deep.equal([...sources].sort())
      expect((await api('DELETE', `/v1/groups/${name}`)).status).to.equal(204)
    }
  })

  it('refuses topic names Kafka cannot take and targets longer than 249 characters, naming the field', async () => {
    const base = { sourceCluster: 'a', targetCluster: 'b' }
    const cases: Array<[unknown, string]> = [
      [{ ...base, name: uniqueName('long'), topics: ['t'.repeat(200)], rename: { prefix: 'p'.repeat(50) } }, 'topics.0'],
      [{ ...base, name: uniqueName('dot'), topics: ['..'] }, 'topics.0'],
      [{ ...base, name: uniqueName('map'), topics: ['x'], rename: { map: { x: '.' } } }, 'rename.map.x'],
      [{ ...base, name: uniqueName('big'), topics: ['x'], maxBytesPerSec: 2 ** 63 }, 'maxBytesPerSec'],
    ]
    for (const [body, field] of cases) {
      const res = await api('POST', '/v1/groups', body)
      expect(res.status, field).to.equal(400)
      expect((res.body.error.details as Array<{ field: string }>).map((d) => d.field), res.text).to.include(field)
    }
  })

  it('answers 503 to the audit of a group whose cluster cannot be reached', async () => {
    const dead = uniqueName('dead')
    expect((await api('POST', '/v1/clusters', { name: dead, bootstrapServers: ['127.0.0.1:1'] })).status).to.equal(201)
    const dst = uniqueName('alive')
    expect((await api('POST', '/v1/clusters', { name: dst, bootstrapServers: [stack.target.plaintext] })).status).to.equal(201)
    const group = uniqueName('audit-dead')
    expect((await api('POST', '/v1/groups', { name: group, sourceCluster: dead, targetCluster: dst, topics: ['t'], start: false })).status).to.equal(201)
    const res = await api('GET', `/v1/groups/${group}/audit`)
    expect(res.status, res.text).to.equal(503)
    expect(res.body.error.code).to.equal('UNAVAILABLE')
    expect(res.body.error.message).to.include(dead)
  })

  it('answers 431 to a 100 KB header and 415 to a UTF-16 body', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await bigHeaderRequest(url, 100 * 1024)
      expect(res, JSON.stringify(res)).to.have.property('status', 431)
      expect(JSON.parse((res as { text: string }).text).error.code).to.equal('REQUEST_HEADER_FIELDS_TOO_LARGE')
    }
    const body = Buffer.from(JSON.stringify({ name: uniqueName('u16'), sourceCluster: 'a', targetCluster: 'b', topics: ['t'] }), 'utf16le')
    const res = await request('POST', `${url}/v1/groups`, { raw: body, contentType: 'application/json; charset=utf-16' })
    expect(res.status, res.text).to.equal(415)
    expect(res.body.error.details[0].field).to.equal('Content-Type')
    expect((await api('GET', '/healthz')).status, 'still serving').to.equal(200)
  })

  it('removes the status znode of a group that no longer exists', async () => {
    const ghost = uniqueName('ghost')
    // What a pass that read the group just before its deletion leaves behind.
    const store = createStore(zk, paths)
    await zk.multi(store.statusOps({ group: ghost, observedAt: new Date().toISOString(), topics: {} }, false))
    expect(await zk.exists(paths.status(ghost))).to.not.equal(null)
    expect((await api('POST', '/v1/rebalance')).status).to.equal(200)
    await waitFor('the orphaned status removed', async () => (await zk.exists(paths.status(ghost))) === null, 20000)
  })

  it('keeps a controller without tokens and without --api-open closed: 401 on changes, nothing created', async () => {
    const closed = await startController('closed-controller', [...common(), '--id', 'closed-c1'], { FERRY_API_OPEN: '', FERRY_API_TOKENS: '', FERRY_API_TOKENS_FILE: '' })
    procs.push(closed.proc)
    expect(closed.proc.log()).to.include('"api":"closed"')
    const name = uniqueName('closed')
    const res = await request('POST', `${closed.url}/v1/groups`, { json: { name, sourceCluster: 'a', targetCluster: 'b', topics: ['t'] } })
    expect(res.status).to.equal(401)
    expect(res.body.error.code).to.equal('UNAUTHORIZED')
    expect(res.body.error.message).to.match(/API is closed/).and.match(/--api-open/).and.match(/FERRY_API_TOKENS/)
    for (const [method, path] of [['POST', '/v1/clusters'], ['DELETE', '/v1/groups/x'], ['PUT', '/topics'], ['GET', '/v1/groups']] as const) {
      expect((await request(method, `${closed.url}${path}`)).status, `${method} ${path}`).to.equal(401)
    }
    expect((await request('GET', `${closed.url}/healthz`)).status).to.equal(200)
    expect((await request('GET', `${closed.url}/readyz`)).body.api).to.equal('closed')
    expect((await api('GET', '/readyz')).body.api, 'the harness opens its controllers').to.equal('open')
    expect(await zk.exists(paths.group(name)), 'nothing written').to.equal(null)
    await closed.proc.stop()
  })
})
