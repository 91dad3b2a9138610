/**
 * The local stack against its real servers: every listener must really answer with the
 * security it advertises, refuse what it must refuse, restart on demand, clean up abandoned
 * stacks of dead owners (and only those), and leave nothing behind on stop().
 */
import { expect } from 'chai'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { Kafka, logLevel, Partitioners, type KafkaConfig } from 'kafkajs'
import { Redis } from 'ioredis'
import { createClient, CreateMode } from 'node-zookeeper-client'
import { ensureRedisServer, startLocalStack, type LocalStack } from '../../deploy/local-stack.js'

const MESSAGE_TIMEOUT_MS = 30_000
const ZOOKEEPER_CONNECT_TIMEOUT_MS = 10_000

describe('local stack (real ZooKeeper, Redis and Kafka)', function () {
  let stack: LocalStack | undefined
  const stackLog: string[] = []
  let sweep: SweepFixture | undefined

  before(async function () {
    // The first run on a machine may also resolve the Kafka jars with Maven.
    this.timeout(300_000)
    // Planted before the start, whose sweep must deal with them.
    sweep = await plantSweepFixture()
    try {
      stack = await startLocalStack({ log: (line) => stackLog.push(line) })
    } catch (error) {
      process.stderr.write(`local stack log:\n${stackLog.join('\n')}\n`)
      throw error
    }
  })

  after(async function () {
    this.timeout(60_000)
    await stack?.stop()
    await sweep?.cleanUp()
  })

  function started(): LocalStack {
    if (stack === undefined) throw new Error('the stack did not start')
    return stack
  }

  function sourceTls(caFile = started().source.caFile): { ca: string[]; cert: string; key: string } {
    const { source } = started()
    return { ca: [readFileSync(caFile, 'utf8')], cert: readFileSync(source.clientCertFile, 'utf8'), key: readFileSync(source.clientKeyFile, 'utf8') }
  }

  it('swept an abandoned stack of a dead owner, sparing unrelated pids and live stacks', async function () {
    const fixture = sweep
    if (fixture === undefined) throw new Error('no sweep fixture')
    expect(existsSync(fixture.abandonedDir), 'abandoned dir removed').to.equal(false)
    const exits = await withDeadline(fixture.abandonedExits, 5_000, 'abandoned servers were not killed')
    expect(exits.map((exit) => exit.signal)).to.deep.equal(['SIGKILL', 'SIGKILL'])
    // Recorded in the abandoned stack.json but with a command line that does not name its dir.
    expect(isRunning(fixture.unrelatedProcess), 'unrelated process survives').to.equal(true)
    expect(existsSync(fixture.liveDir), 'live stack dir kept').to.equal(true)
    expect(isRunning(fixture.liveServer), 'live stack server survives').to.equal(true)
  })

  it('ZooKeeper answers: creates and reads back a znode', async function () {
    const client = createClient(started().zookeeper.connect, { retries: 0 })
    try {
      await withDeadline(
        new Promise<void>((resolve) => {
          client.once('connected', () => resolve())
          client.connect()
        }),
        ZOOKEEPER_CONNECT_TIMEOUT_MS,
        'ZooKeeper client did not connect',
      )
      const znode = `/ferry-stack-test-${randomUUID()}`
      const value = randomUUID()
      await new Promise<void>((resolve, reject) =>
        client.create(znode, Buffer.from(value), CreateMode.PERSISTENT, (error) =>
          error ? reject(new Error(`create: ${String(error)}`)) : resolve(),
        ),
      )
      const data = await new Promise<Buffer | undefined>((resolve, reject) =>
        client.getData(znode, (error, buffer) => (error ? reject(new Error(`getData: ${String(error)}`)) : resolve(buffer))),
      )
      expect(data?.toString()).to.equal(value)
    } finally {
      client.close()
    }
  })

  it('Redis answers: SET then GET', async function () {
    const redis = new Redis(started().redis.url, { maxRetriesPerRequest: 1 })
    try {
      const key = `ferry-stack-test:${randomUUID()}`
      const value = randomUUID()
      expect(await redis.set(key, value)).to.equal('OK')
      expect(await redis.get(key)).to.equal(value)
    } finally {
      redis.disconnect()
    }
  })

  it('source PLAINTEXT: produces and consumes one message', async function () {
    await expectRoundTrip({ brokers: [started().source.plaintext] })
  })

  it('source SSL with a client certificate (mTLS): produces and consumes one message', async function () {
    await expectRoundTrip({ brokers: [started().source.ssl], ssl: sourceTls() })
  })

  it('source SSL without a client certificate is refused by the broker', async function () {
    const error = await connectError({ brokers: [started().source.ssl], ssl: { ca: sourceTls().ca } })
    // A Kafka 2.x broker on Java 17 ends the TLS 1.3 handshake without a readable alert.
    const refusal = started().source.mode === 'zookeeper' ? /bad certificate|certificate required|bad record mac/i : /bad certificate|certificate required/i
    expect(errorChainText(error), errorChainText(error)).to.match(refusal)
  })

  it('source SSL trusting the wrong CA fails with a certificate error', async function () {
    const error = await connectError({ brokers: [started().source.ssl], ssl: sourceTls(started().source.wrongCaFile) })
    expect(errorChainText(error)).to.match(/SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|certificate/)
  })

  it('source SASL_SSL with SCRAM-SHA-512: produces and consumes one message', async function () {
    const { source } = started()
    await expectRoundTrip({ brokers: [source.saslSsl], ssl: { ca: sourceTls().ca }, sasl: { ...source.sasl } })
  })

  it('source SASL_SSL with a wrong password fails with an authentication error', async function () {
    const { source } = started()
    const error = await connectError({
      brokers: [source.saslSsl],
      ssl: { ca: sourceTls().ca },
      sasl: { mechanism: 'scram-sha-512', username: source.sasl.username, password: `${source.sasl.password}-wrong` },
    })
    expect(error).to.have.property('name', 'KafkaJSSASLAuthenticationError')
    expect(errorChainText(error)).to.match(/authentication failed/i)
  })

  it('target PLAINTEXT: produces and consumes one message', async function () {
    await expectRoundTrip({ brokers: [started().target.plaintext] })
  })

  it('restarts Redis on the same port with a new pid', async function () {
    const { redis: redisHandle } = started().processes
    const oldPid = redisHandle.pid
    await redisHandle.restart()
    expect(redisHandle.pid).to.not.equal(oldPid)
    expect(isPidAlive(oldPid), 'old redis pid gone').to.equal(false)
    const redis = new Redis(started().redis.url, { maxRetriesPerRequest: 1 })
    try {
      expect(await redis.ping()).to.equal('PONG')
    } finally {
      redis.disconnect()
    }
  })

  it('restarts the target Kafka after kill -9 and it serves again', async function () {
    const { target: targetHandle } = started().processes
    const oldPid = targetHandle.pid
    await targetHandle.restart()
    expect(targetHandle.pid).to.not.equal(oldPid)
    expect(isPidAlive(oldPid), 'old broker pid gone').to.equal(false)
    await expectRoundTrip({ brokers: [started().target.plaintext] })
  })

  it('stop() kills every process and removes the directory, and is idempotent', async function () {
    const current = started()
    const pids = Object.values(current.processes).map((p) => p.pid)
    for (const pid of pids) expect(isPidAlive(pid), `pid ${pid} alive before stop`).to.equal(true)
    await Promise.all([current.stop(), current.stop()])
    await current.stop()
    for (const pid of pids) expect(isPidAlive(pid), `pid ${pid} alive after stop`).to.equal(false)
    expect(existsSync(current.dir), 'stack dir removed').to.equal(false)
  })
})

