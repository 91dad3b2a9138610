/**
 * The Kafka port's contract (common/kafka/port.ts): one suite, run against the real local stack,
 * that any `KafkaClientFactory` must pass before Ferry runs on it. Each test names the guarantee
 * it checks (`[G-...]`, documented on the port). Fetch guarantees run against the stack's source
 * cluster (in CI lanes an older Kafka, as sources are), produce and admin ones against the target.
 * Where the data's shape matters it is written and read back by Kafka's own Java clients
 * (test/integration/oracle.ts), so the suite does not judge a client by itself.
 *
 * @example
 *   describeKafkaContract({ clients: kafkajsClients, producerWithLostAnswers })
 */
import { expect } from 'chai'
import type { ClusterSpec } from '../../common/config.js'
import { FerryError } from '../../common/errors.js'
import { silentLogger } from '../../common/logger.js'
import type { KafkaAdmin, KafkaClientFactory, PartitionStart, ProducerOptions, SourceRecord, TargetProducer, TargetRecord, TransactionalProducer } from '../../common/kafka/port.js'
import { partitionKey } from '../../common/worker-report.js'
import type { LocalStack } from '../../deploy/local-stack.js'
import { sharedStack, skipInSourceLanes, uniqueName, waitFor } from '../integration/harness.js'
import { oracleDump, oracleProduce, type OracleRecord } from '../integration/oracle.js'

export interface LostAnswers {
  producer: TargetProducer
  /** From now on requests reach the broker (and are written) but no answer reaches the client. */
  drop(): void
  heal(): void
}

export interface ContractSubject {
  clients: KafkaClientFactory
  /**
   * A one-connection target producer whose answers can be withheld, for [G-UNANSWERED]. How to
   * lose answers depends on the client (kafkajs takes a socket factory); without it that test
   * is skipped, and a client is not held to the contract until it has one.
   */
  producerWithLostAnswers?: (cluster: ClusterSpec, options: ProducerOptions) => Promise<LostAnswers>
  /** Guarantees this client is known to break, with why: their tests must fail (see `guarantee`). */
  knownViolations?: ReadonlyMap<string, string>
  /** States the port itself never creates, set up by any client (test/contract/fixtures.ts). */
  fixtures: ContractFixtures
}

export interface ContractFixtures {
  /** Writes `records` in a transaction and leaves it open until `abort()`. */
  openTransaction(brokers: string, records: readonly TargetRecord[]): Promise<{ abort(): Promise<void> }>
  /** A live member of consumer group `group` (subscribed to `topic`) until `leave()`. */
  joinGroup(brokers: string, group: string, topic: string): Promise<{ leave(): Promise<void> }>
}

const logger = silentLogger()
const options = { clientId: 'ferry-contract', logger }

const b64 = (value: Buffer | string | null): string | null => (value === null ? null : Buffer.from(value).toString('base64'))

/** A fetched record in the oracle's notation, to compare with what Java's consumer saw. */
function asOracle(partition: number, r: SourceRecord): Omit<OracleRecord, 'tt'> {
  return { p: partition, o: r.offset, ts: Number(r.timestamp), k: b64(r.key), v: b64(r.value), h: r.headers.map((h) => [Buffer.from(h.key, 'utf8').toString('base64'), b64(h.value)]) }
}

interface Fetched {
  records: Map<number, SourceRecord[]>
  /** Last offset each partition's batches covered, per `onBatchEnd`. */
  batchEnds: Map<number, number>
  /** Partitions and offsets the handler saw, in arrival order per partition. */
  partitionsSeen: Set<string>
}

/**
 * Reads `starts` with the port's source consumer until every partition's batches covered its
 * high watermark (as the data path does when it waits to catch up), or fails at the deadline.
 */
