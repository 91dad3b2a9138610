/**
 * A real local stack for integration tests and demos, without Docker: ZooKeeper, Redis and two
 * single-node KRaft Kafka clusters. "source" has a PLAINTEXT listener, an SSL listener that
 * requires a client certificate (mTLS) and a SASL_SSL listener with SCRAM-SHA-512; "target"
 * has PLAINTEXT and a SASL_PLAINTEXT listener with SCRAM-SHA-512 users of its own. KRaft clusters
 * run the ACL authorizer (StandardAuthorizer): the stack's own identities (anonymous PLAINTEXT,
 * the mTLS client, the Ferry SCRAM user) are super users and a topic without ACLs is open to
 * everyone, so only topics a test gives ACLs are guarded, for the users that test names (the
 * `reader` users). Every server binds free ports on 127.0.0.1 and keeps its files in one
 * private directory, so stacks of several developers or test runs never collide.
 *
 * @example
 *   const stack = await startLocalStack({ log: (line) => console.error(line) })
 *   try {
 *     const kafka = new Kafka({ brokers: [stack.source.plaintext] })
 *     // ...
 *   } finally {
 *     await stack.stop()
 *   }
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, fstatSync, openSync, readFileSync, readlinkSync, renameSync, writeFileSync } from 'node:fs'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs'
import zookeeper from 'node-zookeeper-client'
import { createLogger } from '../common/logger.js'

const execFileAsync = promisify(execFile)

export interface LocalStackOptions {
  /**
   * Directory for configs, data, certificates and logs. Must be empty or missing; it is kept
   * on stop() because the caller owns it. Default: a fresh `ferry-stack-*` directory from
   * mkdtemp under os.tmpdir(), removed on stop() unless FERRY_KEEP_STACK=1.
   */
  baseDir?: string
  /** Progress lines (one per step, with durations). Default: the pino logger, name "local-stack". */
  log?: (line: string) => void
  /** Maximum heap of each Kafka JVM, in MiB. Default 512. */
  kafkaHeapMb?: number
  /**
   * Kafka release of the source cluster (the target always runs deploy/pom.xml's). Default
   * `FERRY_SOURCE_KAFKA_VERSION`, else the pom's. A release before 3.0 runs in ZooKeeper mode,
   * on a chroot of the stack's ZooKeeper; later ones in KRaft mode.
   */
  sourceKafkaVersion?: string
}

/** What any cluster of the stack offers; code that works with either cluster takes this. */
export interface StackCluster {
  /** host:port of the PLAINTEXT listener (the same value as `plaintext`). */
  bootstrapPlaintext: string
  /** The Kafka release it runs, and how its metadata is kept. */
  kafkaVersion: string
  mode: 'kraft' | 'zookeeper'
  /** Whether ACLs are enforced (KRaft: StandardAuthorizer); a ZooKeeper-mode source runs without an authorizer. */
  authorizer: boolean
}

/** A SCRAM-SHA-512 user that is not a super user: what ACLs decide for. */
export interface StackUser {
  username: string
  password: string
}

export interface SourceCluster extends StackCluster {
  /** host:port, no authentication. */
  plaintext: string
  /** host:port, TLS with a required client certificate (clientCertFile/clientKeyFile, trusting caFile). */
  ssl: string
  /** host:port, TLS (server-side only, trusting caFile) plus SASL SCRAM-SHA-512 with `sasl`. */
  saslSsl: string
  /** PEM of the CA that signed the broker and client certificates. */
  caFile: string
  /** PEM client certificate accepted by the SSL listener. */
  clientCertFile: string
  /** PEM (PKCS#8, unencrypted) key of the client certificate. */
  clientKeyFile: string
  sasl: { mechanism: 'scram-sha-512'; username: string; password: string }
  /** A second SCRAM user on the SASL_SSL listener, not a super user (KRaft only: absent in ZooKeeper mode). */
  reader?: StackUser
  /** PEM of a second, unrelated CA: trusting it instead of caFile must fail the TLS handshake. */
  wrongCaFile: string
}

export interface TargetCluster extends StackCluster {
  /** host:port, no authentication. */
  plaintext: string
  /** host:port, SASL SCRAM-SHA-512 without TLS, for `readerDr` and `outsider` (neither a super user). */
  saslPlaintext: string
  /** The target's counterpart of the source's reader (a principal mapping maps one to the other). */
  readerDr: StackUser
  /** A user no ACL names: refused wherever a topic has ACLs. */
  outsider: StackUser
}

export type StackProcessName = 'zookeeper' | 'redis' | 'source' | 'target'

/** Fault-injection handle of one server process. */
export interface StackProcess {
  /** Current pid; after restart() the new one. */
  readonly pid: number
  /** Sends a signal (default SIGKILL, i.e. kill -9) and returns at once; a no-op when not running. */
  kill(signal?: NodeJS.Signals): void
  /** SIGKILLs the process, starts it again on the same ports and directories, waits until it answers. */
  restart(): Promise<void>
}

export interface LocalStack {
  dir: string
  zookeeper: { connect: string }
  redis: { url: string; port: number }
  source: SourceCluster
  target: TargetCluster
  /**
   * Stops every process (SIGTERM, then SIGKILL after 10 s) and removes the directory unless
   * FERRY_KEEP_STACK=1 or the caller supplied baseDir. Idempotent and safe to call concurrently.
   */
  stop(): Promise<void>
  processes: Record<StackProcessName, StackProcess>
}

type LogFn = (line: string) => void

/** Error of the local stack; the message carries the tail of the failing server's log. */
export class LocalStackError extends Error {
  constructor(
    message: string,
    readonly logFile?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.name = 'LocalStackError'
  }
}

const STACK_DIR_PREFIX = 'ferry-stack-'
const READY_TIMEOUT_MS = 90_000
const STOP_GRACE_MS = 10_000
const PROBE_INTERVAL_MS = 250
const PROBE_TIMEOUT_MS = 3_000
const LOG_TAIL_LINES = 25
/** Error lines quoted from a failed server's log, ahead of its tail. */
const LOG_PROBLEM_LINES = 12
const DEFAULT_KAFKA_HEAP_MB = 512
const ZOOKEEPER_HEAP_MB = 256
const SCRAM_USERNAME = 'ferry'
/** The mTLS client certificate's principal (its subject, as Kafka's default principal builder names it). */
const CLIENT_CERT_PRINCIPAL = 'User:CN=ferry-client'
/** Attempts of a whole start when a picked port was taken before its server bound it. */
const MAX_START_ATTEMPTS = 3
/** Lowest port handed to a server; below are the well-known development ports (2181, 6379, 8080, 9092...). */
const MIN_SERVER_PORT = 15_000

// ---------------------------------------------------------------------------------------------
// Prerequisites: Kafka jars and redis-server
// ---------------------------------------------------------------------------------------------

/**
 * Returns the directory holding the Kafka, ZooKeeper and tools jars for the version pinned in
 * deploy/pom.xml (`<kafka.version>`), resolving them with Maven on first use only. The cache is
 * `$FERRY_CACHE_DIR/kafka-<version>/lib` (default `~/.cache/ferry/...`); a `.complete` marker,
 * written after Maven succeeds, tells a finished copy from an interrupted one.
 */
