/**
 * End to end on the real stack: a controller and two workers, each under bootstrap, mirror a
 * 6-partition topic from the TLS (mTLS) listener of the source cluster to the target, and the
 * result is compared record by record. Then: stop/start over REST, SIGKILL of a worker, bad
 * REST input, and clusters with a wrong CA or a wrong SASL password.
 */
import { expect } from 'chai'
import { Kafka, logLevel } from '../../common/kafka/kafkajs.js'
import { Redis } from 'ioredis'
import zookeeper from 'node-zookeeper-client'
import type { LocalStack } from '../../deploy/local-stack.js'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import { FerryProcess, allFerryLogs, http, sharedStack, stackSecretFlags, uniqueName, waitFor } from './harness.js'
import { createSampleProducer, readAll, topicEnd, verifyNothingLost, type Row } from './kafka-helpers.js'

describe('mirroring end to end (real ZooKeeper, Redis and two Kafka clusters)', function () {
  this.timeout(240000)
  let stack: LocalStack
  let redis: Redis
  const deployment = uniqueName('e2e')
  const procs: FerryProcess[] = []
  let controllerUrl = ''
  const workerIds = ['w1', 'w2']
  const workers = new Map<string, FerryProcess>()

  const common = (): string[] => ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '4000', ...stackSecretFlags(stack)]
  const startWorker = (id: string): FerryProcess => {
    const p = new FerryProcess(`worker-${id}`, ['bootstrap', '--role', 'worker', '--id', id, ...common()])
    workers.set(id, p)
    procs.push(p)
    return p
  }
  const api = (method: string, path: string, body?: unknown) => http(method, `${controllerUrl}${path}`, body)
  const groupStatus = async (name: string) => (await api('GET', `/v1/groups/${name}`)).body
  const createTopic = async (topic: string, partitions: number): Promise<void> => {
    const admin = new Kafka({ brokers: [stack.source.plaintext], logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions }] })
    await admin.disconnect()
  }

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    redis = new Redis(stack.redis.url)
    procs.push(new FerryProcess('controller', ['bootstrap', '--role', 'controller', '--id', 'c1', '--port', '0', ...common()]))
    for (const id of workerIds) startWorker(id)
    const keys = createKeys(deployment)
    const live = await waitFor('controller and both workers registered in Redis', async () => {
      const instances = await listInstances(redis, keys)
      const controller = instances.find((i) => i.role === 'controller' && i.url)
      return controller && workerIds.every((id) => instances.some((i) => i.id === id)) ? controller : undefined
    }, 90000)
    controllerUrl = live.url as string
    const clusters = [
      { name: 'src-tls', bootstrapServers: [stack.source.ssl], securityProtocol: 'SSL', tls: { caFile: stack.source.caFile, certFile: stack.source.clientCertFile, keyFile: stack.source.clientKeyFile }, dc: 'dc1', zone: 'secure' },
      { name: 'dst', bootstrapServers: [stack.target.plaintext], dc: 'dc2' },
    ]
    for (const cluster of clusters) expect((await api('POST', '/v1/clusters', cluster)).status).to.equal(201)
  })

  after(async function () {
    this.timeout(60000)
    await Promise.all(procs.map((p) => p.stop(20000)))
    redis?.disconnect()
  })

  it('mirrors 10,000 records with keys and headers over TLS byte-identical, split across two workers', async () => {
    const topic = uniqueName('orders')
    await createTopic(topic, 6)
    const producer = createSampleProducer(stack.source.plaintext, topic, 6)
    await producer.send(10000)
    await producer.close()

    const created = await api('POST', '/v1/groups', { name: 'g-main', sourceCluster: 'src-tls', targetCluster: 'dst', topics: [topic] })
    expect(created.status, created.text).to.equal(201)

    await waitFor('10,000 records on the target', async () => (await topicEnd(stack.target.plaintext, topic)) >= 10000, 120000)
    const status = await waitFor('group status with zero lag', async () => {
      const s = await groupStatus('g-main')
      return s.status.lag === 0 && s.partitions.length === 6 ? s : undefined
    })
    const owners = new Set(status.partitions.map((p: { worker: string }) => p.worker))
    expect([...owners].sort()).to.deep.equal(workerIds)
    expect(status.status.healthy).to.equal(true)
    // Caught up and idle is still served: each assigned worker reports its partitions, mirroring.
    const served = await waitFor('every partition served by its assigned worker', async () => {
      const s = await groupStatus('g-main')
      return s.partitions.length === 6 && s.partitions.every((p: { served: string }) => p.served === 'serving') ? s : undefined
    }, 30000)
    expect(served.status.drift).to.deep.equal({ not_reported: 0, reported_by_other: 0, no_progress: 0 })
    expect(served.status.unservedPastGrace).to.equal(0)
    expect(served.partitions.filter((p: { sinceMs?: number }) => p.sinceMs !== undefined)).to.deep.equal([])

    const source = await readAll(stack.source.plaintext, topic)
    const target = await readAll(stack.target.plaintext, topic)
    let compared = 0
    for (let partition = 0; partition < 6; partition++) {
      const want = source.get(partition) ?? []
      const got = target.get(partition) ?? []
      expect(got.length, `partition ${partition} record count`).to.equal(want.length)
      got.forEach((row, index) => {
        const expected = want[index] as Row
        expect({ ...row, offset: 0 }).to.deep.equal({ ...expected, offset: 0 })
        compared++
      })
    }
    expect(compared).to.equal(10000)
  })

  it('stops mirroring when the group is stopped over REST, and resumes with nothing lost when started', async () => {
    const topic = uniqueName('events')
    await createTopic(topic, 4)
    const producer = createSampleProducer(stack.source.plaintext, topic, 4)
    await producer.send(400)
    expect((await api('POST', '/v1/groups', { name: 'g-stop', sourceCluster: 'src-tls', targetCluster: 'dst', topics: [topic], rename: { prefix: 'mirror.' } })).status).to.equal(201)
    const targetTopic = `mirror.${topic}`
    await waitFor('the first 400 records mirrored', async () => (await topicEnd(stack.target.plaintext, targetTopic)) === 400)

    expect((await api('POST', '/v1/groups/g-stop/stop')).body.state).to.equal('stopped')
    await waitFor('no worker mirroring g-stop', async () => {
      const s = await groupStatus('g-stop')
      const instances = await listInstances(redis, createKeys(deployment))
      const reported = instances.flatMap((i) => ((i.metrics as { partitions?: Array<{ group: string }> })?.partitions ?? []).filter((p) => p.group === 'g-stop'))
      return s.partitions.length === 0 && reported.length === 0
    })
    await producer.send(200)
    // Absence can only be observed over a window: give the (released) workers time to misbehave.
    const observeUntil = Date.now() + 3000
    while (Date.now() < observeUntil) {
      expect(await topicEnd(stack.target.plaintext, targetTopic)).to.equal(400)
      await new Promise((resolve) => setTimeout(resolve, 500))
    }

    expect((await api('POST', '/v1/groups/g-stop/start')).body.state).to.equal('running')
    await waitFor('all 600 records mirrored after restart', async () => (await topicEnd(stack.target.plaintext, targetTopic)) >= 600)
    await producer.close()
    const target = await readAll(stack.target.plaintext, targetTopic)
    for (let partition = 0; partition < 4; partition++) {
      const values = (target.get(partition) ?? []).map((r) => r.value)
      expect(values.length, `partition ${partition}: no duplicates after a clean stop`).to.equal(150)
      expect(new Set(values).size).to.equal(150)
    }
  })

  it('loses nothing when a worker is killed with SIGKILL mid-stream and started again', async () => {
    const topic = uniqueName('payments')
    const partitions = 6
    await createTopic(topic, partitions)
    const producer = createSampleProducer(stack.source.plaintext, topic, partitions)
    await producer.send(3000)
    expect((await api('POST', '/v1/groups', { name: 'g-kill', sourceCluster: 'src-tls', targetCluster: 'dst', topics: [topic] })).status).to.equal(201)
    await waitFor('mirroring under way', async () => (await topicEnd(stack.target.plaintext, topic)) > 0)

    const victim = workers.get('w1') as FerryProcess
    const producing = (async () => {
      for (let i = 0; i < 10; i++) await producer.send(300)
    })()
    victim.kill('SIGKILL')
    await victim.exited
    await producing
    startWorker('w1')
    const total = 3000 + 10 * 300
    await waitFor(`all ${total} source records on the target`, async () => (await topicEnd(stack.target.plaintext, topic)) >= total, 120000)
    await waitFor('zero lag', async () => (await groupStatus('g-kill')).status.lag === 0)
    await producer.close()

    const target = await readAll(stack.target.plaintext, topic)
    const duplicates = verifyNothingLost(target, producer.produced, 'g-kill')
    // Duplicates come only from the unacknowledged tail of the killed worker: far fewer than what was mirrored.
    expect(duplicates).to.be.lessThan(total / 2)
  })

  it('rejects bad REST input with 400/404/409 and writes nothing to ZooKeeper', async () => {
    const zkGroups = async (): Promise<string[]> => {
      const client = zookeeper.createClient(stack.zookeeper.connect)
      await new Promise<void>((resolve) => {
        client.once('connected', () => resolve())
        client.connect()
      })
      const children = await new Promise<string[]>((resolve, reject) => client.getChildren(`/ferry/${deployment}/groups`, (error, list) => (error ? reject(error) : resolve(list))))
      client.close()
      return children.sort()
    }
    const before = await zkGroups()

    const missing = await api('POST', '/v1/groups', { name: 'bad1' })
    expect(missing.status).to.equal(400)
    expect(missing.body.error.code).to.equal('INVALID_INPUT')
    expect(missing.body.error.message).to.include('sourceCluster').and.to.include('targetCluster')

    const unknown = await api('POST', '/v1/groups', { name: 'bad2', sourceCluster: 'nope', targetCluster: 'dst', topics: ['x'] })
    expect(unknown.status).to.equal(404)
    expect(unknown.body.error.code).to.equal('CLUSTER_NOT_FOUND')
    expect(unknown.body.error.message).to.include('nope')

    const regex = await api('POST', '/v1/groups', { name: 'bad3', sourceCluster: 'src-tls', targetCluster: 'dst', topicPattern: 'orders.(' })
    expect(regex.status).to.equal(400)
    expect(regex.body.error.message).to.include('topicPattern')

    const duplicate = await api('POST', '/v1/groups', { name: 'g-main', sourceCluster: 'src-tls', targetCluster: 'dst', topics: ['x'] })
    expect(duplicate.status).to.equal(409)
    expect(duplicate.body.error.code).to.equal('GROUP_EXISTS')

    const notJson = await http('POST', `${controllerUrl}/v1/groups`, undefined, '{"name": ')
    expect(notJson.status).to.equal(400)
    expect(notJson.body.error.message).to.match(/not valid JSON/)

    const badCluster = await api('POST', '/v1/clusters', { name: 'c', bootstrapServers: ['no-port'], securityProtocol: 'SASL_SSL' })
    expect(badCluster.status).to.equal(400)
    expect(badCluster.body.error.message).to.include('bootstrapServers.0').and.to.include('sasl')

    expect((await api('GET', '/v1/groups/none')).status).to.equal(404)
    expect((await api('DELETE', '/v1/clusters/dst')).status).to.equal(409)
    expect(await zkGroups()).to.deep.equal(before)
  })

  it('reports a wrong CA and a wrong SASL password in group status, and never shows a secret', async () => {
    const topic = uniqueName('secure')
    await createTopic(topic, 2)
    const secret = stack.source.sasl.password
    const wrongPassword = `wrong-${randomSuffix()}`
    const clusters = [
      { name: 'src-wrong-ca', bootstrapServers: [stack.source.ssl], securityProtocol: 'SSL', tls: { caFile: stack.source.wrongCaFile, certFile: stack.source.clientCertFile, keyFile: stack.source.clientKeyFile } },
      { name: 'src-bad-sasl', bootstrapServers: [stack.source.saslSsl], securityProtocol: 'SASL_SSL', tls: { caFile: stack.source.caFile }, sasl: { mechanism: 'scram-sha-512', username: stack.source.sasl.username, password: wrongPassword } },
      { name: 'src-sasl', bootstrapServers: [stack.source.saslSsl], securityProtocol: 'SASL_SSL', tls: { caFile: stack.source.caFile }, sasl: { mechanism: 'scram-sha-512', username: stack.source.sasl.username, password: secret } },
    ]
    for (const cluster of clusters) {
      const response = await api('POST', '/v1/clusters', cluster)
      expect(response.status, response.text).to.equal(201)
      expect(response.text).not.to.include(secret)
      expect(response.text).not.to.include(wrongPassword)
    }
    for (const [group, cluster] of [['g-ca', 'src-wrong-ca'], ['g-auth', 'src-bad-sasl'], ['g-sasl', 'src-sasl']]) {
      expect((await api('POST', '/v1/groups', { name: group, sourceCluster: cluster, targetCluster: 'dst', topics: [topic], rename: { prefix: `${group}.` } })).status).to.equal(201)
    }
    const ca = await waitFor('a TLS error in g-ca status', async () => {
      const s = await groupStatus('g-ca')
      return s.status.error?.code === 'KAFKA_TLS_FAILED' ? s : undefined
    })
    expect(ca.status.error.message).to.include('src-wrong-ca').and.to.include('tls.caFile')
    const auth = await waitFor('an authentication error in g-auth status', async () => {
      const s = await groupStatus('g-auth')
      return s.status.error?.code === 'KAFKA_AUTH_FAILED' ? s : undefined
    })
    expect(auth.status.error.message).to.include('src-bad-sasl').and.to.include('SASL authentication failed')

    // The good SASL cluster mirrors.
    const producer = createSampleProducer(stack.source.plaintext, topic, 2)
    await producer.send(50)
    await producer.close()
    await waitFor('50 records mirrored over SASL_SSL', async () => (await topicEnd(stack.target.plaintext, `g-sasl.${topic}`)) === 50)

    const texts = [
      (await api('GET', '/v1/clusters')).text,
      (await api('GET', '/v1/clusters/src-sasl')).text,
      (await api('GET', '/v1/groups/g-auth')).text,
      (await api('GET', '/v1/groups/g-sasl')).text,
      (await api('GET', '/v1/workers')).text,
      (await api('GET', '/metrics')).text,
      allFerryLogs(),
    ]
    for (const text of texts) {
      expect(text).not.to.include(secret)
      expect(text).not.to.include(wrongPassword)
    }
    expect((await api('GET', '/v1/clusters/src-sasl')).body.sasl.password).to.equal('(set, hidden)')
  })
})

function randomSuffix(): string {
  return Math.random().toString(36).slice(2, 10)
}
