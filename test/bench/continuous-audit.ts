/**
 * Continuous audit benchmark: what the incremental audit (controller/continuous-audit.ts) reads
 * per record audited, against re-reading the window on both sides (controller/audit.ts, the
 * on-demand audit). The same records (1 KiB random values, key, timestamp, partition) are written
 * to a "source" topic on the local stack's source cluster and a "target" topic on its target
 * cluster, in rounds; after each round the incremental audit runs once (its state kept through the
 * text Redis would hold), and after the last round the on-demand audit reads the whole window
 * once. Bytes are the record bytes (key, value, headers) the audit's consumers handed over,
 * counted on the port's source consumer; both audits read through the same counting consumer.
 * Writes its section of docs/benchmarks.md.
 *
 *   npm run bench:audit   (BENCH_AUDIT_RECORDS=N, default 1,000,000; BENCH_AUDIT_RUNS=R, default 10)
 */
import { cpus, totalmem } from 'node:os'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { Kafka, logLevel } from 'kafkajs'
import type { ClusterSpec, TopicGroupSpec } from '../../common/config.js'
import { createKafkaAdmin } from '../../common/kafka/admin.js'
import { kafkajsReadClients } from '../../common/kafka/kafkajs-clients.js'
import type { KafkaReadClients } from '../../common/kafka/port.js'
import { silentLogger } from '../../common/logger.js'
import { auditGroup } from '../../controller/audit.js'
import { decodeAuditState, encodeAuditState, portAuditSides, runAudit, type ContinuousAuditState } from '../../controller/continuous-audit.js'
import { startLocalStack } from '../../deploy/local-stack.js'
import { writeSection } from '../report-section.js'

const RECORDS = Number(process.env.BENCH_AUDIT_RECORDS ?? 1_000_000)
const RUNS = Number(process.env.BENCH_AUDIT_RUNS ?? 10)
const VALUE_BYTES = 1024
const PARTITIONS = 4
const TOPIC = 'audit-bench'
const TARGET_TOPIC = `m.${TOPIC}`