export async function ensureKafkaJars(log: LogFn = defaultLog(), release?: string): Promise<string> {
  const pomFile = findPomFile()
  const version = release ?? (await defaultKafkaVersion())
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new LocalStackError(`Kafka release must look like 4.3.1, got ${JSON.stringify(version)}`)
  const cacheRoot = process.env.FERRY_CACHE_DIR || path.join(os.homedir(), '.cache', 'ferry')
  const libDir = path.join(cacheRoot, `kafka-${version}`, 'lib')
  const marker = path.join(libDir, '.complete')
  if (existsSync(marker)) return libDir

  await fs.mkdir(libDir, { recursive: true })
  log(`resolving Kafka ${version} jars with Maven into ${libDir} (first run only)`)
  const startedAtMs = Date.now()
  try {
    await execFileAsync(
      'mvn',
      ['-q', '-B', '-f', pomFile, 'dependency:copy-dependencies', `-Dkafka.version=${version}`, ...(zookeeperMode(version) ? ['-Dkafka.legacy=true'] : []), `-DoutputDirectory=${libDir}`, '-DincludeScope=runtime'],
      { maxBuffer: 64 * 1024 * 1024 },
    )
  } catch (error) {
    if (isErrnoException(error) && error.code === 'ENOENT') {
      throw new LocalStackError('Maven (mvn) is not on PATH; install Maven and a JDK 17+ (Debian: apt-get install maven openjdk-17-jdk-headless)')
    }
    const output = outputOf(error)
    const message = `Maven could not resolve the Kafka jars from ${pomFile}:\n${lastLines(output, LOG_TAIL_LINES)}`
    throw new LocalStackError(message, undefined, { cause: error })
  }
  await fs.writeFile(marker, `${new Date().toISOString()}\n`)
  log(`Kafka jars ready in ${Date.now() - startedAtMs} ms`)
  return libDir
}

/** The release deploy/pom.xml pins (`<kafka.version>`): what the stack, demo and benchmark run by default. */
export async function defaultKafkaVersion(): Promise<string> {
  const pomFile = findPomFile()
  const version = /<kafka\.version>\s*([^<\s]+)\s*<\/kafka\.version>/.exec(await fs.readFile(pomFile, 'utf8'))?.[1]
  if (version === undefined) throw new LocalStackError(`no <kafka.version> property in ${pomFile}`)
  return version
}

/** Releases before 3.0 run in ZooKeeper mode (KRaft was not ready for production before 3.3; 3.x lanes use KRaft). */
export function zookeeperMode(version: string): boolean {
  return Number(version.split('.')[0]) < 3
}

/**
 * Returns the path of `command`. When it is missing and we are root, installs Debian's package
 * `pkg` with apt-get (without recommends when asked; services it would start are started by no
 * one here: the stack runs its own); otherwise fails with `installHint`.
 */
export async function ensureDebianTool(command: string, pkg: string, installHint: string, options: { log?: LogFn; noRecommends?: boolean } = {}): Promise<string> {
  const found = await findExecutable(command)
  if (found !== undefined) return found
  const isRoot = process.getuid?.() === 0
  if (!isRoot || (await findExecutable('apt-get')) === undefined) throw new LocalStackError(installHint)

  ;(options.log ?? defaultLog())(`${command} missing: installing Debian's ${pkg} with apt-get`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  try {
    await execFileAsync('apt-get', ['update'], { env, maxBuffer: 64 * 1024 * 1024 })
    await execFileAsync('apt-get', ['install', '-y', ...(options.noRecommends ? ['--no-install-recommends'] : []), pkg], { env, maxBuffer: 64 * 1024 * 1024 })
  } catch (error) {
    throw new LocalStackError(`apt-get could not install ${pkg}:\n${lastLines(outputOf(error), LOG_TAIL_LINES)}\n${installHint}`, undefined, {
      cause: error,
    })
  }
  const installed = await findExecutable(command)
  if (installed === undefined) throw new LocalStackError(`apt-get reported success but ${command} is still not found; ${installHint}`)
  return installed
}

/** Returns the path of redis-server, installed with apt-get when missing and we are root. */
export function ensureRedisServer(log: LogFn = defaultLog()): Promise<string> {
  return ensureDebianTool('redis-server', 'redis-server', 'redis-server is not installed; install it (Debian/Ubuntu: `sudo apt-get install redis-server`, macOS: `brew install redis`) and retry', { log })
}

// ---------------------------------------------------------------------------------------------
// The stack
// ---------------------------------------------------------------------------------------------

/**
 * Starts ZooKeeper, Redis and the two Kafka clusters in parallel and resolves once every
 * listener really answers (a ZooKeeper `srvr`, a Redis PING, a Kafka metadata request on each
 * listener with its own TLS/SASL settings). On failure everything started is killed and the
 * error carries the tail of the failing server's log.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const startedAtMs = Date.now()
  const log = options.log ?? defaultLog()
  const targetVersion = await defaultKafkaVersion()
  const sourceVersion = options.sourceKafkaVersion ?? (process.env.FERRY_SOURCE_KAFKA_VERSION || targetVersion)
  const [libDir, sourceLibDir, redisServer] = await Promise.all([ensureKafkaJars(log, targetVersion), ensureKafkaJars(log, sourceVersion), ensureRedisServer(log), sweepAbandonedStacks(log)])
  for (let attempt = 1; ; attempt++) {
    const { dir, ownsDir } = await prepareStackDir(options.baseDir)
    const keepDir = process.env.FERRY_KEEP_STACK === '1' || !ownsDir
    const spawned: ManagedProcess[] = []
    try {
      const kafkaHeapMb = options.kafkaHeapMb ?? DEFAULT_KAFKA_HEAP_MB
      const stack = await buildAndStart({ dir, keepDir, libDir, source: { libDir: sourceLibDir, version: sourceVersion }, targetVersion, redisServer, kafkaHeapMb, log, spawned })
      log(`local stack ready in ${Date.now() - startedAtMs} ms (dir ${dir})`)
      return stack
    } catch (error) {
      await Promise.all(spawned.map((p) => p.stop(0)))
      // A port is free when picked but only bound seconds later, when the JVM is up; another
      // server can take it meanwhile. Rare (see pickFreePorts), and fresh ports fix it.
      const portTaken = /Address already in use/.test(errorMessage(error))
      if (portTaken && attempt < MAX_START_ATTEMPTS) {
        log(`a port was taken before its server could bind it; starting again with new ports (attempt ${attempt + 1})`)
        // A kept temp dir stays for inspection (the retry makes a new one); a caller's dir
        // must be empty again for the retry.
        if (!ownsDir || !keepDir) await fs.rm(dir, { recursive: true, force: true })
        continue
      }
      if (!keepDir) await fs.rm(dir, { recursive: true, force: true })
      const hint = keepDir ? `files kept in ${dir}` : 'set FERRY_KEEP_STACK=1 to keep the stack directory'
      throw new LocalStackError(`local stack failed to start (${hint}): ${errorMessage(error)}`, undefined, { cause: error })
    }
  }
}

interface BuildContext {
  dir: string
  keepDir: boolean
  /** Jars of the target cluster, ZooKeeper and every tool (the default release). */
  libDir: string
  targetVersion: string
  /** The source cluster's release and jars. */
  source: { libDir: string; version: string }
  redisServer: string
  kafkaHeapMb: number
  log: LogFn
  /** Filled as processes are created, so the caller can kill them if the start fails. */
  spawned: ManagedProcess[]
}

