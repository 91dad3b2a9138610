/**
 * The checkpoint store on the real target cluster, around transactions of other producers.
 *
 * The checkpoint topic is shared: every exactly-once partition commits its checkpoints there in
 * its own transaction. A read_committed reader sees nothing past the first record of a
 * transaction still open (the last stable offset), so a committed checkpoint written after that
 * record is invisible until the open transaction ends. A reader that stopped at the last stable
 * offset returned an older checkpoint, and the restarted task mirrored again what was already
 * committed: exactly-once duplicates after a target broker restart, when another worker's
 * transaction stayed open for seconds (fault suite, CI 2026-11-23).
 */
import { expect } from 'chai'
import type { ClusterSpec } from '../../common/config.js'
import { createKafkaAdmin, type KafkaAdmin } from '../../common/kafka/admin.js'
import { CHECKPOINT_TOPIC_CONFIGS, checkpointTopicName, createCheckpointStore, type CheckpointStore } from '../../worker/checkpoint-store.js'
import { createTargetProducer, type TargetProducer } from '../../worker/target-producer.js'
import { createTransactionalProducer, type TransactionalProducer } from '../../worker/transactional-producer.js'
import { silentLogger } from '../../common/logger.js'
import { captureLogs } from '../log-capture.js'
import type { LocalStack } from '../../deploy/local-stack.js'
import { Kafka, logLevel } from '../../common/kafka/kafkajs.js'
import { sharedStack, uniqueName, waitFor } from './harness.js'

describe('checkpoint store with open transactions (real target)', function () {
  this.timeout(120000)
  let stack: LocalStack
  let target: ClusterSpec
  let admin: KafkaAdmin
  let store: CheckpointStore
  let plain: TargetProducer
  const open: TransactionalProducer[] = []
  const deployment = uniqueName('ckpt')
  const logger = silentLogger()
  /** What the store logged (JSON lines). */
  const { logger: storeLogger, lines: logged } = captureLogs()

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    target = { name: 'dst', bootstrapServers: [stack.target.plaintext] } as ClusterSpec
    admin = createKafkaAdmin(target, { clientId: 'ckpt-test', logger })
    store = createCheckpointStore({ target, admin, deployment, sourceCluster: 'src', worker: 'w-test', logger: storeLogger })
    await store.ensureTopic()
    plain = await createTargetProducer(target, { clientId: 'ckpt-test', logger, lanes: 1 })
  })

  after(async function () {
    await Promise.all(open.map((p) => p.close()))
    await plain?.close()
    await admin?.disconnect()
  })

  /** A raw kafkajs transaction on the checkpoint topic that stays open until the returned end(). */
  async function openTransaction(key: string): Promise<{ end: (commit: boolean) => Promise<void>; close: () => Promise<void> }> {
    const kafka = new Kafka({ brokers: [stack.target.plaintext], logLevel: logLevel.NOTHING })
    const producer = kafka.producer({ transactionalId: uniqueName('other-owner'), idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const txn = await producer.transaction()
    await txn.send({ topic: store.topic, messages: [{ key, value: JSON.stringify({ offset: 999999, sourceCluster: 'src', worker: 'other', at: new Date().toISOString() }) }] })
    return {
      end: async (commit) => (commit ? txn.commit() : txn.abort()),
      close: () => producer.disconnect(),
    }
  }

  it('a committed checkpoint behind another owner\'s open transaction is read (the read waits for that transaction)', async () => {
    const group = uniqueName('g')
    await store.write(plain, group, [{ topic: 't', partition: 0, offset: 10 }])
    // Another partition's owner opens a transaction on the checkpoint topic and keeps it open.
    const other = await openTransaction(`${uniqueName('other-group')}/t/0`)
    try {
      // This partition's owner commits a newer checkpoint after it (as mirror-task does).
      const mine = await createTransactionalProducer(target, `ferry.${deployment}.${group}.t.0`, { clientId: 'ckpt-test', logger })
      open.push(mine)
      await mine.fence()
      await mine.sendAtomically([store.record(group, { topic: 't', partition: 0, offset: 42 })])

      const reading = store.read(group)
      let settled = false
      void reading.then(() => (settled = true), () => (settled = true))
      // While the other transaction is open, the committed 42 lies past the last stable offset:
      // the read must not return (returning would mean returning the stale 10).
      await new Promise((resolve) => setTimeout(resolve, 1500))
      expect(settled, 'checkpoint read returned while a transaction before the newest checkpoint was open').to.equal(false)
      await other.end(false)
      const saved = await reading
      expect(saved.get('t/0')?.offset).to.equal(42)
      // And it was found past the last stable offset the read began with, where the old read stopped.
      const waited = logged.find((l) => l.event === 'checkpoint.read_waited' && l.group === group)
      expect(waited?.late, JSON.stringify(waited)).to.equal(1)
    } finally {
      await other.close()
    }
  })

  it('a checkpoint written after an open transaction without one (at-least-once) is read too', async () => {
    const group = uniqueName('g')
    const other = await openTransaction(`${uniqueName('other-group')}/t/1`)
    try {
      await store.write(plain, group, [{ topic: 't', partition: 1, offset: 7 }])
      const reading = store.read(group)
      await new Promise((resolve) => setTimeout(resolve, 1000))
      await other.end(true)
      const saved = await reading
      expect(saved.get('t/1')?.offset).to.equal(7)
    } finally {
      await other.close()
    }
  })

  it('records of aborted transactions are not taken as checkpoints', async () => {
    const group = uniqueName('g')
    await store.write(plain, group, [{ topic: 't', partition: 2, offset: 5 }])
    const aborted = await openTransaction(`${group}/t/2`)
    await aborted.end(false)
    await aborted.close()
    expect((await store.read(group)).get('t/2')?.offset).to.equal(5)
  })
})

