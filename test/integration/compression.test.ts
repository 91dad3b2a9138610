/**
 * Compressed sources and targets on the real stack: Kafka's own console producer (Java) writes
 * one source topic per codec (gzip, snappy in xerial framing, lz4, zstd); Ferry mirrors them all
 * into lz4-compressed target topics; every record arrives intact, and the broker's log dump shows
 * the target batches are lz4.
 */
import { expect } from 'chai'
import { spawn } from 'node:child_process'
import { readdirSync } from 'node:fs'
import path from 'node:path'
import { Redis } from 'ioredis'
import '../../common/kafka/codecs.js'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import { ensureKafkaJars, kafkaClasspath, kafkaToolClass, type LocalStack } from '../../deploy/local-stack.js'
import { FerryProcess, http, sharedStack, stackSecretFlags, uniqueName, waitFor } from './harness.js'
import { createTopic, readAll } from './kafka-helpers.js'

const CODECS = ['gzip', 'snappy', 'lz4', 'zstd'] as const
const RECORDS = 400

/** Runs a Kafka tool (Java) to completion with `input` on stdin; returns its output. */
/** Runs a Kafka tool, found under whichever of `classes` (its homes over releases) the installed jars hold. */
async function runKafkaTool(classes: readonly string[], args: readonly string[], input = ''): Promise<string> {
  const libDir = await ensureKafkaJars(() => undefined)
  const classpath = await kafkaClasspath(libDir)
  const mainClass = await kafkaToolClass(libDir, classes)
  return new Promise((resolve, reject) => {
    const child = spawn('java', ['-Xmx256m', '-cp', classpath, mainClass, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')))
    // Never left behind: a tool that cannot reach its broker would retry for minutes.
    const timer = setTimeout(() => child.kill('SIGKILL'), 90000)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(output)
      else reject(new Error(`${mainClass} exited ${code}:\n${output.slice(-2000)}`))
    })
    child.stdin.end(input)
  })
}

describe('compressed sources and targets (real stack, Java producers)', function () {
  this.timeout(240000)
  let stack: LocalStack
  let redis: Redis
  const deployment = uniqueName('codecs')
  const procs: FerryProcess[] = []
  const topics = new Map(CODECS.map((codec) => [codec, uniqueName(`codec-${codec}`)]))

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    redis = new Redis(stack.redis.url)
    const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, ...stackSecretFlags(stack)]
    procs.push(new FerryProcess('codecs-controller', ['bootstrap', '--role', 'controller', '--id', 'c1', '--port', '0', ...common]))
    procs.push(new FerryProcess('codecs-worker', ['bootstrap', '--role', 'worker', '--id', 'w1', ...common]))
    // The console producer: one line per record, key TAB value; compressible values.
    for (const topic of topics.values()) await createTopic(stack.source.plaintext, topic, 2)
    await Promise.all(
      [...topics].map(async ([codec, topic]) => {
        const lines = Array.from({ length: RECORDS }, (_, i) => `k-${i}\t${codec}-${i}-${'abc'.repeat(20 + (i % 30))}`).join('\n') + '\n'
        await runKafkaTool(['org.apache.kafka.tools.ConsoleProducer', 'kafka.tools.ConsoleProducer'], ['--bootstrap-server', stack.source.plaintext, '--topic', topic, '--compression-codec', codec, '--property', 'parse.key=true', '--property', 'key.separator=\t'], lines)
      }),
    )
  })

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    redis?.disconnect()
  })

  it('mirrors gzip, snappy, lz4 and zstd sources record for record into lz4 target batches', async () => {
    const keys = createKeys(deployment)
    const url = await waitFor('controller and worker registered', async () => {
      const instances = await listInstances(redis, keys)
      return instances.some((i) => i.role === 'worker') ? instances.find((i) => i.role === 'controller' && i.url)?.url : undefined
    }, 90000)
    for (const cluster of [
      { name: 'src', bootstrapServers: [stack.source.ssl], securityProtocol: 'SSL', tls: { caFile: stack.source.caFile, certFile: stack.source.clientCertFile, keyFile: stack.source.clientKeyFile } },
      { name: 'dst', bootstrapServers: [stack.target.plaintext] },
    ]) {
      expect((await http('POST', `${url}/v1/clusters`, cluster)).status).to.equal(201)
    }
    const rejected = await http('POST', `${url}/v1/groups`, { name: 'bad', sourceCluster: 'src', targetCluster: 'dst', topics: ['x'], compression: 'zstd' })
    expect(rejected.status).to.equal(400)
    expect(rejected.text).to.match(/compression/)
    const created = await http('POST', `${url}/v1/groups`, { name: 'codecs', sourceCluster: 'src', targetCluster: 'dst', topics: [...topics.values()], compression: 'lz4', rename: { prefix: 'lz4.' } })
    expect(created.status, created.text).to.equal(201)

    for (const [codec, topic] of topics) {
      const target = `lz4.${topic}`
      const rows = await waitFor(`${codec}: all ${RECORDS} records on the target`, async () => {
        const all = [...(await readAll(stack.target.plaintext, target).catch(() => new Map()))].flatMap(([, list]) => list as Array<{ key: string | null; value: string | null }>)
        return all.length >= RECORDS ? all : undefined
      }, 90000, 500)
      const source = [...(await readAll(stack.source.plaintext, topic))].flatMap(([, list]) => list)
      const pairs = (list: Array<{ key: string | null; value: string | null }>): string[] => list.map((r) => `${r.key}=${r.value}`).sort()
      expect(source, `${codec} source`).to.have.length(RECORDS)
      expect(pairs(rows), `${codec}: target records equal the source's`).to.deep.equal(pairs(source))
    }

    // The broker's own view of the target's batches.
    const firstTopic = `lz4.${topics.get('zstd') as string}`
    const dir = path.join(stack.dir, 'target', 'data', `${firstTopic}-0`)
    const segment = readdirSync(dir).find((name) => name.endsWith('.log')) as string
    const dump = await runKafkaTool(['kafka.tools.DumpLogSegments', 'org.apache.kafka.tools.DumpLogSegments'], ['--files', path.join(dir, segment)])
    const codecsSeen = new Set([...dump.matchAll(/compresscodec: (\w+)/g)].map((m) => m[1]))
    expect([...codecsSeen], dump.slice(0, 2000)).to.deep.equal(['lz4'])
  })
})
