/**
 * `npm run demo`: Ferry's main job on a local default stack. Starts ZooKeeper, Redis and two
 * Kafka clusters, one controller and two workers (each under bootstrap), registers the
 * clusters and a topic group over REST, produces sample data (keys, headers, several
 * partitions) into the source, and prints what was mirrored where. The source is read over
 * mutual TLS. Ctrl-C stops everything; with --exit (or CI=true) it stops by itself at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, openSync, closeSync } from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { SingleBar } from 'cli-progress'
import { Redis } from 'ioredis'
import { Kafka, logLevel } from '../common/kafka/kafkajs.js'
import { createKeys } from '../common/keys.js'
import { listInstances } from '../common/registry.js'
import { startLocalStack, type LocalStack } from './local-stack.js'

const CLI = fileURLToPath(new URL('../cli/main.js', import.meta.url))
const DEPLOYMENT = 'demo'
const TOPICS: Record<string, number> = { 'demo.orders': 6, 'demo.clicks': 3 }
const RECORDS_PER_TOPIC = 5000

const say = (line: string): void => {
  process.stdout.write(`${line}\n`)
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
}

async function rest(method: string, url: string, body?: unknown): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const response = await fetch(url, { method, headers: { 'content-type': 'application/json' }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  const text = await response.text()
  const parsed: unknown = text ? JSON.parse(text) : undefined
  if (!response.ok) throw new Error(`${method} ${url} → ${response.status}: ${text}`)
  return parsed
}

async function topicEnds(brokers: string, topics: readonly string[]): Promise<Map<string, number[]>> {
  const admin = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    const existing = new Set(await admin.listTopics())
    const result = new Map<string, number[]>()
    for (const topic of topics) {
      if (!existing.has(topic)) continue
      const offsets = (await admin.fetchTopicOffsets(topic)).sort((a, b) => a.partition - b.partition)
      result.set(topic, offsets.map((o) => Number(o.high)))
    }
    return result
  } finally {
    await admin.disconnect()
  }
}

async function main(): Promise<void> {
  const exitAtEnd = process.argv.includes('--exit') || process.env.CI === 'true' || !process.stdin.isTTY
  const children: ChildProcess[] = []
  let stack: LocalStack | undefined
  let redis: Redis | undefined
  let stopping = false
  const stopAll = async (code: number): Promise<never> => {
    if (!stopping) {
      stopping = true
      say('\nStopping Ferry processes and the local stack...')
      for (const child of children) if (child.exitCode === null) child.kill('SIGTERM')
      await Promise.all(children.map((child) => (child.exitCode === null ? new Promise((resolve) => child.once('exit', resolve)) : undefined)))
      redis?.disconnect()
      await stack?.stop()
      say('Stopped.')
    }
    process.exit(code)
  }
  process.once('SIGINT', () => void stopAll(0))
  process.once('SIGTERM', () => void stopAll(0))

  try {
    say('Starting the local stack (ZooKeeper, Redis, Kafka "source" with TLS/SASL listeners, Kafka "target")...')
    say('The first run downloads the Kafka jars with Maven; later runs reuse them.')
    stack = await startLocalStack({ log: (line) => say(`  ${line}`) })
    const logDir = path.join(stack.dir, 'ferry-logs')
    mkdirSync(logDir, { recursive: true })
    // The source's TLS files live in the stack's certificate directory: Ferry reads cluster
    // files only under the secrets directory it was started with (docs/security.md).
    const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', DEPLOYMENT, '--secrets-dir', path.dirname(stack.source.caFile)]
    const run = (name: string, args: string[]): void => {
      const fd = openSync(path.join(logDir, `${name}.log`), 'a')
      children.push(spawn(process.execPath, [CLI, 'bootstrap', ...args, ...common], { stdio: ['ignore', fd, fd] }))
      closeSync(fd)
    }
    // No tokens on a local demo: open the API explicitly (a controller without tokens is closed).
    run('controller', ['--role', 'controller', '--id', 'controller-1', '--port', '0', '--api-open'])
    run('worker-1', ['--role', 'worker', '--id', 'worker-1', '--zone', 'dc2'])
    run('worker-2', ['--role', 'worker', '--id', 'worker-2', '--zone', 'dc2'])
    redis = new Redis(stack.redis.url)
    const keys = createKeys(DEPLOYMENT)
    const instances = await until('the controller and two workers to register in Redis', async () => {
      const live = await listInstances(redis as Redis, keys)
      return live.some((i) => i.role === 'controller' && i.url) && live.filter((i) => i.role === 'worker').length === 2 ? live : undefined
    })
    const api = instances.find((i) => i.role === 'controller')?.url as string
    say(`Controller REST API: ${api}   dashboard: ${api}/ui/   (logs: ${logDir})`)
    for (const i of instances) say(`  registered ${i.role} ${i.id} (pid ${i.pid})`)

    const source = await rest('POST', `${api}/v1/clusters`, {
      name: 'source',
      bootstrapServers: [stack.source.ssl],
      securityProtocol: 'SSL',
      tls: { caFile: stack.source.caFile, certFile: stack.source.clientCertFile, keyFile: stack.source.clientKeyFile },
      dc: 'dc1',
      zone: 'secure',
    })
    say(`Registered cluster "source" over mutual TLS at ${source.bootstrapServers[0]}`)
    await rest('POST', `${api}/v1/clusters`, { name: 'target', bootstrapServers: [stack.target.plaintext], dc: 'dc2' })
    say(`Registered cluster "target" at ${stack.target.plaintext}`)

    const kafka = new Kafka({ brokers: [stack.source.plaintext], logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ waitForLeaders: true, topics: Object.entries(TOPICS).map(([topic, numPartitions]) => ({ topic, numPartitions })) })
    await admin.disconnect()
    const producer = kafka.producer({ allowAutoTopicCreation: false })
    await producer.connect()
    for (const topic of Object.keys(TOPICS)) {
      for (let start = 0; start < RECORDS_PER_TOPIC; start += 1000) {
        await producer.send({
          topic,
          acks: -1,
          messages: Array.from({ length: 1000 }, (_, i) => ({
            key: `customer-${(start + i) % 97}`,
            value: JSON.stringify({ n: start + i, topic, at: Date.now() }),
            headers: { 'trace-id': `trace-${start + i}`, origin: 'ferry-demo' },
          })),
        })
      }
    }
    await producer.disconnect()
    say(`Produced ${RECORDS_PER_TOPIC} records (keys + headers) into each of ${Object.keys(TOPICS).join(', ')} on the source`)

    const group = await rest('POST', `${api}/v1/groups`, { name: 'demo', sourceCluster: 'source', targetCluster: 'target', topicPattern: 'demo\\..*', rename: { prefix: 'dc1.' } })
    say(`Started topic group "${group.name}": topics matching /demo\\..*/, renamed with prefix "dc1."`)

    const targetTopics = Object.keys(TOPICS).map((t) => `dc1.${t}`)
    const expected = RECORDS_PER_TOPIC * Object.keys(TOPICS).length
    // A live bar on a terminal; without one, a plain progress line every 2 s.
    const bar = new SingleBar({
      format: '  mirroring [{bar}] {percentage}% | {value}/{total} records on the target | {rate} records/s',
      stream: process.stdout,
      noTTYOutput: !process.stdout.isTTY,
      notTTYSchedule: 2000,
      barCompleteChar: '#',
      barIncompleteChar: '.',
      hideCursor: process.stdout.isTTY === true,
    })
    const mirrorStartedAt = Date.now()
    bar.start(expected, 0, { rate: 0 })
    try {
      await until('every record on the target', async () => {
        const ends = await topicEnds(stack!.target.plaintext, targetTopics)
        const total = [...ends.values()].flat().reduce((a, b) => a + b, 0)
        bar.update(Math.min(total, expected), { rate: Math.round(total / Math.max(0.001, (Date.now() - mirrorStartedAt) / 1000)) })
        return total >= expected ? true : undefined
      })
    } finally {
      bar.stop()
    }
    const status = await until('zero lag in the group status', async () => {
      const s = await rest('GET', `${api}/v1/groups/demo`)
      return s.status.lag === 0 ? s : undefined
    })

    const sourceEnds = await topicEnds(stack.source.plaintext, Object.keys(TOPICS))
    const targetEnds = await topicEnds(stack.target.plaintext, targetTopics)
    say('\nMirrored (records per topic, per partition):')
    for (const topic of Object.keys(TOPICS)) {
      const s = sourceEnds.get(topic) ?? []
      const t = targetEnds.get(`dc1.${topic}`) ?? []
      const line = (side: string, name: string, ends: number[]): string =>
        `  ${side} ${name.padEnd(18)} ${String(ends.reduce((a, b) => a + b, 0)).padStart(7)}  [${ends.join(', ')}]`
      say(line('source', topic, s))
      say(line('target', `dc1.${topic}`, t))
    }
    say('\nAssignment and lag (GET /v1/groups/demo):')
    for (const p of status.partitions as Array<{ topic: string; partition: number; worker: string; position: number; lag: number }>) {
      say(`  ${p.topic}[${p.partition}] → ${p.worker}  position ${p.position}  lag ${p.lag}`)
    }
    say(`\nOpen the dashboard at ${api}/ui/, or try: npx ferry group demo --controller ${api} | npx ferry workers --controller ${api} | curl ${api}/metrics`)
    if (exitAtEnd) await stopAll(0)
    say('Ferry keeps mirroring: produce more into the source and watch it arrive. Ctrl-C stops everything.')
  } catch (error) {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`)
    await stopAll(1)
  }
}

void main()
