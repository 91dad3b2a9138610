import { expect } from 'chai'
import { parseTopicGroup, type ClusterSpec } from '../../common/config.js'
import { FerryError } from '../../common/errors.js'
import type { GroupOffset, KafkaAdmin } from '../../common/kafka/port.js'
import { silentLogger } from '../../common/logger.js'
import { createConsumerOffsets } from '../../controller/consumer-offsets.js'

/** An admin holding consumer group offsets and members in memory; no offset-sync topic (nothing mirrored yet). */
function fakeAdmin(cluster: string, state: { offsets: Map<string, GroupOffset[]>; members: Map<string, number>; high: number; unreachable?: boolean }): KafkaAdmin {
  const reach = (): void => {
    if (state.unreachable) throw new FerryError('KAFKA_UNREACHABLE', `cannot reach cluster "${cluster}"`)
  }
  const admin: Partial<KafkaAdmin> = {
    cluster,
    listGroups: async () => (reach(), [...state.offsets.keys()]),
    groupOffsets: async (group, topic) => (reach(), (state.offsets.get(group) ?? []).filter((o) => o.topic === topic)),
    setGroupOffsets: async (group, offsets) => {
      if ((state.members.get(group) ?? 0) > 0) throw new FerryError('KAFKA_ERROR', 'group has members')
      state.offsets.set(group, [...offsets])
    },
    describeGroup: async (group) => ({ state: (state.members.get(group) ?? 0) > 0 ? 'Stable' : 'Empty', members: state.members.get(group) ?? 0 }),
    partitionCounts: async (topics) => new Map(topics.filter((t) => t === 'orders').map((t) => [t, 1])),
    offsets: async () => [{ partition: 0, low: 0, stable: state.high, high: state.high }],
  }
  return admin as KafkaAdmin
}

