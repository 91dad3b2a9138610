/**
 * Secrets come only from where the operator allowed (issue 13, finding 2 and the SCRAM/ACL
 * item), on a real controller and worker against real ZooKeeper, Redis and Kafka, with a fake
 * SASL listener of the test's own standing in for an attacker's broker:
 *  - files outside the secrets directory, variables without the prefix and TLS files are
 *    refused at registration with one answer, whether the path exists or not;
 *  - cluster records that never passed the API (written straight into ZooKeeper) are refused
 *    at use by the worker: the listener never receives the canaries;
 *  - an inline password is sealed in its znode; without a key it is refused;
 *  - with ZooKeeper credentials, Ferry's znodes cannot be read without them.
 * The settings are given as FERRY_* variables, so the same test runs against a Ferry that
 * does not know them (and fails there: the canaries arrive).
 */
import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { Redis } from 'ioredis'
import zookeeper from 'node-zookeeper-client'
import type { LocalStack } from '../../deploy/local-stack.js'
import { Kafka, logLevel } from '../../common/kafka/kafkajs.js'
import { createKeys } from '../../common/keys.js'
import { silentLogger } from '../../common/logger.js'
import { createPaths } from '../../common/paths.js'
import { listInstances } from '../../common/registry.js'
import { connectZk, toJsonBuffer, type Zk } from '../../common/zk.js'
import { request, startController } from './api-client.js'
import { startFakeSaslListener, type FakeSaslListener } from './fake-sasl-listener.js'
import { FerryProcess, allFerryLogs, sharedStack, testSecretsKeyFile, uniqueName, waitFor } from './harness.js'

/** getData with a client of its own: `null` data when it is refused, with the ZooKeeper error code. */
function rawRead(connect: string, znode: string, auth?: string): Promise<{ data: Buffer | null; code: number }> {
  return new Promise((resolve, reject) => {
    const client = zookeeper.createClient(connect, { sessionTimeout: 6000, retries: 1 })
    if (auth !== undefined) client.addAuthInfo('digest', Buffer.from(auth))
    const timer = setTimeout(() => {
      client.close()
      reject(new Error(`no ZooKeeper connection to ${connect}`))
    }, 15000)
    client.once('connected', () => {
      client.getData(znode, (error, data) => {
        clearTimeout(timer)
        client.close()
        const code = (error as { getCode?: () => number } | null)?.getCode?.() ?? 0
        resolve({ data: error ? null : data, code })
      })
    })
    client.connect()
  })
}