async function buildAndStart(ctx: BuildContext): Promise<LocalStack> {
  const { dir, log } = ctx
  const ports = await pickFreePorts([
    'zookeeper',
    'redis',
    'sourcePlaintext',
    'sourceSsl',
    'sourceSaslSsl',
    'sourceController',
    'targetPlaintext',
    'targetSaslPlaintext',
    'targetController',
  ] as const)
  const hostPort = (port: number): string => `127.0.0.1:${port}`

  const record: StackRecord = {
    ownerPid: process.pid,
    ownerStartTime: processStartTime(process.pid),
    dir,
    keep: ctx.keepDir,
    createdAt: new Date().toISOString(),
    ports,
    files: {},
    pids: {},
  }
  // Written before any process exists, so a sweep by another run never mistakes this directory
  // for an abandoned one, and rewritten on each spawn so a crash of ours leaves the pids behind.
  writeStackRecord(record)
  const onSpawn = (name: StackProcessName, pid: number): void => {
    record.pids[name] = pid
    writeStackRecord(record)
  }

  const classpath = await kafkaClasspath(ctx.libDir)
  const sourceClasspath = await kafkaClasspath(ctx.source.libDir)
  const sourceMode = zookeeperMode(ctx.source.version) ? 'zookeeper' : 'kraft'
  const log4jFile = path.join(dir, 'log4j.properties')
  await fs.writeFile(log4jFile, LOG4J_PROPERTIES)
  const certs = await createCertificates(path.join(dir, 'certs'))
  record.files = { ...certs, log4j: log4jFile }
  writeStackRecord(record)
  const jvmArgs = (heapMb: number, cp = classpath): string[] => [
    `-Xmx${heapMb}m`,
    '-XX:+ExitOnOutOfMemoryError',
    '-Djava.awt.headless=true',
    `-Dlog4j.configuration=file:${log4jFile}`,
    '-cp',
    cp,
  ]

  const source: SourceCluster = {
    bootstrapPlaintext: hostPort(ports.sourcePlaintext),
    kafkaVersion: ctx.source.version,
    mode: sourceMode,
    plaintext: hostPort(ports.sourcePlaintext),
    ssl: hostPort(ports.sourceSsl),
    saslSsl: hostPort(ports.sourceSaslSsl),
    caFile: certs.caFile,
    clientCertFile: certs.clientCertFile,
    clientKeyFile: certs.clientKeyFile,
    sasl: { mechanism: 'scram-sha-512', username: SCRAM_USERNAME, password: randomBytes(16).toString('hex') },
    ...(sourceMode === 'kraft' ? { reader: { username: 'reader', password: randomBytes(16).toString('hex') } } : {}),
    wrongCaFile: certs.wrongCaFile,
    authorizer: sourceMode === 'kraft',
  }
  const target: TargetCluster = {
    bootstrapPlaintext: hostPort(ports.targetPlaintext),
    plaintext: hostPort(ports.targetPlaintext),
    saslPlaintext: hostPort(ports.targetSaslPlaintext),
    readerDr: { username: 'reader-dr', password: randomBytes(16).toString('hex') },
    outsider: { username: 'outsider', password: randomBytes(16).toString('hex') },
    kafkaVersion: ctx.targetVersion,
    mode: 'kraft',
    authorizer: true,
  }
  const ca = await fs.readFile(certs.caFile, 'utf8')
  const clientTls = { ca: [ca], cert: await fs.readFile(certs.clientCertFile, 'utf8'), key: await fs.readFile(certs.clientKeyFile, 'utf8') }

  const zookeeper = await prepareZookeeper({
    dir: path.join(dir, 'zookeeper'),
    port: ports.zookeeper,
    jvmArgs: jvmArgs(ZOOKEEPER_HEAP_MB),
    onSpawn,
    log,
  })
  const redis = await prepareRedis({ dir: path.join(dir, 'redis'), port: ports.redis, redisServer: ctx.redisServer, onSpawn, log })
  const sourceKafka = await prepareKafka({
    name: 'source',
    dir: path.join(dir, 'source'),
    ports: { plaintext: ports.sourcePlaintext, ssl: ports.sourceSsl, saslSsl: ports.sourceSaslSsl, controller: ports.sourceController },
    certs,
    scram: { username: source.sasl.username, password: source.sasl.password },
    users: source.reader === undefined ? [] : [source.reader],
    authorizer: source.authorizer,
    jvmArgs: jvmArgs(ctx.kafkaHeapMb, sourceClasspath),
    libDir: ctx.source.libDir,
    ...(sourceMode === 'zookeeper' ? { zookeeperConnect: `${hostPort(ports.zookeeper)}/kafka-source` } : {}),
    probeConfigs: [
      { brokers: [source.plaintext] },
      { brokers: [source.ssl], ssl: clientTls },
      { brokers: [source.saslSsl], ssl: { ca: [ca] }, sasl: { ...source.sasl } },
    ],
    onSpawn,
    log,
  })
  const targetKafka = await prepareKafka({
    name: 'target',
    dir: path.join(dir, 'target'),
    ports: { plaintext: ports.targetPlaintext, saslPlaintext: ports.targetSaslPlaintext, controller: ports.targetController },
    users: [target.readerDr, target.outsider],
    authorizer: true,
    jvmArgs: jvmArgs(ctx.kafkaHeapMb),
    libDir: ctx.libDir,
    probeConfigs: [{ brokers: [target.plaintext] }, { brokers: [target.saslPlaintext], sasl: { mechanism: 'scram-sha-512', ...target.readerDr } }],
    onSpawn,
    log,
  })
  const processes = { zookeeper, redis, source: sourceKafka.process, target: targetKafka.process }
  ctx.spawned.push(...Object.values(processes))

  // One failed server aborts the others' waits, so a broken start fails in seconds, not after
  // every remaining readiness deadline.
  const abort = new AbortController()
  const zookeeperStarted = zookeeper.start(abort.signal)
  const starts = [
    zookeeperStarted,
    redis.start(abort.signal),
    // A ZooKeeper-mode broker needs ZooKeeper first (its SCRAM user too).
    sourceMode === 'zookeeper' ? zookeeperStarted.then(() => sourceKafka.formatAndStart(abort.signal)) : sourceKafka.formatAndStart(abort.signal),
    targetKafka.formatAndStart(abort.signal),
  ]
  const results = await Promise.allSettled(
    starts.map((p) =>
      p.catch((error: unknown) => {
        abort.abort()
        throw error
      }),
    ),
  )
  const reasons = results.flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []))
  // The servers aborted because of another one's failure say nothing useful; report the cause.
  if (reasons.length > 0) throw reasons.find((r) => !isAbortError(r)) ?? reasons[0]

  let stopping: Promise<void> | undefined
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      const stopStartedAtMs = Date.now()
      await Promise.all(Object.values(processes).map((p) => p.stop(STOP_GRACE_MS)))
      if (ctx.keepDir) {
        // No pids left to kill: later sweeps leave the kept directory alone for inspection.
        record.pids = {}
        writeStackRecord(record)
      } else {
        await fs.rm(dir, { recursive: true, force: true })
      }
      log(`local stack stopped in ${Date.now() - stopStartedAtMs} ms${ctx.keepDir ? ` (kept ${dir})` : ''}`)
    })()
    return stopping
  }
  const handle = (p: ManagedProcess): StackProcess => ({
    get pid() {
      return p.pid
    },
    kill: (signal: NodeJS.Signals = 'SIGKILL') => p.kill(signal),
    restart: async () => {
      if (stopping !== undefined) throw new LocalStackError(`cannot restart ${p.name}: the stack is stopped`)
      await p.restart()
    },
  })

  return {
    dir,
    zookeeper: { connect: hostPort(ports.zookeeper) },
    redis: { url: `redis://${hostPort(ports.redis)}`, port: ports.redis },
    source,
    target,
    stop,
    processes: {
      zookeeper: handle(zookeeper),
      redis: handle(redis),
      source: handle(sourceKafka.process),
      target: handle(targetKafka.process),
    },
  }
}