describe('checkpoint topic configs (real target)', function () {
  this.timeout(120000)
  let admin: KafkaAdmin
  let target: ClusterSpec
  const logger = silentLogger()

  before(async function () {
    this.timeout(300000)
    const stack = await sharedStack()
    target = { name: 'dst', bootstrapServers: [stack.target.plaintext] } as ClusterSpec
    admin = createKafkaAdmin(target, { clientId: 'ckpt-config-test', logger })
  })

  after(async () => {
    await admin?.disconnect()
  })

  /** The broker applies a config change to its metadata a moment after the change is acknowledged. */
  const configsBecome = async (topic: string, expected: Record<string, string>): Promise<void> => {
    let seen: Record<string, string> = {}
    try {
      await waitFor(`configs of ${topic}`, async () => JSON.stringify(Object.entries((seen = await admin.topicConfigs(topic))).sort()) === JSON.stringify(Object.entries(expected).sort()), 10000, 100)
    } catch {
      expect(seen).to.deep.equal(expected)
    }
  }

  const storeFor = (deployment: string): CheckpointStore => createCheckpointStore({ target, admin, deployment, sourceCluster: 'src', worker: 'w-test', logger })

  it('creates the topic compacted, with small segments so compaction keeps every read short', async () => {
    const store = storeFor(uniqueName('ckcfg'))
    await store.ensureTopic()
    await configsBecome(store.topic, CHECKPOINT_TOPIC_CONFIGS)
  })

  it('adds the configs a topic made by an older Ferry lacks, keeping those an operator set', async () => {
    const deployment = uniqueName('ckcfg')
    const topic = checkpointTopicName(deployment)
    // As created before: compaction only, plus a config an operator set later (and one they chose differently from ours).
    await admin.createTopic({ topic, partitions: 1, configs: { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000', 'max.message.bytes': '2097152', 'segment.ms': '600000' } })
    const store = storeFor(deployment)
    await store.ensureTopic()
    await configsBecome(topic, { ...CHECKPOINT_TOPIC_CONFIGS, 'max.message.bytes': '2097152', 'segment.ms': '600000' })
  })
})
