/**
 * The controller on the real stack with two controllers and three workers, under load:
 * a killed worker's partitions (and only those) move to the others and nothing is lost; a
 * killed leader is replaced without any assignment change; a frozen-then-resumed leader cannot
 * write; topics matching a regex and partitions added later are mirrored from their start.
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import type { LocalStack } from '../../deploy/local-stack.js'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import type { AssignmentRecord } from '../../common/store.js'
import { Kafka, logLevel } from '../../common/kafka/kafkajs.js'
import { FerryProcess, freeze, http, sharedStack, stackSecretFlags, uniqueName, waitFor } from './harness.js'
import { addPartitions, createSampleProducer, createTopic, readAll, topicEnd, verifyNothingLost } from './kafka-helpers.js'

type Assignments = Record<string, AssignmentRecord>

function owners(assignments: Assignments, group: string): Map<string, string> {
  const result = new Map<string, string>()
  for (const [worker, record] of Object.entries(assignments)) {
    for (const p of record.partitions) if (p.group === group) result.set(`${p.topic}/${p.partition}`, worker)
  }
  return result
}

describe('controller: failover, rebalancing and discovery (real stack)', function () {
  this.timeout(240000)
  let stack: LocalStack
  let redis: Redis
  const deployment = uniqueName('ha')
  const keys = createKeys(deployment)
  const procs = new Map<string, FerryProcess>()
  const prefix = uniqueName('ha')

  const common = (): string[] => [
    '--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment,
    '--lease-ttl-ms', '3000', '--zk-session-timeout-ms', '4000', '--rebalance-debounce-ms', '2000', ...stackSecretFlags(stack),
    // These tests freeze a child past its ZooKeeper session to prove the child fences itself;
    // bootstrap's liveness check (which would kill it first) is tested in bootstrap.test.ts.
    '--child-liveness-timeout-ms', '0',
  ]
  const start = (id: string, role: 'worker' | 'controller'): FerryProcess => {
    const p = new FerryProcess(`ha-${id}`, ['bootstrap', '--role', role, '--id', id, ...(role === 'controller' ? ['--port', '0'] : []), ...common()])
    procs.set(id, p)
    return p
  }
  const controllers = async () => (await listInstances(redis, keys)).filter((i) => i.role === 'controller' && i.url)
  const leaderUrl = async (): Promise<string | undefined> => {
    for (const c of await controllers()) {
      const ready = await http('GET', `${c.url as string}/readyz`).catch(() => undefined)
      if (ready?.body?.isLeader) return c.url as string
    }
    return undefined
  }
  const anyUrl = async (): Promise<string> => (await controllers())[0]?.url as string
  const assignments = async (): Promise<Assignments> => (await http('GET', `${await anyUrl()}/v1/assignments`)).body.assignments as Assignments

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    redis = new Redis(stack.redis.url)
    start('c1', 'controller')
    await waitFor('c1 registered', async () => (await controllers()).length === 1, 60000)
    start('c2', 'controller')
    for (const id of ['w1', 'w2', 'w3']) start(id, 'worker')
    await waitFor('two controllers and three workers registered', async () => (await listInstances(redis, keys)).length === 5, 90000)
    const url = await waitFor('a leader', leaderUrl)
    for (const cluster of [
      { name: 'src', bootstrapServers: [stack.source.ssl], securityProtocol: 'SSL', tls: { caFile: stack.source.caFile, certFile: stack.source.clientCertFile, keyFile: stack.source.clientKeyFile } },
      { name: 'dst', bootstrapServers: [stack.target.plaintext] },
    ]) {
      expect((await http('POST', `${url}/v1/clusters`, cluster)).status).to.equal(201)
    }
  })

  after(async function () {
    this.timeout(60000)
    await Promise.all([...procs.values()].map((p) => p.stop(20000)))
    redis?.disconnect()
  })

  it('moves only a killed worker\'s partitions, within lease TTL + debounce, and loses nothing', async () => {
    const topic = `${prefix}-a`
    await createTopic(stack.source.plaintext, topic, 6)
    const producer = createSampleProducer(stack.source.plaintext, topic, 6)
    await producer.send(1200)
    const url = (await leaderUrl()) as string
    expect((await http('POST', `${url}/v1/groups`, { name: 'ha', sourceCluster: 'src', targetCluster: 'dst', topicPattern: `${prefix}-.*` })).status).to.equal(201)
    const before = await waitFor('6 partitions spread over 3 workers', async () => {
      const a = await assignments()
      const o = owners(a, 'ha')
      return o.size === 6 && new Set(o.values()).size === 3 ? o : undefined
    })
    await waitFor('first records mirrored', async () => (await topicEnd(stack.target.plaintext, topic)) > 0)

    // A settled world: the dry run plans no move.
    const dry = await http('POST', `${url}/v1/rebalance?dryRun=true`)
    expect(dry.status).to.equal(200)
    expect(dry.body.moves).to.deep.equal([])

    const producing = (async () => {
      for (let i = 0; i < 12; i++) await producer.send(300)
    })()
    const victim = procs.get('w3') as FerryProcess
    const lost = [...before].filter(([, w]) => w === 'w3').map(([p]) => p)
    victim.kill('SIGKILL')
    const after = await waitFor('w3\'s partitions owned by live workers', async () => {
      const o = owners(await assignments(), 'ha')
      return o.size === 6 && [...o.values()].every((w) => w !== 'w3') ? o : undefined
    }, 3000 + 2000 + 20000)
    for (const [partition, worker] of before) {
      if (worker !== 'w3') expect(after.get(partition), `${partition} stays on ${worker}`).to.equal(worker)
    }
    expect(lost.length).to.equal(2)
    await producing
    const total = 1200 + 12 * 300
    await waitFor('every record on the target', async () => (await topicEnd(stack.target.plaintext, topic)) >= total, 120000)
    verifyNothingLost(await readAll(stack.target.plaintext, topic), producer.produced, 'after worker kill')
    await producer.close()
  })

  it('replaces a killed leader without changing any assignment, and keeps mirroring', async () => {
    const oldLeader = (await leaderUrl()) as string
    const before = await assignments()
    const leaderId = (await controllers()).find((c) => c.url === oldLeader)?.id as string
    const other = leaderId === 'c1' ? 'c2' : 'c1'
    ;(procs.get(leaderId) as FerryProcess).kill('SIGKILL')
    const newLeader = await waitFor('the other controller to lead', async () => {
      const url = (await controllers()).find((c) => c.id === other)?.url as string
      const ready = await http('GET', `${url}/readyz`).catch(() => undefined)
      return ready?.body?.isLeader ? url : undefined
    }, 30000)
    // Give the new leader passes to act (it must not): its debounce + a few reconcile intervals.
    const topic = `${prefix}-a`
    const producer = createSampleProducer(stack.source.plaintext, `${prefix}-b`, 2)
    await createTopic(stack.source.plaintext, `${prefix}-b`, 2)
    await producer.send(100)
    await waitFor('a topic created after the failover mirrored', async () => (await topicEnd(stack.target.plaintext, `${prefix}-b`)) === 100, 60000)
    const afterAssignments = (await http('GET', `${newLeader}/v1/assignments`)).body.assignments as Assignments
    const beforeOwners = owners(before, 'ha')
    for (const [partition, worker] of beforeOwners) {
      if (partition.startsWith(`${topic}/`)) expect(owners(afterAssignments, 'ha').get(partition), partition).to.equal(worker)
    }
    await producer.close()
    start(leaderId, 'controller')
  })

  it('fences a leader that was frozen past its session: once resumed it cannot write', async () => {
    const leader = (await leaderUrl()) as string
    const leaderInstance = (await controllers()).find((c) => c.url === leader)
    const oldId = leaderInstance?.id as string
    const childPid = (leaderInstance?.metrics as { childPid?: number }).childPid as number
    const other = oldId === 'c1' ? 'c2' : 'c1'
    let newEpoch: number
    try {
      await freeze(childPid)
      newEpoch = await waitFor('the other controller to lead', async () => {
        const url = (await controllers()).find((c) => c.id === other)?.url
        const ready = url ? await http('GET', `${url}/readyz`).catch(() => undefined) : undefined
        return ready?.body?.isLeader === true ? (ready.body.epoch as number) : undefined
      }, 30000)
    } finally {
      process.kill(childPid, 'SIGCONT')
    }
    const resumedAt = new Date().toISOString()
    // The resumed process learns its session is gone, stops leading and, with a new session,
    // enters the election again behind the new leader (it no longer exits to be restarted).
    const oldUrl = leader
    await waitFor('the resumed controller to stand by on a new session', async () => {
      const ready = await http('GET', `${oldUrl}/readyz`).catch(() => undefined)
      return ready?.status === 200 && ready.body?.isLeader === false && ready.body?.leader === other
    }, 30000)
    // The new leader writes (a new topic to place); the resumed one never wrote after resuming.
    await createTopic(stack.source.plaintext, `${prefix}-c`, 1)
    const record = await waitFor('the new topic assigned', async () =>
      Object.values(await assignments()).find((a) => a.partitions.some((p) => p.topic === `${prefix}-c`)),
    )
    expect(record.leader).to.equal(other)
    expect(record.epoch).to.equal(newEpoch)
    const staleWrites = (procs.get(oldId) as FerryProcess)
      .log()
      .split('\n')
      .filter((line) => line.includes(`"pid":${childPid},`) && line.includes('controller.assignment_written'))
      .filter((line) => (JSON.parse(line) as { time: string }).time >= resumedAt)
    expect(staleWrites).to.deep.equal([])
    const log = (procs.get(oldId) as FerryProcess).log().split('\n').filter((line) => line.includes(`"pid":${childPid},`))
    expect(log.some((line) => line.includes('controller.zookeeper_lost') || line.includes('controller.election_rejoined')), 'the resumed controller noticed it lost its session').to.equal(true)
  })

  it('mirrors partitions added to a mirrored topic from their first offset', async () => {
    const topic = `${prefix}-d`
    await createTopic(stack.source.plaintext, topic, 2)
    const producer = createSampleProducer(stack.source.plaintext, topic, 2)
    await producer.send(200)
    await waitFor('the first 200 mirrored', async () => (await topicEnd(stack.target.plaintext, topic)) === 200, 60000)
    await addPartitions(stack.source.plaintext, topic, 4)
    const grown = createSampleProducer(stack.source.plaintext, topic, 4)
    grown.produced.splice(0, 2, ...producer.produced)
    // The new partitions 2 and 3 get records before anyone is assigned them: they must not be skipped.
    await grown.send(400)
    await waitFor('all 600 mirrored, the target grown to 4 partitions', async () => (await topicEnd(stack.target.plaintext, topic)) >= 600, 90000)
    const target = await readAll(stack.target.plaintext, topic)
    expect([...target.keys()].sort()).to.deep.equal([0, 1, 2, 3])
    verifyNothingLost(target, grown.produced, 'after partition expansion')
    await producer.close()
    await grown.close()
  })

  it('freezes rebalancing while Redis is down, keeps mirroring, and moves nothing when Redis returns empty', async () => {
    const leader = (await leaderUrl()) as string
    const before = owners(await assignments(), 'ha')
    const registered = (await listInstances(redis, keys)).map((i) => i.id).sort()
    const topic = `${prefix}-a`
    const producer = createSampleProducer(stack.source.plaintext, `${prefix}-r`, 2)
    await createTopic(stack.source.plaintext, `${prefix}-r`, 2)
    await waitFor('the new topic assigned', async () => [...owners(await assignments(), 'ha').keys()].some((k) => k.startsWith(`${prefix}-r/`)))
    try {
      await freeze(stack.processes.redis.pid)
      const ready = await waitFor('readyz to report Redis down and rebalancing frozen', async () => {
        const r = await http('GET', `${leader}/readyz`)
        return r.status === 503 && String(r.body.checks.rebalancing ?? '').includes('frozen') ? r.body : undefined
      }, 30000)
      expect(ready.checks.redis).to.match(/unreachable/)
      const metrics = (await http('GET', `${leader}/metrics`)).text
      expect(metrics).to.match(/ferry_controller_rebalance_frozen\{[^}]*\} 1/)
      await producer.send(200)
      await waitFor('records mirrored while Redis is down', async () => (await topicEnd(stack.target.plaintext, `${prefix}-r`)) === 200, 60000)
    } finally {
      stack.processes.redis.kill('SIGCONT')
    }
    // Now lose Redis' data altogether: every lease is gone until its owner's next heartbeat.
    await stack.processes.redis.restart()
    await waitFor(`${registered.join(', ')} registered again`, async () => (await listInstances(redis, keys)).map((i) => i.id).sort().join() === registered.join(), 30000)
    await waitFor('readyz healthy again', async () => (await http('GET', `${leader}/readyz`)).status === 200, 30000)
    const after = owners(await assignments(), 'ha')
    for (const [partition, worker] of before) if (partition.startsWith(`${topic}/`)) expect(after.get(partition), partition).to.equal(worker)
    await producer.close()
  })

  it('drops a deleted source topic from the assignment and reports it in the group status', async () => {
    const topic = `${prefix}-gone`
    await createTopic(stack.source.plaintext, topic, 2)
    await waitFor('the topic assigned', async () => [...owners(await assignments(), 'ha').keys()].some((k) => k.startsWith(`${topic}/`)))
    const admin = new Kafka({ brokers: [stack.source.plaintext], logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    await admin.deleteTopics({ topics: [topic] })
    await admin.disconnect()
    await waitFor('the topic gone from the assignment', async () => ![...owners(await assignments(), 'ha').keys()].some((k) => k.startsWith(`${topic}/`)), 30000)
    const status = await waitFor('the drop reported', async () => {
      const body = (await http('GET', `${await anyUrl()}/v1/groups/ha`)).body
      return (body.status.droppedTopics as string[] | undefined)?.includes(topic) ? body : undefined
    }, 30000)
    expect(Object.keys(status.status.topics)).not.to.include(topic)
  })
})