// ---------------------------------------------------------------------------------------------
// ZooKeeper and Redis
// ---------------------------------------------------------------------------------------------

interface ServerSpec {
  dir: string
  port: number
  onSpawn: (name: StackProcessName, pid: number) => void
  log: LogFn
}

async function prepareZookeeper(spec: ServerSpec & { jvmArgs: string[] }): Promise<ManagedProcess> {
  const dataDir = path.join(spec.dir, 'data')
  await fs.mkdir(dataDir, { recursive: true })
  const configFile = path.join(spec.dir, 'zoo.cfg')
  await fs.writeFile(configFile, zookeeperConfig(spec.port, dataDir))
  return new ManagedProcess('zookeeper', {
    command: 'java',
    args: [...spec.jvmArgs, 'org.apache.zookeeper.server.ZooKeeperServerMain', configFile],
    cwd: spec.dir,
    logFile: path.join(spec.dir, 'zookeeper.log'),
    probe: async () => {
      // `srvr` is the one four-letter command allowed by default; ZooKeeper closes after answering.
      const answer = await tcpRequest(spec.port, 'srvr', () => false)
      if (!/Mode: standalone|Zookeeper version/.test(answer)) throw new Error(`unexpected srvr answer: ${answer}`)
    },
    onSpawn: spec.onSpawn,
    log: spec.log,
  })
}

function zookeeperConfig(port: number, dataDir: string): string {
  // A config file rather than `<port> <dataDir>` arguments: only the file form can bind the
  // loopback address alone and turn off the AdminServer, which otherwise takes port 8080 and
  // collides with every other stack on the machine.
  return [
    'tickTime=2000',
    `dataDir=${dataDir}`,
    `clientPort=${port}`,
    'clientPortAddress=127.0.0.1',
    'maxClientCnxns=0',
    'admin.enableServer=false',
    '4lw.commands.whitelist=srvr,ruok,stat,mntr',
    '',
  ].join('\n')
}

async function prepareRedis(spec: ServerSpec & { redisServer: string }): Promise<ManagedProcess> {
  await fs.mkdir(spec.dir, { recursive: true })
  return new ManagedProcess('redis', {
    command: spec.redisServer,
    // --save "" and --appendonly no: a test stack never wants its data back after a restart.
    args: ['--port', String(spec.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', spec.dir],
    cwd: spec.dir,
    logFile: path.join(spec.dir, 'redis.log'),
    probe: async () => {
      const answer = await tcpRequest(spec.port, 'PING\r\n', (data) => data.includes('\r\n'))
      if (!answer.startsWith('+PONG')) throw new Error(`unexpected PING answer: ${answer}`)
    },
    onSpawn: spec.onSpawn,
    log: spec.log,
  })
}

// ---------------------------------------------------------------------------------------------
// Kafka
// ---------------------------------------------------------------------------------------------

interface KafkaSpec {
  name: 'source' | 'target'
  dir: string
  ports: { plaintext: number; ssl?: number; saslSsl?: number; saslPlaintext?: number; controller: number }
  certs?: CertificateFiles
  /** The stack's own SCRAM user (a super user where the authorizer runs). */
  scram?: { username: string; password: string }
  /** SCRAM users that are not super users, on the SASL listeners (KRaft: added at format time). */
  users?: StackUser[]
  /** ZooKeeper mode (releases before 3.0): `host:port/chroot`; absent: KRaft. */
  zookeeperConnect?: string
  /**
   * Run KRaft's ACL authorizer, so ACLs can be created, described (the Kafka port's admin does
   * both, test/contract/) and enforced (test/integration/topic-follow.test.ts). The stack's own
   * identities are super users and a topic without ACLs is open to all, so nothing else changes:
   * the stack still needs no credentials on its PLAINTEXT listener.
   */
  authorizer?: boolean
  /** JVM options and classpath, before the main class. */
  jvmArgs: string[]
  /** Where the classpath's jars are (to find tools by class). */
  libDir: string
  /** One client config per listener: the broker is ready when every one gets metadata. */
  probeConfigs: KafkaConfig[]
  onSpawn: (name: StackProcessName, pid: number) => void
  log: LogFn
}

async function prepareKafka(spec: KafkaSpec): Promise<{ process: ManagedProcess; formatAndStart(signal: AbortSignal): Promise<void> }> {
  await fs.mkdir(path.join(spec.dir, 'data'), { recursive: true })
  const configFile = path.join(spec.dir, 'server.properties')
  const logFile = path.join(spec.dir, 'kafka.log')
  await fs.writeFile(configFile, kafkaServerProperties(spec, path.join(spec.dir, 'data')))

  const kafkaProcess = new ManagedProcess(spec.name, {
    command: 'java',
    args: [...spec.jvmArgs, 'kafka.Kafka', configFile],
    cwd: spec.dir,
    logFile,
    probe: async () => {
      for (const config of spec.probeConfigs) await probeKafka(config)
    },
    onSpawn: spec.onSpawn,
    log: spec.log,
  })

  const formatAndStart = async (signal: AbortSignal): Promise<void> => {
    if (spec.zookeeperConnect !== undefined) {
      // ZooKeeper mode: nothing to format; the SCRAM user is a ZooKeeper config entry.
      await createZnodePath(spec.zookeeperConnect)
      if (spec.scram !== undefined) {
        const args = [...spec.jvmArgs, 'kafka.admin.ConfigCommand', '--zookeeper', spec.zookeeperConnect, '--alter', '--add-config', `SCRAM-SHA-512=[password=${spec.scram.password}]`, '--entity-type', 'users', '--entity-name', spec.scram.username]
        try {
          const { stdout, stderr } = await execFileAsync('java', args, { cwd: spec.dir, signal, maxBuffer: 16 * 1024 * 1024 })
          await fs.appendFile(logFile, `[scram user]\n${stdout}${stderr}`)
        } catch (error) {
          if (isAbortError(error)) throw error
          // Not the error itself: its message holds the command line, password included.
          throw new LocalStackError(`${spec.name}: creating the SCRAM user in ZooKeeper failed:\n${lastLines(outputOf(error), LOG_TAIL_LINES)}`, logFile)
        }
      }
      await kafkaProcess.start(signal)
      return
    }
    // KRaft needs its metadata log formatted once. The SCRAM user goes in here too: kafkajs
    // cannot create one, and this spares a kafka-configs run against the live broker.
    const formatArgs = [...spec.jvmArgs, await kafkaToolClass(spec.libDir, ['kafka.tools.StorageTool', 'org.apache.kafka.tools.StorageTool']), 'format', '-t', kafkaClusterId(), '-c', configFile]
    for (const user of [...(spec.scram === undefined ? [] : [spec.scram]), ...(spec.users ?? [])]) formatArgs.push('--add-scram', `SCRAM-SHA-512=[name=${user.username},password=${user.password}]`)
    try {
      const { stdout, stderr } = await execFileAsync('java', formatArgs, { cwd: spec.dir, signal, maxBuffer: 16 * 1024 * 1024 })
      await fs.appendFile(logFile, `[storage format]\n${stdout}${stderr}`)
    } catch (error) {
      if (isAbortError(error)) throw error
      throw new LocalStackError(`${spec.name}: formatting the KRaft storage failed:\n${lastLines(outputOf(error), LOG_TAIL_LINES)}`, logFile, {
        cause: error,
      })
    }
    await kafkaProcess.start(signal)
  }
  return { process: kafkaProcess, formatAndStart }
}

/** Creates the chroot of `host:port/chroot` (and its parents); Kafka 2.x's tools do not. */
async function createZnodePath(connect: string): Promise<void> {
  const slash = connect.indexOf('/')
  const client = zookeeper.createClient(connect.slice(0, slash), { sessionTimeout: 10000, retries: 3 })
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new LocalStackError(`ZooKeeper at ${connect.slice(0, slash)} did not answer within 10 s`)), 10000)
      client.once('connected', () => {
        client.mkdirp(connect.slice(slash), (error) => {
          clearTimeout(timer)
          if (error) reject(error)
          else resolve()
        })
      })
      client.connect()
    })
  } finally {
    client.close()
  }
}

