/**
 * Topic configs and ACLs follow (controller/topic-follow.ts) on the real stack:
 * - configs changed on the source topic (retention.ms, cleanup.policy) reach the target topic
 *   within the group's sync interval; denied ones (min.insync.replicas, message.timestamp.type)
 *   never do; the group's override stays; a config set on the target by hand that Ferry does not
 *   sync stays too;
 * - ACLs (opt-in): a principal the source lets READ a topic reads the mirrored topic on the target
 *   with its own credentials, through Kafka's own console consumer (a client nobody on the
 *   project wrote; kcat would be lighter, but Debian's librdkafka 2.0.2 fails SCRAM-SHA-512
 *   against these brokers with "invalid credentials" where the Java client and kafkajs succeed),
 *   under its mapped principal; a principal without ACLs is refused; no WRITE ACL is created.
 * The ACL half needs an authorizer on the source: skipped on a ZooKeeper-mode source (2.8 lane).
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { AclOperationTypes, AclPermissionTypes, AclResourceTypes, ConfigResourceTypes, Kafka, ResourcePatternTypes, logLevel } from '../../common/kafka/kafkajs.js'
import { ensureKafkaJars, kafkaClasspath, type LocalStack } from '../../deploy/local-stack.js'
import { sharedStack, uniqueName, waitFor } from './harness.js'
import { topicEnd } from './kafka-helpers.js'
import { startMirrorDeployment, type MirrorDeployment } from './mirror-setup.js'

const execFileAsync = promisify(execFile)
/** The groups' sync interval here; the default is 30 s. */
const INTERVAL_MS = 2000
/** What a change may take beyond the interval: the follower's 1 s tick, the run itself, a ZooKeeper-mode source applying its change. */
const SLACK_MS = 5000

function admin(brokers: string) {
  return new Kafka({ brokers: [brokers], clientId: 'topic-follow-test', logLevel: logLevel.NOTHING }).admin()
}

/** The configs set on the topic itself (DYNAMIC_TOPIC_CONFIG), as a plain object sorted by name. */
async function dynamicConfigs(brokers: string, topic: string): Promise<Record<string, string>> {
  const a = admin(brokers)
  await a.connect()
  try {
    const result = await a.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }] })
    const entries = result.resources.flatMap((r) => r.configEntries).filter((e) => (e as { configSource?: number }).configSource === 1 && e.configValue !== null)
    return Object.fromEntries(entries.map((e) => [e.configName, e.configValue]).sort(([x], [y]) => String(x).localeCompare(String(y))))
  } finally {
    await a.disconnect()
  }
}

async function replaceConfigs(brokers: string, topic: string, configs: Record<string, string>): Promise<void> {
  const a = admin(brokers)
  await a.connect()
  try {
    await a.alterConfigs({ validateOnly: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })) }] })
  } finally {
    await a.disconnect()
  }
}

const sorted = (configs: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(configs).sort(([x], [y]) => x.localeCompare(y)))

/** Every ACL on the literal topic, any operation and permission: `principal operation permission`. */
async function topicAcls(brokers: string, topic: string): Promise<string[]> {
  const a = admin(brokers)
  await a.connect()
  try {
    const result = await a.describeAcls({ resourceType: AclResourceTypes.TOPIC, resourceName: topic, resourcePatternType: ResourcePatternTypes.LITERAL, operation: AclOperationTypes.ANY, permissionType: AclPermissionTypes.ANY })
    const name = (table: object, value: number): string => Object.entries(table).find(([, v]) => v === value)?.[0] ?? String(value)
    return result.resources.flatMap((r) => r.acls.map((acl) => `${acl.principal} ${name(AclOperationTypes, acl.operation)} ${name(AclPermissionTypes, acl.permissionType)}`)).sort()
  } finally {
    await a.disconnect()
  }
}

/**
 * Reads the topic from the beginning with Kafka's own console consumer (Java, from the stack's
 * jars) as `user` over SCRAM-SHA-512: the values, or what it printed when it failed.
 */
