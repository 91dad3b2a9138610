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
    const again = await request('POST', `${url}/topics/${topic}`)
    expect(again.status).to.equal(409)

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
    for (const [method, path] of [['DELETE', `/topics/${topic}`], ['GET', `/topics/${topic}`]] as const) {
      const res = await request(method, `${url}${path}`)
      expect(res.status).to.equal(404)
      expect(res.body.error.details[0].field).to.equal('topic')
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
    expect(unknown.body.error.details[0].field).to.equal('dst')
    const ok = await request('POST', `${other.url}/topics/${t2}?src=${source}&dst=${target}`)
    expect(ok.status, ok.text).to.equal(200)
    expect((await request('GET', `${other.url}/v1/groups/ureplicator.${t2}`)).body.spec).to.include({ sourceCluster: source, targetCluster: target })
    expect((await request('DELETE', `${other.url}/topics/${t2}`)).status).to.equal(200)
  })
})
