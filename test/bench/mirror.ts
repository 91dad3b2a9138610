/**
 * Mirroring benchmark (issue 6): Ferry against Apache Kafka's MirrorMaker 2 (dedicated mode,
 * same Kafka version as the brokers), on one local stack, on the same data, in one run.
 *
 *   W0 limit       Kafka's ProducerPerformance into the target: what this machine can ingest.
 *   W1 throughput  1,000,000 records of 1 KiB (key, one header) pre-loaded in an 8-partition topic,
 *                  read over mutual TLS; time until all are on the target. Ferry with 1 and 2
 *                  workers, MirrorMaker 2 with 1 and 2 tasks, with its defaults and tuned as a
 *                  careful operator would (tunedMirrorMaker). The steady rate (first record to
 *                  last on the target) is the headline, beside start to end. CPU s and peak RSS.
 *   W2 latency     a steady 5,000 records/s for 60 s; end-to-end p50/p99/max (target arrival −
 *                  record timestamp, measured by one reader for both); MirrorMaker 2 tuned.
 *   W3 recovery    two workers (Ferry) / two dedicated nodes (MirrorMaker 2) under 5,000 records/s;
 *                  SIGKILL one; time until all its partitions advance on the target again, and
 *                  records duplicated.
 *
 *   npm run bench:mirror            (BENCH_RECORDS=100000 for a quick run; docs are written only
 *                                    for the full size unless BENCH_WRITE_DOCS=1)
 */
import { randomBytes } from 'node:crypto'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import type { Admin } from 'kafkajs'
import { startLocalStack, type LocalStack } from '../../deploy/local-stack.js'
import { createServer } from 'node:net'
import { createTopic } from '../integration/kafka-helpers.js'
import { writeSection } from '../report-section.js'
import {
  adminFor, createGroup, javaProducerLimit, percentile, preload, procStats, produceSteady, startFerry, startLatencyReader, startMirrorMaker,
  topicCount, topicEnds, type JavaProcess, type ProcStats,
} from './bench-support.js'

const RECORDS = Number(process.env.BENCH_RECORDS ?? 1_000_000)
const VALUE_BYTES = 1024
const PARTITIONS = 8
const STEADY_PER_SEC = 5000
const STEADY_SECONDS = Number(process.env.BENCH_STEADY_SECONDS ?? 60)
const WARM_UP_SECONDS = 15
const RUN_TIMEOUT_MS = 300_000
const W3_WAIT_MS = 90_000

/** BENCH_ONLY=w1,w2 runs only those workloads (the report then covers only them); default all. */
const ONLY = new Set((process.env.BENCH_ONLY ?? 'w0,w1,w2,w3').split(','))
/** BENCH_SYSTEMS=ferry to skip MirrorMaker 2 (e.g. while profiling Ferry). */
const SYSTEMS = new Set((process.env.BENCH_SYSTEMS ?? 'ferry,mm2').split(','))
/**
 * MirrorMaker 2 as a careful operator tunes it for throughput (docs/benchmarks.md says why for each):
 * its target producer batches more and longer (`dst.producer.*`), its source consumer fetches
 * more per poll (`<source alias>.consumer.*`: MM2 reads per-cluster client settings under the
 * cluster's alias). W2 and W3 run the tuned configuration; W3 also commits offsets every 5 s
 * (Connect's default is 60 s, which a restarted task replays).
 */
function tunedMirrorMaker(alias: string): Record<string, string> {
  return {
    'dst.producer.linger.ms': '20',
    'dst.producer.batch.size': '524288',
    'dst.producer.buffer.memory': '134217728',
    [`${alias}.consumer.max.poll.records`]: '4000',
    [`${alias}.consumer.fetch.max.bytes`]: '52428800',
    [`${alias}.consumer.max.partition.fetch.bytes`]: '4194304',
  }
}
const MM2_TUNED_LABEL = 'MirrorMaker 2 tuned'
const MM2_DEFAULT_LABEL = 'MirrorMaker 2 defaults'

