/**
 * Consumer groups fail over to the target with nothing skipped (docs/disaster-recovery.md), on the
 * real stack, judged by an application nobody on the project wrote: Kafka's Java consumer
 * (RecordOracle consume-group) reads a source topic as a consumer group at a steady rate and
 * commits every second; it is killed mid-stream; its offsets are failed over (or left to the
 * continuous sync); the same group then reads the target. Every source record at or after the
 * group's committed offset must come back (by the SHA-256 of key, value and headers), and what is
 * read twice must be only what it read after its last commit.
 *
 * Four sources at once, each its own topic group: at-least-once into a target topic that already
 * held 1,000 unrelated records; exactly-once; a compacted source with gaps; a source with aborted
 * transactions. Plus a second consumer group on the first topic moved by the continuous sync
 * only, and the refusals (unknown consumer group, members on the target, no such group, a group
 * that cannot translate).
 */
import { expect } from 'chai'
import { createHash } from 'node:crypto'
import type { ClusterSpec } from '../../common/config.js'
import type { KafkaAdmin } from '../../common/kafka/port.js'
import { silentLogger } from '../../common/logger.js'
import type { LocalStack } from '../../deploy/local-stack.js'
import { kafkajsClients } from '../../worker/kafka-clients.js'
import { sharedStack, uniqueName, waitFor } from './harness.js'
import { startMirrorDeployment, type MirrorDeployment } from './mirror-setup.js'
import { oracleDump, oracleProduce, startOracle, type OracleRecord } from './oracle.js'

/** The id RecordOracle consume-group prints: SHA-256 over length-prefixed key, value, header keys and values. */
function recordId(r: OracleRecord, ignoredHeader?: string): string {
  const sha = createHash('sha256')
  const add = (b64: string | null): void => {
    const bytes = b64 === null ? null : Buffer.from(b64, 'base64')
    const length = Buffer.alloc(4)
    length.writeInt32BE(bytes === null ? -1 : bytes.length)
    sha.update(length)
    if (bytes !== null) sha.update(bytes)
  }
  add(r.k)
  add(r.v)
  for (const [key, value] of r.h) {
    if (ignoredHeader !== undefined && Buffer.from(key, 'base64').toString('utf8') === ignoredHeader) continue
    add(key)
    add(value)
  }
  return sha.digest('hex')
}

interface AppRead {
  partition: number
  offset: number
  id: string
}

/** A consumer-group application (Kafka's Java consumer): what it read, in order. */
async function startApp(brokers: string, topic: string, group: string, options: { rate?: number; idleExitMs?: number; ignoreHeader?: string }): Promise<{ reads: AppRead[]; commits: () => number; kill: () => void; done: Promise<unknown> }> {
  const reads: AppRead[] = []
  let commits = 0
  const args = ['consume-group', '--bootstrap', brokers, '--topic', topic, '--group', group, '--commit-ms', '1000']
  if (options.rate !== undefined) args.push('--rate', String(options.rate))
  if (options.idleExitMs !== undefined) args.push('--idle-exit-ms', String(options.idleExitMs))
  if (options.ignoreHeader !== undefined) args.push('--ignore-header', options.ignoreHeader)
  const run = await startOracle(args)
  let partial = ''
  run.child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('utf8')).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      const [kind, partition, offset, id] = line.split(' ')
      if (kind === 'r') reads.push({ partition: Number(partition), offset: Number(offset), id: id as string })
      if (kind === 'c') commits++
    }
  })
  // A killed app's exit is expected: only an app left to finish must end well.
  const done = run.done.catch((error: unknown) => (options.idleExitMs === undefined ? undefined : Promise.reject(error)))
  return { reads, commits: () => commits, kill: () => run.child.kill('SIGKILL'), done }
}

interface Case {
  name: string
  delivery: 'at-least-once' | 'exactly-once'
  topic: string
  group: string
  consumerGroup: string
  /** Writes the source (and the target beforehand, where the case says). */
  produce: () => Promise<unknown>
  /** Filled as the case runs. */
  source?: Map<number, OracleRecord[]>
  committed?: Map<number, number>
  readOnSource?: AppRead[]
}

