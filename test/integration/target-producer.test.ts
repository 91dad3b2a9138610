/**
 * The target producer when a send fails although the broker wrote it (real target broker; the
 * client's connections stop delivering its answers, as when a broker is killed or frozen
 * mid-request or the network drops the way back).
 *
 * kafkajs keeps an idempotent producer's record sequence numbers where they were after a failed
 * send. The broker, which did write that request, then refuses the partition's next records
 * (OUT_OF_ORDER_SEQUENCE_NUMBER: a partition stuck for good, seen in the fault suite after a
 * target broker kill -9) or, when they are as many as the written ones, acknowledges them as
 * duplicates without writing them: records lost. The lane must start over with a new producer id.
 */
import { expect } from 'chai'
import type { ClusterSpec } from '../../common/config.js'
import { createTargetProducer, type TargetProducer, type TargetRecord } from '../../worker/target-producer.js'
import { createTransactionalProducer } from '../../worker/transactional-producer.js'
import { silentLogger } from '../../common/logger.js'
import type { LocalStack } from '../../deploy/local-stack.js'
import { sharedStack, uniqueName, waitFor } from './harness.js'
import { AnswerDropper } from './answer-dropper.js'
import { addPartitions, createTopic, partitionEnds, readAll } from './kafka-helpers.js'

describe('target producer after a send the broker wrote but never answered (real target)', function () {
  this.timeout(120000)
  let stack: LocalStack
  const opened: TargetProducer[] = []

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
  })

  after(async () => {
    await Promise.all(opened.map((p) => p.close()))
  })

  const records = (topic: string, prefix: string, count: number): TargetRecord[] =>
    Array.from({ length: count }, (_, i) => ({ topic, partition: 0, key: `${prefix}-${i}`, value: `${prefix}-value-${i}` }))

  /** A one-lane producer on a new topic whose second send ('unanswered', 10 records) the broker wrote but never answered. */
  const afterUnansweredSend = async (): Promise<{ topic: string; network: AnswerDropper; producer: TargetProducer }> => {
    const topic = uniqueName('unanswered')
    await createTopic(stack.target.plaintext, topic, 1)
    const target = { name: 'dst', bootstrapServers: [stack.target.plaintext] } as ClusterSpec
    const network = new AnswerDropper()
    const producer = await createTargetProducer(target, { clientId: 'unanswered-test', logger: silentLogger(), lanes: 1, requestTimeoutMs: 1000, retries: 1, socketFactory: network.factory })
    opened.push(producer)
    await producer.send(records(topic, 'before', 10))

    // The broker writes the request (and its retry, as a duplicate); no answer reaches the client.
    network.drop()
    let failed: unknown
    try {
      await producer.send(records(topic, 'unanswered', 10))
    } catch (error) {
      failed = error
    } finally {
      network.heal()
    }
    expect(failed, 'a send whose answers never came should have failed').to.be.instanceOf(Error)
    return { topic, network, producer }
  }

  it('the next records of the partition are written, none dropped as duplicates or refused as out of order', async () => {
    const { topic, producer } = await afterUnansweredSend()
    await waitFor('the unanswered request written', async () => ((await readAll(stack.target.plaintext, topic)).get(0) ?? []).some((r) => r.key === 'unanswered-0'), 30000)

    // As many records as the written request: with the old sequence numbers the broker takes them for its duplicate.
    await producer.send(records(topic, 'after', 10))
    await producer.send(records(topic, 'later', 3))
    const keys = ((await readAll(stack.target.plaintext, topic)).get(0) ?? []).map((r) => r.key)
    for (const prefix of ['before', 'after']) for (let i = 0; i < 10; i++) expect(keys).to.include(`${prefix}-${i}`)
    for (let i = 0; i < 3; i++) expect(keys).to.include(`later-${i}`)
    // Order within the partition is kept: everything sent after the failure follows it.
    expect(keys.indexOf('after-0')).to.be.greaterThan(keys.lastIndexOf('unanswered-9'))
  })

  it('close() while the lane opens its new producer leaves no connection open', async () => {
    const { topic, network, producer } = await afterUnansweredSend()
    // This send opens the new producer; close() comes while it connects.
    const sending = producer.send(records(topic, 'racing', 1)).then(
      () => 'sent',
      (error: unknown) => (error as Error).message,
    )
    await producer.close()
    const outcome = await sending
    expect(outcome === 'sent' || /is closed/.test(outcome), `the racing send: ${outcome}`).to.equal(true)
    await waitFor('every connection closed', () => network.open === 0, 10000, 50)
  })
})

/**
 * kafkajs produced to a partition missing from its metadata by leaving its records out of the
 * request, and the send resolved: a mirrored topic that gained partitions lost the new
 * partitions' first records while checkpoints moved past them (issue 12, finding 1).
 */
describe('target producer after the topic gained partitions (real target)', function () {
  this.timeout(120000)

  it('writes to a partition added after its metadata was read, for plain and transactional sends', async () => {
    const stack = await sharedStack()
    const topic = uniqueName('grown')
    await createTopic(stack.target.plaintext, topic, 1)
    const target = { name: 'dst', bootstrapServers: [stack.target.plaintext] } as ClusterSpec
    const producer = await createTargetProducer(target, { clientId: 'grown-test', logger: silentLogger(), lanes: 1 })
    const transactional = await createTransactionalProducer(target, uniqueName('grown-txn'), { clientId: 'grown-test', logger: silentLogger() })
    try {
      // Both producers now hold the topic's metadata with one partition.
      await producer.send([{ topic, partition: 0, key: 'k', value: 'first' }])
      await transactional.sendAtomically([{ topic, partition: 0, key: 'k', value: 'first-txn' }])
      await addPartitions(stack.target.plaintext, topic, 3)
      await producer.send([{ topic, partition: 2, key: 'k', value: 'to-the-new-partition' }])
      await transactional.sendAtomically([{ topic, partition: 1, key: 'k', value: 'to-the-new-partition-txn' }])
      const ends = await partitionEnds(stack.target.plaintext, topic)
      // Partition 1 holds the record and the transaction's commit marker.
      expect(Object.fromEntries(ends)).to.deep.equal({ 0: 3, 1: 2, 2: 1 })
    } finally {
      await producer.close()
      await transactional.close()
    }
  })
})
