/**
 * Rolling upgrade (issue 8): three workers under bootstrap, started with the command line of
 * deploy/kubernetes/worker.yaml, mirror a topic fed by a steady producer. Each worker in turn
 * gets SIGTERM (as systemd or the kubelet sends it) and is started again. For each one: it
 * drains and exits within its grace period, its Redis registry entry is gone the moment it
 * exits (the lease TTL is 15 s, so an expiry would be far later), and its partitions are
 * assigned to the other workers within the grace period, without waiting for a lease TTL. Afterwards the audit over REST must
 * find every produced record on the target.
 */
import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { Redis } from 'ioredis'
import type { LocalStack } from '../../deploy/local-stack.js'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import { manifestFerryArgs } from './deploy-commands.js'
import { FerryProcess, http, sharedStack, stackSecretFlags, uniqueName, waitFor } from './harness.js'
import { createSampleProducer, createTopic } from './kafka-helpers.js'

const PARTITIONS = 6
const GRACE_MS = 20000
const LEASE_TTL_MS = 15000
const RECORDS_PER_TICK = 20
const TICK_MS = 200
const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url))

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

interface AssignedPartition {
  group: string
  topic: string
  partition: number
}

describe('rolling restart of three workers under load (real stack)', function () {
  this.timeout(600000)
  let stack: LocalStack
  let redis: Redis
  let controllerUrl: string
  const deployment = uniqueName('rolling')
  const keys = createKeys(deployment)
  const topic = uniqueName('rolling')
  const workers = ['w1', 'w2', 'w3']
  const procs = new Map<string, FerryProcess>()
  const healthPorts = new Map<string, number>()
  // The sample producer stamps records up to an hour in the past.
  const startedAt = Date.now() - 2 * 3600000
  let producer: ReturnType<typeof createSampleProducer>
  let producing = true
  let stopped = false
  let loop: Promise<void> = Promise.resolve()
  let inFlight: Promise<unknown> = Promise.resolve()

  const common = (): string[] => [
    '--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment,
    '--lease-ttl-ms', String(LEASE_TTL_MS), '--rebalance-debounce-ms', '1000', ...stackSecretFlags(stack),
  ]
  const startWorker = (id: string): FerryProcess => {
    const args = [...manifestFerryArgs('worker'), '--id', id, '--grace-period-ms', String(GRACE_MS), '--health-port', String(healthPorts.get(id)), ...common()]
    const p = new FerryProcess(`rolling-${id}`, args)
    procs.set(id, p)
    return p
  }
  const produced = (): number => producer.produced.reduce((a, b) => a + b, 0)
  const moreTraffic = async (count: number): Promise<void> => {
    const target = produced() + count
    await waitFor(`${count} more records produced`, () => produced() >= target, 120000, 50)
  }
  const assignments = async (): Promise<Map<string, AssignedPartition[]>> => {
    const body = (await http('GET', `${controllerUrl}/v1/assignments`)).body as { assignments: Record<string, { partitions: AssignedPartition[] }> }
    return new Map(Object.entries(body.assignments).map(([worker, value]) => [worker, value.partitions.filter((p) => p.group === 'rolling')]))
  }
  const ready = async (id: string): Promise<boolean> => (await http('GET', `http://127.0.0.1:${healthPorts.get(id)}/readyz`).catch(() => undefined))?.status === 200

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    redis = new Redis(stack.redis.url)
    for (const id of workers) healthPorts.set(id, await freePort())
    const controller = new FerryProcess('rolling-c1', [...manifestFerryArgs('controller'), '--id', 'c1', '--port', '0', ...common()])
    procs.set('c1', controller)
    for (const id of workers) startWorker(id)
    controllerUrl = await waitFor('the controller registered with its URL', async () => (await listInstances(redis, keys)).find((i) => i.id === 'c1')?.url, 90000)
    await waitFor('three workers registered and ready', async () => (await listInstances(redis, keys)).filter((i) => i.role === 'worker').length === 3 && (await Promise.all(workers.map(ready))).every(Boolean), 90000)
    await waitFor('the controller to lead', async () => (await http('GET', `${controllerUrl}/readyz`)).body?.isLeader === true, 60000)
    for (const cluster of [
      { name: 'src', bootstrapServers: [stack.source.ssl], securityProtocol: 'SSL', tls: { caFile: stack.source.caFile, certFile: stack.source.clientCertFile, keyFile: stack.source.clientKeyFile } },
      { name: 'dst', bootstrapServers: [stack.target.plaintext] },
    ]) {
      const created = await http('POST', `${controllerUrl}/v1/clusters`, cluster)
      expect(created.status, created.text).to.equal(201)
    }
    await createTopic(stack.source.plaintext, topic, PARTITIONS)
    producer = createSampleProducer(stack.source.plaintext, topic, PARTITIONS)
    const group = await http('POST', `${controllerUrl}/v1/groups`, { name: 'rolling', sourceCluster: 'src', targetCluster: 'dst', topics: [topic] })
    expect(group.status, group.text).to.equal(201)
    loop = (async () => {
      while (!stopped) {
        if (producing) {
          inFlight = producer.send(RECORDS_PER_TICK)
          await inFlight
        }
        await new Promise((resolve) => setTimeout(resolve, TICK_MS))
      }
    })()
    await waitFor('every worker mirroring some partitions', async () => {
      const current = await assignments()
      return workers.every((id) => (current.get(id)?.length ?? 0) > 0)
    }, 120000)
    await moreTraffic(300)
  })

  after(async function () {
    this.timeout(120000)
    stopped = true
    await loop.catch(() => undefined)
    await producer?.close().catch(() => undefined)
    await Promise.all([...procs.values()].map((p) => p.stop(30000)))
    redis?.disconnect()
  })

  for (const id of workers) {
    it(`${id}: SIGTERM drains within the grace period, deregisters at once, hands its partitions over; then it restarts`, async () => {
      const before = (await assignments()).get(id) ?? []
      expect(before.length, `${id} mirrors partitions before its restart`).to.be.greaterThan(0)
      expect(await redis.exists(keys.instance(id))).to.equal(1)
      const proc = procs.get(id) as FerryProcess

      const sigtermAt = Date.now()
      proc.kill('SIGTERM')
      const code = await Promise.race([proc.exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), GRACE_MS + 10000))])
      const exitedAfterMs = Date.now() - sigtermAt
      // Read at once: with a 15 s TTL, an entry left to expire would still be here.
      const entryLeft = await redis.exists(keys.instance(id))
      const indexed = await redis.sismember(keys.instances, id)
      expect(code, `${id} exit code`).to.equal(0)
      expect(exitedAfterMs, 'drained and exited within the grace period').to.be.below(GRACE_MS)
      expect(entryLeft, `${id}'s registry entry is gone when the process exits`).to.equal(0)
      expect(indexed, `${id} is out of the instance index`).to.equal(0)
      expect(proc.log()).to.include('bootstrap.drained').and.to.include('worker.stopped')

      await waitFor(`${id}'s partitions assigned to the other workers`, async () => {
        const current = await assignments()
        const mine = current.get(id) ?? []
        const others = [...current].filter(([worker]) => worker !== id).flatMap(([, list]) => list)
        return mine.length === 0 && others.length === PARTITIONS
      }, Math.max(1, GRACE_MS - (Date.now() - sigtermAt)), 100)
      const handedOverMs = Date.now() - sigtermAt
      expect(handedOverMs, 'partitions handed over within the grace period').to.be.below(GRACE_MS)
      // Known gone (deregistered, not expired): no wait for a lease TTL, not even right after an election.
      expect(handedOverMs, 'hand-off without waiting for a lease TTL').to.be.below(LEASE_TTL_MS / 2)
      process.stderr.write(`      ${id}: exited ${exitedAfterMs} ms after SIGTERM, ${before.length} partitions handed over after ${handedOverMs} ms (grace ${GRACE_MS} ms)\n`)

      await moreTraffic(200)
      startWorker(id)
      await waitFor(`${id} registered and ready again`, async () => (await redis.exists(keys.instance(id))) === 1 && (await ready(id)), 90000)
      await waitFor(`${id} given partitions again`, async () => ((await assignments()).get(id)?.length ?? 0) > 0, 60000)
      await moreTraffic(200)
    })
  }

  it('audits zero missing records after the rolling restart', async () => {
    producing = false
    await inFlight
    const total = produced()
    await waitFor('the group to catch up', async () => {
      const body = (await http('GET', `${controllerUrl}/v1/groups/rolling`)).body
      return body?.status?.lag === 0 && body.partitions.length === PARTITIONS
    }, 180000)
    const audit = await http('GET', `${controllerUrl}/v1/groups/rolling/audit?from=${startedAt}&bucketMs=600000`)
    expect(audit.status, audit.text).to.equal(200)
    expect(audit.body.source, 'the audit saw every produced record').to.equal(total)
    process.stderr.write(`      audit: source ${audit.body.source}, target ${audit.body.target}, missing ${audit.body.missing}, duplicates ${audit.body.duplicates}\n`)
    expect(audit.body.missing, 'records missing on the target').to.equal(0)
    expect(audit.body.target).to.be.at.least(total)
  })

  it('lists the registry with metadata and heartbeat age (ferry instances)', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI, 'instances', '--redis', stack.redis.url, '--deployment', deployment, '--json'])
    const listed = JSON.parse(stdout) as { instances: Array<{ id: string; role: string; host: string; pid: number; version: string; startedAt: string; heartbeatAgeMs: number; partitions: number | null }> }
    expect(listed.instances.map((i) => i.id)).to.deep.equal(['c1', 'w1', 'w2', 'w3'])
    for (const instance of listed.instances) {
      expect(instance.heartbeatAgeMs, `${instance.id} heartbeat age`).to.be.within(0, LEASE_TTL_MS)
      expect(instance.pid).to.equal(procs.get(instance.id)?.child.pid)
      expect(instance.version).to.match(/^\d+\.\d+\.\d+/)
      expect(Date.parse(instance.startedAt)).to.be.above(startedAt)
    }
    // Live metrics: each worker's heartbeat carries its per-partition status.
    for (const worker of listed.instances.filter((i) => i.role === 'worker')) expect(worker.partitions, `${worker.id} partitions`).to.be.a('number')
    const table = await promisify(execFile)(process.execPath, [CLI, 'instances', '--redis', stack.redis.url, '--deployment', deployment])
    expect(table.stdout).to.match(/^ID\s+ROLE\s+HOST/).and.to.include('4 instances').and.to.match(/w2\s+worker/)
    const viaController = await promisify(execFile)(process.execPath, [CLI, 'instances', '--controller', controllerUrl, '--json'])
    expect((JSON.parse(viaController.stdout) as { instances: Array<{ id: string }> }).instances.map((i) => i.id)).to.deep.equal(['c1', 'w1', 'w2', 'w3'])
  })

  it('renders the running groups from the controller API (ferry configure --controller), idempotently', async () => {
    const out = await mkdtemp(path.join(tmpdir(), 'ferry-configure-'))
    try {
      // The clusters' TLS files live in the stack's certificate directory: installed there, the
      // rendered FERRY_SECRETS_DIR lets the workers read them (secrets sit in a subdirectory of the install dir).
      const installDir = path.dirname(path.dirname(stack.source.caFile))
      const run = () => promisify(execFile)(process.execPath, [CLI, 'configure', '--controller', controllerUrl, '--deployment', deployment, '--out', out, '--install-dir', installDir, '--quiet'])
      expect((await run()).stdout).to.include('9 to create, 0 to update, 0 unchanged').and.to.include('wrote 9 files')
      const consumer = await readFile(path.join(out, 'rolling', 'consumer.properties'), 'utf8')
      expect(consumer).to.include(`bootstrap.servers=${stack.source.ssl}`).and.to.include(`ssl.truststore.location=${stack.source.caFile}`)
      expect(consumer).to.include(`group.id=ferry.${deployment}.rolling`)
      expect((await run()).stdout).to.include('0 to create, 0 to update, 9 unchanged').and.to.include('nothing to change')
    } finally {
      await rm(out, { recursive: true, force: true })
    }
  })
})
