/**
 * Pieces of the mirror benchmark (test/bench/mirror.ts): process CPU and memory from /proc,
 * target progress from end offsets, a fast pre-loader, MirrorMaker 2 in dedicated mode, a Ferry
 * deployment (controller and workers under bootstrap), and an end-to-end latency reader.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { openSync, closeSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { Redis } from 'ioredis'
import { Kafka, logLevel, type Admin } from 'kafkajs'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import { ensureKafkaJars, kafkaClasspath, type LocalStack } from '../../deploy/local-stack.js'
import { FerryProcess, http, stackSecretFlags, waitFor } from '../integration/harness.js'

const CLOCK_TICKS_PER_SECOND = 100

/** Bytes of each log segment of partition 0 of `topic` under a stack's directory, oldest first (the last is the active one). */
export function segmentSizes(stackDir: string, topic: string): number[] {
  const files: Array<[string, number]> = []
  const visit = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) visit(full)
      else if (entry.name.endsWith('.log') && path.basename(dir) === `${topic}-0`) files.push([entry.name, statSync(full).size])
    }
  }
  visit(stackDir)
  // Segment files are named by their base offset, zero-padded: name order is log order.
  return files.sort(([a], [b]) => a.localeCompare(b)).map(([, size]) => size)
}

export interface ProcStats {
  cpuSeconds: number
  /** Peak resident set size (VmHWM), MiB. */
  peakRssMb: number
}

/** CPU seconds (user + system) and peak RSS of a live process. */
export function procStats(pid: number): ProcStats {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // Fields after the command name (which may hold spaces) start at ")": utime is field 14, stime 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return { cpuSeconds, peakRssMb: Math.round(Number(hwm ?? 0) / 1024) }
}

export function adminFor(brokers: string): Admin {
  return new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING, clientId: 'ferry-bench' }).admin()
}

/** Records in a topic (sum of high − low), 0 while it does not exist. */
export async function topicCount(admin: Admin, topic: string): Promise<number> {
  try {
    const offsets = await admin.fetchTopicOffsets(topic)
    return offsets.reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0)
  } catch {
    return 0
  }
}

export async function topicEnds(admin: Admin, topic: string): Promise<Map<number, number>> {
  const offsets = await admin.fetchTopicOffsets(topic)
  return new Map(offsets.map((o) => [o.partition, Number(o.high)]))
}

/** `count` records of `valueBytes` random bytes, key `k-<n>`, one header, spread over the partitions. */
export async function preload(brokers: string, topic: string, count: number, valueBytes: number, partitions: number): Promise<void> {
  const kafka = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING, clientId: 'ferry-bench-loader' })
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const values = Array.from({ length: 256 }, () => randomBytes(valueBytes))
  const perRequest = 2000
  let next = 0
  const sendOne = async (): Promise<void> => {
    while (next < count) {
      const from = next
      const to = Math.min(count, from + perRequest)
      next = to
      const messages = []
      for (let i = from; i < to; i++) {
        messages.push({ partition: i % partitions, key: `k-${i}`, value: values[i % values.length] as Buffer, headers: { 'bench-seq': String(i) } })
      }
      await producer.send({ topic, acks: -1, messages })
    }
  }
  await Promise.all([sendOne(), sendOne(), sendOne(), sendOne()])
  await producer.disconnect()
}

/** A steady producer: `perSecond` records of `valueBytes`, stamped with the send time, for `seconds`. */
export async function produceSteady(brokers: string, topic: string, perSecond: number, seconds: number, valueBytes: number, partitions: number): Promise<number> {
  const kafka = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING, clientId: 'ferry-bench-steady' })
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const value = randomBytes(valueBytes)
  const tickMs = 20
  const perTick = (perSecond * tickMs) / 1000
  const startedAt = Date.now()
  let sent = 0
  const inFlight = new Set<Promise<unknown>>()
  while (Date.now() - startedAt < seconds * 1000) {
    const due = Math.floor(((Date.now() - startedAt) / 1000) * perSecond)
    const count = Math.min(due - sent, perTick * 5)
    if (count > 0) {
      const now = String(Date.now())
      const messages = Array.from({ length: count }, (_, i) => ({ partition: (sent + i) % partitions, key: `s-${sent + i}`, value, timestamp: now }))
      sent += count
      const p = producer.send({ topic, acks: 1, messages }).finally(() => inFlight.delete(p))
      inFlight.add(p)
    }
    await new Promise((resolve) => setTimeout(resolve, tickMs))
  }
  await Promise.all(inFlight)
  await producer.disconnect()
  return sent
}

/**
 * Reads a target topic and records (arrival − record timestamp) for every record since the last
 * `reset()`; `stop()` returns them sorted, in ms.
 */
