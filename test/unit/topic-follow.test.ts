import { expect } from 'chai'
import { Registry } from 'prom-client'
import { parseTopicGroup, type TopicGroupSpec } from '../../common/config.js'
import { FerryError } from '../../common/errors.js'
import type { KafkaAdmin, TopicReadAcl } from '../../common/kafka/port.js'
import { createLogger } from '../../common/logger.js'
import { DENIED_TOPIC_CONFIGS, MIRRORED_TOPIC_CONFIGS, planTopicConfigs } from '../../common/topic-configs.js'
import type { NewEvent } from '../../controller/events.js'
import { createTopicFollower, planTopicAcls } from '../../controller/topic-follow.js'

const logger = createLogger({ name: 'test', level: 'silent' })

/** An in-memory admin with what the follow sync uses; `refuse` names config values the "broker" refuses. */
function memoryAdmin(name: string, topics: Record<string, Record<string, string>>, refuse: (config: string, value: string) => boolean = () => false) {
  const acls: TopicReadAcl[] = []
  const replaced: Array<{ topic: string; configs: Record<string, string> }> = []
  const admin = {
    cluster: name,
    partitionCounts: async (names: readonly string[]) => new Map(names.filter((t) => Object.hasOwn(topics, t)).map((t) => [t, 1] as [string, number])),
    topicConfigs: async (topic: string) => {
      const configs = topics[topic]
      if (configs === undefined) throw new FerryError('KAFKA_ERROR', `no topic ${topic}`)
      return { ...configs }
    },
    replaceTopicConfigs: async (topic: string, configs: Record<string, string>) => {
      const bad = Object.entries(configs).find(([c, v]) => refuse(c, v))
      if (bad) throw new FerryError('KAFKA_ERROR', `Invalid value ${bad[1]} for configuration ${bad[0]}`)
      replaced.push({ topic, configs: { ...configs } })
      topics[topic] = { ...configs }
    },
    describeTopicAcls: async (topic: string) => acls.filter((a) => a.topic === topic),
    createTopicReadAcls: async (list: readonly TopicReadAcl[]) => {
      acls.push(...list)
    },
  }
  return { admin: admin as unknown as KafkaAdmin, topics, acls, replaced }
}

