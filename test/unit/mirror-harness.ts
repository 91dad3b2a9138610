/**
 * A unit harness for the mirror task: a fake source cluster (partition logs, retention, a
 * consumer that behaves like worker's source consumer: one batch per partition at a time, a
 * failed batch pauses its partition until `resumeAt`, a stopped consumer waits for the batches in
 * flight and reports none of their failures) and a fake target cluster (partition logs, the
 * checkpoint topic, transactions that land whole or not at all, fencing by transactional id,
 * faults injected per send, a gate that holds sends in flight). Several tasks (workers) can share
 * one world, so a partition can move from one to another.
 *
 * @example
 *   const world = createWorld()
 *   world.source.append('t', 0, 50)
 *   const a = world.task('w1', { delivery: 'exactly-once' })
 *   await a.task.update([{ group: 'g', topic: 't', partition: 0 }])
 *   await world.until(() => world.target.values('t', 0).length === 50, 'all records mirrored')
 */
import { Registry } from 'prom-client'
import { parseTopicGroup, type ClusterSpec } from '../../common/config.js'
import { FerryError } from '../../common/errors.js'
import type { KafkaAdmin, PartitionOffsets } from '../../common/kafka/admin.js'
import type { Checkpoint, CheckpointStore } from '../../worker/checkpoint-store.js'
import { PartialBatchError, type PartitionStart, type SourceBatch, type SourceConsumer, type SourceConsumerOptions, type SourceRecord } from '../../common/kafka/source-consumer.js'
import type { TargetProducer, TargetRecord } from '../../worker/target-producer.js'
import type { TransactionalProducer } from '../../worker/transactional-producer.js'
import { createMirrorMetrics, createMirrorTask, type MirrorTask } from '../../worker/mirror-task.js'
import { partitionKey } from '../../common/worker-report.js'
import { captureLogs } from '../log-capture.js'

export const CHECKPOINT_TOPIC = '_ferry.d.checkpoints'
const dataRecords = (records: readonly TargetRecord[]): boolean => records.some((r) => r.topic !== CHECKPOINT_TOPIC)
const cluster = (name: string): ClusterSpec => ({ name, bootstrapServers: ['127.0.0.1:9'], securityProtocol: 'PLAINTEXT' }) as ClusterSpec

