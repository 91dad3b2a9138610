/**
 * The uReplicator-compatible /topics API on the real stack: a controller started with
 * --ureplicator-source/--ureplicator-target and one worker under bootstrap; a topic added the way
 * uReplicator's docs do it (`curl -X POST -d '{"topic":..,"numPartitions":..}' /topics`, a form
 * content type) is mirrored record for record, shows in the list and the assignment view, and
 * is removed by DELETE. Without a default pair the `src`/`dst` query decides, or it is a 400.
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import type { LocalStack } from '../../deploy/local-stack.js'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import { FerryProcess, sharedStack, uniqueName, waitFor } from './harness.js'
import { createSampleProducer, createTopic, readAll, verifyNothingLost } from './kafka-helpers.js'
import { request } from './api-client.js'
import http from 'node:http'

/** As `curl -X METHOD [-d DATA] URL` minus curl's form content type: no Content-Type header at all. */
function curl(method: string, url: string, data?: string): Promise<{ status: number; contentType: string; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers: data === undefined ? {} : { 'content-length': String(Buffer.byteLength(data)) } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (text += chunk))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text }))
    })
    req.on('error', reject)
    if (data !== undefined) req.write(data)
    req.end()
  })
}

describe('uReplicator-compatible /topics API (real stack)', function () {
  this.timeout(240000)
  let stack: LocalStack
  let redis: Redis
  const deployment = uniqueName('urep')
  const procs: FerryProcess[] = []
  let url = ''
  const source = 'urep-src'
  const target = 'urep-dst'
  const topic = uniqueName('urep-topic')

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    redis = new Redis(stack.redis.url)
    const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '4000']
    procs.push(new FerryProcess('urep-controller', ['bootstrap', '--role', 'controller', '--id', 'urep-c1', '--port', '0', '--ureplicator-source', source, '--ureplicator-target', target, '--rebalance-debounce-ms', '500', ...common]))
    procs.push(new FerryProcess('urep-worker', ['bootstrap', '--role', 'worker', '--id', 'urep-w1', ...common]))
    const keys = createKeys(deployment)
    const controller = await waitFor('controller and worker registered', async () => {
      const instances = await listInstances(redis, keys)
      const c = instances.find((i) => i.role === 'controller' && i.url)
      return c && instances.some((i) => i.id === 'urep-w1') ? c : undefined
    }, 90000)
    url = controller.url as string
    for (const [name, servers] of [[source, stack.source.plaintext], [target, stack.target.plaintext]] as const) {
      expect((await request('POST', `${url}/v1/clusters`, { json: { name, bootstrapServers: [servers] } })).status).to.equal(201)
    }
    await createTopic(stack.source.plaintext, topic, 2)
  })

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    redis.disconnect()
  })

  it('adds a topic posted as uReplicator tooling does, and mirrors it', async () => {
    expect((await request('GET', `${url}/topics`)).text).to.equal('No topic is added in MirrorMaker Controller!')
    const producer = createSampleProducer(stack.source.plaintext, topic, 2)
    await producer.send(200)
    const added = await request('POST', `${url}/topics`, { raw: JSON.stringify({ topic, numPartitions: '2' }), contentType: 'application/x-www-form-urlencoded' })
    expect(added.status, added.text).to.equal(200)
    expect(added.headers.get('content-type')).to.match(/^text\/plain/)
    expect(added.text).to.match(new RegExp(`^Successfully add new topic: \\{topic: ${topic}`))
    // The audit line names the topic even though it came in a text body.
    await waitFor('the api.change line of the add', () => procs[0]?.log().includes(`"topic":"${topic}","group":"ureplicator.${topic}","status":200`), 10000)
    // Added twice: uReplicator's 404 and its text.
    const again = await request('POST', `${url}/topics/${topic}`)
    expect(again.status).to.equal(404)
    expect(again.text).to.equal(`Failed to add new topic: ${topic}, it is already existed!`)

    const group = (await request('GET', `${url}/v1/groups/ureplicator.${topic}`)).body
    expect(group.spec).to.include({ sourceCluster: source, targetCluster: target })
    expect(group.spec.topics).to.deep.equal([topic])
    expect((await request('GET', `${url}/topics`)).text).to.equal(`Current serving topics: [${topic}]`)

    await producer.send(100)
    await producer.close()
    const rows = await waitFor('all 300 records on the target', async () => {
      const got = await readAll(stack.target.plaintext, topic)
      return [...got.values()].reduce((n, r) => n + r.length, 0) >= 300 ? got : undefined
    }, 120000, 1000)
    expect(verifyNothingLost(rows, producer.produced, 'ureplicator topic')).to.equal(0)

    const view = await waitFor('both partitions ONLINE on the worker', async () => {
      const v = (await request('GET', `${url}/topics/${topic}`)).body as { serverToNumPartitionsMapping: Record<string, number> }
      return v.serverToNumPartitionsMapping['urep-w1'] === 2 ? v : undefined
    }, 30000)
    expect(view).to.deep.include({ topic, idealState: { 0: { 'urep-w1': 'ONLINE' }, 1: { 'urep-w1': 'ONLINE' } }, externalView: { 0: { 'urep-w1': 'ONLINE' }, 1: { 'urep-w1': 'ONLINE' } } })
    expect(view).to.have.nested.property('serverToPartitionMapping.urep-w1.0', 'ONLINE')

    const expanded = await request('PUT', `${url}/topics`, { raw: JSON.stringify({ topic, numPartitions: 2 }) })
    expect(expanded.status).to.equal(200)
  })

  it('deletes a topic, then answers 404 as uReplicator does', async () => {
    const deleted = await request('DELETE', `${url}/topics/${topic}`)
    expect(deleted.status).to.equal(200)
    expect(deleted.text).to.equal(`Successfully finished delete topic: ${topic}`)
    expect((await request('GET', `${url}/v1/groups/ureplicator.${topic}`)).status).to.equal(404)
    expect((await request('GET', `${url}/topics`)).text).to.equal('No topic is added in MirrorMaker Controller!')
    for (const [method, path, text] of [['DELETE', `/topics/${topic}`, `Failed to delete not existed topic: ${topic}`], ['GET', `/topics/${topic}`, `Failed to get ExternalView for topic: ${topic}, it is not existed!`], ['PUT', '/topics', `Failed to expand topic, topic: ${topic} is not existed!`]] as const) {
      const res = await request(method, `${url}${path}`, method === 'PUT' ? { raw: JSON.stringify({ topic, numPartitions: '2' }) } : {})
      expect(res.status, `${method} ${path}`).to.equal(404)
      expect(res.headers.get('content-type')).to.match(/^text\/plain/)
      expect(res.text).to.equal(text)
    }
    await waitFor('the assignment to drop the topic', async () => {
      const assignments = (await request('GET', `${url}/v1/assignments`)).body.assignments as Record<string, { partitions: Array<{ group: string }> }>
      return Object.values(assignments).every((a) => a.partitions.every((p) => p.group !== `ureplicator.${topic}`))
    }, 30000)
  })

  it('takes the cluster pair from src/dst, and names them when there is none', async () => {
    const other = await (async () => {
      const { startController } = await import('./api-client.js')
      return startController('urep-nodefault', ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--id', 'urep-c2'])
    })()
    procs.push(other.proc)
    const t2 = uniqueName('urep-t2')
    const none = await request('POST', `${other.url}/topics`, { raw: JSON.stringify({ topic: t2 }) })
    expect(none.status).to.equal(400)
    expect(none.body.error.details.map((d: { field: string }) => d.field)).to.deep.equal(['src', 'dst'])
    const unknown = await request('POST', `${other.url}/topics/${t2}?src=${source}&dst=no-such-cluster`)
    expect(unknown.status).to.equal(404)
    expect(unknown.text).to.equal('cluster "no-such-cluster" (dst) is not registered')
    await createTopic(stack.source.plaintext, t2, 1)
    const ok = await request('POST', `${other.url}/topics/${t2}?src=${source}&dst=${target}`)
    expect(ok.status, ok.text).to.equal(200)
    expect((await request('GET', `${other.url}/v1/groups/ureplicator.${t2}`)).body.spec).to.include({ sourceCluster: source, targetCluster: target })
    expect((await request('DELETE', `${other.url}/topics/${t2}`)).status).to.equal(200)
  })

  it("runs uReplicator's README commands verbatim (no Content-Type, numPartitions as a string), and records their events", async () => {
    const t = uniqueName('dummyTopic')
    await createTopic(stack.source.plaintext, t, 1)
    const added = await curl('POST', `${url}/topics`, `{"topic":"${t}", "numPartitions":"1"}`)
    expect(added.status, added.text).to.equal(200)
    expect(added.text).to.equal(`Successfully add new topic: {topic: ${t}, partition: 1}`)
    const twice = await curl('POST', `${url}/topics`, `{"topic":"${t}", "numPartitions":"1"}`)
    expect([twice.status, twice.text]).to.deep.equal([404, `Failed to add new topic: ${t}, it is already existed!`])
    expect((await curl('GET', `${url}/topics`)).text).to.match(new RegExp(`^Current serving topics: \\[.*${t}.*\\]$`))
    const view = await curl('GET', `${url}/topics/${t}`)
    expect(view.status).to.equal(200)
    expect(JSON.parse(view.text)).to.include({ topic: t })
    const expanded = await curl('PUT', `${url}/topics`, `{"topic":"${t}", "numPartitions":"2"}`)
    expect([expanded.status, expanded.text]).to.deep.equal([200, `Successfully expand topic: {topic: ${t}, partition: 2}`])
    const deleted = await curl('DELETE', `${url}/topics/${t}`)
    expect([deleted.status, deleted.text]).to.deep.equal([200, `Successfully finished delete topic: ${t}`])
    // Added with an empty body (the topic in the path), as uReplicator's source observer allows.
    const bare = await curl('POST', `${url}/topics/${t}`)
    expect([bare.status, bare.text]).to.deep.equal([200, `Successfully add new topic: {topic: ${t}, partition: 1}`])
    expect((await curl('DELETE', `${url}/topics/${t}`)).status).to.equal(200)

    const absent = uniqueName('absentTopic')
    const refused = await curl('POST', `${url}/topics/${absent}`)
    expect([refused.status, refused.text]).to.deep.equal([400, `Failed to add new topic: ${absent}, it's not exsited in source kafka cluster!`])
    expect((await request('GET', `${url}/v1/groups/ureplicator.${absent}`)).status).to.equal(404)

    // The same events as a group created or deleted under /v1.
    const group = `ureplicator.${t}`
    const events = await waitFor('the uReplicator changes in the event log', async () => {
      const list = (await request('GET', `${url}/v1/events?limit=500`)).body.events as Array<{ type: string; group?: string; message: string }>
      const mine = list.filter((e) => e.group === group).reverse()
      return mine.length >= 4 ? mine : undefined
    }, 10000)
    expect(events.map((e) => e.type)).to.deep.equal(['group_created', 'group_deleted', 'group_created', 'group_deleted'])
    expect(events[0]?.message).to.match(/uReplicator/)
  })

  it('serves /health, /validation, /admin auto-balancing and workload, and /noprogress', async () => {
    const health = await curl('GET', `${url}/health`)
    expect([health.status, health.text]).to.deep.equal([200, 'OK\n'])
    const t = uniqueName('urep-val')
    await createTopic(stack.source.plaintext, t, 4)
    expect((await curl('POST', `${url}/topics`, JSON.stringify({ topic: t, numPartitions: '4' }))).status).to.equal(200)
    const group = `ureplicator.${t}`
    const validation = await waitFor('the 4 partitions served as assigned', async () => {
      const v = (await request('GET', `${url}/validation`)).body as { mismatches: Array<{ group: string }>; IdealState: Record<string, number>; ExternalView: Record<string, number>; numOnlineTopicPartitions: number }
      return v.mismatches.every((m) => m.group !== group) && (v.ExternalView['urep-w1'] ?? 0) >= 4 ? v : undefined
    }, 60000, 500)
    expect(validation.IdealState['urep-w1']).to.equal(validation.ExternalView['urep-w1'])
    expect(validation.numOnlineTopicPartitions).to.be.at.least(4)

    // Caught up: nothing is stalled, and uReplicator's empty answer is {}.
    await waitFor('no partition of the group stalled', async () => {
      const body = (await request('GET', `${url}/noprogress?seconds=0`)).body as { topics?: Array<{ group: string }> }
      return (body.topics ?? []).every((r) => r.group !== group) ? true : undefined
    }, 30000)
    expect((await request('GET', `${url}/noprogress?seconds=3600`)).body).to.deep.equal({})
    expect((await request('GET', `${url}/noprogress?seconds=soon`)).status).to.equal(400)

    const workload = (await request('GET', `${url}/admin/workloadinfo`)).body
    expect(workload).to.include({ autoBalancingEnabled: true })
    const w1 = (workload.workerInstances as Array<{ workerId: string; numberOfTopicPartitions: number }>).find((w) => w.workerId === 'urep-w1')
    expect(w1?.numberOfTopicPartitions).to.be.at.least(4)

    // Auto-balancing off: a new worker gets nothing moved to it; on again: it does.
    expect((await request('GET', `${url}/admin/autobalancing_status`)).body).to.deep.equal({ auto_balancing: true })
    expect((await curl('POST', `${url}/admin/disable_autobalancing`)).text).to.equal('{"opt":"disable_autobalancing","auto_balancing":false}')
    expect((await request('GET', `${url}/admin/autobalancing_status`)).body).to.deep.equal({ auto_balancing: false })
    const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '4000']
    const w2 = new FerryProcess('urep-worker2', ['bootstrap', '--role', 'worker', '--id', 'urep-w2', ...common])
    procs.push(w2)
    const keys = createKeys(deployment)
    await waitFor('urep-w2 registered', async () => (await listInstances(redis, keys)).some((i) => i.id === 'urep-w2'), 60000)
    type DryRun = { workers: string[]; moves: Array<{ to: string | null }>; deferred: number }
    const held = (await request('POST', `${url}/v1/rebalance?dryRun=true`)).body as DryRun
    expect(held.workers).to.include('urep-w2')
    expect(held.moves.filter((m) => m.to === 'urep-w2')).to.deep.equal([])
    expect(held.deferred).to.be.greaterThan(0)
    expect((await curl('POST', `${url}/admin/enable_autobalancing`)).text).to.equal('{"opt":"enable_autobalancing","auto_balancing":true}')
    await waitFor('partitions moved to urep-w2', async () => {
      const assignments = (await request('GET', `${url}/v1/assignments`)).body.assignments as Record<string, { partitions: unknown[] }>
      return (assignments['urep-w2']?.partitions.length ?? 0) > 0 ? true : undefined
    }, 30000)
    expect((await curl('DELETE', `${url}/topics/${t}`)).status).to.equal(200)
    await w2.stop()
  })
})
