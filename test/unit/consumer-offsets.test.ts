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
})