export async function until(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** A fault the fake target raises once for a send that matches. */
export interface TargetFault {
  /** Which sends it hits; default any send with a record outside the checkpoint topic. */
  when?: (records: readonly TargetRecord[]) => boolean
  error: () => unknown
  /** At-least-once sends only: this many leading records are written before the error. */
  acknowledged?: number
}

export class FakeSource {
  readonly logs = new Map<string, SourceRecord[]>()
  readonly lowOffsets = new Map<string, number>()
  private readonly log = (topic: string, partition: number): SourceRecord[] => {
    const key = partitionKey({ topic, partition })
    let log = this.logs.get(key)
    if (log === undefined) this.logs.set(key, (log = []))
    return log
  }

  /** Appends `count` records (value `topic-partition-offset`, a header with a null value). */
  append(topic: string, partition: number, count: number): void {
    const log = this.log(topic, partition)
    for (let i = 0; i < count; i++) {
      const offset = log.length
      log.push({ offset, key: Buffer.from(`k${offset}`), value: Buffer.from(`${topic}-${partition}-${offset}`), headers: [{ key: 'h', value: null }, { key: 'h', value: Buffer.from('2') }], timestamp: String(Date.now()) })
    }
  }

  /** Appends one record with these headers (value `topic-partition-offset`). */
  appendWithHeaders(topic: string, partition: number, headers: SourceRecord['headers']): void {
    const log = this.log(topic, partition)
    const offset = log.length
    log.push({ offset, key: Buffer.from(`k${offset}`), value: Buffer.from(`${topic}-${partition}-${offset}`), headers, timestamp: String(Date.now()) })
  }

  high(topic: string, partition: number): number {
    return this.log(topic, partition).length
  }

  low(topic: string, partition: number): number {
    return this.lowOffsets.get(partitionKey({ topic, partition })) ?? 0
  }

  read(topic: string, partition: number, from: number, max: number): SourceRecord[] {
    return this.log(topic, partition).slice(Math.max(from, this.low(topic, partition)), from + max)
  }

  offsets(topic: string): PartitionOffsets[] {
    return [...this.logs.keys()]
      .filter((key) => key.slice(0, key.lastIndexOf('/')) === topic)
      .map((key) => Number(key.slice(key.lastIndexOf('/') + 1)))
      .sort((a, b) => a - b)
      .map((partition) => ({ partition, low: this.low(topic, partition), stable: this.high(topic, partition), high: this.high(topic, partition) }))
  }
}

export class FakeTarget {
  readonly logs = new Map<string, TargetRecord[]>()
  readonly faults: TargetFault[] = []
  readonly createdTopics: string[] = []
  /** Current epoch per transactional id: a producer of an older epoch is fenced. */
  readonly epochs = new Map<string, number>()
  private gate: { open: Promise<void>; holds: (records: readonly TargetRecord[]) => boolean } | undefined
  /** Sends waiting at the gate. */
  held = 0

  /** Holds sends (default: those with a record outside the checkpoint topic) until the returned function is called. */
  hold(holds: (records: readonly TargetRecord[]) => boolean = dataRecords): () => void {
    let release!: () => void
    this.gate = { open: new Promise((resolve) => (release = resolve)), holds }
    return () => {
      this.gate = undefined
      release()
    }
  }

  records(topic: string, partition = 0): TargetRecord[] {
    return this.logs.get(partitionKey({ topic, partition })) ?? []
  }

  values(topic: string, partition = 0): string[] {
    return this.records(topic, partition).map((r) => String(r.value))
  }

  /** The newest checkpoint of each source partition of `group`, as the checkpoint store reads it. */
  checkpoints(group: string): Map<string, Checkpoint> {
    const result = new Map<string, Checkpoint>()
    for (const r of this.records(CHECKPOINT_TOPIC)) {
      const key = String(r.key)
      if (key.startsWith(`${group}/`)) result.set(key.slice(group.length + 1), JSON.parse(String(r.value)) as Checkpoint)
    }
    return result
  }

  /** Writes records[0, n) and throws, or writes all, after the gate and any matching fault. */
  async write(records: readonly TargetRecord[], atomic: boolean): Promise<void> {
    while (this.gate?.holds(records)) {
      this.held++
      await this.gate.open.finally(() => this.held--)
    }
    const index = this.faults.findIndex((f) => (f.when ?? dataRecords)(records))
    const fault = this.faults[index]
    if (fault !== undefined) {
      this.faults.splice(index, 1)
      const error = fault.error()
      if (!atomic && fault.acknowledged !== undefined) this.append(records.slice(0, fault.acknowledged))
      throw error
    }
    this.append(records)
  }

  private append(records: readonly TargetRecord[]): void {
    for (const r of records) {
      const key = partitionKey({ topic: r.topic, partition: r.partition ?? 0 })
      this.logs.set(key, [...(this.logs.get(key) ?? []), r])
    }
  }
}

/** Behaves as common/kafka/source-consumer.ts does for the task (see the file comment). */
class FakeConsumer implements SourceConsumer {
  readonly positionMap = new Map<string, number>()
  readonly paused = new Set<string>()
  readonly released = new Set<string>()
  readonly inFlight = new Map<string, Promise<void>>()
  stopped = false
  started = false
  private handler: ((batch: SourceBatch) => Promise<void>) | undefined

  constructor(
    private readonly source: FakeSource,
    readonly options: SourceConsumerOptions,
    private readonly batchSize: () => number,
  ) {}

  start(partitions: readonly PartitionStart[], handler: (batch: SourceBatch) => Promise<void>): Promise<void> {
    for (const p of partitions) this.positionMap.set(partitionKey(p), p.offset)
    this.handler = handler
    this.started = true
    return Promise.resolve()
  }

  positions(): ReadonlyMap<string, number> {
    return this.positionMap
  }

  resumeAt(topic: string, partition: number, offset: number): boolean {
    if (this.released.has(partitionKey({ topic, partition }))) return true
    if (this.stopped) return false
    this.positionMap.set(partitionKey({ topic, partition }), offset)
    this.paused.delete(partitionKey({ topic, partition }))
    return true
  }

  async release(partitions: ReadonlyArray<{ topic: string; partition: number }>): Promise<void> {
    const keys = partitions.map((p) => partitionKey(p))
    for (const key of keys) this.released.add(key)
    await Promise.all(keys.map((key) => this.inFlight.get(key)))
    for (const key of keys) this.positionMap.delete(key)
  }

  /** The partitions it still reads (started, not released). */
  reading(): string[] {
    return [...this.positionMap.keys()].filter((key) => !this.released.has(key)).sort()
  }

  async stop(): Promise<void> {
    this.stopped = true
    await Promise.all(this.inFlight.values())
  }

  /** Hands every partition with records past its position (not paused, none in flight) its next batch. */
  poll(): void {
    if (!this.started || this.stopped || this.handler === undefined) return
    for (const [key, position] of this.positionMap) {
      if (this.paused.has(key) || this.inFlight.has(key) || this.released.has(key)) continue
      const slash = key.lastIndexOf('/')
      const topic = key.slice(0, slash)
      const partition = Number(key.slice(slash + 1))
      const records = this.source.read(topic, partition, position, this.batchSize())
      const last = records[records.length - 1]
      if (last === undefined) continue
      const handled = this.handler({ topic, partition, highWatermark: this.source.high(topic, partition), records }).then(
        () => {
          this.positionMap.set(key, last.offset + 1)
        },
        (error: unknown) => {
          if (this.stopped || this.released.has(key)) return
          this.paused.add(key)
          if (error instanceof PartialBatchError) {
            this.positionMap.set(key, error.resumeOffset)
            this.options.onPartitionError?.(topic, partition, error.reason)
          } else {
            this.options.onPartitionError?.(topic, partition, error)
          }
        },
      )
      const tracked = handled.finally(() => this.inFlight.delete(key))
      this.inFlight.set(key, tracked)
    }
  }
}

export interface WorkerHandle {
  task: MirrorTask
  lines: Array<Record<string, unknown>>
  /** Consumers this task opened, oldest first. */
  consumers: FakeConsumer[]
  /** Transactional producers this task opened, by id (the newest per id). */
  transactionalIds: string[]
  registry: Registry
}

export interface World {
  source: FakeSource
  target: FakeTarget
  /** Records per fetched batch; default 10. */
  batchSize: number
  /** While true, checkpoint reads wait until their start is cancelled (an open transaction holds them). */
  blockCheckpointReads: boolean
  /** The signal of every checkpoint read, in order. */
  checkpointReads: AbortSignal[]
  /** A mirror task of group `g` (topic `t`, deployment `d`) on worker `worker`; polled every 2 ms until stopped. */
  task(worker: string, group?: Record<string, unknown>): WorkerHandle
  until(condition: () => boolean, what: string, timeoutMs?: number): Promise<void>
  /** Stops every task and the polling. */
  close(): Promise<void>
}

export function createWorld(): World {
  const source = new FakeSource()
  const target = new FakeTarget()
  const handles: WorkerHandle[] = []
  const timer = setInterval(() => {
    for (const h of handles) for (const c of h.consumers) c.poll()
  }, 2)
  const sourceAdmin = {
    clusterId: async () => 'source-cluster-id',
    partitionCounts: async (topics: readonly string[]) => new Map(topics.flatMap((t) => (source.offsets(t).length > 0 ? [[t, source.offsets(t).length] as const] : []))),
    offsets: async (topic: string) => source.offsets(topic),
    topicConfigs: async () => ({ 'cleanup.policy': 'delete' }),
  } as unknown as KafkaAdmin
  const targetAdmin = {
    clusterId: async () => 'target-cluster-id',
    partitionCounts: async (topics: readonly string[]) => new Map(topics.flatMap((t) => (target.createdTopics.includes(t) ? [[t, 8] as const] : []))),
    createTopic: async ({ topic }: { topic: string }) => {
      if (target.createdTopics.includes(topic)) return false
      target.createdTopics.push(topic)
      return true
    },
    expandTopic: async () => undefined,
  } as unknown as KafkaAdmin

  const world: World = {
    source,
    target,
    batchSize: 10,
    blockCheckpointReads: false,
    checkpointReads: [],
    until,
    task(worker, groupFields = {}) {
      const { logger, lines } = captureLogs('debug')
      const registry = new Registry()
      const consumers: FakeConsumer[] = []
      const transactionalIds: string[] = []
      const producer: TargetProducer = {
        send: (records) => target.write(records, false),
        acknowledgedEnd: (topic, partition) => target.records(topic, partition).length || undefined,
        close: async () => undefined,
      }
      const checkpoints: CheckpointStore = {
        topic: CHECKPOINT_TOPIC,
        ensureTopic: async () => undefined,
        read: (group, signal) => {
          if (signal) world.checkpointReads.push(signal)
          if (!world.blockCheckpointReads) return Promise.resolve(target.checkpoints(group))
          return new Promise((_resolve, reject) => signal?.addEventListener('abort', () => reject(new FerryError('UNAVAILABLE', 'reading checkpoints was cancelled'))))
        },
        write: async (p, group, entries) => {
          await p.send(entries.map((e) => checkpoints.record(group, e)))
        },
        record: (group, e) => ({ topic: CHECKPOINT_TOPIC, key: `${group}/${e.topic}/${e.partition}`, value: JSON.stringify({ offset: e.offset, ...(e.mirrored === undefined ? {} : { mirrored: e.mirrored }), sourceCluster: 'source', worker, at: new Date().toISOString() }) }),
      }
      const createTransactional = async (transactionalId: string): Promise<TransactionalProducer> => {
        transactionalIds.push(transactionalId)
        let epoch = -1
        const live = (): void => {
          if (target.epochs.get(transactionalId) !== epoch) throw new FerryError('FENCED', `cluster "target": this transactional producer was fenced by a newer owner of the partition`, { retriable: false })
        }
        return {
          transactionalId,
          fence: async () => {
            epoch = (target.epochs.get(transactionalId) ?? 0) + 1
            target.epochs.set(transactionalId, epoch)
          },
          sendAtomically: async (records) => {
            live()
            await target.write(records, true)
            live()
          },
          acknowledgedEnd: (topic, partition) => target.records(topic, partition).length || undefined,
          close: async () => undefined,
        }
      }
      const group = parseTopicGroup({ name: 'g', sourceCluster: 'source', targetCluster: 'target', topics: ['t'], ...groupFields })
      const task = createMirrorTask({
        deployment: 'd',
        worker,
        group,
        source: cluster('source'),
        target: cluster('target'),
        sourceAdmin,
        targetAdmin,
        producer,
        checkpoints,
        logger,
        metrics: createMirrorMetrics(registry),
        baseline: async () => null,
        createTransactional,
        checkpointIntervalMs: 10,
        minRetryMs: 10,
        maxRetryMs: 40,
        createConsumer: (_cluster, options) => {
          const consumer = new FakeConsumer(source, options, () => world.batchSize)
          consumers.push(consumer)
          return consumer
        },
      })
      const handle: WorkerHandle = { task, lines, consumers, transactionalIds, registry }
      handles.push(handle)
      return handle
    },
    async close() {
      await Promise.all(handles.map((h) => h.task.stop()))
      clearInterval(timer)
    },
  }
  return world
}

/**
 * A fresh world for each test of the calling mocha suite, closed after it; read it through the
 * returned function.
 */
export function worldPerTest(): () => World {
  let world: World | undefined
  beforeEach(() => {
    world = createWorld()
  })
  afterEach(async () => {
    await world?.close()
  })
  return () => {
    if (world === undefined) throw new Error('no world outside a test')
    return world
  }
}

/** The offsets in the values of a target partition's records (`topic-partition-offset`). */
export function offsetsOf(values: readonly string[]): number[] {
  return values.map((v) => Number(v.slice(v.lastIndexOf('-') + 1)))
}
