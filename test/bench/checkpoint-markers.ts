/**
 * Experiment behind the checkpoint topic's `delete.retention.ms`: exactly-once commits leave a
 * transaction marker per commit, and compaction keeps markers for delete.retention.ms after their
 * records are gone. Two compacted topics (512 KiB segments so they roll within minutes) get the
 * same stream of one-record transactions over 100 keys for 4 minutes; one keeps markers the
 * default 24 h, the other 5 s. Prints the size of the closed (compactable) segments every 30 s.
 * Real target broker from the local stack; prints only (see docs/design-notes.md, Checkpoints).
 *
 *   npm run -s build && node dist/test/bench/checkpoint-markers.js
 */
import type { Producer } from 'kafkajs'
import type { ClusterSpec } from '../../common/config.js'
import { createKafkaAdmin } from '../../common/kafka/admin.js'
import { Kafka, logLevel } from '../../common/kafka/kafkajs.js'
import { silentLogger } from '../../common/logger.js'
import { startLocalStack } from '../../deploy/local-stack.js'
import { segmentSizes } from './bench-support.js'

const TOPICS = { '24 h (default)': 'markers-24h', '5 s': 'markers-5s' } as const
const MINUTES = 4

const stack = await startLocalStack({ log: () => undefined })
process.once('SIGINT', () => void stack.stop().finally(() => process.exit(130)))

/** Closed segments' bytes and count of partition 0. */
function segments(topic: string): string {
  const closed = segmentSizes(stack.dir, topic).slice(0, -1)
  return `${(closed.reduce((sum, size) => sum + size, 0) / 1024).toFixed(0)} KiB in ${closed.length} closed segments`
}

const admin = createKafkaAdmin({ name: 'dst', bootstrapServers: [stack.target.plaintext] } as ClusterSpec, { clientId: 'markers', logger: silentLogger() })
const producers: Producer[] = []
try {
  const base = { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '0', 'segment.bytes': String(512 * 1024), 'min.cleanable.dirty.ratio': '0.1' }
  await admin.createTopic({ topic: TOPICS['24 h (default)'], partitions: 1, configs: base })
  await admin.createTopic({ topic: TOPICS['5 s'], partitions: 1, configs: { ...base, 'delete.retention.ms': '5000' } })
  const kafka = new Kafka({ brokers: [stack.target.plaintext], logLevel: logLevel.NOTHING })
  for (let i = 0; i < 10; i++) {
    const producer = kafka.producer({ transactionalId: `markers-${i}`, idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    producers.push(producer)
  }
  let writing = true
  let commits = 0
  const written = Promise.all(
    producers.map(async (producer, i) => {
      for (let n = 0; writing; n++) {
        const txn = await producer.transaction()
        const message = { key: `k${i}-${n % 10}`, value: JSON.stringify({ offset: n, sourceCluster: 'src', worker: 'w', at: new Date().toISOString() }) }
        for (const topic of Object.values(TOPICS)) await txn.send({ topic, messages: [message] })
        await txn.commit()
        commits++
      }
    }),
  )
  for (let s = 30; s <= MINUTES * 60; s += 30) {
    await new Promise((resolve) => setTimeout(resolve, 30000))
    process.stdout.write(`t+${s}s, ${commits} commits: ${Object.entries(TOPICS).map(([name, topic]) => `markers kept ${name}: ${segments(topic)}`).join('; ')}\n`)
  }
  writing = false
  await written
} finally {
  await Promise.all(producers.map((p) => p.disconnect()))
  await admin.disconnect()
  await stack.stop()
}