function kafkaServerProperties(spec: KafkaSpec, dataDir: string): string {
  const { ports } = spec
  const listeners = [`PLAINTEXT://127.0.0.1:${ports.plaintext}`]
  if (ports.ssl !== undefined) listeners.push(`SSL://127.0.0.1:${ports.ssl}`)
  if (ports.saslSsl !== undefined) listeners.push(`SASL_SSL://127.0.0.1:${ports.saslSsl}`)
  if (ports.saslPlaintext !== undefined) listeners.push(`SASL_PLAINTEXT://127.0.0.1:${ports.saslPlaintext}`)
  const mode =
    spec.zookeeperConnect === undefined
      ? [
          `# ${spec.name} cluster of the Ferry local stack: one KRaft node acting as broker and controller.`,
          'process.roles=broker,controller',
          'node.id=1',
          `controller.quorum.voters=1@127.0.0.1:${ports.controller}`,
          'controller.listener.names=CONTROLLER',
          `listeners=${[...listeners, `CONTROLLER://127.0.0.1:${ports.controller}`].join(',')}`,
          'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT',
          // After a kill -9 the restarted node's controller refuses the new broker incarnation
          // (DUPLICATE_BROKER_REGISTRATION) until the old one's session expires: 9 s by default,
          // which made restart() take ~17 s. Heartbeats are local, so a short session is cheap.
          'broker.heartbeat.interval.ms=500',
          'broker.session.timeout.ms=4000',
        ]
      : [
          `# ${spec.name} cluster of the Ferry local stack: one ZooKeeper-mode broker (a release before 3.0).`,
          'broker.id=1',
          `zookeeper.connect=${spec.zookeeperConnect}`,
          // A restarted broker re-registers once its previous session is gone.
          'zookeeper.session.timeout.ms=6000',
          `listeners=${listeners.join(',')}`,
          'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL',
        ]
  const lines = [
    ...mode,
    `advertised.listeners=${listeners.join(',')}`,
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${dataDir}`,
    'num.partitions=1',
    'default.replication.factor=1',
    'auto.create.topics.enable=false',
    // One node: every internal topic must live with replication factor 1. One partition each
    // keeps the first consumer group or transaction from creating 50 partitions (seconds).
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=1',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=1',
    'min.insync.replicas=1',
    'group.initial.rebalance.delay.ms=0',
  ]
  if (spec.authorizer === true && spec.zookeeperConnect === undefined) {
    lines.push(
      'authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      // The controller and broker talk to each other as User:ANONYMOUS (PLAINTEXT) too.
      // The stack's own identities are super users, so every test that does not set ACLs runs as before.
      `super.users=${['User:ANONYMOUS', ...(spec.certs === undefined ? [] : [CLIENT_CERT_PRINCIPAL]), ...(spec.scram === undefined ? [] : [`User:${spec.scram.username}`])].join(';')}`,
      'allow.everyone.if.no.acl.found=true',
    )
  }
  if (spec.certs !== undefined) {
    lines.push(
      // PEM stores: the keystore file is the PKCS#8 key followed by the chain. Unencrypted (no
      // ssl.key.password may then be set) except for Kafka before 3.0, which requires a password.
      'ssl.keystore.type=PEM',
      ...(spec.zookeeperConnect === undefined
        ? [`ssl.keystore.location=${spec.certs.brokerKeystoreFile}`]
        : [`ssl.keystore.location=${spec.certs.encryptedBrokerKeystoreFile}`, `ssl.key.password=${spec.certs.brokerKeyPassword}`]),
      'ssl.truststore.type=PEM',
      `ssl.truststore.location=${spec.certs.caFile}`,
      'ssl.client.auth=required',
    )
  }
  if (spec.scram !== undefined) {
    lines.push(
      'sasl.enabled.mechanisms=SCRAM-SHA-512',
      'listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512',
      'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
      // SASL authenticates the client there; requiring a certificate as well would hide
      // whether a failure comes from TLS or from SASL.
      'listener.name.sasl_ssl.ssl.client.auth=none',
    )
  }
  if (ports.saslPlaintext !== undefined) {
    lines.push(
      'listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-512',
      'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;',
    )
  }
  return `${lines.join('\n')}\n`
}

/** A random KRaft cluster id: 16 bytes, base64url without padding (what `random-uuid` prints). */
function kafkaClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url')
    // Kafka's own generator rejects ids starting with '-': they parse as command-line flags.
    if (!id.startsWith('-')) return id
  }
}

async function probeKafka(config: KafkaConfig): Promise<void> {
  const admin = new Kafka({
    ...config,
    clientId: 'ferry-local-stack-probe',
    logLevel: logLevel.NOTHING,
    connectionTimeout: PROBE_TIMEOUT_MS,
    requestTimeout: PROBE_TIMEOUT_MS,
    retry: { retries: 0 },
  }).admin()
  try {
    await admin.connect()
    const cluster = await admin.describeCluster()
    if (cluster.brokers.length === 0) throw new Error('metadata lists no broker yet')
  } finally {
    await admin.disconnect().catch(() => undefined)
  }
}

/**
 * The jars as an explicit, sorted classpath instead of `lib/*`: ZooKeeper 3.8 brings
 * logback-classic, and with two SLF4J bindings on the classpath SLF4J 1.7 takes whichever the
 * JVM lists first, which for a wildcard is directory order. Leaving logback out makes every
 * JVM log through reload4j and our log4j.properties.
 */
export async function kafkaClasspath(libDir: string): Promise<string> {
  const jars = (await fs.readdir(libDir)).filter((name) => name.endsWith('.jar') && !name.startsWith('logback-')).sort()
  if (!jars.some((name) => name.startsWith('kafka_'))) {
    throw new LocalStackError(`no Kafka broker jar in ${libDir}; remove its .complete marker to resolve the jars again`)
  }
  return jars.map((name) => path.join(libDir, name)).join(path.delimiter)
}

/** Names of the entries of a jar (zip), read from its central directory. */
async function jarEntries(file: string): Promise<string[]> {
  const data = await fs.readFile(file)
  // The end-of-central-directory record: within the last 22 + 65,535 bytes (a comment may follow it).
  let end = -1
  for (let i = data.length - 22; i >= Math.max(0, data.length - 22 - 65535); i--) {
    if (data.readUInt32LE(i) === 0x06054b50) {
      end = i
      break
    }
  }
  if (end < 0) throw new LocalStackError(`${file} is not a jar (no zip central directory)`)
  const count = data.readUInt16LE(end + 10)
  let at = data.readUInt32LE(end + 16)
  const names: string[] = []
  for (let n = 0; n < count && at + 46 <= data.length && data.readUInt32LE(at) === 0x02014b50; n++) {
    const nameLength = data.readUInt16LE(at + 28)
    names.push(data.toString('utf8', at + 46, at + 46 + nameLength))
    at += 46 + nameLength + data.readUInt16LE(at + 30) + data.readUInt16LE(at + 32)
  }
  return names
}

const classIndex = new Map<string, Promise<Set<string>>>()

/**
 * The first of `candidates` (fully qualified class names) that the jars in `libDir` hold: Kafka
 * moved its tools between releases (`kafka.tools.ConsoleProducer` in 3.x is
 * `org.apache.kafka.tools.ConsoleProducer` in 4.x), so tests name every home a tool has had.
 */
export async function kafkaToolClass(libDir: string, candidates: readonly string[]): Promise<string> {
  let index = classIndex.get(libDir)
  if (index === undefined) {
    index = (async () => {
      const jars = (await fs.readdir(libDir)).filter((name) => name.endsWith('.jar'))
      const all = await Promise.all(jars.map((jar) => jarEntries(path.join(libDir, jar))))
      return new Set(all.flat().filter((name) => name.endsWith('.class')))
    })()
    classIndex.set(libDir, index)
  }
  const classes = await index
  const found = candidates.find((name) => classes.has(`${name.replaceAll('.', '/')}.class`))
  if (found === undefined) throw new LocalStackError(`none of ${candidates.join(', ')} is in the jars of ${libDir}`)
  return found
}

// ---------------------------------------------------------------------------------------------
// Logging
// ---------------------------------------------------------------------------------------------

/** Shared by every JVM: stdout (redirected to the server's own log file), INFO, noisy loggers at WARN. */
const LOG4J_PROPERTIES = `log4j.rootLogger=INFO, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.common.config.AbstractConfig=WARN
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=WARN
# The full config dump (hundreds of lines) would fill every log tail; server.properties is next to the log.
log4j.logger.kafka.server.KafkaConfig=WARN
log4j.logger.org.apache.zookeeper.server.NIOServerCnxn=WARN
log4j.logger.org.apache.zookeeper.server.command=WARN
`

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

interface CertificateFiles {
  caFile: string
  wrongCaFile: string
  /** Broker key (PKCS#8) + broker certificate + CA certificate, for ssl.keystore.type=PEM. */
  brokerKeystoreFile: string
  /**
   * The same with the key encrypted under `brokerKeyPassword`: Kafka before 3.0 refuses an
   * unencrypted PEM key, and finds no PBES2 key factory on Java 17 (hence PKCS#12's SHA1-3DES).
   */
  encryptedBrokerKeystoreFile: string
  brokerKeyPassword: string
  clientCertFile: string
  clientKeyFile: string
}

const BROKER_CERT_EXTENSIONS = [
  'basicConstraints=CA:FALSE',
  'keyUsage=critical,digitalSignature,keyEncipherment',
  'extendedKeyUsage=serverAuth,clientAuth',
  // Clients connect to 127.0.0.1 and verify the host name against these.
  'subjectAltName=IP:127.0.0.1,DNS:localhost',
]
const CLIENT_CERT_EXTENSIONS = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=clientAuth']

async function createCertificates(dir: string): Promise<CertificateFiles> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 })
  const file = (name: string): string => path.join(dir, name)
  const openssl = async (...args: string[]): Promise<void> => {
    try {
      await execFileAsync('openssl', args, { cwd: dir })
    } catch (error) {
      const missing = isErrnoException(error) && error.code === 'ENOENT'
      const detail = missing ? 'openssl is not on PATH; install it (Debian: apt-get install openssl)' : lastLines(outputOf(error), 10)
      throw new LocalStackError(`openssl ${args[0]} failed: ${detail}`, undefined, { cause: error })
    }
  }
  // genpkey writes PKCS#8 ("BEGIN PRIVATE KEY") whatever the OpenSSL version; Kafka's PEM
  // keystore accepts only PKCS#8.
  const newKey = (name: string): Promise<void> =>
    openssl('genpkey', '-quiet', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', file(`${name}.key`))
  const newCa = async (name: string, subject: string): Promise<void> => {
    await newKey(name)
    await openssl(
      ...['req', '-x509', '-new', '-key', file(`${name}.key`), '-out', file(`${name}.pem`), '-days', '3650', '-subj', subject],
      ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    )
  }
  const newLeaf = async (name: string, subject: string, extensions: string[]): Promise<void> => {
    await newKey(name)
    await openssl('req', '-new', '-key', file(`${name}.key`), '-out', file(`${name}.csr`), '-subj', subject)
    await fs.writeFile(file(`${name}.ext`), `${extensions.join('\n')}\n`)
    await openssl(
      ...['x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.pem'), '-CAkey', file('ca.key')],
      // An explicit random serial instead of -CAcreateserial: the two signings run in parallel
      // and would race on the shared ca.srl file.
      ...['-set_serial', `0x${randomBytes(16).toString('hex')}`, '-days', '3650', '-extfile', file(`${name}.ext`), '-out', file(`${name}.pem`)],
    )
  }

  await Promise.all([
    (async () => {
      await newCa('ca', '/CN=Ferry local stack CA')
      await Promise.all([newLeaf('broker', '/CN=localhost', BROKER_CERT_EXTENSIONS), newLeaf('client', '/CN=ferry-client', CLIENT_CERT_EXTENSIONS)])
    })(),
    newCa('wrong-ca', '/CN=Unrelated CA'),
  ])

  const brokerKeyPassword = randomBytes(12).toString('hex')
  await openssl('pkcs8', '-topk8', '-v1', 'PBE-SHA1-3DES', '-in', file('broker.key'), '-out', file('broker-encrypted.key'), '-passout', `pass:${brokerKeyPassword}`)
  const [key, encryptedKey, cert, ca] = await Promise.all(['broker.key', 'broker-encrypted.key', 'broker.pem', 'ca.pem'].map((name) => fs.readFile(file(name), 'utf8')))
  await fs.writeFile(file('broker-keystore.pem'), [key, cert, ca].join(''), { mode: 0o600 })
  await fs.writeFile(file('broker-keystore-encrypted.pem'), [encryptedKey, cert, ca].join(''), { mode: 0o600 })
  return {
    caFile: file('ca.pem'),
    wrongCaFile: file('wrong-ca.pem'),
    brokerKeystoreFile: file('broker-keystore.pem'),
    encryptedBrokerKeystoreFile: file('broker-keystore-encrypted.pem'),
    brokerKeyPassword,
    clientCertFile: file('client.pem'),
    clientKeyFile: file('client.key'),
  }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

