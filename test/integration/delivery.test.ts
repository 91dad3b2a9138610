/**
 * Delivery guarantees on the real stack: the audit finds nothing missing after a clean mirror
 * and does find what is missing or duplicated; a record the target refuses stops its partition
 * at that offset (or, by policy, goes to the dead-letter topic and the audit accounts for it).
 */
import { expect } from 'chai'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import type { LocalStack } from '../../deploy/local-stack.js'
import { Kafka, logLevel } from '../../common/kafka/kafkajs.js'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import { FerryProcess, http, sharedStack, uniqueName, waitFor } from './harness.js'
import { createSampleProducer, createTopic, readAll, topicEnd } from './kafka-helpers.js'

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url))

describe('audit and refused records (real stack)', function () {
  this.timeout(180000)
  let stack: LocalStack
  let redis: Redis
  let url = ''
  const deployment = uniqueName('dlv')
  const procs: FerryProcess[] = []
  const api = (method: string, path: string, body?: unknown) => http(method, `${url}${path}`, body)

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    redis = new Redis(stack.redis.url)
    const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '3000']
    procs.push(new FerryProcess('dlv-c1', ['bootstrap', '--role', 'controller', '--id', 'c1', '--port', '0', ...common]))
    procs.push(new FerryProcess('dlv-w1', ['bootstrap', '--role', 'worker', '--id', 'w1', ...common]))
    const controller = await waitFor('controller and worker registered', async () => {
      const live = await listInstances(redis, createKeys(deployment))
      return live.length === 2 ? live.find((i) => i.role === 'controller') : undefined
    }, 90000)
    url = controller.url as string
    expect((await api('POST', '/v1/clusters', { name: 'src', bootstrapServers: [stack.source.plaintext] })).status).to.equal(201)
    expect((await api('POST', '/v1/clusters', { name: 'dst', bootstrapServers: [stack.target.plaintext] })).status).to.equal(201)
  })

  after(async function () {
    this.timeout(60000)
    await Promise.all(procs.map((p) => p.stop(20000)))
    redis?.disconnect()
  })

  it('audits a clean mirror as complete, and catches a missing and a duplicated record', async () => {
    const topic = uniqueName('audited')
    await createTopic(stack.source.plaintext, topic, 3)
    const producer = createSampleProducer(stack.source.plaintext, topic, 3)
    const from = Date.now() - 2 * 3600000
    await producer.send(900)
    expect((await api('POST', '/v1/groups', { name: 'audited', sourceCluster: 'src', targetCluster: 'dst', topics: [topic], rename: { prefix: 'a.' } })).status).to.equal(201)
    await waitFor('900 mirrored', async () => (await topicEnd(stack.target.plaintext, `a.${topic}`)) === 900)

    // Workers report latency with their heartbeat, a second or two behind the data.
    const clean = await waitFor('the audit with every record\'s latency reported', async () => {
      const body = (await api('GET', `/v1/groups/audited/audit?from=${from}&bucketMs=600000`)).body
      return body?.latency?.records === 900 ? body : undefined
    })
    expect(clean).to.include({ source: 900, target: 900, missing: 0, duplicates: 0, deadLettered: 0 })
    // Sample records are stamped up to an hour back, so their end-to-end latency is that old.
    expect(clean.latency.p99Ms).to.be.at.least(60000)
    expect(clean.topics[0].buckets.length).to.be.greaterThan(0)

    // Stop the group, produce 30 more: the audit must call them missing.
    await api('POST', '/v1/groups/audited/stop')
    await waitFor('the group released', async () => ((await api('GET', '/v1/groups/audited')).body.partitions as unknown[]).length === 0)
    await producer.send(30)
    // One extra copy of a mirrored record on the target: a duplicate.
    const [first] = (await readAll(stack.target.plaintext, `a.${topic}`)).get(0) ?? []
    const kafka = new Kafka({ brokers: [stack.target.plaintext], logLevel: logLevel.NOTHING })
    const raw = kafka.producer()
    await raw.connect()
    const headers = Object.fromEntries(Object.entries(first?.headers ?? {}).map(([k, v]) => [k, Buffer.from(String(v), 'base64')]))
    await raw.send({ topic: `a.${topic}`, messages: [{ partition: 0, key: first?.key ?? null, value: first?.value ?? null, headers, timestamp: first?.timestamp }] })
    await raw.disconnect()
    const broken = (await api('GET', `/v1/groups/audited/audit?from=${from}`)).body
    expect(broken).to.include({ source: 930, target: 901, missing: 30, duplicates: 1 })
    const metrics = (await api('GET', '/metrics')).text
    expect(metrics).to.match(/ferry_audit_missing_records\{[^}]*group="audited"[^}]*\} 30/)

    // The CLI says the same and fails.
    const cli = await promisify(execFile)(process.execPath, [CLI, 'audit', '--controller', url, '--group', 'audited', '--from', String(from)]).catch((error: { code: number; stdout: string }) => error)
    expect((cli as { code?: number }).code).to.equal(1)
    expect((cli as { stdout: string }).stdout).to.include('missing 30')

    await api('POST', '/v1/groups/audited/start')
    await waitFor('the 30 mirrored after restart', async () => (await topicEnd(stack.target.plaintext, `a.${topic}`)) === 931)
    expect((await api('GET', `/v1/groups/audited/audit?from=${from}`)).body).to.include({ missing: 0, duplicates: 1 })
    await producer.close()
  })

  it('stops a partition at a record the target refuses, naming partition and offset, or dead-letters it by policy', async () => {
    const topic = uniqueName('big')
    await createTopic(stack.source.plaintext, topic, 1)
    const admin = new Kafka({ brokers: [stack.target.plaintext], logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    for (const prefix of ['stop.', 'dlq.']) {
      await admin.createTopics({ waitForLeaders: true, topics: [{ topic: `${prefix}${topic}`, numPartitions: 1, configEntries: [{ name: 'max.message.bytes', value: '4096' }] }] })
    }
    await admin.disconnect()
    const kafka = new Kafka({ brokers: [stack.source.plaintext], logLevel: logLevel.NOTHING })
    const producer = kafka.producer()
    await producer.connect()
    const now = Date.now()
    const small = (i: number) => ({ key: `k${i}`, value: `small-${i}`, timestamp: String(now + i) })
    // Offsets 0-9 small, 10 too large for the target (but fine for the source), 11-19 small.
    const messages = [...Array.from({ length: 10 }, (_, i) => small(i)), { key: 'k10', value: 'x'.repeat(20000), timestamp: String(now + 10) }, ...Array.from({ length: 9 }, (_, i) => small(11 + i))]
    for (const message of messages) await producer.send({ topic, messages: [message] })
    await producer.disconnect()

    expect((await api('POST', '/v1/groups', { name: 'big-stop', sourceCluster: 'src', targetCluster: 'dst', topics: [topic], rename: { prefix: 'stop.' }, topicConfigs: { overrides: { 'max.message.bytes': '4096' } } })).status).to.equal(201)
    const failed = await waitFor('the partition failed at offset 10', async () => {
      const p = ((await api('GET', '/v1/groups/big-stop')).body.partitions as Array<{ state: string; error?: { code: string; message: string }; position: number }>)[0]
      return p?.state === 'failed' ? p : undefined
    }, 60000)
    expect(failed.error?.code).to.equal('TARGET_REJECTED')
    expect(failed.error?.message).to.include(`offset 10 of ${topic}[0]`).and.to.include('MESSAGE_TOO_LARGE')
    expect(failed.position).to.equal(10)
    expect(await topicEnd(stack.target.plaintext, `stop.${topic}`)).to.equal(10)

    expect((await api('POST', '/v1/groups', { name: 'big-dlq', sourceCluster: 'src', targetCluster: 'dst', topics: [topic], rename: { prefix: 'dlq.' }, onRejectedRecord: 'dead-letter', topicConfigs: { overrides: { 'max.message.bytes': '4096' } } })).status).to.equal(201)
    await waitFor('the 19 small records mirrored', async () => (await topicEnd(stack.target.plaintext, `dlq.${topic}`)) === 19, 60000)
    const dead = await readAll(stack.target.plaintext, '_ferry.big-dlq.dead-letter')
    const [letter] = dead.get(0) ?? []
    expect(letter?.key).to.equal('k10')
    expect(Buffer.from(String(letter?.headers['ferry.source.offset']), 'base64').toString()).to.equal('10')
    expect(Buffer.from(String(letter?.headers['ferry.error']), 'base64').toString()).to.equal('MESSAGE_TOO_LARGE')
    const audit = (await api('GET', `/v1/groups/big-dlq/audit?from=${now - 60000}`)).body
    expect(audit).to.include({ source: 20, target: 19, missing: 0, deadLettered: 1 })
    const row = await waitFor('the dead-lettered record counted in the group status', async () => {
      const p = (await api('GET', '/v1/groups/big-dlq')).body.partitions[0]
      return p?.deadLettered === 1 ? p : undefined
    })
    expect(row.state).to.equal('mirroring')
    expect(row.position).to.equal(20)
  })

  it('continuous audit: the next run after a duplicate is written to the target reports it in the history API', async () => {
    const topic = uniqueName('continuous')
    await createTopic(stack.source.plaintext, topic, 2)
    // A run every 3 s and a 3 s grace here; the shipped default is 10 minutes each.
    const created = await api('POST', '/v1/groups', { name: 'continuous', sourceCluster: 'src', targetCluster: 'dst', topics: [topic], rename: { prefix: 'c.' }, audit: { intervalMinutes: 0.05, graceMinutes: 0.05 } })
    expect(created.status, created.text).to.equal(201)
    // Records stamped before the audit's first run are not audited: wait for that run.
    await waitFor('the audit\'s first run', async () => (await redis.exists(createKeys(deployment).auditState('continuous'))) === 1, 30000)
    const at = Date.now()
    const messages = Array.from({ length: 40 }, (_, i) => ({ partition: i % 2, key: `k${i}`, value: `v${i}`, timestamp: String(at + i) }))
    const producer = new Kafka({ brokers: [stack.source.plaintext], logLevel: logLevel.NOTHING }).producer()
    await producer.connect()
    await producer.send({ topic, messages })
    await producer.disconnect()
    await waitFor('40 mirrored', async () => (await topicEnd(stack.target.plaintext, `c.${topic}`)) === 40)

    const audited = async (): Promise<{ source: number; target: number; missing: number; duplicates: number }> => {
      const body = (await api('GET', `/v1/groups/continuous/history?from=${at - 120000}&to=${Date.now() + 60000}`)).body as { points: Array<{ audit?: { source: number; target: number; missing: number; duplicates: number } | null }> }
      const sum = { source: 0, target: 0, missing: 0, duplicates: 0 }
      for (const p of body.points) for (const k of ['source', 'target', 'missing', 'duplicates'] as const) sum[k] += p.audit?.[k] ?? 0
      return sum
    }
    expect(await waitFor('the audit saw both sides', async () => {
      const sum = await audited()
      return sum.source === 40 && sum.target === 40 ? sum : undefined
    }, 30000)).to.deep.equal({ source: 40, target: 40, missing: 0, duplicates: 0 })

    // An extra copy of record 0 on the target: the next run reads only that record on the target, and calls it a duplicate.
    const target = new Kafka({ brokers: [stack.target.plaintext], logLevel: logLevel.NOTHING }).producer()
    await target.connect()
    await target.send({ topic: `c.${topic}`, messages: [messages[0] as (typeof messages)[0]] })
    await target.disconnect()
    expect(await waitFor('the duplicate in the history', async () => {
      const sum = await audited()
      return sum.target === 41 ? sum : undefined
    }, 30000)).to.deep.equal({ source: 40, target: 41, missing: 0, duplicates: 1 })
    // Its runs every 3 s would go on through the tests below.
    expect((await api('DELETE', '/v1/groups/continuous')).status).to.equal(204)
  })

  it('exactly-once: across a worker SIGKILL and a partition move mid-stream, read_committed readers see every record once', async () => {
    const topic = uniqueName('eos')
    await createTopic(stack.source.plaintext, topic, 3)
    const producer = createSampleProducer(stack.source.plaintext, topic, 3)
    const from = Date.now() - 2 * 3600000
    await producer.send(1500)
    const created = await api('POST', '/v1/groups', { name: 'eos', sourceCluster: 'src', targetCluster: 'dst', topics: [topic], rename: { prefix: 'eos.' }, delivery: 'exactly-once' })
    expect(created.status, created.text).to.equal(201)
    await waitFor('mirroring under way', async () => (await topicEnd(stack.target.plaintext, `eos.${topic}`)) > 0, 60000)
    const producing = (async () => {
      for (let i = 0; i < 10; i++) await producer.send(150)
    })()
    const worker = procs[1] as FerryProcess
    worker.kill('SIGKILL')
    await worker.exited
    await producing
    const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '3000']
    procs[1] = new FerryProcess('dlv-w1-again', ['bootstrap', '--role', 'worker', '--id', 'w1', ...common])
    await waitFor('w1 mirroring again', async () => ((await api('GET', '/v1/groups/eos')).body.partitions as Array<{ state: string }>).every((p) => p.state === 'mirroring'), 60000)
    // A second worker joins while records flow: partitions move from w1 to w2 mid-stream.
    const moving = (async () => {
      for (let i = 0; i < 10; i++) await producer.send(150)
    })()
    procs.push(new FerryProcess('dlv-w2', ['bootstrap', '--role', 'worker', '--id', 'w2', ...common]))
    await waitFor('a partition moved to w2', async () => ((await api('GET', '/v1/groups/eos')).body.partitions as Array<{ worker: string }>).some((p) => p.worker === 'w2'), 60000)
    await moving
    await waitFor('every partition mirrored to the end', async () => {
      const body = (await api('GET', '/v1/groups/eos')).body
      return body?.status?.lag === 0 && body.partitions.length === 3
    }, 120000)
    const audit = (await api('GET', `/v1/groups/eos/audit?from=${from}`)).body
    expect(audit).to.include({ source: 4500, target: 4500, missing: 0, duplicates: 0 })
    await producer.close()
  })
})