describe('topic configs and ACLs follow', () => {
  describe('planTopicConfigs', () => {
    it('carries allow-listed source configs, never denied ones, keeps the target\'s own, lets an override win, and removes what the source dropped', () => {
      const source = { 'retention.ms': '3600000', 'cleanup.policy': 'compact', 'min.insync.replicas': '2', 'message.timestamp.type': 'LogAppendTime' }
      const target = { 'retention.ms': '604800000', 'min.insync.replicas': '1', 'segment.ms': '1000', 'max.message.bytes': '2000000' }
      const { next, changes } = planTopicConfigs(source, target, { 'max.message.bytes': '5000000' })
      expect({ ...next }).to.deep.equal({ 'retention.ms': '3600000', 'cleanup.policy': 'compact', 'min.insync.replicas': '1', 'max.message.bytes': '5000000' })
      expect(changes.map((c) => [c.config, c.from, c.to, c.why])).to.deep.equal([
        ['cleanup.policy', undefined, 'compact', 'source'],
        ['max.message.bytes', '2000000', '5000000', 'override'],
        ['retention.ms', '604800000', '3600000', 'source'],
        ['segment.ms', '1000', undefined, 'source'],
      ])
      expect(planTopicConfigs(source, next, { 'max.message.bytes': '5000000' }).changes, 'settled: nothing to do').to.deep.equal([])
    })

    it('allow and deny lists do not overlap, and replication and placement settings are denied', () => {
      for (const denied of DENIED_TOPIC_CONFIGS.keys()) expect(MIRRORED_TOPIC_CONFIGS.has(denied), denied).to.equal(false)
      for (const c of ['min.insync.replicas', 'unclean.leader.election.enable', 'leader.replication.throttled.replicas', 'follower.replication.throttled.replicas', 'confluent.placement.constraints']) expect(DENIED_TOPIC_CONFIGS.has(c), c).to.equal(true)
    })
  })

  describe('planTopicAcls', () => {
    it('maps principals, keeps unmapped ones, skips what exists, and never carries WRITE', () => {
      const source = [
        { principal: 'User:alice', topic: 'orders', operation: 'READ' },
        { principal: 'User:alice', topic: 'orders', operation: 'DESCRIBE' },
        { principal: 'User:alice', topic: 'orders', operation: 'WRITE' },
        { principal: 'User:bob', topic: 'orders', operation: 'READ' },
      ] as unknown as TopicReadAcl[]
      const existing: TopicReadAcl[] = [{ principal: 'User:bob', topic: 'dr.orders', operation: 'READ' }]
      expect(planTopicAcls(source, 'dr.orders', { 'User:alice': 'User:alice-dr' }, existing)).to.deep.equal([
        { principal: 'User:alice-dr', topic: 'dr.orders', operation: 'DESCRIBE' },
        { principal: 'User:alice-dr', topic: 'dr.orders', operation: 'READ' },
      ])
    })
  })

  describe('group fields', () => {
    const base = { name: 'g', sourceCluster: 'a', targetCluster: 'b', topics: ['t'] }
    it('refuses an override of a denied or unknown config, and a bad principal, naming the field', () => {
      try {
        parseTopicGroup({ ...base, topicConfigs: { overrides: { 'min.insync.replicas': '2', 'retention.ms': 5, 'no.such': 'x' } }, acls: { sync: true, principals: { alice: 'User:alice' } } })
        expect.fail('expected INVALID_INPUT')
      } catch (error) {
        const fields = ((error as FerryError).details as Array<{ field: string; message: string }>).map((p) => p.field)
        expect(fields).to.have.members(['topicConfigs.overrides.min.insync.replicas', 'topicConfigs.overrides.retention.ms', 'topicConfigs.overrides.no.such', 'acls.principals.alice'])
      }
    })
    it('keeps a group without the fields as it was (configs follow by default, ACLs do not)', () => {
      const spec = parseTopicGroup(base)
      expect(spec.topicConfigs).to.equal(undefined)
      expect(spec.acls).to.equal(undefined)
      const full = parseTopicGroup({ ...base, topicConfigs: { overrides: { 'retention.ms': '1000' } }, acls: { sync: true } })
      expect(full.topicConfigs?.intervalMs).to.equal(30000)
      expect(full.topicConfigs?.sync).to.equal(true)
      expect(full.acls?.intervalMs).to.equal(30000)
    })
  })

  describe('createTopicFollower', () => {
    const setup = (spec: TopicGroupSpec, refuse?: (config: string, value: string) => boolean) => {
      const source = memoryAdmin('src', { orders: { 'retention.ms': '3600000', 'cleanup.policy': 'compact', 'min.insync.replicas': '2' } })
      const target = memoryAdmin('dst', { 'dr.orders': { 'min.insync.replicas': '1' } }, refuse)
      const events: NewEvent[] = []
      const changed: string[] = []
      const registry = new Registry()
      const follower = createTopicFollower({
        isLeader: () => true,
        groups: async () => [{ spec, running: true }],
        topicsOf: async () => ['orders'],
        admins: async () => ({ source: source.admin, target: target.admin }),
        events: { record: (e: NewEvent) => events.push(e) } as never,
        logger,
        registry,
        onStatusChanged: (g) => changed.push(g),
      })
      return { source, target, events, changed, follower, registry }
    }

    it('applies what the target takes, names the refused config in the status and the event log once, and keeps the override', async () => {
      const spec = parseTopicGroup({ name: 'g', sourceCluster: 'src', targetCluster: 'dst', topics: ['orders'], rename: { prefix: 'dr.' }, topicConfigs: { overrides: { 'segment.ms': '600000' } } })
      const { source, target, events, changed, follower, registry } = setup(spec, (config, value) => config === 'cleanup.policy' && value === 'compact')
      expect(follower.statusOf('g'), 'before any run').to.equal(undefined)
      await follower.runOnce(true)
      expect(target.topics['dr.orders']).to.deep.equal({ 'min.insync.replicas': '1', 'retention.ms': '3600000', 'segment.ms': '600000' })
      const errors = follower.statusOf('g')?.errors ?? []
      expect(errors.map((e) => [e.kind, e.topic, e.targetTopic, e.config])).to.deep.equal([['config', 'orders', 'dr.orders', 'cleanup.policy']])
      expect(errors[0]?.message).to.contain('dr.orders').and.contain('cleanup.policy')
      expect(events.map((e) => e.type)).to.deep.equal(['topic_config_changed', 'topic_config_failed'])
      expect(changed).to.deep.equal(['g'])
      // The source changes the overridden config: the override stays; the same refusal is not a new event.
      source.topics.orders = { ...source.topics.orders, 'segment.ms': '1000', 'retention.ms': '7200000' }
      await follower.runOnce(true)
      expect(target.topics['dr.orders']).to.deep.equal({ 'min.insync.replicas': '1', 'retention.ms': '7200000', 'segment.ms': '600000' })
      expect(events.map((e) => e.type)).to.deep.equal(['topic_config_changed', 'topic_config_failed', 'topic_config_changed'])
      const metric = (await registry.getSingleMetricAsString('ferry_controller_topic_follow_total'))
      expect(metric).to.contain('kind="config",result="applied"} 3').and.contain('kind="config",result="failed"} 2')
    })

    it('creates the mapped READ and DESCRIBE ACLs only when asked, never WRITE', async () => {
      const spec = parseTopicGroup({ name: 'g', sourceCluster: 'src', targetCluster: 'dst', topics: ['orders'], rename: { prefix: 'dr.' }, acls: { sync: true, principals: { 'User:alice': 'User:alice-dr' } } })
      const { source, target, follower } = setup(spec)
      source.acls.push({ principal: 'User:alice', topic: 'orders', operation: 'READ' }, { principal: 'User:alice', topic: 'orders', operation: 'WRITE' } as unknown as TopicReadAcl)
      await follower.runOnce(true)
      expect(target.acls).to.deep.equal([{ principal: 'User:alice-dr', topic: 'dr.orders', operation: 'READ' }])
      const off = setup(parseTopicGroup({ name: 'g', sourceCluster: 'src', targetCluster: 'dst', topics: ['orders'] }))
      off.source.acls.push({ principal: 'User:alice', topic: 'orders', operation: 'READ' })
      await off.follower.runOnce(true)
      expect(off.target.acls, 'ACL sync is opt-in').to.deep.equal([])
    })
  })
})