async function consoleRead(brokers: string, topic: string, user: { username: string; password: string }, tls?: { caFile: string }): Promise<{ values: string[]; stderr: string }> {
  // Credentials in a file the consumer reads, not on its command line.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-console-'))
  const config = path.join(dir, 'consumer.properties')
  writeFileSync(
    config,
    [
      `security.protocol=${tls ? 'SASL_SSL' : 'SASL_PLAINTEXT'}`,
      'sasl.mechanism=SCRAM-SHA-512',
      `sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="${user.username}" password="${user.password}";`,
      ...(tls ? ['ssl.truststore.type=PEM', `ssl.truststore.location=${tls.caFile}`] : []),
    ].join('\n') + '\n',
    { mode: 0o600 },
  )
  try {
    const classpath = await kafkaClasspath(await ensureKafkaJars(() => undefined))
    // Its errors (a refused read) go to stderr only with a log4j appender.
    const log4j = path.join(dir, 'log4j.properties')
    writeFileSync(log4j, ['log4j.rootLogger=WARN, stderr', 'log4j.appender.stderr=org.apache.log4j.ConsoleAppender', 'log4j.appender.stderr.Target=System.err', 'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout', 'log4j.appender.stderr.layout.ConversionPattern=%p %c: %m%n'].join('\n') + '\n')
    const args = ['-Xmx128m', `-Dlog4j.configuration=file:${log4j}`, '-cp', classpath, 'org.apache.kafka.tools.consumer.ConsoleConsumer', '--bootstrap-server', brokers, '--topic', topic, '--from-beginning', '--max-messages', '5', '--timeout-ms', '15000', '--command-config', config]
    // A refused read may end with status 0 (no message within the timeout) or not: both are answers.
    const { stdout, stderr } = await execFileAsync('java', args, { timeout: 60000, maxBuffer: 16 * 1024 * 1024 }).catch((error: { stdout?: string; stderr?: string; message: string }) => ({ stdout: error.stdout ?? '', stderr: `${error.stderr ?? ''}\n${error.message}` }))
    return { values: stdout.split('\n').filter((line) => line !== ''), stderr }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

describe('topic configs and ACLs follow (real stack)', function () {
  this.timeout(120000)
  let stack: LocalStack
  let ferry: MirrorDeployment

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    ferry = await startMirrorDeployment(stack, 'follow')
  })

  after(async function () {
    this.timeout(60000)
    await ferry?.stop()
  })

  it('configs: retention.ms and cleanup.policy changed on the source reach the target within the interval; denied configs never; the override and a target-only config stay', async () => {
    const topic = uniqueName('follow-cfg')
    const targetTopic = `fc.${topic}`
    const source = admin(stack.source.plaintext)
    await source.connect()
    // min.insync.replicas and message.timestamp.type are denied: they must never reach the target.
    const denied = { 'min.insync.replicas': '2', 'message.timestamp.type': 'LogAppendTime' }
    try {
      await source.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1, configEntries: Object.entries({ 'retention.ms': '86400000', ...denied }).map(([name, value]) => ({ name, value })) }] })
    } finally {
      await source.disconnect()
    }
    const created = await ferry.api('POST', '/v1/groups', { name: 'follow-cfg', sourceCluster: 'src-tls', targetCluster: 'dst', topics: [topic], rename: { prefix: 'fc.' }, topicConfigs: { intervalMs: INTERVAL_MS, overrides: { 'segment.ms': '7200000' } } })
    expect(created.status, created.text).to.equal(201)

    // Created by the worker with the source's allowed configs and the override.
    await waitFor('the target topic created with the allowed configs and the override', async () => {
      const configs = await dynamicConfigs(stack.target.plaintext, targetTopic).catch(() => undefined)
      return configs !== undefined && JSON.stringify(configs) === JSON.stringify({ 'retention.ms': '86400000', 'segment.ms': '7200000' })
    }, 60000)

    // The source changes: retention, cleanup policy, and the overridden segment.ms.
    const changedAt = Date.now()
    await replaceConfigs(stack.source.plaintext, topic, { 'retention.ms': '3600000', 'cleanup.policy': 'compact', 'segment.ms': '600000', ...denied })
    const expected = { 'cleanup.policy': 'compact', 'retention.ms': '3600000', 'segment.ms': '7200000' }
    let last: Record<string, string> = {}
    await waitFor("the target topic's configs to follow", async () => {
      last = await dynamicConfigs(stack.target.plaintext, targetTopic)
      return JSON.stringify(last) === JSON.stringify(expected)
    }, INTERVAL_MS * 3 + 20000, 100).catch(() => undefined)
    const elapsedMs = Date.now() - changedAt
    expect(last, 'the allowed changes followed, the override stayed, nothing denied came').to.deep.equal(expected)
    console.log(`      source change visible on the target after ${elapsedMs} ms (interval ${INTERVAL_MS} ms)`)
    expect(elapsedMs, 'within the sync interval (plus the tick and the run)').to.be.at.most(INTERVAL_MS + SLACK_MS)

    // An operator sets a config Ferry does not sync on the target; the source changes again.
    await replaceConfigs(stack.target.plaintext, targetTopic, { ...expected, 'min.insync.replicas': '1' })
    await replaceConfigs(stack.source.plaintext, topic, { 'retention.ms': '1800000', 'cleanup.policy': 'compact', 'segment.ms': '600000', ...denied })
    const after = sorted({ ...expected, 'retention.ms': '1800000', 'min.insync.replicas': '1' })
    await waitFor('the second change to follow, the target-only config kept', async () => {
      last = await dynamicConfigs(stack.target.plaintext, targetTopic)
      return JSON.stringify(last) === JSON.stringify(after)
    }, INTERVAL_MS * 3 + 20000, 100).catch(() => undefined)
    expect(last, 'denied source configs never reach the target; the target keeps its own min.insync.replicas').to.deep.equal(after)

    const status = (await ferry.api('GET', '/v1/groups/follow-cfg')).body as { status: { followErrors?: unknown[] } }
    expect(status.status.followErrors, 'nothing refused').to.equal(undefined)
    const events = ((await ferry.api('GET', '/v1/events?limit=100')).body as { events: Array<{ type: string; group?: string; message: string }> }).events
    const changes = events.filter((e) => e.type === 'topic_config_changed' && e.group === 'follow-cfg').map((e) => e.message)
    expect(changes.some((m) => m.includes(targetTopic) && m.includes('cleanup.policy (default) \u2192 compact') && m.includes('retention.ms 86400000 \u2192 3600000')), changes.join('\n')).to.equal(true)
  })

  it('ACLs: the mapped principal reads the mirrored topic with its own credentials (Kafka\'s console consumer), others are refused, and no WRITE ACL is created', async function () {
    const reader = stack.source.reader
    if (!stack.source.authorizer || reader === undefined) this.skip()
    if (reader === undefined) return
    const topic = uniqueName('follow-acl')
    const targetTopic = `fa.${topic}`
    const source = admin(stack.source.plaintext)
    await source.connect()
    try {
      await source.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] })
      const producer = new Kafka({ brokers: [stack.source.plaintext], logLevel: logLevel.NOTHING }).producer()
      await producer.connect()
      await producer.send({ topic, messages: ['r0', 'r1', 'r2', 'r3', 'r4'].map((value) => ({ value })) })
      await producer.disconnect()
      const acl = (principal: string, operation: number) => ({ resourceType: AclResourceTypes.TOPIC, resourceName: topic, resourcePatternType: ResourcePatternTypes.LITERAL, principal, host: '*', operation, permissionType: AclPermissionTypes.ALLOW })
      await source.createAcls({ acl: [acl(`User:${reader.username}`, AclOperationTypes.READ), acl(`User:${reader.username}`, AclOperationTypes.DESCRIBE), acl(`User:${reader.username}`, AclOperationTypes.WRITE), acl('User:bob', AclOperationTypes.READ)] })
    } finally {
      await source.disconnect()
    }
    // The principal reads the source with its own credentials (the ACL is real there).
    const onSource = await consoleRead(stack.source.saslSsl, topic, reader, { caFile: stack.source.caFile })
    expect(onSource.values, `the reader reads the source topic (${onSource.stderr})`).to.deep.equal(['r0', 'r1', 'r2', 'r3', 'r4'])

    const created = await ferry.api('POST', '/v1/groups', { name: 'follow-acl', sourceCluster: 'src-tls', targetCluster: 'dst', topics: [topic], rename: { prefix: 'fa.' }, acls: { sync: true, intervalMs: INTERVAL_MS, principals: { [`User:${reader.username}`]: `User:${stack.target.readerDr.username}` } } })
    expect(created.status, created.text).to.equal(201)
    const wanted = [`User:${stack.target.readerDr.username} DESCRIBE ALLOW`, `User:${stack.target.readerDr.username} READ ALLOW`, 'User:bob READ ALLOW'].sort()
    const acls = await waitFor('the READ and DESCRIBE ACLs on the target topic', async () => {
      const found = await topicAcls(stack.target.plaintext, targetTopic)
      return JSON.stringify(found) === JSON.stringify(wanted) ? found : undefined
    }, 30000)
    expect(acls.filter((a) => a.includes(' WRITE ')), 'no WRITE ACL on the target').to.deep.equal([])
    await waitFor('the records mirrored', async () => (await topicEnd(stack.target.plaintext, targetTopic).catch(() => 0)) >= 5, 60000)

    const asReader = await consoleRead(stack.target.saslPlaintext, targetTopic, stack.target.readerDr)
    expect(asReader.values, `the mapped principal reads the mirrored topic (${asReader.stderr})`).to.deep.equal(['r0', 'r1', 'r2', 'r3', 'r4'])
    const asOutsider = await consoleRead(stack.target.saslPlaintext, targetTopic, stack.target.outsider)
    expect(asOutsider.values, 'a principal without ACLs reads nothing').to.deep.equal([])
    expect(asOutsider.stderr, 'and is refused for want of authorization').to.match(/TopicAuthorizationException|not authorized/i)
    // A later sync still adds nothing (WRITE stays behind on the source).
    expect(await topicAcls(stack.target.plaintext, targetTopic)).to.deep.equal(wanted)
  })
})