export async function startLatencyReader(brokers: string, topic: string): Promise<{ seen: () => number; reset: () => void; stop: () => Promise<number[]> }> {
  const kafka = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING, clientId: 'ferry-bench-latency' })
  const consumer = kafka.consumer({ groupId: `ferry-bench-latency-${randomBytes(4).toString('hex')}`, maxWaitTimeInMs: 50, allowAutoTopicCreation: true })
  let latencies: number[] = []
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 8,
    eachBatch: async ({ batch }) => {
      const now = Date.now()
      for (const m of batch.messages) latencies.push(now - Number(m.timestamp))
    },
  })
  return {
    seen: () => latencies.length,
    reset: () => {
      latencies = []
    },
    async stop() {
      await consumer.disconnect()
      return latencies.sort((a, b) => a - b)
    },
  }
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number
}

// ---------------------------------------------------------------------------------------------
// MirrorMaker 2
// ---------------------------------------------------------------------------------------------

export interface JavaProcess {
  readonly pid: number
  /** Fails with the tail of its log once the process has exited. */
  assertAlive(): void
  readonly child: ChildProcess
  stop(): Promise<void>
}

function spawnJava(dir: string, name: string, heapMb: number, classpath: string, mainClass: string, args: string[]): JavaProcess {
  const log = openSync(path.join(dir, `${name}.log`), 'a')
  const log4j = path.join(dir, 'bench-log4j.properties')
  writeFileSync(log4j, 'log4j.rootLogger=WARN, stdout\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n')
  const child = spawn('java', [`-Xmx${heapMb}m`, '-XX:+ExitOnOutOfMemoryError', `-Dlog4j.configuration=file:${log4j}`, '-cp', classpath, mainClass, ...args], { stdio: ['ignore', log, log] })
  closeSync(log)
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    pid: child.pid as number,
    child,
    assertAlive() {
      if (child.exitCode === null && child.signalCode === null) return
      throw new Error(`${name} exited (${child.exitCode ?? child.signalCode}):\n${readFileSync(path.join(dir, `${name}.log`), 'utf8').slice(-3000)}`)
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 15000)
      await exited
      clearTimeout(timer)
    },
  }
}

let classpathCache: string | undefined
async function classpath(): Promise<string> {
  classpathCache ??= await kafkaClasspath(await ensureKafkaJars(() => undefined))
  return classpathCache
}

/** A PEM keystore for Java clients: the client's PKCS#8 key followed by its certificate. */
function clientKeystore(stack: LocalStack): string {
  const file = path.join(stack.dir, 'bench-client-keystore.pem')
  writeFileSync(file, readFileSync(stack.source.clientKeyFile, 'utf8') + readFileSync(stack.source.clientCertFile, 'utf8'), { mode: 0o600 })
  return file
}

/**
 * MirrorMaker 2 in dedicated mode (`connect-mirror-maker`), mirroring `topic` from the source's
 * mutual-TLS listener to the target as `<alias>.<topic>`, with `tasks` tasks. The source alias
 * also names MirrorMaker's Connect group and internal topics, so each alias starts afresh. Heartbeats, checkpoints
 * and ACL sync off (Ferry does none of those either); everything else at its defaults.
 */
export async function startMirrorMaker(stack: LocalStack, name: string, alias: string, topic: string, tasks: number, extra: Record<string, string> = {}): Promise<JavaProcess> {
  const src = alias
  const config: Record<string, string> = {
    clusters: `${src}, dst`,
    [`${src}.bootstrap.servers`]: stack.source.ssl,
    [`${src}.security.protocol`]: 'SSL',
    [`${src}.ssl.keystore.type`]: 'PEM',
    [`${src}.ssl.keystore.location`]: clientKeystore(stack),
    [`${src}.ssl.truststore.type`]: 'PEM',
    [`${src}.ssl.truststore.location`]: stack.source.caFile,
    'dst.bootstrap.servers': stack.target.plaintext,
    [`${src}->dst.enabled`]: 'true',
    [`${src}->dst.topics`]: topic,
    [`dst->${src}.enabled`]: 'false',
    'tasks.max': String(tasks),
    'emit.heartbeats.enabled': 'false',
    'emit.checkpoints.enabled': 'false',
    'sync.group.offsets.enabled': 'false',
    'sync.topic.acls.enabled': 'false',
    'refresh.topics.interval.seconds': '5',
    'replication.factor': '1',
    'checkpoints.topic.replication.factor': '1',
    'heartbeats.topic.replication.factor': '1',
    'offset-syncs.topic.replication.factor': '1',
    'offset.storage.replication.factor': '1',
    'status.storage.replication.factor': '1',
    'config.storage.replication.factor': '1',
    ...extra,
  }
  const file = path.join(stack.dir, `${name}.properties`)
  writeFileSync(file, Object.entries(config).map(([k, v]) => `${k} = ${v}`).join('\n') + '\n')
  return spawnJava(stack.dir, name, 1024, await classpath(), 'org.apache.kafka.connect.mirror.MirrorMaker', [file, '--clusters', 'dst'])
}

