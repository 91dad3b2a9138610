/**
 * The mirror task with its Kafka parts replaced by fakes: what it writes, what it checkpoints,
 * what its status says and what it logs, for the paths that need no broker to reach.
 */
import { expect } from 'chai'
import { Registry } from 'prom-client'
import { FerryError } from '../../common/errors.js'
import { parseTopicGroup, type ClusterSpec } from '../../common/config.js'
import type { KafkaAdmin } from '../../common/kafka/admin.js'
import type { Checkpoint, CheckpointEntry, CheckpointStore } from '../../worker/checkpoint-store.js'
import { PartialBatchError, type PartitionStart, type SourceBatch, type SourceConsumer, type SourceConsumerOptions, type SourceRecord } from '../../common/kafka/source-consumer.js'
import type { TargetProducer, TargetRecord } from '../../worker/target-producer.js'
import type { TransactionalProducer } from '../../worker/transactional-producer.js'
import { createMirrorMetrics, createMirrorTask, type MirrorTask } from '../../worker/mirror-task.js'
import { captureLogs } from '../log-capture.js'

const cluster = (name: string): ClusterSpec => ({ name, bootstrapServers: ['127.0.0.1:9'], securityProtocol: 'PLAINTEXT' }) as ClusterSpec

interface Harness {
  task: MirrorTask
  /** Every record the fake target took, in order, per send. */
  sent: TargetRecord[][]
  /** Checkpoints written outside transactions. */
  checkpoints: CheckpointEntry[][]
  /** The last consumer's options and handler. */
  consumer(): { options: SourceConsumerOptions; handler: (batch: SourceBatch) => Promise<void>; starts: readonly PartitionStart[] }
  consumersStarted(): number
  checkpointReads: AbortSignal[]
  lines: Array<Record<string, unknown>>
}

interface HarnessOptions {
  group?: Record<string, unknown>
  /** The fake target refuses records whose value is this text. */
  refuse?: string
  /** Checkpoint reads wait until aborted. */
  blockCheckpointReads?: boolean
  /** What checkpoint reads return (when not blocked). */
  saved?: Map<string, Checkpoint>
}

async function until(condition: () => boolean, what: string, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

function harness(options: HarnessOptions = {}): Harness {
  const { logger, lines } = captureLogs('debug')
  const sent: TargetRecord[][] = []
  const checkpoints: CheckpointEntry[][] = []
  const checkpointReads: AbortSignal[] = []
  const consumers: Array<{ options: SourceConsumerOptions; handler: (batch: SourceBatch) => Promise<void>; starts: readonly PartitionStart[] }> = []
  const refusing = (records: readonly TargetRecord[]): void => {
    if (options.refuse !== undefined && records.some((r) => r.value !== null && r.value.toString() === options.refuse)) {
      throw new FerryError('TARGET_REJECTED', 'cluster "target" rejected records: MESSAGE_TOO_LARGE', { context: { kafkaError: 'MESSAGE_TOO_LARGE' } })
    }
  }
  /** The fake target log: its end is the number of records it took for that partition. */
  const ends = (topic: string, partition: number): number | undefined => {
    const count = sent.flat().filter((r) => r.topic === topic && r.partition === partition).length
    return count === 0 ? undefined : count
  }
  const producer: TargetProducer = {
    send: async (records) => {
      refusing(records)
      sent.push([...records])
    },
    acknowledgedEnd: (topic, partition) => ends(topic, partition),
    close: async () => undefined,
  }
  const transactional = (transactionalId: string): TransactionalProducer => ({
    transactionalId,
    fence: async () => undefined,
    sendAtomically: async (records) => {
      refusing(records)
      sent.push([...records])
    },
    acknowledgedEnd: (topic, partition) => ends(topic, partition),
    close: async () => undefined,
  })
  const admin = {
    partitionCounts: async (topics: readonly string[]) => new Map(topics.map((t) => [t, 1])),
    offsets: async () => [{ partition: 0, low: 0, stable: 100, high: 100 }],
    topicConfigs: async () => ({}),
    createTopic: async () => true,
    expandTopic: async () => undefined,
  } as unknown as KafkaAdmin
  const store: CheckpointStore = {
    topic: '_ferry.checkpoints',
    ensureTopic: async () => undefined,
    read: (_group, signal) => {
      if (signal) checkpointReads.push(signal)
      if (!options.blockCheckpointReads) return Promise.resolve(options.saved ?? new Map())
      return new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new Error('aborted'))))
    },
    write: async (_producer, _group, entries) => {
      checkpoints.push([...entries])
    },
    record: (_group, entry) => ({ topic: '_ferry.checkpoints', key: `${entry.topic}/${entry.partition}`, value: String(entry.offset), headers: [{ key: 'mirrored', value: Buffer.from(String(entry.mirrored ?? '')) }] }),
  }
  const group = parseTopicGroup({ name: 'g', sourceCluster: 'source', targetCluster: 'target', topics: ['t'], ...options.group })
  const task = createMirrorTask({
    deployment: 'd',
    worker: 'w',
    group,
    source: cluster('source'),
    target: cluster('target'),
    sourceAdmin: admin,
    targetAdmin: admin,
    producer,
    checkpoints: store,
    logger,
    metrics: createMirrorMetrics(new Registry()),
    baseline: async () => null,
    createTransactional: async (id) => transactional(id),
    checkpointIntervalMs: 20,
    minRetryMs: 20,
    maxRetryMs: 200,
    createConsumer: (_cluster, consumerOptions) => {
      const fake: SourceConsumer = {
        start: async (starts, handler) => {
          consumers.push({ options: consumerOptions, handler, starts })
        },
        positions: () => new Map(),
        resumeAt: () => true,
        stop: async () => undefined,
      }
      return fake
    },
  })
  return {
    task,
    sent,
    checkpoints,
    checkpointReads,
    lines,
    consumer: () => {
      const last = consumers[consumers.length - 1]
      if (last === undefined) throw new Error('no consumer started')
      return last
    },
    consumersStarted: () => consumers.length,
  }
}