interface ProcessSpec {
  command: string
  args: string[]
  /** Inside the stack directory: the sweep recognises our processes by it. */
  cwd: string
  /** stdout and stderr, appended across restarts. */
  logFile: string
  /** Resolves when the server answers, throws otherwise; called repeatedly until the deadline. */
  probe: () => Promise<void>
  onSpawn: (name: StackProcessName, pid: number) => void
  log: LogFn
}

type ExitInfo = { code: number | null; signal: NodeJS.Signals | null } | { error: Error }

/** Every child of every stack in this process, for the last-resort kill on exit. */
const liveChildren = new Set<ChildProcess>()
let exitHookInstalled = false

function trackChild(child: ChildProcess): void {
  if (!exitHookInstalled) {
    exitHookInstalled = true
    // 'exit' handlers must be synchronous: a SIGKILL is all there is time for. Covers tests
    // that end with process.exit() (mocha --exit) before stop() ran.
    process.on('exit', () => {
      for (const c of liveChildren) c.kill('SIGKILL')
    })
  }
  liveChildren.add(child)
  child.once('exit', () => liveChildren.delete(child))
}

class ManagedProcess {
  private child: ChildProcess | undefined
  private exited: Promise<ExitInfo> = Promise.resolve({ code: null, signal: null })
  /** Size of the log when the current run was spawned: earlier runs' lines are not its story. */
  private logOffset = 0
  private running = false
  private lastPid = 0

