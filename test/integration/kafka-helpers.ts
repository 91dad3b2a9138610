/** Kafka helpers for integration tests: read a whole topic, sum its end offsets, produce numbered samples. */
import type { IHeaders } from 'kafkajs'
import { Kafka, logLevel } from '../../common/kafka/kafkajs.js'
import { uniqueName } from './harness.js'

export interface Row {
  partition: number
  offset: number
  key: string | null
  value: string | null
  headers: Record<string, string | string[]>
  timestamp: string
}

export function headersOf(headers: IHeaders | undefined): Record<string, string | string[]> {
  const result: Record<string, string | string[]> = {}
  for (const [name, value] of Object.entries(headers ?? {})) {
    if (Array.isArray(value)) result[name] = value.map((v) => v.toString('base64'))
    else if (value !== undefined) result[name] = Buffer.isBuffer(value) ? value.toString('base64') : Buffer.from(value).toString('base64')
  }
  return result
}

/** Every record of a topic, per partition in offset order, read up to the current end. */
export async function readAll(brokers: string, topic: string): Promise<Map<number, Row[]>> {
  const kafka = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING, clientId: 'ferry-test-reader' })
  const admin = kafka.admin()
  await admin.connect()
  const ends = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  const result = new Map<number, Row[]>()
  const pending = new Map(ends.filter((e) => Number(e.high) > Number(e.low)).map((e) => [e.partition, Number(e.high)]))
  for (const e of ends) result.set(e.partition, [])
  if (pending.size === 0) return result
  const consumer = kafka.consumer({ groupId: uniqueName('ferry-test-reader'), maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`reading ${topic} timed out`)), 60000)
    // Batch ends also cover transaction markers, which never reach eachBatch.
    consumer.on(consumer.events.END_BATCH_PROCESS, (event) => {
      const { partition, lastOffset } = event.payload as { partition: number; lastOffset: string }
      const high = pending.get(partition)
      if (high !== undefined && Number(lastOffset) + 1 >= high) pending.delete(partition)
      if (pending.size === 0) {
        clearTimeout(timer)
        resolve()
      }
    })
    void consumer.run({
      eachBatch: async ({ batch }) => {
        const rows = result.get(batch.partition) ?? []
        for (const m of batch.messages) {
          rows.push({ partition: batch.partition, offset: Number(m.offset), key: m.key?.toString('utf8') ?? null, value: m.value?.toString('utf8') ?? null, headers: headersOf(m.headers), timestamp: m.timestamp })
        }
        result.set(batch.partition, rows)
        const high = pending.get(batch.partition)
        const last = batch.messages[batch.messages.length - 1]
        if (high !== undefined && last && Number(last.offset) + 1 >= high) pending.delete(batch.partition)
        if (pending.size === 0) {
          clearTimeout(timer)
          resolve()
        }
      },
    })
  })
  await consumer.disconnect()
  return result
}

export async function topicEnd(brokers: string, topic: string): Promise<number> {
  const kafka = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  try {
    if (!(await admin.listTopics()).includes(topic)) return 0
    return (await admin.fetchTopicOffsets(topic)).reduce((sum, o) => sum + Number(o.high), 0)
  } finally {
    await admin.disconnect()
  }
}

/** Produces `count` records per call, spread over the partitions, each value naming its partition and sequence. */
export function createSampleProducer(brokers: string, topic: string, partitions: number) {
  const kafka = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING })
  // Idempotent: a send retried across a source broker restart must not write its records twice,
  // or the source would hold more records than were sent (the fault suite counts them). After a
  // failed send a new producer (new producer id): kafkajs would reuse the sequence numbers of
  // records the broker may have written (see worker/target-producer.ts, openLane).
  const open = () => kafka.producer({ allowAutoTopicCreation: false, idempotent: true, maxInFlightRequests: 1 })
  let producer = open()
  const next = new Array<number>(partitions).fill(0)
  const baseTimestamp = Date.now() - 3_600_000
  let connected = false
  return {
    produced: next,
    async send(count: number): Promise<void> {
      if (!connected) {
        await producer.connect()
        connected = true
      }
      const messages = Array.from({ length: count }, (_, i) => {
        const partition = i % partitions
        const seq = next[partition] ?? 0
        next[partition] = seq + 1
        return {
          partition,
          key: `key-${partition}-${seq}`,
          value: `p${partition}-${seq}-${'x'.repeat(seq % 50)}`,
          headers: { 'trace-id': `t-${seq}`, source: Buffer.from([0, 1, 2, seq % 256]) },
          // Recent, explicit timestamps: records older than the topic's retention (7 days) would be deleted by the broker.
          timestamp: String(baseTimestamp + seq),
        }
      })
      try {
        for (let i = 0; i < messages.length; i += 1000) await producer.send({ topic, acks: -1, messages: messages.slice(i, i + 1000) })
      } catch (error) {
        const failed = producer
        producer = open()
        connected = false
        await failed.disconnect().catch(() => undefined)
        throw error
      }
    },
    async close(): Promise<void> {
      if (connected) await producer.disconnect()
    },
  }
}

/** High watermark per partition. */
export async function partitionEnds(brokers: string, topic: string): Promise<Map<number, number>> {
  const admin = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    return new Map((await admin.fetchTopicOffsets(topic)).map((o) => [o.partition, Number(o.high)]))
  } finally {
    await admin.disconnect()
  }
}

export async function createTopic(brokers: string, topic: string, partitions: number): Promise<void> {
  const admin = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: partitions }] })
  await admin.disconnect()
}

export async function addPartitions(brokers: string, topic: string, count: number): Promise<void> {
  const admin = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  await admin.createPartitions({ topicPartitions: [{ topic, count }] })
  await admin.disconnect()
}

/** Checks a mirrored topic against what a sample producer sent: every record present, no gap in order. Returns duplicates. */
export function verifyNothingLost(target: Map<number, Row[]>, produced: readonly number[], label = ''): number {
  let duplicates = 0
  produced.forEach((count, partition) => {
    const seqs = (target.get(partition) ?? []).map((r) => Number((r.value ?? '').split('-')[1]))
    if (new Set(seqs).size !== count) throw new Error(`${label} partition ${partition}: ${new Set(seqs).size} distinct records on the target, ${count} produced`)
    let max = -1
    for (const seq of seqs) {
      if (seq > max + 1) throw new Error(`${label} partition ${partition}: gap before record ${seq} (had up to ${max})`)
      if (seq <= max) duplicates++
      max = Math.max(max, seq)
    }
  })
  return duplicates
}