async function fetchToEnd(clients: KafkaClientFactory, cluster: ClusterSpec, admin: KafkaAdmin, starts: readonly PartitionStart[]): Promise<Fetched> {
  const topics = [...new Set(starts.map((s) => s.topic))]
  const highs = new Map<string, number>()
  for (const topic of topics) for (const o of await admin.offsets(topic)) highs.set(partitionKey({ topic, partition: o.partition }), o.high)
  const fetched: Fetched = { records: new Map(), batchEnds: new Map(), partitionsSeen: new Set() }
  const waiting = new Set(starts.filter((s) => (highs.get(partitionKey(s)) ?? 0) > s.offset).map((s) => partitionKey(s)))
  const consumer = clients.sourceConsumer(cluster, {
    ...options,
    groupId: uniqueName('contract-reader'),
    onBatchEnd: (topic, partition, lastOffset) => {
      fetched.batchEnds.set(partition, Math.max(fetched.batchEnds.get(partition) ?? -1, lastOffset))
      if (lastOffset + 1 >= (highs.get(partitionKey({ topic, partition })) ?? 0)) waiting.delete(partitionKey({ topic, partition }))
    },
  })
  try {
    await consumer.start(starts, async (batch) => {
      fetched.partitionsSeen.add(partitionKey(batch))
      fetched.records.set(batch.partition, [...(fetched.records.get(batch.partition) ?? []), ...batch.records])
    })
    await waitFor('every partition read to its high watermark', () => waiting.size === 0, 60000, 50)
  } finally {
    await consumer.stop()
  }
  return fetched
}

async function expectRejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise
  } catch (error) {
    return error
  }
  throw new Error('expected a failure, the call succeeded')
}