  constructor(
    readonly name: StackProcessName,
    private readonly spec: ProcessSpec,
  ) {}

  get pid(): number {
    return this.lastPid
  }

  /** Spawns the process and waits until its probe succeeds; fails at once if it exits. */
  async start(signal?: AbortSignal): Promise<void> {
    const startedAtMs = Date.now()
    const fd = openSync(this.spec.logFile, 'a')
    this.logOffset = fstatSync(fd).size
    let child: ChildProcess
    try {
      // The log file as stdout/stderr rather than pipes: nothing to drain, and the server keeps
      // logging even if this process is busy or gone.
      child = spawn(this.spec.command, this.spec.args, {
        cwd: this.spec.cwd,
        stdio: ['ignore', fd, fd],
      })
    } finally {
      closeSync(fd)
    }
    this.child = child
    this.exited = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, exitSignal) => resolve({ code, signal: exitSignal }))
      child.once('error', (error) => resolve({ error }))
    })
    void this.exited.then(() => {
      if (this.child === child) this.running = false
    })
    if (child.pid !== undefined) {
      this.running = true
      this.lastPid = child.pid
      trackChild(child)
      this.spec.onSpawn(this.name, child.pid)
    }
    await this.waitReady(child, signal)
    this.spec.log(`${this.name} ready (pid ${child.pid}) in ${Date.now() - startedAtMs} ms`)
  }

  private async waitReady(child: ChildProcess, signal: AbortSignal | undefined): Promise<void> {
    const deadlineMs = Date.now() + READY_TIMEOUT_MS
    let exitInfo: ExitInfo | undefined
    void this.exited.then((info) => (exitInfo = info))
    let lastError: unknown
    for (;;) {
      if (signal?.aborted) {
        this.kill('SIGKILL')
        throw abortError()
      }
      if (exitInfo !== undefined) {
        throw await this.startError(`${this.name} ${describeExit(exitInfo)} while starting`)
      }
      try {
        await this.spec.probe()
        // A probe that succeeded against a dying process (or one we did not start) proves nothing.
        if (exitInfo === undefined && this.child === child) return
      } catch (error) {
        lastError = error
      }
      if (Date.now() >= deadlineMs) {
        this.kill('SIGKILL')
        throw await this.startError(`${this.name} did not answer within ${READY_TIMEOUT_MS} ms (last probe error: ${errorMessage(lastError)})`)
      }
      // Wakes early when the process exits, so a crash is reported at once.
      await Promise.race([sleep(PROBE_INTERVAL_MS), this.exited])
    }
  }

  private async startError(message: string): Promise<LocalStackError> {
    const log = await readLogSince(this.spec.logFile, this.logOffset)
    // Kafka logs its fatal error and then a hundred lines of orderly shutdown: the tail alone
    // would hide the cause.
    const problems = problemLines(log, LOG_PROBLEM_LINES)
    const errors = problems.length > 0 ? `\nerrors in ${this.spec.logFile}:\n${problems.join('\n')}` : ''
    return new LocalStackError(`${message}${errors}\nlast lines of ${this.spec.logFile}:\n${lastLines(log, LOG_TAIL_LINES)}`, this.spec.logFile)
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child?.kill(signal)
  }

  /** SIGTERM, then SIGKILL once graceMs have passed; resolves when the process is gone. */
  async stop(graceMs: number): Promise<void> {
    if (!this.running) return
    if (graceMs > 0) {
      this.kill('SIGTERM')
      if (await settlesWithin(this.exited, graceMs)) return
      this.spec.log(`${this.name} still running ${graceMs} ms after SIGTERM: sending SIGKILL`)
    }
    this.kill('SIGKILL')
    await this.exited
  }

  async restart(): Promise<void> {
    this.spec.log(`${this.name}: restarting (SIGKILL, then start on the same ports)`)
    await this.stop(0)
    await this.start()
  }
}

function describeExit(info: ExitInfo): string {
  if ('error' in info) return `could not be started (${info.error.message})`
  return info.signal !== null ? `was killed by ${info.signal}` : `exited with code ${info.code}`
}

// ---------------------------------------------------------------------------------------------
// Stack directory, stack.json and the sweep of abandoned stacks
// ---------------------------------------------------------------------------------------------

/** `<dir>/stack.json`: what a later run needs to clean up after a crashed owner. */
interface StackRecord {
  ownerPid: number
  /** Start time of the owner in clock ticks since boot (/proc/<pid>/stat), to detect pid reuse. */
  ownerStartTime: string | null
  dir: string
  /** Set when the directory must survive its owner (FERRY_KEEP_STACK=1 or a caller-supplied dir). */
  keep: boolean
  createdAt: string
  ports: Record<string, number>
  files: Record<string, string>
  pids: Partial<Record<StackProcessName, number>>
}

function stackRecordFile(dir: string): string {
  return path.join(dir, 'stack.json')
}

/** Written synchronously through a rename, so a concurrent sweep never reads half a file. */
function writeStackRecord(record: StackRecord): void {
  const file = stackRecordFile(record.dir)
  writeFileSync(`${file}.tmp`, `${JSON.stringify(record, null, 2)}\n`)
  renameSync(`${file}.tmp`, file)
}

async function prepareStackDir(baseDir: string | undefined): Promise<{ dir: string; ownsDir: boolean }> {
  if (baseDir === undefined) return { dir: await fs.mkdtemp(path.join(os.tmpdir(), STACK_DIR_PREFIX)), ownsDir: true }
  const dir = path.resolve(baseDir)
  await fs.mkdir(dir, { recursive: true })
  const entries = await fs.readdir(dir)
  // Old KRaft metadata or ZooKeeper data would clash with the new cluster ids and ports.
  if (entries.length > 0) throw new LocalStackError(`baseDir ${dir} is not empty; give an empty or missing directory`)
  return { dir, ownsDir: false }
}

/**
 * Removes `ferry-stack-*` directories of os.tmpdir() whose owner process is dead, SIGKILLing
 * their recorded servers first. A recorded pid is only killed when /proc shows it belongs to
 * that directory, so a pid reused by an unrelated process survives. Stacks of live owners are
 * never touched.
 */
async function sweepAbandonedStacks(log: LogFn): Promise<void> {
  const tmp = os.tmpdir()
  const entries = await fs.readdir(tmp, { withFileTypes: true }).catch(() => [])
  for (const entry of entries) {
    if (!entry.isDirectory() || !entry.name.startsWith(STACK_DIR_PREFIX)) continue
    const dir = path.join(tmp, entry.name)
    let record: StackRecord
    try {
      record = JSON.parse(await fs.readFile(stackRecordFile(dir), 'utf8')) as StackRecord
    } catch {
      continue // Not ours, or its owner is between mkdtemp and the first write.
    }
    if (typeof record.ownerPid !== 'number' || isOwnerAlive(record)) continue

    const killed: number[] = []
    for (const pid of Object.values(record.pids ?? {})) {
      if (typeof pid === 'number' && isPidAlive(pid) && belongsToStack(pid, dir)) {
        try {
          process.kill(pid, 'SIGKILL')
          killed.push(pid)
        } catch {
          // Exited between the check and the kill.
        }
      }
    }
    if (record.keep === true) {
      if (killed.length > 0) log(`abandoned stack ${dir}: killed pids ${killed.join(', ')}, kept the directory`)
      continue
    }
    await fs.rm(dir, { recursive: true, force: true })
    log(`removed abandoned stack ${dir} (owner pid ${record.ownerPid} is gone${killed.length > 0 ? `; killed pids ${killed.join(', ')}` : ''})`)
  }
}