/** Kafka's own producer performance tool against the target: the ingest limit of this machine. */
export async function javaProducerLimit(stack: LocalStack, topic: string, records: number, recordBytes: number): Promise<{ recordsPerSec: number; mbPerSec: number; output: string }> {
  const proc = spawnJava(stack.dir, `perf-${topic}`, 1024, await classpath(), 'org.apache.kafka.tools.ProducerPerformance', [
    '--topic', topic, '--num-records', String(records), '--record-size', String(recordBytes), '--throughput', '-1',
    '--producer-props', `bootstrap.servers=${stack.target.plaintext}`, 'acks=all',
  ])
  await new Promise<void>((resolve) => proc.child.once('exit', () => resolve()))
  const output = readFileSync(path.join(stack.dir, `perf-${topic}.log`), 'utf8')
  const summary = /(\d+) records sent, ([\d.]+) records\/sec \(([\d.]+) MB\/sec\)/.exec(output.split('\n').filter((l) => l.includes('records sent')).pop() ?? '')
  if (!summary) throw new Error(`ProducerPerformance printed no summary:\n${output.slice(-2000)}`)
  return { recordsPerSec: Number(summary[2]), mbPerSec: Number(summary[3]), output }
}

// ---------------------------------------------------------------------------------------------
// Ferry
// ---------------------------------------------------------------------------------------------

export interface FerryDeployment {
  url: string
  /** Worker ids and the pids of their worker processes (the bootstrap's children). */
  workers: Array<{ id: string; pid: number; process: FerryProcess }>
  redis: Redis
  stop(): Promise<void>
}

/** One controller and `workers` workers, each under bootstrap, with clusters `src` (mTLS) and `dst` registered. */
export async function startFerry(stack: LocalStack, deployment: string, workerCount: number, env: NodeJS.ProcessEnv = {}, nodeArgs: readonly string[] = []): Promise<FerryDeployment> {
  const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '3000', '--rebalance-debounce-ms', '500', ...stackSecretFlags(stack)]
  const procs: FerryProcess[] = [new FerryProcess(`bench-${deployment}-c1`, ['bootstrap', '--role', 'controller', '--id', 'c1', '--port', '0', ...common], env, nodeArgs)]
  for (let i = 1; i <= workerCount; i++) procs.push(new FerryProcess(`bench-${deployment}-w${i}`, ['bootstrap', '--role', 'worker', '--id', `w${i}`, ...common], env, nodeArgs))
  const redis = new Redis(stack.redis.url, { maxRetriesPerRequest: 2 })
  const keys = createKeys(deployment)
  const stop = async (): Promise<void> => {
    await Promise.all(procs.map((p) => p.stop(20000)))
    redis.disconnect()
  }
  try {
    const instances = await waitFor('Ferry instances registered', async () => {
      const list = await listInstances(redis, keys)
      const ready = list.filter((i) => (i.role === 'controller' ? i.url : (i.metrics as { childPid?: number } | null)?.childPid))
      return ready.length === workerCount + 1 ? list : undefined
    }, 60000)
    const url = instances.find((i) => i.role === 'controller')?.url as string
    await waitFor('the controller to lead', async () => (await http('GET', `${url}/readyz`).catch(() => undefined))?.body?.isLeader === true, 30000)
    for (const cluster of [
      { name: 'src', bootstrapServers: [stack.source.ssl], securityProtocol: 'SSL', tls: { caFile: stack.source.caFile, certFile: stack.source.clientCertFile, keyFile: stack.source.clientKeyFile } },
      { name: 'dst', bootstrapServers: [stack.target.plaintext] },
    ]) {
      const res = await http('POST', `${url}/v1/clusters`, cluster)
      if (res.status !== 201) throw new Error(`register cluster ${cluster.name}: ${res.status} ${res.text}`)
    }
    const workers = instances
      .filter((i) => i.role === 'worker')
      .map((i) => ({ id: i.id, pid: (i.metrics as { childPid: number }).childPid, process: procs.find((p) => p.name.endsWith(`-${i.id}`)) as FerryProcess }))
      .sort((a, b) => a.id.localeCompare(b.id))
    return { url, workers, redis, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

export async function createGroup(url: string, body: Record<string, unknown>): Promise<void> {
  const res = await http('POST', `${url}/v1/groups`, { sourceCluster: 'src', targetCluster: 'dst', startPosition: 'earliest', ...body })
  if (res.status !== 201) throw new Error(`create group: ${res.status} ${res.text}`)
}