describe('local stack start failure', function () {
  let baseDir: string | undefined

  after(async function () {
    if (baseDir !== undefined) await fs.rm(baseDir, { recursive: true, force: true })
  })

  it('fails at once with the failing server\'s output and leaves no process behind', async function () {
    // A caller-supplied directory is kept, so its stack.json shows what had been started.
    baseDir = path.join(os.tmpdir(), `ferry-local-stack-failure-test-${randomUUID()}`)
    const startedAtMs = Date.now()
    // A 1 MiB heap: the JVM refuses to start, while ZooKeeper and Redis are already starting.
    const error = await startLocalStack({ baseDir, kafkaHeapMb: 1, log: () => undefined }).then(
      () => expect.fail('the start was expected to fail'),
      (e: unknown) => e,
    )
    expect(error).to.have.property('name', 'LocalStackError')
    expect(String((error as Error).message)).to.include('Too small maximum heap')
    expect(Date.now() - startedAtMs, 'failed fast, not at a readiness deadline').to.be.below(30_000)

    const record = JSON.parse(readFileSync(path.join(baseDir, 'stack.json'), 'utf8')) as { pids: Record<string, number> }
    expect(record.pids.redis, 'redis had been spawned').to.be.a('number')
    for (const pid of Object.values(record.pids)) expect(isPidAlive(pid), `pid ${pid} alive after the failed start`).to.equal(false)
    expect(processesUsing(baseDir)).to.deep.equal([])
  })
})

/** Creates a unique topic, produces one message and consumes it back in a fresh group. */
async function expectRoundTrip(config: Omit<KafkaConfig, 'clientId'>): Promise<void> {
  const kafka = new Kafka({ ...config, clientId: 'ferry-stack-test', logLevel: logLevel.NOTHING })
  const topic = `stack-test-${randomUUID()}`
  const value = randomUUID()
  const admin = kafka.admin()
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner })
  const consumer = kafka.consumer({ groupId: `stack-test-${randomUUID()}` })
  try {
    await admin.connect()
    const created = await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], waitForLeaders: true })
    expect(created, 'topic created').to.equal(true)
    await producer.connect()
    await producer.send({ topic, messages: [{ value }] })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    const received = new Promise<string>((resolve) => {
      void consumer.run({
        eachMessage: ({ message }) => {
          resolve(message.value?.toString() ?? '')
          return Promise.resolve()
        },
      })
    })
    expect(await withDeadline(received, MESSAGE_TIMEOUT_MS, `no message consumed from ${topic}`)).to.equal(value)
  } finally {
    await Promise.all([consumer.disconnect(), producer.disconnect(), admin.disconnect()].map((p) => p.catch(() => undefined)))
  }
}

