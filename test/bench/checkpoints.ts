/**
 * Checkpoint topic benchmark: how long a task start's checkpoint read takes once the topic has
 * seen a lot of checkpoints, with the topic configs Ferry used to set (compaction only, broker
 * default segments of 1 GiB / 7 days) and with CHECKPOINT_TOPIC_CONFIGS (16 MiB / 1 h segments).
 * Both topics get the same checkpoints (exactly-once groups write one per batch); the read is
 * timed after compaction had its chance (min.compaction.lag.ms + the cleaner's back-off).
 * Real target broker from the local stack. Writes its section of docs/benchmarks.md.
 *
 *   npm run bench:checkpoints   (BENCH_CHECKPOINTS=N to change the 1,000,000 written per topic)
 */
import { cpus, totalmem } from 'node:os'
import { performance } from 'node:perf_hooks'
import type { ClusterSpec } from '../../common/config.js'
import { createKafkaAdmin } from '../../common/kafka/admin.js'
import { CHECKPOINT_TOPIC_CONFIGS, checkpointTopicName, createCheckpointStore, type CheckpointStore } from '../../worker/checkpoint-store.js'
import { createTargetProducer, type TargetProducer } from '../../worker/target-producer.js'
import { silentLogger } from '../../common/logger.js'
import { startLocalStack } from '../../deploy/local-stack.js'
import { writeSection } from '../report-section.js'
import { segmentSizes } from './bench-support.js'

const RECORDS = Number(process.env.BENCH_CHECKPOINTS ?? 1_000_000)
const GROUPS = 10
const PARTITIONS = 100
/** Compaction may start min.compaction.lag.ms (60 s) after a segment closes; the cleaner looks every 15 s. */
const COMPACTION_WAIT_MS = 120_000
const READS = 3

const log = (line: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)

/** Bytes of the topic's log segments on the broker's disk (what a read from the start scans). */
const logBytes = (stackDir: string, topic: string): number => segmentSizes(stackDir, topic).reduce((sum, size) => sum + size, 0)

const stack = await startLocalStack({ log: (line) => log(`[stack] ${line}`) })
const stopOnSignal = (): void => void stack.stop().finally(() => process.exit(130))
process.once('SIGINT', stopOnSignal)
process.once('SIGTERM', stopOnSignal)
const logger = silentLogger()
const target = { name: 'dst', bootstrapServers: [stack.target.plaintext] } as ClusterSpec
const admin = createKafkaAdmin(target, { clientId: 'bench-checkpoints', logger })
let producer: TargetProducer | undefined
try {
  producer = await createTargetProducer(target, { clientId: 'bench-checkpoints', logger })
  const variants: Array<{ name: string; store: CheckpointStore }> = []
  for (const [name, configs] of [
    ['compaction only (before)', { 'cleanup.policy': 'compact', 'min.compaction.lag.ms': '60000' }],
    ['CHECKPOINT_TOPIC_CONFIGS', CHECKPOINT_TOPIC_CONFIGS],
  ] as const) {
    const deployment = `bench-${variants.length}-${Date.now()}`
    await admin.createTopic({ topic: checkpointTopicName(deployment), partitions: 1, configs: { ...configs } })
    variants.push({ name, store: createCheckpointStore({ target, admin, deployment, sourceCluster: 'src', worker: 'bench', logger }) })
  }

  log(`writing ${RECORDS.toLocaleString('en')} checkpoints (${GROUPS} groups × ${PARTITIONS} partitions) into each topic`)
  for (let written = 0; written < RECORDS; written += GROUPS * PARTITIONS) {
    const entries = Array.from({ length: PARTITIONS }, (_, partition) => ({ topic: 'orders', partition, offset: written + partition }))
    for (const { store } of variants) await Promise.all(Array.from({ length: GROUPS }, (_, g) => store.write(producer as TargetProducer, `g${g}`, entries)))
  }
  const writtenBytes = variants.map(({ store }) => logBytes(stack.dir, store.topic))
  log(`written; waiting ${COMPACTION_WAIT_MS / 1000} s for compaction`)
  await new Promise((resolve) => setTimeout(resolve, COMPACTION_WAIT_MS))

  const rows: string[] = []
  const medians: number[] = []
  for (const [i, { name, store }] of variants.entries()) {
    const samples: number[] = []
    let found = (await store.read('g3')).size // warm-up: connections, metadata
    for (let r = 0; r < READS; r++) {
      const start = performance.now()
      found = (await store.read('g3')).size
      samples.push(performance.now() - start)
    }
    if (found !== PARTITIONS) throw new Error(`${name}: read ${found} checkpoints of g3, expected ${PARTITIONS}`)
    samples.sort((a, b) => a - b)
    const median = samples[Math.floor(samples.length / 2)] as number
    medians.push(median)
    const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1)
    rows.push(`| ${name} | ${mib(writtenBytes[i] as number)} | ${mib(logBytes(stack.dir, store.topic))} | ${median.toFixed(0)} |`)
  }

  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const section = [
    `${RECORDS.toLocaleString('en')} checkpoints (${GROUPS} groups × ${PARTITIONS} partitions, rewritten over and over) into each of two`,
    'checkpoint topics on the local stack\'s target broker, then a wait of ' + `${COMPACTION_WAIT_MS / 1000} s (compaction lag 60 s, cleaner back-off 15 s); then the read a task start`,
    `makes (one group's checkpoints, the whole topic scanned), median of ${READS} after a warm-up read. Machine: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
    '',
    '| topic configs | log after writing (MiB) | log when read (MiB) | read (ms) |',
    '|---|---:|---:|---:|',
    ...rows,
    '',
    `Read time, before ÷ now: **${((medians[0] as number) / (medians[1] as number)).toFixed(1)}×**. With the broker's default segments nothing is`,
    'compacted until a segment reaches 1 GiB (or 7 days pass), so the read keeps growing with every checkpoint written.',
  ].join('\n')
  process.stdout.write(`${section}\n`)
  writeSection('benchmarks.md', 'Ferry benchmarks', 'Checkpoint topic reads', 'npm run bench:checkpoints', section)
} finally {
  await producer?.close()
  await admin.disconnect()
  await stack.stop()
}