describe('consumer groups fail over to the target (real stack)', function () {
  this.timeout(300000)
  let stack: LocalStack
  let deployment: MirrorDeployment
  let sourceAdmin: KafkaAdmin
  let targetAdmin: KafkaAdmin
  const options = { clientId: 'ferry-failover-test', logger: silentLogger() }

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    deployment = await startMirrorDeployment(stack, 'failover')
    sourceAdmin = kafkajsClients.admin({ name: 'src', bootstrapServers: [stack.source.plaintext] } as ClusterSpec, options)
    targetAdmin = kafkajsClients.admin({ name: 'dst', bootstrapServers: [stack.target.plaintext] } as ClusterSpec, options)
  })

  after(async () => {
    await deployment?.stop()
    await sourceAdmin?.disconnect()
    await targetAdmin?.disconnect()
  })

  const createGroup = async (c: Case, consumerGroups: string[]): Promise<void> => {
    const created = await deployment.api('POST', '/v1/groups', { name: c.group, sourceCluster: 'src-tls', targetCluster: 'dst', topics: [c.topic], delivery: c.delivery, consumerGroups: { names: consumerGroups } })
    expect(created.status, JSON.stringify(created.body)).to.equal(201)
  }

  /** Every partition of the group (two, or `partitions`) listed with a position, and no lag. */
  const caughtUp = (group: string, partitions = 2): Promise<unknown> =>
    waitFor(`group ${group} caught up`, async () => {
      const view = await deployment.api('GET', `/v1/groups/${group}`)
      return view.body?.status?.lag === 0 && view.body.partitions.length === partitions && view.body.partitions.every((p: { position: number | null; lag?: number | null }) => p.position !== null && p.lag === 0)
    }, 120000)

  /** Committed source offsets of a consumer group per partition (after its app was killed). */
  const committedOn = async (admin: KafkaAdmin, consumerGroup: string, topic: string): Promise<Map<number, number>> => new Map((await admin.groupOffsets(consumerGroup, topic)).map((o) => [o.partition, o.offset]))

  /**
   * Reads the source as `consumerGroup` until it has read about half, kills it, and returns what
   * it read and what it had committed.
   */
  const readHalfAndDie = async (topic: string, consumerGroup: string, rate: number, total: number, partitions: number, on: 'source' | 'target' = 'source'): Promise<{ reads: AppRead[]; committed: Map<number, number>; killedAt: number }> => {
    const app = await startApp(on === 'source' ? stack.source.plaintext : stack.target.plaintext, topic, consumerGroup, { rate })
    // Mid-stream, with commits behind it: it has read about half, from every partition, and
    // committed twice since it first read the last of them (a partition it never committed would
    // start on the target wherever auto.offset.reset says, Ferry or not).
    let commitsWhenAllRead: number | undefined
    await waitFor(`${consumerGroup} read half of ${topic}`, () => {
      if (commitsWhenAllRead === undefined && new Set(app.reads.map((r) => r.partition)).size === partitions) commitsWhenAllRead = app.commits()
      return app.reads.length >= total / 2 && commitsWhenAllRead !== undefined && app.commits() >= commitsWhenAllRead + 2
    }, 60000, 50)
    expect(app.reads.length, `${consumerGroup} was killed before the end`).to.be.lessThan(total)
    app.kill()
    const killedAt = Date.now()
    await app.done
    const committed = await committedOn(on === 'source' ? sourceAdmin : targetAdmin, consumerGroup, topic)
    expect(committed.size, `${consumerGroup} committed before it was killed`).to.be.greaterThan(0)
    return { reads: [...app.reads], committed, killedAt }
  }

  /**
   * The group reads the target from its committed offsets there: every source record at or after
   * its source commit, and nothing else. Returns how many it reads twice (it read them on the
   * source after its last commit).
   */
  const checkResumed = async (label: string, targetTopic: string, consumerGroup: string, source: Map<number, OracleRecord[]>, committed: Map<number, number>, readBefore: AppRead[], back?: { ignoreHeader: string }): Promise<number> => {
    const ignore = back?.ignoreHeader
    const app = await startApp(back === undefined ? stack.target.plaintext : stack.source.plaintext, targetTopic, consumerGroup, { idleExitMs: 4000, ...(ignore === undefined ? {} : { ignoreHeader: ignore }) })
    await app.done
    const expected: string[] = []
    for (const [partition, records] of source) {
      const from = committed.get(partition) ?? 0
      for (const r of records) if (r.o >= from) expected.push(recordId(r, ignore))
    }
    const got = app.reads.map((r) => r.id)
    // Multisets: a source may hold identical records (same key, value and headers) at several offsets.
    const left = new Map<string, number>()
    for (const id of got) left.set(id, (left.get(id) ?? 0) + 1)
    const missing: string[] = []
    for (const [partition, records] of source) {
      for (const r of records) {
        if (r.o < (committed.get(partition) ?? 0)) continue
        const id = recordId(r, ignore)
        const n = left.get(id) ?? 0
        if (n === 0) missing.push(`${partition}@${r.o}`)
        else left.set(id, n - 1)
      }
    }
    const firstRead = new Map<number, number>()
    for (const r of app.reads) if (!firstRead.has(r.partition)) firstRead.set(r.partition, r.offset)
    expect(missing, `${label}: source records at or after the committed offsets ${JSON.stringify([...committed])} that the group did not read on the target (it began at target offsets ${JSON.stringify([...firstRead])}, read ${got.length})`).to.deep.equal([])
    // Exactly those, once each: nothing it had committed, nothing unrelated (the prefilled records), no extra copies.
    expect([...got].sort(), `${label}: what the group read on the target`).to.deep.equal([...expected].sort())
    // So what it reads twice is what it had read on the source after its last commit.
    const reread = readBefore.filter((r) => r.offset >= (committed.get(r.partition) ?? 0)).length
    process.stderr.write(`      [failover] ${label}: ${expected.length} records after the commit, all read where it resumed, nothing else; re-read ${reread} (what it read on the source after its last commit, of ${readBefore.length})\n`)
    return reread
  }

  it('at-least-once, exactly-once, compacted with gaps, aborted transactions: failover skips nothing; the continuous sync alone does the same', async () => {
    const brokers = stack.source.plaintext
    const prefilled = uniqueName('cg-prefilled')
    const compacted = uniqueName('cg-compacted')
    const cases: Case[] = [
      {
        name: 'at-least-once, target topic held 1,000 records',
        delivery: 'at-least-once',
        topic: prefilled,
        group: uniqueName('fo-alo'),
        consumerGroup: uniqueName('app-alo'),
        produce: async () => {
          await sourceAdmin.createTopic({ topic: prefilled, partitions: 2 })
          await targetAdmin.createTopic({ topic: prefilled, partitions: 2 })
          await oracleProduce(stack.target.plaintext, prefilled, { profile: 'steady', count: 1000, rate: 100000 })
          await oracleProduce(brokers, prefilled, { profile: 'steady', count: 3000, rate: 100000 })
        },
      },
      {
        name: 'exactly-once',
        delivery: 'exactly-once',
        topic: uniqueName('cg-eos'),
        group: uniqueName('fo-eos'),
        consumerGroup: uniqueName('app-eos'),
        produce: async () => {
          const topic = cases[1]?.topic as string
          await sourceAdmin.createTopic({ topic, partitions: 2 })
          await oracleProduce(brokers, topic, { profile: 'steady', count: 3000, rate: 100000 })
        },
      },
      {
        name: 'compacted source with gaps',
        delivery: 'at-least-once',
        topic: compacted,
        group: uniqueName('fo-compact'),
        consumerGroup: uniqueName('app-compact'),
        produce: async () => {
          await sourceAdmin.createTopic({ topic: compacted, partitions: 2, configs: { 'cleanup.policy': 'compact', 'segment.ms': '100', 'min.cleanable.dirty.ratio': '0.01', 'min.compaction.lag.ms': '0' } })
          await oracleProduce(brokers, compacted, { profile: 'compact', keys: 40, deadlineMs: 90000 })
          // Frozen as it is, so the source the test compares with stays what the mirror read.
          await sourceAdmin.replaceTopicConfigs(compacted, { 'cleanup.policy': 'delete' })
        },
      },
      {
        name: 'aborted transactions in the source',
        delivery: 'exactly-once',
        topic: uniqueName('cg-aborted'),
        group: uniqueName('fo-aborted'),
        consumerGroup: uniqueName('app-aborted'),
        produce: async () => {
          const topic = cases[3]?.topic as string
          await sourceAdmin.createTopic({ topic, partitions: 2 })
          const summary = await oracleProduce(brokers, topic, { profile: 'shapes', count: 600 })
          expect(summary.aborted ?? 0, 'the source holds aborted transactions').to.be.greaterThan(0)
        },
      },
    ]
    const continuousGroup = uniqueName('app-continuous')

    await Promise.all(
      cases.map(async (c) => {
        await c.produce()
        c.source = await oracleDump(brokers, c.topic)
        if (c.topic === compacted) {
          const offsets = [...c.source.values()].flatMap((list) => list.map((r) => r.o))
          const holes = [...c.source.values()].reduce((sum, list) => sum + (list.length === 0 ? 0 : (list[list.length - 1] as OracleRecord).o + 1 - list.length), 0)
          expect(holes, `the compacted source has gaps (${offsets.length} records)`).to.be.greaterThan(0)
        }
        await createGroup(c, c.topic === prefilled ? [c.consumerGroup, continuousGroup] : [c.consumerGroup])
        const total = [...c.source.values()].reduce((sum, list) => sum + list.length, 0)
        const partitions = [...c.source.values()].filter((list) => list.length > 0).length
        // About 8 s to read it all: half read, with two commits, after about 4 s.
        const rate = Math.max(5, total / 8)
        // The application reads while Ferry mirrors, and dies mid-stream.
        const [died, continuous] = await Promise.all([
          readHalfAndDie(c.topic, c.consumerGroup, rate, total, partitions),
          c.topic === prefilled ? readHalfAndDie(c.topic, continuousGroup, rate * 0.7, total, partitions) : Promise.resolve(undefined),
        ])
        c.readOnSource = died.reads
        c.committed = died.committed
        await caughtUp(c.group)
        if (continuous !== undefined) {
          // No failover call: after two sync intervals (5 s each by default) the target has it.
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, continuous.killedAt + 10_000 - Date.now())))
          const view = await deployment.api('GET', `/v1/groups/${c.group}/consumer-offsets?consumerGroup=${continuousGroup}`)
          expect(view.status, JSON.stringify(view.body)).to.equal(200)
          const rows = view.body.partitions as Array<{ targetOffset: number; targetCommitted?: number; exact: boolean }>
          expect(rows.every((r) => r.exact && r.targetCommitted === r.targetOffset), `continuous sync wrote the exact translation: ${JSON.stringify(view.body)}`).to.equal(true)
          await checkResumed('continuous sync only', c.topic, continuousGroup, c.source, continuous.committed, continuous.reads)
        }
        const failover = await deployment.api('POST', `/v1/groups/${c.group}/failover`, { consumerGroups: [c.consumerGroup] })
        expect(failover.status, JSON.stringify(failover.body)).to.equal(200)
        process.stderr.write(`      [failover] ${c.name}: ${JSON.stringify(failover.body.partitions)}\n`)
        expect(failover.body.skipped).to.equal(0)
        expect(failover.body.written).to.equal(true)
        for (const row of failover.body.partitions as Array<{ exact: boolean; reason: string; sourceOffset: number; partition: number }>) {
          expect(row.exact, `${c.name} partition ${row.partition}: ${row.reason}`).to.equal(true)
          expect(row.sourceOffset).to.equal(c.committed.get(row.partition))
        }
        await checkResumed(c.name, c.topic, c.consumerGroup, c.source, c.committed, c.readOnSource)
      }),
    )
  })

  it('fails back: a group that failed over to the target and read there returns to the source through a reverse group, skipping nothing', async () => {
    const topic = uniqueName('cg-failback')
    const app = uniqueName('app-failback')
    const forward = uniqueName('fo-forward')
    const reverse = uniqueName('fo-reverse')
    await sourceAdmin.createTopic({ topic, partitions: 2 })
    await oracleProduce(stack.source.plaintext, topic, { profile: 'steady', count: 1000, rate: 100000 })
    // No continuous sync on the forward group: once the application lives on the target, its
    // offsets there are its own (docs/disaster-recovery.md, fail back); the failover is explicit.
    const created = await deployment.api('POST', '/v1/groups', { name: forward, sourceCluster: 'src-tls', targetCluster: 'dst', topics: [topic], provenance: true })
    expect(created.status, JSON.stringify(created.body)).to.equal(201)
    // The application reads on the source, the source is lost, it fails over and reads on the target.
    await readHalfAndDie(topic, app, 125, 1000, 2)
    await caughtUp(forward)
    expect((await deployment.api('POST', `/v1/groups/${forward}/failover`, { consumerGroups: [app] })).status).to.equal(200)
    // Producers moved too: records written on the target after the failover.
    await oracleProduce(stack.target.plaintext, topic, { profile: 'steady', count: 500, rate: 100000 })
    const onTarget = await readHalfAndDie(topic, app, 125, 1000, 2, 'target')
    // The source is back: the forward group stops, a reverse group takes the target's records home.
    expect((await deployment.api('POST', `/v1/groups/${forward}/stop`)).status).to.equal(200)
    const refusedNoProvenance = await deployment.api('POST', '/v1/groups', { name: uniqueName('fo-bad'), sourceCluster: 'dst', targetCluster: 'src-tls', topics: [topic], failbackOf: forward })
    expect(refusedNoProvenance.status).to.equal(400)
    expect(JSON.stringify(refusedNoProvenance.body.error.details)).to.contain('failbackOf')
    const back = await deployment.api('POST', '/v1/groups', { name: reverse, sourceCluster: 'dst', targetCluster: 'src-tls', topics: [topic], provenance: true, failbackOf: forward, consumerGroups: { names: [app] } })
    expect(back.status, JSON.stringify(back.body)).to.equal(201)
    await caughtUp(reverse)
    // The application killed on the source long ago has left its group there (Ferry refuses while it has members).
    await waitFor('the killed application left its group on the source', async () => (await sourceAdmin.describeGroup(app)).members === 0, 30000)
    const failback = await deployment.api('POST', `/v1/groups/${reverse}/failover`, { consumerGroups: [app] })
    expect(failback.status, JSON.stringify(failback.body)).to.equal(200)
    process.stderr.write(`      [failover] fail back: ${JSON.stringify(failback.body.partitions)}\n`)
    expect(failback.body.skipped).to.equal(0)
    for (const row of failback.body.partitions as Array<{ exact: boolean; reason: string; partition: number }>) expect(row.exact, `partition ${row.partition}: ${row.reason}`).to.equal(true)
    // On the source it reads every record the target held after its commit there (originals of the
    // copies, and the target's own records mirrored back), and nothing else.
    const onTargetLog = await oracleDump(stack.target.plaintext, topic)
    await checkResumed('fail back', topic, app, onTargetLog, onTarget.committed, onTarget.reads, { ignoreHeader: 'ferry.origin' })
  })

  it('refuses, writing nothing: an unknown consumer group, members on the target, a group that does not exist, a group that cannot translate', async () => {
    const topic = uniqueName('cg-refusals')
    await sourceAdmin.createTopic({ topic, partitions: 1 })
    await oracleProduce(stack.source.plaintext, topic, { profile: 'steady', count: 100, rate: 100000 })
    const group = uniqueName('fo-refusals')
    const consumerGroup = uniqueName('app-refusals')
    expect((await deployment.api('POST', '/v1/groups', { name: group, sourceCluster: 'src-tls', targetCluster: 'dst', topics: [topic], consumerGroups: { names: [consumerGroup], intervalSeconds: 3600 } })).status).to.equal(201)
    await caughtUp(group, 1)

    const unknown = await deployment.api('POST', `/v1/groups/${group}/failover`, { consumerGroups: ['no-such-consumer-group'] })
    expect(unknown.status).to.equal(404)
    expect(unknown.body.error.message).to.contain('"no-such-consumer-group"')

    const noGroup = await deployment.api('POST', '/v1/groups/no-such-group/failover', {})
    expect(noGroup.status).to.equal(404)
    expect(noGroup.body.error.message).to.contain('no-such-group')

    const badBody = await deployment.api('POST', `/v1/groups/${group}/failover`, { consumerGroups: 'x', dryRun: 'yes' })
    expect(badBody.status).to.equal(400)

    const noPartition = await deployment.api('POST', '/v1/groups', { name: uniqueName('fo-nopart'), sourceCluster: 'src-tls', targetCluster: 'dst', topics: [topic], preservePartition: false, consumerGroups: { names: [consumerGroup] } })
    expect(noPartition.status).to.equal(400)
    expect(JSON.stringify(noPartition.body.error.details)).to.contain('preservePartition')

    // The group committed on the source, and runs on the target: Kafka would refuse, so Ferry refuses first.
    await sourceAdmin.setGroupOffsets(consumerGroup, [{ topic, partition: 0, offset: 40 }])
    const onTarget = await startApp(stack.target.plaintext, topic, consumerGroup, {})
    try {
      await waitFor('the application joined on the target', async () => {
        const described = await targetAdmin.describeGroup(consumerGroup)
        return described.state === 'Stable' && described.members > 0
      }, 60000)
      const refused = await deployment.api('POST', `/v1/groups/${group}/failover`, { consumerGroups: [consumerGroup] })
      expect(refused.status, JSON.stringify(refused.body)).to.equal(409)
      expect(refused.body.error.message).to.contain(`"${consumerGroup}" has 1 live member`)
      // A dry run still answers, and says where the group would go.
      const dry = await deployment.api('POST', `/v1/groups/${group}/failover`, { consumerGroups: [consumerGroup], dryRun: true })
      expect(dry.status).to.equal(200)
      expect(dry.body.written).to.equal(false)
      expect(dry.body.partitions[0]).to.include({ sourceOffset: 40, exact: true, skipped: 0 })
    } finally {
      onTarget.kill()
      await onTarget.done
    }
  })
})