const log = (line: string): void => void process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`)

const stack = await startLocalStack({ log: (line) => log(`[stack] ${line}`) })
const stopOnSignal = (): void => void stack.stop().finally(() => process.exit(130))
process.once('SIGINT', stopOnSignal)
process.once('SIGTERM', stopOnSignal)
const logger = silentLogger()
const source = { name: 'src', bootstrapServers: [stack.source.plaintext] } as ClusterSpec
const target = { name: 'dst', bootstrapServers: [stack.target.plaintext] } as ClusterSpec
const admins = { source: createKafkaAdmin(source, { clientId: 'bench-audit', logger }), target: createKafkaAdmin(target, { clientId: 'bench-audit', logger }) }
const group = { name: 'bench', sourceCluster: 'src', targetCluster: 'dst', topics: [TOPIC], rename: { prefix: 'm.' } } as unknown as TopicGroupSpec

/** The port's consumer, counting the records and record bytes it hands over. */
const read = { records: 0, bytes: 0 }
const countingConsumer: KafkaReadClients['sourceConsumer'] = (cluster, options) => {
  const consumer = kafkajsReadClients.sourceConsumer(cluster, options)
  return {
    positions: () => consumer.positions(),
    resumeAt: (topic, partition, offset) => consumer.resumeAt(topic, partition, offset),
    release: (partitions) => consumer.release(partitions),
    start: (starts, handler) =>
      consumer.start(starts, async (batch) => {
        for (const r of batch.records) {
          read.records++
          read.bytes += (r.key?.length ?? 0) + (r.value?.length ?? 0)
          for (const h of r.headers) read.bytes += h.key.length + (h.value?.length ?? 0)
        }
        await handler(batch)
      }),
    stop: () => consumer.stop(),
  }
}

/** Writes the same `count` records (from `first` on) to both topics. */
async function writeBoth(first: number, count: number): Promise<void> {
  const values = Array.from({ length: 64 }, () => randomBytes(VALUE_BYTES))
  const producers = await Promise.all(
    [stack.source.plaintext, stack.target.plaintext].map(async (brokers) => {
      const p = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING, clientId: 'bench-audit-writer' }).producer({ allowAutoTopicCreation: false })
      await p.connect()
      return p
    }),
  )
  const perRequest = 2000
  for (let from = first; from < first + count; from += perRequest * 4) {
    await Promise.all(
      [0, 1, 2, 3].map(async (slot) => {
        const start = from + slot * perRequest
        const end = Math.min(first + count, start + perRequest)
        if (start >= end) return
        const now = String(Date.now())
        const messages = []
        for (let i = start; i < end; i++) messages.push({ partition: i % PARTITIONS, key: `k-${i}`, value: values[i % values.length] as Buffer, timestamp: now })
        await Promise.all([producers[0]?.send({ topic: TOPIC, acks: -1, messages }), producers[1]?.send({ topic: TARGET_TOPIC, acks: -1, messages })])
      }),
    )
  }
  await Promise.all(producers.map((p) => p.disconnect()))
}

try {
  await admins.source.createTopic({ topic: TOPIC, partitions: PARTITIONS })
  await admins.target.createTopic({ topic: TARGET_TOPIC, partitions: PARTITIONS })
  const sides = portAuditSides({ group, source: { cluster: source, admin: admins.source }, target: { cluster: target, admin: admins.target }, sourceConsumer: countingConsumer, logger, readTimeoutMs: 600000 })
  const startMs = Date.now()
  let state: ContinuousAuditState | null = null
  // The first run only sets the audit's start (nothing written yet).
  state = (await runAudit(state, sides, startMs, 10 * 60000)).state
  const perRun = Math.ceil(RECORDS / RUNS)
  const runs: Array<{ records: number; bytes: number; ms: number; stateBytes: number }> = []
  let audited = 0
  let written = 0
  for (let r = 0; r < RUNS; r++) {
    const count = Math.min(perRun, RECORDS - written)
    log(`round ${r + 1}/${RUNS}: writing ${count} records to both sides`)
    await writeBoth(written, count)
    written += count
    read.records = 0
    read.bytes = 0
    const began = performance.now()
    const run = await runAudit(decodeAuditState(encodeAuditState(state)), sides, Date.now(), 10 * 60000)
    const ms = performance.now() - began
    state = run.state
    const found = [...(run.minutes.get('') ?? [])].reduce((acc, m) => ({ source: acc.source + m.source, missing: acc.missing + m.missing, duplicates: acc.duplicates + m.duplicates }), { source: 0, missing: 0, duplicates: 0 })
    if (found.source !== written) throw new Error(`incremental audit counted ${found.source} source records in its open minutes, ${written} written`)
    if (found.missing !== 0 || found.duplicates !== 0) throw new Error(`incremental audit found ${found.missing} missing and ${found.duplicates} duplicates of identical sides`)
    audited += count
    runs.push({ records: read.records, bytes: read.bytes, ms, stateBytes: encodeAuditState(state).length })
    log(`  incremental run: ${read.records} records, ${(read.bytes / 2 ** 20).toFixed(1)} MiB read in ${ms.toFixed(0)} ms; state ${encodeAuditState(state).length} B`)
  }

  log('the window audit: both sides of the whole window, once')
  read.records = 0
  read.bytes = 0
  const began = performance.now()
  const window = await auditGroup({ group, topics: [TOPIC], source: { cluster: source, admin: admins.source }, target: { cluster: target, admin: admins.target }, sourceConsumer: countingConsumer, fromMs: startMs - 60000, toMs: Date.now() + 60000, logger, readTimeoutMs: 600000 })
  const windowMs = performance.now() - began
  const windowRead = { ...read }
  if (window.source !== RECORDS || window.missing !== 0 || window.duplicates !== 0) throw new Error(`window audit: ${JSON.stringify({ source: window.source, missing: window.missing, duplicates: window.duplicates })}`)

  const incremental = runs.reduce((acc, r) => ({ records: acc.records + r.records, bytes: acc.bytes + r.bytes, ms: acc.ms + r.ms }), { records: 0, bytes: 0, ms: 0 })
  const perRecord = (bytes: number): string => (bytes / audited).toFixed(0)
  // Re-reading the window each time: the run after round k reads the k rounds written so far, on both sides.
  const rereadBytes = Array.from({ length: RUNS }, (_, k) => (windowRead.bytes * Math.min(RECORDS, (k + 1) * perRun)) / RECORDS).reduce((a, b) => a + b, 0)
  const cpu = cpus()[0]?.model ?? 'unknown CPU'
  const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(0)
  const section = [
    `${RECORDS.toLocaleString('en')} records of ${VALUE_BYTES} B values (key \`k-<n>\`, no headers, ${PARTITIONS} partitions) written alike to a source topic`,
    `(local stack's source cluster) and a target topic (its target cluster) in ${RUNS} rounds, the continuous audit run once after each round.`,
    `Bytes are the record bytes (key, value, headers) the audit's consumers were handed, counted on the port's consumer.`,
    `Machine: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}; other test stacks were running on it.`,
    '',
    '| audit | records read | MiB read | bytes read per record audited | time (s) |',
    '|---|---:|---:|---:|---:|',
    `| continuous, ${RUNS} runs (each reads what both sides appended since the previous) | ${incremental.records.toLocaleString('en')} | ${mib(incremental.bytes)} | ${perRecord(incremental.bytes)} | ${(incremental.ms / 1000).toFixed(1)} |`,
    `| re-reading the whole window once (on-demand audit, measured) | ${windowRead.records.toLocaleString('en')} | ${mib(windowRead.bytes)} | ${perRecord(windowRead.bytes)} | ${(windowMs / 1000).toFixed(1)} |`,
    `| re-reading the window at each of the ${RUNS} runs (run k reads k rounds; from the measured line above) | ${Math.round((windowRead.records * rereadBytes) / windowRead.bytes).toLocaleString('en')} | ${mib(rereadBytes)} | ${perRecord(rereadBytes)} | |`,
    '',
    `Each record is read once per side by the continuous audit, so its cost is about twice the record's bytes, whatever the`,
    `run count; re-reading a growing window costs ${(rereadBytes / incremental.bytes).toFixed(1)}× that over ${RUNS} runs, and a fixed window of W minutes audited`,
    `every I minutes reads each record W/I times per side. The state kept between runs (offsets, open minutes, identities not yet`,
    `matched) was at most ${Math.max(...runs.map((r) => r.stateBytes)).toLocaleString('en')} B here: both sides were complete, so no identity stayed open.`,
  ].join('\n')
  process.stdout.write(`${section}\n`)
  writeSection('benchmarks.md', 'Ferry benchmarks', 'Continuous audit: bytes read per record audited (issue 17)', 'npm run bench:audit', section)
} finally {
  await admins.source.disconnect()
  await admins.target.disconnect()
  await stack.stop()
}