/**
 * Node flags for Ferry's processes (bootstrap passes them on to the worker), e.g.
 * BENCH_FERRY_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" (Node refuses --cpu-prof in NODE_OPTIONS).
 */
const FERRY_NODE_ARGS: readonly string[] = (process.env.BENCH_FERRY_NODE_ARGS ?? '').split(' ').filter(Boolean)

const log = (line: string): void => {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`)
}

interface ThroughputRun {
  system: string
  instances: number
  seconds: number
  recordsPerSec: number
  mbPerSec: number
  /** From the first record on the target to the last: throughput without start-up. */
  steadyRecordsPerSec: number
  cpuSecondsPerMillion: number
  peakRssMb: number
}

interface LatencyRun {
  system: string
  records: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

interface RecoveryRun {
  system: string
  resumedAfterMs: number | null
  duplicates: number
  note?: string
}

/** Polls the target until `expected` records are there; returns when the first and the last arrived. */
async function watch(admin: Admin, topic: string, expected: number, startedAt: number, assertAlive: () => void = () => undefined): Promise<{ firstAt: number; doneAt: number }> {
  let firstAt = 0
  for (;;) {
    assertAlive()
    const count = await topicCount(admin, topic)
    const now = Date.now()
    if (count > 0 && firstAt === 0) firstAt = now
    if (count >= expected) return { firstAt, doneAt: now }
    if (now - startedAt > RUN_TIMEOUT_MS) throw new Error(`${topic}: ${count} of ${expected} records after ${RUN_TIMEOUT_MS / 1000} s`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

function throughputRun(system: string, instances: number, startedAt: number, times: { firstAt: number; doneAt: number }, stats: ProcStats[], before: ProcStats[]): ThroughputRun {
  const seconds = (times.doneAt - startedAt) / 1000
  const cpu = stats.reduce((sum, s, i) => sum + s.cpuSeconds - (before[i]?.cpuSeconds ?? 0), 0)
  return {
    system,
    instances,
    seconds: Number(seconds.toFixed(1)),
    recordsPerSec: Math.round(RECORDS / seconds),
    mbPerSec: Number(((RECORDS * VALUE_BYTES) / seconds / 2 ** 20).toFixed(1)),
    steadyRecordsPerSec: Math.round(RECORDS / Math.max(0.001, (times.doneAt - times.firstAt) / 1000)),
    cpuSecondsPerMillion: Number(((cpu * 1_000_000) / RECORDS).toFixed(1)),
    peakRssMb: Math.max(...stats.map((s) => s.peakRssMb)),
  }
}

async function ferryThroughput(stack: LocalStack, admin: Admin, topic: string, workers: number): Promise<ThroughputRun> {
  const ferry = await startFerry(stack, `bench-w1-${workers}-${randomBytes(3).toString('hex')}`, workers, {}, FERRY_NODE_ARGS)
  try {
    const targetTopic = `ferry${workers}.${topic}`
    const before = ferry.workers.map((w) => procStats(w.pid))
    const startedAt = Date.now()
    await createGroup(ferry.url, { name: 'w1', topics: [topic], rename: { prefix: `ferry${workers}.` } })
    const times = await watch(admin, targetTopic, RECORDS, startedAt)
    return throughputRun('Ferry', workers, startedAt, times, ferry.workers.map((w) => procStats(w.pid)), before)
  } finally {
    await ferry.stop()
  }
}

async function mirrorMakerThroughput(stack: LocalStack, admin: Admin, topic: string, tasks: number, tuned: boolean): Promise<ThroughputRun> {
  // Each run has its own source alias: its own target topic, Connect group and internal topics.
  const alias = `mmw1t${tasks}${tuned ? 'tuned' : 'defaults'}`
  const startedAt = Date.now()
  const mm = await startMirrorMaker(stack, `mm2-w1-${tasks}-${tuned ? 'tuned' : 'defaults'}`, alias, topic, tasks, tuned ? tunedMirrorMaker(alias) : {})
  try {
    const times = await watch(admin, `${alias}.${topic}`, RECORDS, startedAt, () => mm.assertAlive())
    return throughputRun(tuned ? MM2_TUNED_LABEL : MM2_DEFAULT_LABEL, tasks, startedAt, times, [procStats(mm.pid)], [{ cpuSeconds: 0, peakRssMb: 0 }])
  } finally {
    await mm.stop()
  }
}

/** Starts the mirror (returns its target topic and a stop), warms it up, then measures a steady stream. */
async function latencyRun(stack: LocalStack, admin: Admin, system: string, start: (topic: string) => Promise<{ targetTopic: string; stop: () => Promise<void> }>): Promise<LatencyRun> {
  const topic = `w2-${system.replace(/\W+/g, '').toLowerCase()}-${randomBytes(3).toString('hex')}`
  await createTopic(stack.source.plaintext, topic, PARTITIONS)
  const mirror = await start(topic)
  try {
    await waitUntilAsync(async () => (await admin.listTopics()).includes(mirror.targetTopic), 120_000, `${system}: target topic ${mirror.targetTopic} created`)
    const reader = await startLatencyReader(stack.target.plaintext, mirror.targetTopic)
    // Warm-up at the measured rate (both JITs compile their hot paths in the first seconds), with
    // the reader reading, before the measured stream starts.
    const warm = await produceSteady(stack.source.plaintext, topic, STEADY_PER_SEC, WARM_UP_SECONDS, VALUE_BYTES, PARTITIONS)
    await waitUntil(() => reader.seen() >= warm, 120_000, `${system}: warm-up records on the target`)
    reader.reset()
    const sent = await produceSteady(stack.source.plaintext, topic, STEADY_PER_SEC, STEADY_SECONDS, VALUE_BYTES, PARTITIONS)
    await waitUntil(() => reader.seen() >= sent, 120_000, `${system}: steady records on the target`)
    const measured = await reader.stop()
    return { system, records: measured.length, p50Ms: percentile(measured, 50), p99Ms: percentile(measured, 99), maxMs: measured[measured.length - 1] ?? NaN }
  } finally {
    await mirror.stop()
  }
}

/**
 * Under a steady stream, SIGKILLs one of the mirror's two instances, then waits until every target
 * partition grows past where it stood a second after the kill: the killed instance's partitions
 * are the ones that wait for a new owner. Duplicates: target records beyond what was produced.
 */
async function recoveryRun(stack: LocalStack, admin: Admin, system: string, start: (topic: string) => Promise<{ targetTopic: string; kill: () => void; stop: () => Promise<void> }>): Promise<RecoveryRun> {
  const topic = `w3-${system.replace(/\W+/g, '').toLowerCase()}-${randomBytes(3).toString('hex')}`
  await createTopic(stack.source.plaintext, topic, PARTITIONS)
  const mirror = await start(topic)
  try {
    const seconds = 45
    const producing = produceSteady(stack.source.plaintext, topic, STEADY_PER_SEC, seconds, VALUE_BYTES, PARTITIONS)
    await waitUntilAsync(async () => (await topicCount(admin, mirror.targetTopic)) > STEADY_PER_SEC * 3, 120_000, `${system}: mirroring under way`)
    await new Promise((resolve) => setTimeout(resolve, 5000))
    mirror.kill()
    const killedAt = Date.now()
    await new Promise((resolve) => setTimeout(resolve, 1000))
    const baseline = await topicEnds(admin, mirror.targetTopic)
    let resumedAfterMs: number | null = null
    while (Date.now() - killedAt < W3_WAIT_MS) {
      const ends = await topicEnds(admin, mirror.targetTopic)
      if ([...baseline].every(([partition, end]) => (ends.get(partition) ?? 0) > end)) {
        resumedAfterMs = Date.now() - killedAt
        break
      }
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    const sent = await producing
    let duplicates = NaN
    let note: string | undefined
    if (resumedAfterMs === null) {
      note = `not resumed within ${W3_WAIT_MS / 1000} s`
    } else {
      await waitUntilAsync(async () => (await topicCount(admin, mirror.targetTopic)) >= sent, 120_000, `${system}: every record on the target after the kill`)
      await new Promise((resolve) => setTimeout(resolve, 3000))
      duplicates = (await topicCount(admin, mirror.targetTopic)) - sent
    }
    return { system, resumedAfterMs, duplicates, ...(note ? { note } : {}) }
  } finally {
    await mirror.stop()
  }
}

async function waitUntilAsync(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

async function waitUntil(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
}

async function main(): Promise<void> {
  log(`records ${RECORDS} × ${VALUE_BYTES} B, ${PARTITIONS} partitions; steady ${STEADY_PER_SEC}/s for ${STEADY_SECONDS} s`)
  const stack = await startLocalStack({ log: (line) => log(`[stack] ${line}`), kafkaHeapMb: 1024 })
  const admin = adminFor(stack.target.plaintext)
  const sourceAdmin = adminFor(stack.source.plaintext)
  const running: JavaProcess[] = []
  const onSignal = (): void => {
    void Promise.all(running.map((p) => p.stop())).finally(() => void stack.stop().finally(() => process.exit(130)))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    await admin.connect()
    await sourceAdmin.connect()

    let limit = { recordsPerSec: NaN, mbPerSec: NaN }
    if (ONLY.has('w0')) {
      log('W0: Kafka ProducerPerformance into the target (the ingest limit)')
      await createTopic(stack.target.plaintext, 'limit', PARTITIONS)
      limit = await javaProducerLimit(stack, 'limit', RECORDS, VALUE_BYTES)
      log(`  ${Math.round(limit.recordsPerSec)} records/s, ${limit.mbPerSec} MB/s`)
    }

    const w1: ThroughputRun[] = []
    if (ONLY.has('w1')) {
      const topic = 'w1'
      await createTopic(stack.source.plaintext, topic, PARTITIONS)
      const loadStart = Date.now()
      await preload(stack.source.plaintext, topic, RECORDS, VALUE_BYTES, PARTITIONS)
      log(`pre-loaded ${await topicCount(sourceAdmin, topic)} records in ${((Date.now() - loadStart) / 1000).toFixed(1)} s`)
      for (const instances of [1, 2]) {
        if (SYSTEMS.has('ferry')) {
          log(`W1: Ferry, ${instances} worker(s)`)
          w1.push(await ferryThroughput(stack, admin, topic, instances))
          log(`  ${JSON.stringify(w1[w1.length - 1])}`)
        }
        if (SYSTEMS.has('mm2')) {
          for (const tuned of [false, true]) {
            log(`W1: MirrorMaker 2 ${tuned ? 'tuned' : 'defaults'}, ${instances} task(s)`)
            w1.push(await mirrorMakerThroughput(stack, admin, topic, instances, tuned))
            log(`  ${JSON.stringify(w1[w1.length - 1])}`)
          }
        }
      }
    }

    const w2: LatencyRun[] = []
    if (ONLY.has('w2') && SYSTEMS.has('ferry')) {
      log('W2: latency at a steady rate, Ferry (2 workers)')
      w2.push(await latencyRun(stack, admin, 'Ferry', async (t) => {
        const ferry = await startFerry(stack, `bench-w2-${randomBytes(3).toString('hex')}`, 2, {}, FERRY_NODE_ARGS)
        await createGroup(ferry.url, { name: 'w2', topics: [t] })
        return { targetTopic: t, stop: () => ferry.stop() }
      }))
      log(`  ${JSON.stringify(w2[w2.length - 1])}`)
    }
    if (ONLY.has('w2') && SYSTEMS.has('mm2')) {
      log('W2: latency at a steady rate, MirrorMaker 2 tuned (2 tasks)')
      w2.push(await latencyRun(stack, admin, MM2_TUNED_LABEL, async (t) => {
        const mm = await startMirrorMaker(stack, 'mm2-w2', 'mmw2', t, 2, tunedMirrorMaker('mmw2'))
        running.push(mm)
        return { targetTopic: `mmw2.${t}`, stop: () => mm.stop() }
      }))
      log(`  ${JSON.stringify(w2[w2.length - 1])}`)
    }

    const w3: RecoveryRun[] = []
    if (ONLY.has('w3') && SYSTEMS.has('ferry')) {
      log('W3: recovery from SIGKILL of one of two instances, Ferry')
      w3.push(await recoveryRun(stack, admin, 'Ferry', async (t) => {
        const ferry = await startFerry(stack, `bench-w3-${randomBytes(3).toString('hex')}`, 2, {}, FERRY_NODE_ARGS)
        await createGroup(ferry.url, { name: 'w3', topics: [t] })
        return { targetTopic: t, kill: () => ferry.workers[0]?.process.kill('SIGKILL'), stop: () => ferry.stop() }
      }))
      log(`  ${JSON.stringify(w3[w3.length - 1])}`)
    }
    if (ONLY.has('w3') && SYSTEMS.has('mm2')) {
      log('W3: recovery from SIGKILL of one of two instances, MirrorMaker 2 tuned (two dedicated nodes)')
      w3.push(await recoveryRun(stack, admin, MM2_TUNED_LABEL, async (t) => {
        const nodes: JavaProcess[] = []
        for (const n of [1, 2]) {
          // Several dedicated nodes need their internal REST endpoint to forward task configs (KIP-710).
          const mm = await startMirrorMaker(stack, `mm2-w3-${n}`, 'mmw3', t, 2, { ...tunedMirrorMaker('mmw3'), 'offset.flush.interval.ms': '5000', 'dedicated.mode.enable.internal.rest': 'true', listeners: `http://127.0.0.1:${await freePort()}` })
          nodes.push(mm)
          running.push(mm)
        }
        return { targetTopic: `mmw3.${t}`, kill: () => nodes[0]?.child.kill('SIGKILL'), stop: async () => void (await Promise.all(nodes.map((n) => n.stop()))) }
      }))
      log(`  ${JSON.stringify(w3[w3.length - 1])}`)
    }

    const results = { date: new Date().toISOString(), machine: machine(stack), records: RECORDS, valueBytes: VALUE_BYTES, partitions: PARTITIONS, limit: { recordsPerSec: Math.round(limit.recordsPerSec), mbPerSec: limit.mbPerSec }, w1, w2, w3 }
    const complete = RECORDS === 1_000_000 && ONLY.size === 4 && SYSTEMS.size === 2
    // A partial run (fewer records, some workloads or systems) never replaces a full run's results.
    const resultsDir = complete ? path.join('bench', 'results') : path.join(os.tmpdir(), 'ferry-bench')
    mkdirSync(resultsDir, { recursive: true })
    const jsonFile = path.join(resultsDir, `mirror-${results.date.slice(0, 10)}${complete ? '' : '-partial'}.json`)
    writeFileSync(jsonFile, JSON.stringify(results, null, 2) + '\n')
    log(`results in ${jsonFile}`)
    if (complete || process.env.BENCH_WRITE_DOCS === '1') writeSection('benchmarks.md', 'Ferry benchmarks', 'Mirroring: Ferry vs MirrorMaker 2 (issue 6)', 'npm run bench:mirror', report(results))
  } finally {
    await Promise.all(running.map((p) => p.stop()))
    await admin.disconnect().catch(() => undefined)
    await sourceAdmin.disconnect().catch(() => undefined)
    await stack.stop()
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => resolve(port))
    })
  })
}