function isOwnerAlive(record: StackRecord): boolean {
  if (!isPidAlive(record.ownerPid)) return false
  // Same pid but a different start time: the owner died and its pid went to someone else.
  const startTime = processStartTime(record.ownerPid)
  return record.ownerStartTime == null || startTime === null || startTime === record.ownerStartTime
}

function isPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return isErrnoException(error) && error.code === 'EPERM'
  }
}

/** True when the process's command line names the directory or it runs inside it. */
function belongsToStack(pid: number, dir: string): boolean {
  try {
    // Java shows its config path in the command line. redis-server overwrites its command line
    // (and the environment next to it) with its title, but we start it inside the directory.
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    if (cmdline.includes(`${dir}${path.sep}`)) return true
    const cwd = readlinkSync(`/proc/${pid}/cwd`)
    return cwd === dir || cwd.startsWith(`${dir}${path.sep}`)
  } catch {
    return false // No /proc (not Linux) or no access: do not risk killing a stranger.
  }
}

function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the parenthesised command name (which may itself contain spaces); starttime
    // is field 22 overall, the 20th after ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
  } catch {
    return null
  }
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

let defaultLogFn: LogFn | undefined
function defaultLog(): LogFn {
  if (defaultLogFn === undefined) {
    const logger = createLogger({ name: 'local-stack' })
    defaultLogFn = (line) => logger.info({ event: 'stack.progress' }, line)
  }
  return defaultLogFn
}

function findPomFile(): string {
  // Walks up from this module so it works from deploy/ (ts) and from dist/deploy/ (js).
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    const candidate = path.join(dir, 'deploy', 'pom.xml')
    if (existsSync(candidate)) return candidate
    const parent = path.dirname(dir)
    if (parent === dir) throw new LocalStackError('deploy/pom.xml not found above the local-stack module')
    dir = parent
  }
}

async function findExecutable(name: string): Promise<string | undefined> {
  // Debian puts some servers in sbin, which non-login shells may leave out of PATH.
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/bin', '/usr/bin', '/usr/sbin']
  for (const dir of dirs) {
    if (dir === '') continue
    const candidate = path.join(dir, name)
    try {
      await fs.access(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // Not in this directory.
    }
  }
  return undefined
}

/**
 * One free loopback port per name, chosen at random below the kernel's ephemeral range rather
 * than with bind(0). Servers bind their port seconds after it is picked, and a port from the
 * ephemeral range can meanwhile become the local port of any outgoing connection (our own
 * readiness probes make hundreds), which makes the server's bind fail with EADDRINUSE.
 */
async function pickFreePorts<K extends string>(names: readonly K[]): Promise<Record<K, number>> {
  const { low, high } = serverPortRange()
  // Every picked port stays bound until all are known, so none is handed out twice.
  const servers: net.Server[] = []
  const ports: Partial<Record<K, number>> = {}
  try {
    for (const name of names) {
      for (let tries = 0; ports[name] === undefined; tries++) {
        if (tries >= 100) throw new LocalStackError(`no free port found in ${low}-${high} after 100 tries`)
        const port = low + Math.floor(Math.random() * (high - low + 1))
        const server = await listenOn(port)
        if (server !== undefined) {
          servers.push(server)
          ports[name] = port
        }
      }
    }
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))))
  }
  return ports as Record<K, number>
}

/** The ports below the ephemeral range (Linux: /proc/sys/net/ipv4/ip_local_port_range, default 32768-60999). */
function serverPortRange(): { low: number; high: number } {
  let ephemeralLow = 32_768 // Linux's default, also below the 49152 of macOS and Windows.
  try {
    const [first] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)
    if (first !== undefined && Number(first) > 0) ephemeralLow = Number(first)
  } catch {
    // Not Linux: keep the default.
  }
  const high = ephemeralLow - 1
  // A tuned range leaving too little room below it: fall back to the ports above 1023.
  return { low: high - MIN_SERVER_PORT >= 1_000 ? MIN_SERVER_PORT : 1_024, high }
}

/** A server listening on 127.0.0.1:port, or undefined when the port is in use. */
function listenOn(port: number): Promise<net.Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', (error) => (isErrnoException(error) && error.code === 'EADDRINUSE' ? resolve(undefined) : reject(error)))
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(server))
  })
}

/** Sends `request` and collects the answer until the server closes or `isComplete` says so. */
function tcpRequest(port: number, request: string, isComplete: (data: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = ''
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.setTimeout(PROBE_TIMEOUT_MS, () => socket.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)))
    socket.setEncoding('utf8')
    socket.once('connect', () => socket.write(request))
    socket.on('data', (chunk: string) => {
      data += chunk
      if (isComplete(data)) {
        socket.end()
        resolve(data)
      }
    })
    socket.once('end', () => resolve(data))
    socket.once('error', reject)
  })
}

/** The log from byteOffset on, at most its last 1 MiB. */
async function readLogSince(file: string, byteOffset: number): Promise<string> {
  try {
    const handle = await fs.open(file, 'r')
    try {
      const { size } = await handle.stat()
      const start = Math.max(byteOffset, size - 1024 * 1024)
      const buffer = Buffer.alloc(Math.max(0, size - start))
      await handle.read(buffer, 0, buffer.length, start)
      return buffer.toString('utf8')
    } finally {
      await handle.close()
    }
  } catch (error) {
    return `(log unreadable: ${errorMessage(error)})`
  }
}

/** Log4j ERROR/FATAL lines, exception and "Caused by" lines, bind failures: first `max`, without repeats. */
function problemLines(log: string, max: number): string[] {
  const problem = /^\[[^\]]*\] (ERROR|FATAL) |^Caused by: |^[\w.$]+(Exception|Error): |Address already in use/
  const found = new Set<string>()
  for (const line of log.split('\n')) {
    if (found.size >= max) break
    if (problem.test(line)) found.add(line.trimEnd())
  }
  return [...found]
}

function lastLines(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}

/** What a failed execFile printed; its message only when it printed nothing (the message repeats the whole command line). */
function outputOf(error: unknown): string {
  const e = error as { stdout?: unknown; stderr?: unknown; message?: unknown }
  const printed = [e.stdout, e.stderr].filter((part): part is string => typeof part === 'string' && part.trim() !== '').join('\n')
  return printed !== '' ? printed : errorMessage(error)
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

/** Whether `promise` settles within timeoutMs. The timer is cleared either way: a pending one would keep the caller's process alive. */
async function settlesWithin(promise: Promise<unknown>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs)
  })
  try {
    return await Promise.race([promise.then(() => true as const), timedOut])
  } finally {
    clearTimeout(timer)
  }
}

function abortError(): Error {
  const error = new Error('aborted: another server of the stack failed to start')
  error.name = 'AbortError'
  return error
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError'
}

function isErrnoException(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && 'code' in error
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