const record = (offset: number, value: string): SourceRecord => ({ offset, key: Buffer.from(`k${offset}`), value: Buffer.from(value), headers: [], timestamp: String(Date.now()) })
const batchOf = (records: SourceRecord[]): SourceBatch => ({ topic: 't', partition: 0, highWatermark: 100, records })
const values = (records: readonly TargetRecord[]): string[] => records.map((r) => String(r.value))

describe('mirror task (fake Kafka)', () => {
  it('does not cancel its own start when the same assignment is applied again', async () => {
    const h = harness({ blockCheckpointReads: true })
    void h.task.update([{ group: 'g', topic: 't', partition: 0 }])
    await until(() => h.checkpointReads.length === 1, 'the first checkpoint read')
    // The worker read the unchanged assignment again (a resync, or a duplicate watch).
    void h.task.update([{ group: 'g', topic: 't', partition: 0 }])
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(h.checkpointReads[0]?.aborted, 'the start of the same set was cancelled').to.equal(false)
    void h.task.update([{ group: 'g', topic: 't', partition: 1 }])
    await until(() => h.checkpointReads[0]?.aborted === true, 'a different set to cancel the start')
    await h.task.stop()
  })

  for (const delivery of ['at-least-once', 'exactly-once'] as const) {
    describe(`a record the target refuses (${delivery})`, () => {
      const batch = (): SourceBatch => batchOf([record(10, 'a'), record(11, 'b'), record(12, 'bad'), record(13, 'c'), record(14, 'd')])

      it('stop: the records before it are written and checkpointed, the partition waits at its offset', async () => {
        const h = harness({ refuse: 'bad', group: { delivery } })
        await h.task.update([{ group: 'g', topic: 't', partition: 0 }])
        let thrown: unknown
        await h.consumer().handler(batch()).catch((error: unknown) => (thrown = error))
        expect(thrown).to.be.instanceOf(PartialBatchError)
        expect((thrown as PartialBatchError).resumeOffset).to.equal(12)
        const reason = (thrown as PartialBatchError).reason as FerryError
        expect(reason.code).to.equal('TARGET_REJECTED')
        expect(reason.message).to.include('offset 12').and.include('t[0]')
        const data = h.sent.flat().filter((r) => r.topic !== '_ferry.checkpoints')
        expect(values(data)).to.deep.equal(['a', 'b'])
        if (delivery === 'exactly-once') {
          // Each write carries its checkpoint in the same transaction; the last covers offset 11.
          const marks = h.sent.flat().filter((r) => r.topic === '_ferry.checkpoints').map((r) => String(r.value))
          expect(marks[marks.length - 1]).to.equal('12')
        } else {
          await until(() => h.checkpoints.flat().some((c) => c.offset === 12), 'checkpoint 12')
        }
        expect(h.task.status()[0]?.position).to.equal(12)
        await h.task.stop()
      })

      it('dead-letter: every other record is written in order, the refused one goes to the dead-letter topic', async () => {
        const h = harness({ refuse: 'bad', group: { delivery, onRejectedRecord: 'dead-letter' } })
        await h.task.update([{ group: 'g', topic: 't', partition: 0 }])
        await h.consumer().handler(batch())
        const data = h.sent.flat().filter((r) => r.topic === 't')
        expect(values(data)).to.deep.equal(['a', 'b', 'c', 'd'])
        const letters = h.sent.flat().filter((r) => r.topic.endsWith('dead-letter'))
        expect(letters).to.have.length(1)
        const offsetHeader = letters[0]?.headers?.find((h) => h.key === 'ferry.source.offset')
        expect(offsetHeader?.value?.toString()).to.equal('12')
        expect(h.task.status()[0]).to.include({ position: 15, deadLettered: 1, recordsMirrored: 4 })
        await h.task.stop()
      })
    })
  }

  it('logs a partition failure once per incident, with the count when it recovers', async () => {
    const h = harness()
    await h.task.update([{ group: 'g', topic: 't', partition: 0 }])
    const { options } = h.consumer()
    const failure = new FerryError('KAFKA_UNREACHABLE', 'cluster "target" is unreachable', { retriable: true })
    for (let i = 0; i < 20; i++) options.onPartitionError?.('t', 0, failure)
    expect(h.task.status()[0]?.error?.code).to.equal('KAFKA_UNREACHABLE')
    expect(h.lines.filter((l) => l.event === 'worker.partition_retry')).to.have.length(1)
    await h.consumer().handler(batchOf([record(0, 'x')]))
    expect(h.task.status()[0]?.error).to.equal(undefined)
    const recovered = h.lines.filter((l) => l.event === 'worker.recovered')
    expect(recovered).to.have.length(1)
    expect(recovered[0]).to.include({ failures: 20, code: 'KAFKA_UNREACHABLE' })
    await h.task.stop()
  })

  it('clears the error of a restarted task once it is mirroring again, without new records', async () => {
    const h = harness({ group: { delivery: 'exactly-once' } })
    await h.task.update([{ group: 'g', topic: 't', partition: 0 }])
    // A transaction failed (target broker restarted): the task restarts from its checkpoints.
    h.consumer().options.onPartitionError?.('t', 0, new FerryError('KAFKA_UNREACHABLE', 'cluster "target" is unreachable', { retriable: true }))
    expect(h.task.status()[0]?.error?.code).to.equal('KAFKA_UNREACHABLE')
    await until(() => h.consumersStarted() === 2, 'the restarted consumer')
    await until(() => h.task.state() === 'running', 'the task running again')
    expect(h.task.status()[0]).to.include({ state: 'mirroring' })
    expect(h.task.status()[0]?.error).to.equal(undefined)
    await h.task.stop()
  })

  for (const delivery of ['at-least-once', 'exactly-once'] as const) {
    it(`keeps the mirrored count of a partition that moved here, and carries it on in its checkpoints (${delivery})`, async () => {
      const saved = new Map<string, Checkpoint>([['t/0', { offset: 10, mirrored: 500, sourceCluster: 'source', worker: 'w-old', at: new Date().toISOString() }]])
      const h = harness({ saved, group: { delivery } })
      await h.task.update([{ group: 'g', topic: 't', partition: 0 }])
      expect(h.task.status()[0]?.recordsMirrored, 'the previous owners\' count').to.equal(500)
      await h.consumer().handler(batchOf([record(10, 'a'), record(11, 'b'), record(12, 'c')]))
      expect(h.task.status()[0]?.recordsMirrored).to.equal(503)
      if (delivery === 'exactly-once') {
        const marks = h.sent.flat().filter((r) => r.topic === '_ferry.checkpoints')
        expect(marks[marks.length - 1]?.headers?.[0]?.value?.toString(), 'count in the transaction\'s checkpoint').to.equal('503')
      } else {
        await until(() => h.checkpoints.flat().some((c) => c.offset === 13), 'checkpoint 13')
        expect(h.checkpoints.flat().find((c) => c.offset === 13)?.mirrored).to.equal(503)
      }
      await h.task.stop()
    })
  }
})