describe('secrets only from where the operator allowed (real controller, worker, ZooKeeper)', function () {
  this.timeout(240000)
  let stack: LocalStack
  let listener: FakeSaslListener
  let redis: Redis
  let zk: Zk
  let url = ''
  const deployment = uniqueName('secrets')
  const procs: FerryProcess[] = []
  const allowedDir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ferry-allowed-')))
  const outsideDir = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ferry-outside-')))
  const canaryFile = path.join(outsideDir, 'canary.txt')
  const fileCanary = `file-canary-${randomBytes(12).toString('hex')}`
  const canaryEnv = `EXFIL_CANARY_${randomBytes(4).toString('hex').toUpperCase()}`
  const envCanary = `env-canary-${randomBytes(12).toString('hex')}`
  const canaries = [fileCanary, envCanary]
  const settings = (): NodeJS.ProcessEnv => ({
    FERRY_SECRETS_DIR: allowedDir,
    FERRY_SECRET_ENV_PREFIX: 'FERRY_SECRET_',
    FERRY_SECRETS_KEY_FILE: testSecretsKeyFile(),
    [canaryEnv]: envCanary,
  })
  const common = (): string[] => ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '4000', '--rebalance-debounce-ms', '500']
  const api = (method: string, p: string, json?: unknown) => request(method, `${url}${p}`, json === undefined ? {} : { json })
  const saslCluster = (name: string, sasl: Record<string, string>) => ({ name, bootstrapServers: [listener.address], securityProtocol: 'SASL_PLAINTEXT', sasl: { mechanism: 'plain', username: 'ferry', ...sasl } })
  const tlsCluster = (name: string, tls: Record<string, string>) => ({ name, bootstrapServers: [listener.address], securityProtocol: 'SSL', tls })
  const leaked = (): string[] => {
    const received = listener.received().toString('latin1')
    return canaries.filter((c) => received.includes(c))
  }

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    listener = await startFakeSaslListener()
    writeFileSync(canaryFile, `${fileCanary}\n`)
    writeFileSync(path.join(allowedDir, 'good.password'), 'not-the-canary\n')
    mkdirSync(path.join(allowedDir, 'tls'))
    symlinkSync(canaryFile, path.join(allowedDir, 'escape.password'))
    redis = new Redis(stack.redis.url)
    zk = await connectZk({ connect: stack.zookeeper.connect, logger: silentLogger() })
    procs.push(new FerryProcess('sec-c1', ['bootstrap', '--role', 'controller', '--id', 'c1', '--port', '0', ...common()], settings()))
    procs.push(new FerryProcess('sec-w1', ['bootstrap', '--role', 'worker', '--id', 'w1', ...common()], settings()))
    const keys = createKeys(deployment)
    const live = await waitFor('controller and worker registered', async () => {
      const instances = await listInstances(redis, keys)
      const controller = instances.find((i) => i.role === 'controller' && i.url)
      return controller && instances.some((i) => i.id === 'w1') ? controller : undefined
    }, 90000)
    url = live.url as string
  })

  after(async () => {
    await Promise.all(procs.map((p) => p.stop()))
    redis?.disconnect()
    await zk?.close()
    await listener?.close()
  })

  it('refuses host files outside the secrets directory and variables without the prefix, with one answer whether the path exists or not', async () => {
    const missing = path.join(outsideDir, 'no-such-file')
    const cases: [string, string, Record<string, unknown>[]][] = [
      ['sasl.passwordFile', allowedDir, [
        saslCluster('x-file', { passwordFile: canaryFile }),
        saslCluster('x-file', { passwordFile: missing }),
        saslCluster('x-file', { passwordFile: '/etc/shadow' }),
        saslCluster('x-file', { passwordFile: '/etc/no-such-shadow' }),
        saslCluster('x-file', { passwordFile: `${allowedDir}/../${path.basename(outsideDir)}/canary.txt` }),
        saslCluster('x-file', { passwordFile: 'canary.txt' }),
      ]],
      ['sasl.passwordEnv', 'FERRY_SECRET_', [
        saslCluster('x-env', { passwordEnv: canaryEnv }),
        saslCluster('x-env', { passwordEnv: 'HOME' }),
        saslCluster('x-env', { passwordEnv: 'NO_SUCH_VARIABLE_AT_ALL' }),
      ]],
      ['tls.caFile', allowedDir, [tlsCluster('x-ca', { caFile: canaryFile }), tlsCluster('x-ca', { caFile: missing })]],
      ['tls.keyFile', allowedDir, [
        tlsCluster('x-key', { certFile: path.join(allowedDir, 'tls/client.pem'), keyFile: canaryFile }),
        tlsCluster('x-key', { certFile: path.join(allowedDir, 'tls/client.pem'), keyFile: missing }),
      ]],
    ]
    for (const [field, allowed, bodies] of cases) {
      const answers = await Promise.all(bodies.map((body) => api('POST', '/v1/clusters', body)))
      for (const answer of answers) {
        expect(answer.status, `${field}: ${answer.text}`).to.equal(400)
        expect(answer.body.error.details.map((d: { field: string }) => d.field)).to.include(field)
        expect(answer.body.error.message).to.include(field).and.to.include(allowed)
      }
      // The same bytes for a path that exists and one that does not.
      expect(new Set(answers.map((a) => a.text)).size, `${field}: ${answers.map((a) => a.text).join('\n')}`).to.equal(1)
    }
    expect((await api('GET', '/v1/clusters')).body.clusters).to.deep.equal([])
    expect(leaked()).to.deep.equal([])
  })

  it('never sends a refused secret to a cluster, even one whose record skipped the API: the worker refuses it at use', async () => {
    // Records as an older Ferry, or a controller with looser settings, could have left them.
    const paths = createPaths(deployment)
    const planted = [
      saslCluster('exfil-file', { passwordFile: canaryFile }),
      saslCluster('exfil-env', { passwordEnv: canaryEnv }),
      saslCluster('exfil-link', { passwordFile: path.join(allowedDir, 'escape.password') }),
    ]
    for (const cluster of planted) await zk.create(paths.cluster(cluster.name), toJsonBuffer(cluster))
    expect((await api('POST', '/v1/clusters', { name: 'src', bootstrapServers: [stack.source.plaintext] })).status).to.equal(201)
    const topic = uniqueName('exfil')
    const admin = new Kafka({ brokers: [stack.source.plaintext], logLevel: logLevel.NOTHING }).admin()
    await admin.connect()
    await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 1 }] })
    await admin.disconnect()
    for (const cluster of planted) {
      const group = `g-${cluster.name}`
      const created = await api('POST', '/v1/groups', { name: group, sourceCluster: 'src', targetCluster: cluster.name, topics: [topic], rename: { prefix: `${group}.` } })
      expect(created.status, created.text).to.equal(201)
    }
    // Until the worker has tried (and failed) every group, or a canary has arrived.
    await waitFor('the worker to try every planted cluster', () => {
      if (leaked().length > 0) return true
      const logs = allFerryLogs().split('\n').filter((line) => line.includes('"worker.group_failed"'))
      return planted.every((c) => logs.some((line) => line.includes(`"group":"g-${c.name}"`)))
    }, 120000)
    expect(leaked(), 'canaries received by the fake listener').to.deep.equal([])
    expect(listener.connections(), 'connections to the fake listener').to.equal(0)
    const failures = allFerryLogs().split('\n').filter((line) => line.includes('"worker.group_failed"'))
    expect(failures.find((l) => l.includes('g-exfil-file'))).to.include('sasl.passwordFile').and.to.include('refused')
    expect(failures.find((l) => l.includes('g-exfil-env'))).to.include('sasl.passwordEnv').and.to.include('refused')
    // A link inside the directory that leads out reads as "cannot read", like a missing file.
    expect(failures.find((l) => l.includes('g-exfil-link'))).to.include('sasl.passwordFile').and.to.include('missing, unreadable, or a link')
    for (const canary of canaries) expect(allFerryLogs()).not.to.include(canary)
  })

  it('stores an inline password sealed: the znode never holds its bytes', async () => {
    const password = `inline-${randomBytes(16).toString('hex')}`
    const created = await api('POST', '/v1/clusters', saslCluster('inline', { password }))
    expect(created.status, created.text).to.equal(201)
    expect(created.body.sasl.password).to.equal('(set, hidden)')
    const raw = await rawRead(stack.zookeeper.connect, createPaths(deployment).cluster('inline'))
    const stored = (raw.data ?? Buffer.alloc(0)).toString('latin1')
    expect(stored).to.include('"name":"inline"')
    for (const form of [password, Buffer.from(password).toString('base64'), Buffer.from(password).toString('hex')]) expect(stored).not.to.include(form)
    expect((await api('GET', '/v1/clusters/inline')).body.sasl.password).to.equal('(set, hidden)')
  })

  it('a controller started without secret settings refuses host files, variables and inline passwords', async () => {
    const bare = await startController('sec-bare', [...common(), '--id', 'c-bare'], { FERRY_SECRETS_DIR: '', FERRY_SECRET_ENV_PREFIX: '', FERRY_SECRETS_KEY_FILE: '' })
    procs.push(bare.proc)
    for (const [body, field, hint] of [
      [saslCluster('bare-file', { passwordFile: path.join(allowedDir, 'good.password') }), 'sasl.passwordFile', '--secrets-dir'],
      [saslCluster('bare-env', { passwordEnv: 'FERRY_SECRET_X' }), 'sasl.passwordEnv', '--secret-env-prefix'],
      [saslCluster('bare-inline', { password: 'p' }), 'sasl.password', '--secrets-key-file'],
      [tlsCluster('bare-ca', { caFile: path.join(allowedDir, 'good.password') }), 'tls.caFile', '--secrets-dir'],
    ] as const) {
      const answer = await request('POST', `${bare.url}/v1/clusters`, { json: body })
      expect(answer.status, answer.text).to.equal(400)
      expect(answer.body.error.details[0].field).to.equal(field)
      expect(answer.body.error.message).to.include(hint)
    }
  })

  it('with ZooKeeper credentials, Ferry creates znodes that a client without them cannot read', async () => {
    const aclDeployment = uniqueName('acl')
    const credentials = `ferry:${randomBytes(12).toString('hex')}`
    const authFile = path.join(allowedDir, 'zk-auth')
    writeFileSync(authFile, `${credentials}\n`, { mode: 0o600 })
    const secured = await startController('sec-acl', ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', aclDeployment, '--id', 'c-acl'], { ...settings(), FERRY_ZOOKEEPER_AUTH_FILE: authFile })
    procs.push(secured.proc)
    const post = (p: string, json: unknown) => request('POST', `${secured.url}${p}`, { json })
    expect((await post('/v1/clusters', { name: 'a', bootstrapServers: [stack.source.plaintext] })).status).to.equal(201)
    expect((await post('/v1/clusters', saslCluster('b', { password: 'sealed-anyway' }))).status).to.equal(201)
    expect((await post('/v1/groups', { name: 'g', sourceCluster: 'a', targetCluster: 'b', topics: ['t'], start: false })).status).to.equal(201)
    const paths = createPaths(aclDeployment)
    const NO_AUTH = -102
    for (const znode of [paths.cluster('a'), paths.cluster('b'), paths.group('g')]) {
      expect((await rawRead(stack.zookeeper.connect, znode)).code, `${znode} without credentials`).to.equal(NO_AUTH)
      expect((await rawRead(stack.zookeeper.connect, znode, 'ferry:wrong')).code, `${znode} with wrong credentials`).to.equal(NO_AUTH)
      const authorised = await rawRead(stack.zookeeper.connect, znode, credentials)
      expect(authorised.code, `${znode} with the credentials`).to.equal(0)
      expect(authorised.data?.length).to.be.greaterThan(0)
    }
    // Ferry itself reads them back.
    expect((await request('GET', `${secured.url}/v1/groups/g`)).status).to.equal(200)
  })
})