export function describeKafkaContract(subject: ContractSubject): void {
  const { clients } = subject

  /**
   * A test of a guarantee the client is known to break (`knownViolations`) must fail: the suite
   * stays green and says so, and turns red the day the client is fixed, so the entry is removed.
   */
  const guarantee = (tag: string, title: string, fn: () => Promise<void>): void => {
    const known = subject.knownViolations?.get(tag)
    if (known === undefined) {
      it(`[${tag}] ${title}`, fn)
      return
    }
    it(`[${tag}] KNOWN VIOLATION (${known}): ${title}`, async () => {
      const error = await fn().then(() => undefined, (e: unknown) => e)
      expect(error, `[${tag}] now holds for ${clients.name}: remove it from knownViolations`).to.be.instanceOf(Error)
    })
  }

  describe(`Kafka port contract: ${clients.name} (real brokers)`, function () {
    this.timeout(180000)
    let stack: LocalStack
    let source: ClusterSpec
    let target: ClusterSpec
    let sourceAdmin: KafkaAdmin
    let targetAdmin: KafkaAdmin
    const closers: Array<() => Promise<void>> = []
    // Record timestamps: recent, or the broker's retention (7 days by default) could delete them mid-test.
    const baseMs = Date.now() - 60_000

    before(async function () {
      this.timeout(300000)
      stack = await sharedStack()
      source = { name: 'contract-source', bootstrapServers: [stack.source.plaintext] } as ClusterSpec
      target = { name: 'contract-target', bootstrapServers: [stack.target.plaintext] } as ClusterSpec
      sourceAdmin = clients.admin(source, options)
      targetAdmin = clients.admin(target, options)
    })

    after(async () => {
      for (const close of closers.reverse()) await close().catch(() => undefined)
      await sourceAdmin?.disconnect()
      await targetAdmin?.disconnect()
    })

    const producer = async (extra: Partial<ProducerOptions> = {}): Promise<TargetProducer> => {
      const created = await clients.targetProducer(target, { ...options, ...extra })
      closers.push(() => created.close())
      return created
    }
    const transactional = async (id: string): Promise<TransactionalProducer> => {
      const created = await clients.transactionalProducer(target, id, options)
      closers.push(() => created.close())
      return created
    }

    const recordsFor = (topic: string, partition: number, prefix: string, count: number): TargetRecord[] =>
      Array.from({ length: count }, (_, i) => ({ topic, partition, key: `${prefix}-${i}`, value: `${prefix}-value-${i}`, headers: [{ key: 'n', value: Buffer.from(String(i)) }, { key: 'n', value: null }], timestamp: String(baseMs + i) }))
    const keysIn = async (topic: string, isolation: 'read_committed' | 'read_uncommitted' = 'read_committed'): Promise<Map<number, string[]>> =>
      new Map([...(await oracleDump(stack.target.plaintext, topic, isolation))].map(([p, list]) => [p, list.map((r) => Buffer.from(r.k ?? '', 'base64').toString())]))

    describe('fetch (source cluster)', () => {
      let shapes: string
      let committed: Map<number, OracleRecord[]>
      let everything: Map<number, OracleRecord[]>

      before(async function () {
        this.timeout(300000)
        shapes = uniqueName('contract-shapes')
        expect(await sourceAdmin.createTopic({ topic: shapes, partitions: 3 })).to.equal(true)
        // Java's producer: every codec, idempotent and transactional phases, committed and aborted transactions, odd headers.
        const summary = await oracleProduce(stack.source.plaintext, shapes, { profile: 'shapes', count: 240 })
        expect(summary.aborted ?? 0, 'the oracle wrote aborted transactions').to.be.greaterThan(0)
        committed = await oracleDump(stack.source.plaintext, shapes, 'read_committed')
        everything = await oracleDump(stack.source.plaintext, shapes, 'read_uncommitted')
      })

      it('[G-READ-COMMITTED][G-RECORD-EXACT][G-HEADERS] every committed record, exactly as Java wrote it; no aborted record, no control record', async () => {
        const starts = (await sourceAdmin.offsets(shapes)).map((o) => ({ topic: shapes, partition: o.partition, offset: o.low }))
        const fetched = await fetchToEnd(clients, source, sourceAdmin, starts)
        let aborted = 0
        for (const [partition, expected] of committed) {
          const got = (fetched.records.get(partition) ?? []).map((r) => asOracle(partition, r))
          expect(got, `partition ${partition}`).to.deep.equal(expected.map(({ tt: _tt, ...r }) => r))
          aborted += (everything.get(partition)?.length ?? 0) - expected.length
        }
        // The test means something only if there was something to skip.
        expect(aborted, 'aborted records in the log').to.be.greaterThan(0)
      })

      it('[G-PAST-MARKERS] batch ends reach the high watermark even where the log ends with transaction markers or aborted records', async () => {
        // A log that ends with a commit marker, and one that ends with aborted records and an abort marker.
        const topic = uniqueName('contract-markers')
        await sourceAdmin.createTopic({ topic, partitions: 2 })
        const sourceTxn = await clients.transactionalProducer(source, uniqueName('contract-markers-txn'), { ...options, maxBatchBytes: 1024 })
        closers.push(() => sourceTxn.close())
        await sourceTxn.sendAtomically([{ topic, partition: 0, key: 'k', value: 'committed' }])
        // Aborted by the fixture, not by a record the broker refuses: a topic config change reaches a
        // ZooKeeper-mode broker (2.8) asynchronously, so a too-large record was sometimes accepted.
        const open = await subject.fixtures.openTransaction(stack.source.plaintext, [{ topic, partition: 1, key: 'k', value: 'aborted' }])
        await open.abort()
        // Markers are written after commit/abort returns (the coordinator sends them): wait for them.
        const offsets = await waitFor('each log ends with a marker after its record', async () => {
          const now = await sourceAdmin.offsets(topic)
          return now.every((o) => o.high === 2) ? now : undefined
        }, 20000, 50)
        const fetched = await fetchToEnd(clients, source, sourceAdmin, offsets.map((o) => ({ topic, partition: o.partition, offset: 0 })))
        expect(fetched.batchEnds.get(0)).to.equal(1)
        expect(fetched.batchEnds.get(1)).to.equal(1)
        expect((fetched.records.get(0) ?? []).map((r) => r.value?.toString())).to.deep.equal(['committed'])
        expect(fetched.records.get(1) ?? [], 'the aborted record').to.deep.equal([])
      })

      it('[G-FETCH-EXACT] only the given partitions, each from its start offset, in offset order', async () => {
        const p1 = committed.get(1) ?? []
        const middle = p1[Math.floor(p1.length / 2)] as OracleRecord
        const fetched = await fetchToEnd(clients, source, sourceAdmin, [{ topic: shapes, partition: 1, offset: middle.o }])
        expect([...fetched.partitionsSeen]).to.deep.equal([partitionKey({ topic: shapes, partition: 1 })])
        const offsets = (fetched.records.get(1) ?? []).map((r) => r.offset)
        expect(offsets).to.deep.equal(p1.filter((r) => r.o >= middle.o).map((r) => r.o))
      })

      it('[G-PAUSE] a partition whose handler failed waits at its position until resumeAt, then reads from the offset given', async () => {
        const p0 = committed.get(0) ?? []
        const first = p0[0] as OracleRecord
        const again = p0[3] as OracleRecord
        const failures: number[] = []
        const seen: number[][] = []
        let calls = 0
        const consumer = clients.sourceConsumer(source, { ...options, groupId: uniqueName('contract-pause'), onPartitionError: (_topic, partition) => failures.push(partition) })
        closers.push(() => consumer.stop())
        await consumer.start([{ topic: shapes, partition: 0, offset: first.o }], async (batch) => {
          calls++
          seen.push(batch.records.map((r) => r.offset))
          if (calls === 1) throw new Error('handler failed')
        })
        await waitFor('the failure reported', () => failures.length === 1, 30000, 50)
        expect(consumer.positions().get(partitionKey({ topic: shapes, partition: 0 })), 'position stays where the failed batch began').to.equal(first.o)
        await waitFor('resumed', () => consumer.resumeAt(shapes, 0, again.o), 30000, 100)
        await waitFor('the partition read again', () => seen.length >= 2, 30000, 50)
        expect(seen[0]?.[0]).to.equal(first.o)
        expect(seen[1]?.[0], 'the first offset after resumeAt').to.equal(again.o)
        await consumer.stop()
      })

      it('[G-RELEASE] a released partition: its batch in flight finishes first, none of it is read afterwards, the other partition goes on', async () => {
        const topic = uniqueName('contract-release')
        await sourceAdmin.createTopic({ topic, partitions: 2 })
        const writer = await clients.targetProducer(source, options)
        closers.push(() => writer.close())
        await writer.send([...recordsFor(topic, 0, 'first', 5), ...recordsFor(topic, 1, 'first', 5)])
        const seen: Array<{ partition: number; keys: string[]; at: number }> = []
        let holdPartition0: Promise<void> | undefined
        let letGo!: () => void
        const consumer = clients.sourceConsumer(source, { ...options, groupId: uniqueName('contract-release') })
        closers.push(() => consumer.stop())
        await consumer.start([{ topic, partition: 0, offset: 0 }, { topic, partition: 1, offset: 0 }], async (batch) => {
          seen.push({ partition: batch.partition, keys: batch.records.map((r) => r.key?.toString() ?? ''), at: Date.now() })
          if (batch.partition === 0 && holdPartition0 === undefined) {
            holdPartition0 = new Promise((resolve) => (letGo = resolve))
            await holdPartition0
          }
        })
        await waitFor('a batch of each partition', () => holdPartition0 !== undefined && seen.some((s) => s.partition === 1), 30000, 50)
        let released = false
        const releasing = consumer.release([{ topic, partition: 0 }]).then(() => (released = true))
        await new Promise((resolve) => setTimeout(resolve, 300))
        expect(released, 'release waits for the batch in flight').to.equal(false)
        letGo()
        await releasing
        const releasedAt = Date.now()
        expect(consumer.positions().has(partitionKey({ topic, partition: 0 })), 'its position is forgotten').to.equal(false)
        await writer.send([...recordsFor(topic, 0, 'after', 5), ...recordsFor(topic, 1, 'after', 5)])
        await waitFor('partition 1 read on', () => seen.some((s) => s.partition === 1 && s.keys.includes('after-4')), 30000, 50)
        // Give partition 0's new records the time partition 1's took, and as long again.
        await new Promise((resolve) => setTimeout(resolve, Math.max(500, Date.now() - releasedAt)))
        expect(seen.filter((s) => s.partition === 0 && s.at >= releasedAt), 'batches of the released partition').to.deep.equal([])
        await consumer.stop()
      })
    })

    describe('produce (target cluster)', () => {
      // The target runs the default release in every lane: checked once, in npm test.
      before(function () {
        skipInSourceLanes(this)
      })
      it('[G-ACKED][G-ORDER][G-HEADERS] acknowledged sends are all on the target, in order, with headers and timestamps; acknowledgedEnd is where they end', async () => {
        const topic = uniqueName('contract-acked')
        await targetAdmin.createTopic({ topic, partitions: 2 })
        const p = await producer({ maxBatchBytes: 2048 })
        const sent = recordsFor(topic, 0, 'a', 50)
        await Promise.all([p.send(sent.slice(0, 25)), p.send(recordsFor(topic, 1, 'b', 5))])
        await p.send(sent.slice(25))
        expect(p.acknowledgedEnd(topic, 0)).to.equal(50)
        await targetAdmin.expandTopic(topic, 3)
        // A partition added after the producer read its metadata.
        await p.send(recordsFor(topic, 2, 'c', 3))
        const dump = await oracleDump(stack.target.plaintext, topic)
        expect((dump.get(0) ?? []).map((r) => Buffer.from(r.k ?? '', 'base64').toString())).to.deep.equal(recordsFor(topic, 0, 'a', 50).map((r) => r.key))
        expect((dump.get(2) ?? []).length).to.equal(3)
        const r7 = dump.get(0)?.[7]
        expect(r7?.ts).to.equal(baseMs + 7)
        expect(r7?.h).to.deep.equal([[b64('n'), b64('7')], [b64('n'), null]])
      })

      it('[G-REJECTED] a record the broker refuses fails the send as TARGET_REJECTED (not retriable); the partition takes the next records', async () => {
        const topic = uniqueName('contract-rejected')
        await targetAdmin.createTopic({ topic, partitions: 1, configs: { 'max.message.bytes': '4096' } })
        const p = await producer()
        const error = await expectRejection(p.send([{ topic, partition: 0, key: 'big', value: Buffer.alloc(16384) }]))
        expect(error).to.be.instanceOf(FerryError)
        expect((error as FerryError).code).to.equal('TARGET_REJECTED')
        expect((error as FerryError).retriable).to.equal(false)
        await p.send(recordsFor(topic, 0, 'after', 3))
        expect((await keysIn(topic)).get(0)).to.deep.equal(['after-0', 'after-1', 'after-2'])
      })

      it('[G-UNANSWERED] after a send the broker wrote but never answered, the next records are all written, in order (none dropped as duplicates, none refused as out of order)', async function () {
        if (subject.producerWithLostAnswers === undefined) this.skip()
        const topic = uniqueName('contract-unanswered')
        await targetAdmin.createTopic({ topic, partitions: 1 })
        const lost = await (subject.producerWithLostAnswers as NonNullable<ContractSubject['producerWithLostAnswers']>)(target, { ...options, requestTimeoutMs: 1000 })
        closers.push(() => lost.producer.close())
        await lost.producer.send(recordsFor(topic, 0, 'before', 10))
        lost.drop()
        const error = await expectRejection(lost.producer.send(recordsFor(topic, 0, 'unanswered', 10))).finally(() => lost.heal())
        expect(error).to.be.instanceOf(Error)
        await waitFor('the unanswered request written', async () => ((await keysIn(topic)).get(0) ?? []).includes('unanswered-0'), 30000)
        // As many records as the unanswered request: with its sequence numbers reused, the broker would take them for a duplicate.
        await lost.producer.send(recordsFor(topic, 0, 'after', 10))
        const keys = (await keysIn(topic)).get(0) ?? []
        for (let i = 0; i < 10; i++) expect(keys).to.include(`after-${i}`)
        expect(keys.indexOf('after-0')).to.be.greaterThan(keys.lastIndexOf('unanswered-9'))
      })

      it('[G-ATOMIC] a transaction is all or nothing for read_committed readers; the failed one leaves only aborted records', async () => {
        const topic = uniqueName('contract-atomic')
        await targetAdmin.createTopic({ topic, partitions: 2, configs: { 'max.message.bytes': '4096' } })
        const txn = await transactional(uniqueName('contract-atomic-txn'))
        await txn.fence()
        await txn.sendAtomically([...recordsFor(topic, 0, 'one', 3), ...recordsFor(topic, 1, 'one', 2)])
        expect(txn.acknowledgedEnd(topic, 0)).to.equal(3)
        // One request: partition 0's records are written, partition 1's refused, so the transaction aborts.
        const error = await expectRejection(txn.sendAtomically([...recordsFor(topic, 0, 'two', 2), { topic, partition: 1, key: 'big', value: Buffer.alloc(16384) }]))
        expect(error).to.be.instanceOf(FerryError)
        const committed = await keysIn(topic)
        expect(committed.get(0)).to.deep.equal(['one-0', 'one-1', 'one-2'])
        expect(committed.get(1)).to.deep.equal(['one-0', 'one-1'])
        expect((await keysIn(topic, 'read_uncommitted')).get(0), 'the aborted records are in the log').to.include('two-0')
      })

      guarantee('G-ATOMIC-AFTER-FAILURE', 'a producer whose transaction failed after part of it was written commits its next transaction whole (no record taken for a duplicate of the aborted ones, none refused as out of order)', async () => {
        const topic = uniqueName('contract-after-failure')
        await targetAdmin.createTopic({ topic, partitions: 2, configs: { 'max.message.bytes': '4096' } })
        const txn = await transactional(uniqueName('contract-after-failure-txn'))
        await txn.fence()
        await txn.sendAtomically(recordsFor(topic, 0, 'one', 1))
        await expectRejection(txn.sendAtomically([...recordsFor(topic, 0, 'two', 2), { topic, partition: 1, key: 'big', value: Buffer.alloc(16384) }]))
        // As many records as the aborted write to partition 0: were its sequence numbers reused, the broker would take them for a duplicate.
        await txn.sendAtomically(recordsFor(topic, 0, 'three', 2))
        expect((await keysIn(topic)).get(0)).to.deep.equal(['one-0', 'three-0', 'three-1'])
      })

      it('[G-FENCED] a producer fenced by a newer one with its transactional id fails with FENCED and writes nothing more', async () => {
        const topic = uniqueName('contract-fenced')
        await targetAdmin.createTopic({ topic, partitions: 1 })
        const id = uniqueName('contract-fenced-txn')
        const zombie = await transactional(id)
        await zombie.fence()
        await zombie.sendAtomically(recordsFor(topic, 0, 'old', 2))
        const owner = await transactional(id)
        await owner.fence()
        const error = await expectRejection(zombie.sendAtomically(recordsFor(topic, 0, 'zombie', 2)))
        expect(error).to.be.instanceOf(FerryError)
        expect((error as FerryError).code).to.equal('FENCED')
        expect((error as FerryError).retriable).to.equal(false)
        await owner.sendAtomically(recordsFor(topic, 0, 'new', 1))
        expect((await keysIn(topic)).get(0)).to.deep.equal(['old-0', 'old-1', 'new-0'])
      })
    })

    describe('admin (target cluster)', () => {
      // The target runs the default release in every lane: checked once, in npm test.
      before(function () {
        skipInSourceLanes(this)
      })
      it('[G-TOPICS] createTopic is false for an existing topic; partitionCounts leaves out missing topics; topicConfigs has only configs set on the topic', async () => {
        const topic = uniqueName('contract-topics')
        expect(await targetAdmin.createTopic({ topic, partitions: 2, configs: { 'retention.ms': '3600000' } })).to.equal(true)
        expect(await targetAdmin.createTopic({ topic, partitions: 5 })).to.equal(false)
        const missing = uniqueName('contract-missing')
        expect([...(await targetAdmin.partitionCounts([topic, missing]))]).to.deep.equal([[topic, 2]])
        expect(await targetAdmin.topicConfigs(topic)).to.deep.equal({ 'retention.ms': '3600000' })
        await targetAdmin.replaceTopicConfigs(topic, { 'cleanup.policy': 'compact' })
        expect(await targetAdmin.topicConfigs(topic), 'replace drops configs left out').to.deep.equal({ 'cleanup.policy': 'compact' })
        expect(await targetAdmin.listTopics()).to.include(topic)
      })

      it('[G-OFFSETS] log start ≤ last stable ≤ high watermark; the last stable offset waits at the first record of an open transaction', async () => {
        const topic = uniqueName('contract-offsets')
        await targetAdmin.createTopic({ topic, partitions: 1 })
        const p = await producer()
        await p.send(recordsFor(topic, 0, 'plain', 4))
        expect(await targetAdmin.offsets(topic)).to.deep.equal([{ partition: 0, low: 0, stable: 4, high: 4 }])
        expect((await targetAdmin.stableOffsets(topic)).map(({ partition, low, stable }) => ({ partition, low, stable }))).to.deep.equal([{ partition: 0, low: 0, stable: 4 }])
        // A transaction left open (the port's producers never leave one open, so a fixture opens it).
        const open = await subject.fixtures.openTransaction(stack.target.plaintext, [{ topic, partition: 0, key: 'open', value: 'v' }])
        try {
          await p.send(recordsFor(topic, 0, 'after-open', 2))
          expect(await targetAdmin.offsets(topic)).to.deep.equal([{ partition: 0, low: 0, stable: 4, high: 7 }])
          expect((await targetAdmin.stableOffsets(topic)).map(({ partition, low, stable }) => ({ partition, low, stable }))).to.deep.equal([{ partition: 0, low: 0, stable: 4 }])
        } finally {
          await open.abort()
        }
        // Aborted: its record, the two after it and the abort marker (written after abort returns) are below the new high watermark.
        await waitFor('the abort marker written', async () => (await targetAdmin.offsets(topic))[0]?.high === 8, 20000, 50)
        expect(await targetAdmin.offsets(topic)).to.deep.equal([{ partition: 0, low: 0, stable: 8, high: 8 }])
      })

      it('[G-OFFSETS-BY-TIME] the first offset at or after the time; the high watermark where no record is that recent', async () => {
        const topic = uniqueName('contract-by-time')
        await targetAdmin.createTopic({ topic, partitions: 2 })
        const p = await producer()
        await p.send([1000, 2000, 3000, 3000, 4000].map((ts, i) => ({ topic, partition: 0, key: `k${i}`, value: 'v', timestamp: String(baseMs + ts) })))
        const at = async (timestampMs: number): Promise<Array<[number, number]>> => [...(await targetAdmin.offsetsForTime(topic, timestampMs))].sort((x, y) => x[0] - y[0])
        expect(await at(baseMs + 2500)).to.deep.equal([[0, 2], [1, 0]])
        expect(await at(baseMs + 3000)).to.deep.equal([[0, 2], [1, 0]])
        expect(await at(baseMs)).to.deep.equal([[0, 0], [1, 0]])
        expect(await at(baseMs + 3_600_000)).to.deep.equal([[0, 5], [1, 0]])
      })

      it('[G-GROUP-OFFSETS] what setGroupOffsets wrote for a group without members is what groupOffsets reads', async () => {
        const topic = uniqueName('contract-group')
        await targetAdmin.createTopic({ topic, partitions: 3 })
        const group = uniqueName('contract-group')
        expect(await targetAdmin.groupOffsets(group, topic), 'a group that never committed').to.deep.equal([])
        await targetAdmin.setGroupOffsets(group, [{ topic, partition: 0, offset: 5 }, { topic, partition: 2, offset: 9 }])
        expect(await targetAdmin.groupOffsets(group, topic)).to.deep.equal([{ topic, partition: 0, offset: 5 }, { topic, partition: 2, offset: 9 }])
      })

      it('[G-GROUP-OFFSETS] setting offsets of a group with a live member fails and changes nothing', async () => {
        const topic = uniqueName('contract-live-group')
        await targetAdmin.createTopic({ topic, partitions: 1 })
        const group = uniqueName('contract-live-group')
        // Records up to the offset set: a member starting past the log end would reset (and commit) it.
        await (await producer()).send(recordsFor(topic, 0, 'g', 5))
        await targetAdmin.setGroupOffsets(group, [{ topic, partition: 0, offset: 3 }])
        const member = await subject.fixtures.joinGroup(stack.target.plaintext, group, topic)
        try {
          const error = await expectRejection(targetAdmin.setGroupOffsets(group, [{ topic, partition: 0, offset: 0 }]))
          expect(error).to.be.instanceOf(FerryError)
        } finally {
          await member.leave()
        }
        expect(await targetAdmin.groupOffsets(group, topic)).to.deep.equal([{ topic, partition: 0, offset: 3 }])
      })

      it('[G-ACLS] READ and DESCRIBE topic ACLs, created twice, are listed once each', async () => {
        const topic = uniqueName('contract-acls')
        await targetAdmin.createTopic({ topic, partitions: 1 })
        const acls = [{ principal: 'User:mirror', topic, operation: 'READ' as const }, { principal: 'User:mirror', topic, operation: 'DESCRIBE' as const }]
        expect(await targetAdmin.describeTopicAcls(topic)).to.deep.equal([])
        await targetAdmin.createTopicReadAcls(acls)
        await targetAdmin.createTopicReadAcls(acls)
        const listed = await waitFor('the ACLs listed', async () => {
          const found = await targetAdmin.describeTopicAcls(topic)
          return found.length >= 2 ? found : undefined
        }, 20000)
        expect([...listed].sort((a, b) => a.operation.localeCompare(b.operation))).to.deep.equal([acls[1], acls[0]])
      })
    })
  })
}