describe('consumer offsets: continuous sync and failover (fake clusters)', () => {
  const spec = parseTopicGroup({ name: 'dr', sourceCluster: 'a', targetCluster: 'b', topics: ['orders'], consumerGroups: { names: ['billing'], intervalSeconds: 1 } })
  const setup = () => {
    const source = { offsets: new Map([['billing', [{ topic: 'orders', partition: 0, offset: 40 }]]]), members: new Map<string, number>(), high: 100, unreachable: false }
    const target = { offsets: new Map<string, GroupOffset[]>(), members: new Map<string, number>(), high: 70 }
    const problems: string[] = []
    const offsets = createConsumerOffsets({
      isLeader: () => true,
      groups: async () => [spec],
      spec: async () => spec,
      sides: async () => ({ source: { cluster: { name: 'a' } as ClusterSpec, admin: fakeAdmin('a', source) }, target: { cluster: { name: 'b' } as ClusterSpec, admin: fakeAdmin('b', target) } }),
      sourceConsumer: () => {
        throw new Error('no sync topic to read')
      },
      deployment: 'test',
      logger: silentLogger(),
      failoverSyncWaitMs: 0,
      onProblem: (_group, _cg, message) => problems.push(message),
    })
    return { source, target, offsets, problems }
  }

  it('failover commits the translation; refuses, writing nothing, while the group has members on the target', async () => {
    const { target, offsets } = setup()
    target.members.set('billing', 2)
    const refused = await offsets.failover('dr', {}).then(() => undefined, (e: unknown) => e)
    expect(refused).to.be.instanceOf(FerryError)
    expect((refused as FerryError).code).to.equal('CONFLICT')
    expect((refused as FerryError).message).to.contain('"billing" has 2 live member(s) on target cluster "b"')
    expect(target.offsets.has('billing')).to.equal(false)
    target.members.set('billing', 0)
    const done = await offsets.failover('dr', {})
    expect(done.written).to.equal(true)
    // Nothing mirrored yet: the target end, where the group's records will be written.
    expect(target.offsets.get('billing')).to.deep.equal([{ topic: 'orders', partition: 0, offset: 70 }])
  })

  it('with the source unreachable, failover says so and that the continuous sync\'s offsets stand', async () => {
    const { source, offsets } = setup()
    source.unreachable = true
    const error = await offsets.failover('dr', {}).then(() => undefined, (e: unknown) => e)
    expect((error as FerryError).code).to.equal('UNAVAILABLE')
    expect((error as FerryError).message).to.contain('cannot read committed offsets on source cluster "a"').and.contain('continuous sync')
  })

  it('the continuous sync writes forward only, and not while the group has members (reported once)', async () => {
    const { target, offsets, problems } = setup()
    target.offsets.set('billing', [{ topic: 'orders', partition: 0, offset: 90 }])
    await offsets.syncOnce()
    // 70 < 90: a group already further on the target is not set back.
    expect(target.offsets.get('billing')).to.deep.equal([{ topic: 'orders', partition: 0, offset: 90 }])
    target.offsets.set('billing', [{ topic: 'orders', partition: 0, offset: 10 }])
    target.members.set('billing', 1)
    await offsets.syncOnce()
    await offsets.syncOnce()
    expect(target.offsets.get('billing')?.[0]?.offset).to.equal(10)
    expect(problems).to.have.length(1)
    expect(problems[0]).to.contain('live member')
    const view = await offsets.translations('dr')
    expect(view.sync).to.deep.include.members([{ ...view.sync[0], consumerGroup: 'billing', state: 'has-members' }])
    target.members.set('billing', 0)
    await offsets.syncOnce()
    expect(target.offsets.get('billing')?.[0]?.offset).to.equal(70)
    await offsets.stop()
  })

  it('fail back: a copy goes back to its original; where the earlier group\'s syncs no longer reach back, the log start (never the reverse group\'s answer past the originals)', async () => {
    const back = parseTopicGroup({ name: 'back', sourceCluster: 'b', targetCluster: 'a', topics: ['orders'], provenance: true, failbackOf: 'dr', consumerGroups: { names: ['billing'] } })
    const forwardSpec = parseTopicGroup({ name: 'dr', sourceCluster: 'a', targetCluster: 'b', topics: ['orders'], provenance: true })
    const syncTopic = '_ferry.test.offset-syncs'
    /** Sync records per cluster (a's holds the reverse group's, b's the forward group's). */
    const syncLogs = new Map<string, Array<{ key: string; sync: unknown }>>()
    const run = async (committedOnB: number, forwardSyncs: unknown[]): Promise<{ targetOffset: number; exact: boolean; reason: string }> => {
      // Forward: dc1 (a) 0..99 copied to dc2 (b) 0..99. Reverse: b's own records 100..149 written to a at 100..149; copies dropped.
      syncLogs.set('b', forwardSyncs.map((sync) => ({ key: 'dr/orders/0', sync })))
      syncLogs.set('a', [{ key: 'back/orders/0', sync: { from: 0, to: 150, end: 150, runs: [[100, 100, 50]] } }])
      const admin = (cluster: string, high: number, committed: number): KafkaAdmin =>
        ({
          cluster,
          listGroups: async () => ['billing'],
          groupOffsets: async (_g: string, topic: string) => (cluster === 'b' && topic === 'orders' ? [{ topic, partition: 0, offset: committed }] : []),
          describeGroup: async () => ({ state: 'Empty', members: 0 }),
          partitionCounts: async (topics: readonly string[]) => new Map(topics.map((t) => [t, 1])),
          offsets: async (topic: string) => (topic === syncTopic ? [{ partition: 0, low: 0, stable: syncLogs.get(cluster)?.length ?? 0, high: syncLogs.get(cluster)?.length ?? 0 }] : [{ partition: 0, low: 0, stable: high, high }]),
        }) as unknown as KafkaAdmin
      const a = { cluster: { name: 'a' } as ClusterSpec, admin: admin('a', 150, 0) }
      const b = { cluster: { name: 'b' } as ClusterSpec, admin: admin('b', 150, committedOnB) }
      const offsets = createConsumerOffsets({
        isLeader: () => true,
        groups: async () => [forwardSpec, back],
        spec: async (name) => (name === 'dr' ? forwardSpec : back),
        sides: async (spec) => (spec.name === 'back' ? { source: b, target: a } : { source: a, target: b }),
        // The sync topic of the cluster asked for, read by a fake reader.
        sourceConsumer: (cluster, options) => ({
          async start(_partitions: unknown, handler: (batch: unknown) => Promise<void>) {
            const log = syncLogs.get(cluster.name) ?? []
            await handler({ topic: syncTopic, partition: 0, highWatermark: log.length, records: log.map((r, offset) => ({ offset, key: Buffer.from(r.key), value: Buffer.from(JSON.stringify(r.sync)), headers: [], timestamp: '0' })) })
            options.onBatchEnd?.(syncTopic, 0, log.length - 1)
          },
          positions: () => new Map(),
          resumeAt: () => true,
          release: async () => undefined,
          stop: async () => undefined,
        }) as unknown as ReturnType<Parameters<typeof createConsumerOffsets>[0]['sourceConsumer']>,
        deployment: 'test',
        logger: silentLogger(),
      })
      const view = await offsets.translations('back')
      return view.partitions[0] as { targetOffset: number; exact: boolean; reason: string }
    }
    const forward = [{ from: 0, to: 100, end: 100, runs: [[0, 0, 100]] }]
    // Committed on dc2 among the copies: back to the original offset on dc1.
    expect(await run(40, forward)).to.include({ targetOffset: 40, exact: true })
    // Among dc2's own records: where the reverse group wrote them.
    expect(await run(120, forward)).to.include({ targetOffset: 120, exact: true })
    // The forward syncs kept begin after the commit (older ones deleted): the log start, not 100.
    expect(await run(40, [{ from: 60, to: 100, end: 100, runs: [[60, 60, 40]] }])).to.include({ targetOffset: 0, exact: false })
  })
})