function machine(stack: LocalStack): string {
  const kafka = stack.source.kafkaVersion === stack.target.kafkaVersion ? `Kafka ${stack.target.kafkaVersion}` : `Kafka ${stack.source.kafkaVersion} (source) and ${stack.target.kafkaVersion} (target)`
  return `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${kafka}`
}

function report(r: { machine: string; limit: { recordsPerSec: number; mbPerSec: number }; w1: ThroughputRun[]; w2: LatencyRun[]; w3: RecoveryRun[] }): string {
  const ratio = (a: number, b: number): string => (b > 0 ? (a / b).toFixed(2) : 'n/a')
  const rows = r.w1.map((x) => `| ${x.system} | ${x.instances} | ${x.steadyRecordsPerSec} | ${x.recordsPerSec} | ${x.seconds} | ${x.mbPerSec} | ${x.cpuSecondsPerMillion} | ${x.peakRssMb} |`)
  const pairs = [1, 2].flatMap((n) => {
    const f = r.w1.find((x) => x.system === 'Ferry' && x.instances === n)
    return [MM2_TUNED_LABEL, MM2_DEFAULT_LABEL].map((label) => {
      const m = r.w1.find((x) => x.system === label && x.instances === n)
      return f && m ? `| ${n} | ${label} | ${ratio(f.steadyRecordsPerSec, m.steadyRecordsPerSec)} | ${ratio(f.recordsPerSec, m.recordsPerSec)} | ${ratio(f.cpuSecondsPerMillion, m.cpuSecondsPerMillion)} | ${ratio(f.steadyRecordsPerSec, r.limit.recordsPerSec)} | ${ratio(m.steadyRecordsPerSec, r.limit.recordsPerSec)} |` : ''
    })
  })
  const w2 = r.w2.map((x) => `| ${x.system} | ${x.records} | ${x.p50Ms} | ${x.p99Ms} | ${x.maxMs} |`)
  return [
    `Machine: ${r.machine}. One local stack (single-node KRaft brokers, 1 GiB heap each); the source is read over mutual TLS, the target written in PLAINTEXT.`,
    `MirrorMaker 2 runs in dedicated mode with heartbeats, checkpoints and ACL sync off, once with its other settings at their defaults and once tuned as a careful operator would (${Object.entries(tunedMirrorMaker('<alias>')).map(([k, v]) => `\`${k}=${v}\``).join(', ')}; W3 also \`offset.flush.interval.ms=5000\`); Ferry with its defaults. The headline is the steady rate, first record to last on the target: it leaves out start-up, which a long-running mirror pays once.`,
    '',
    `W0, the limit: Kafka's ProducerPerformance writes ${RECORDS} records of ${VALUE_BYTES} B into the target at ${r.limit.recordsPerSec} records/s (${r.limit.mbPerSec} MB/s).`,
    '',
    `W1, throughput: ${RECORDS} pre-loaded records of ${VALUE_BYTES} B (key, one header) in ${PARTITIONS} partitions; time from starting the mirror until all are on the target.`,
    '',
    '| system | workers / tasks | records/s first→last (steady) | records/s start→end | seconds | MiB/s | CPU s per 1M records | peak RSS MiB |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    '| workers / tasks | against | Ferry ÷ MM2 steady | Ferry ÷ MM2 start→end | Ferry ÷ MM2 CPU per record | Ferry steady ÷ limit | MM2 steady ÷ limit |',
    '|---:|---|---:|---:|---:|---:|---:|',
    ...pairs.filter(Boolean),
    '',
    `W2, latency: ${STEADY_PER_SEC} records/s for ${STEADY_SECONDS} s after ${WARM_UP_SECONDS} s of warm-up at that rate, 2 workers / 2 tasks; arrival on the target minus the record timestamp, as one kafkajs reader sees it.`,
    '',
    '| system | records | p50 ms | p99 ms | max ms |',
    '|---|---:|---:|---:|---:|',
    ...w2,
    '',
    `W3, recovery: ${STEADY_PER_SEC} records/s; one of two Ferry workers (with its bootstrap, so nothing restarts it) or one of two dedicated MirrorMaker 2 nodes is killed with SIGKILL; time until every target partition grows again, and records on the target beyond those produced.`,
    '',
    '| system | resumed after (s) | duplicates | note |',
    '|---|---:|---:|---|',
    ...r.w3.map((x) => `| ${x.system} | ${x.resumedAfterMs === null ? 'not resumed' : (x.resumedAfterMs / 1000).toFixed(1)} | ${Number.isNaN(x.duplicates) ? 'n/a' : x.duplicates} | ${x.note ?? ''} |`),
  ].join('\n')
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`)
  process.exit(1)
})