/** Connects and asks for metadata, expecting failure; returns the error. */
async function connectError(config: Omit<KafkaConfig, 'clientId'>): Promise<unknown> {
  const kafka = new Kafka({ ...config, clientId: 'ferry-stack-test', logLevel: logLevel.NOTHING, connectionTimeout: 5_000, retry: { retries: 0 } })
  const admin = kafka.admin()
  try {
    await admin.connect()
    await admin.describeCluster()
  } catch (error) {
    return error
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
  expect.fail('the connection was expected to fail')
}

/** Names, messages and codes of an error and its causes (kafkajs nests the socket error). */
function errorChainText(error: unknown): string {
  const parts: string[] = []
  let current: unknown = error
  for (let depth = 0; current !== undefined && current !== null && depth < 10; depth++) {
    const e = current as { name?: unknown; message?: unknown; code?: unknown; cause?: unknown; originalError?: unknown }
    parts.push([e.name, e.message, e.code].filter((p) => p !== undefined).map(String).join(' '))
    current = e.cause ?? e.originalError
  }
  return parts.join(' <- ')
}

interface SweepFixture {
  abandonedDir: string
  abandonedExits: Promise<Array<{ code: number | null; signal: NodeJS.Signals | null }>>
  unrelatedProcess: ChildProcess
  liveDir: string
  liveServer: ChildProcess
  cleanUp(): Promise<void>
}

/**
 * An abandoned stack (owner pid dead) with two servers and one recorded pid that belongs to an
 * unrelated process; and a stack owned by this (live) process. The servers are an idle node
 * process whose command line names the directory (as Java's does) and a real redis-server
 * running inside it, which rewrites its command line so only its working directory tells.
 */
async function plantSweepFixture(): Promise<SweepFixture> {
  const idle = (...extraArgs: string[]): ChildProcess =>
    spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', ...extraArgs], { stdio: 'ignore' })
  const exitOf = (child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> =>
    new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))

  const deadOwner = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' })
  await exitOf(deadOwner)

  const abandonedDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-stack-'))
  await fs.mkdir(path.join(abandonedDir, 'redis'))
  const javaLike = idle(path.join(abandonedDir, 'server.properties'))
  const redisPort = await freePort()
  const redisArgs = ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no']
  const redis = spawn(await ensureRedisServer(() => undefined), redisArgs, { cwd: path.join(abandonedDir, 'redis'), stdio: 'ignore' })
  const abandonedExits = Promise.all([exitOf(javaLike), exitOf(redis)])
  const unrelatedProcess = idle()
  await waitFor(() => !readFileSync(`/proc/${redis.pid}/cmdline`, 'utf8').includes('--port'), 5_000, 'redis-server did not set its title')
  await writeRecord(abandonedDir, deadOwner.pid, { zookeeper: javaLike.pid, redis: redis.pid, source: unrelatedProcess.pid })

  const liveDir = await fs.mkdtemp(path.join(os.tmpdir(), 'ferry-stack-'))
  const liveServer = idle(path.join(liveDir, 'server.properties'))
  await writeRecord(liveDir, process.pid, { zookeeper: liveServer.pid })

  return {
    abandonedDir,
    abandonedExits,
    unrelatedProcess,
    liveDir,
    liveServer,
    async cleanUp() {
      for (const child of [javaLike, redis, unrelatedProcess, liveServer]) child.kill('SIGKILL')
      await fs.rm(abandonedDir, { recursive: true, force: true })
      await fs.rm(liveDir, { recursive: true, force: true })
    },
  }
}

async function writeRecord(dir: string, ownerPid: number | undefined, pids: Record<string, number | undefined>): Promise<void> {
  await fs.writeFile(path.join(dir, 'stack.json'), JSON.stringify({ ownerPid, ownerStartTime: null, dir, keep: false, pids }))
}

/** Pids whose command line names dir or that run inside it (Linux /proc). */
function processesUsing(dir: string): number[] {
  const pids: number[] = []
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8')
      const cwd = readlinkSync(`/proc/${entry}/cwd`)
      if (cmdline.includes(dir) || cwd.startsWith(dir)) pids.push(Number(entry))
    } catch {
      // Exited meanwhile, or not readable.
    }
  }
  return pids
}

function isRunning(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null
}

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

/** Polls a condition until it holds; fails after timeoutMs. */
async function waitFor(condition: () => boolean, timeoutMs: number, message: string): Promise<void> {
  const deadlineMs = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadlineMs) throw new Error(`${message} within ${timeoutMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function withDeadline<T>(promise: Promise<T>, timeoutMs: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${message} within ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}
