import { expect } from 'chai'
import { groupIncludesTopic, parseCluster, parseTopicGroup, redactCluster, targetTopicName } from '../../common/config.js'
import { FerryError } from '../../common/errors.js'
import { classifyKafkaError } from '../../common/kafka/client-config.js'
import { createPaths } from '../../common/paths.js'
import { loadProcessConfig } from '../../common/process-config.js'

function problems(fn: () => unknown): Array<{ field: string; message: string }> {
  try {
    fn()
  } catch (error) {
    expect(error).to.be.instanceOf(FerryError)
    expect((error as FerryError).code).to.equal('INVALID_INPUT')
    return (error as FerryError).details as Array<{ field: string; message: string }>
  }
  throw new Error('expected a validation error')
}

describe('configuration schemas', () => {
  it('lists every problem of a topic group by field', () => {
    const fields = problems(() => parseTopicGroup({ name: 'bad name', topics: [], startPosition: 'middle', extra: 1 })).map((p) => p.field)
    expect(fields).to.include.members(['name', 'sourceCluster', 'targetCluster', 'topics', 'startPosition'])
  })

  it('requires exactly one of topics and topicPattern, and a valid regex', () => {
    expect(problems(() => parseTopicGroup({ name: 'g', sourceCluster: 'a', targetCluster: 'b' }))[0]?.message).to.match(/exactly one of topics or topicPattern/)
    expect(problems(() => parseTopicGroup({ name: 'g', sourceCluster: 'a', targetCluster: 'b', topics: ['t'], topicPattern: 't' }))[0]?.field).to.equal('topics')
    const regex = problems(() => parseTopicGroup({ name: 'g', sourceCluster: 'a', targetCluster: 'b', topicPattern: 'a(' }))
    expect(regex[0]?.field).to.equal('topicPattern')
  })

  it('refuses mirroring a cluster onto itself without a rename', () => {
    expect(problems(() => parseTopicGroup({ name: 'g', sourceCluster: 'a', targetCluster: 'a', topics: ['t'] }))[0]?.field).to.equal('targetCluster')
    expect(parseTopicGroup({ name: 'g', sourceCluster: 'a', targetCluster: 'a', topics: ['t'], rename: { prefix: 'copy.' } }).name).to.equal('g')
  })

  it('applies defaults', () => {
    const group = parseTopicGroup({ name: 'g', sourceCluster: 'a', targetCluster: 'b', topics: ['t'] })
    expect(group).to.include({ delivery: 'at-least-once', startPosition: 'earliest', preservePartition: true, strategy: 'balanced' })
  })

  it('checks cluster security combinations', () => {
    const sasl = problems(() => parseCluster({ name: 'c', bootstrapServers: ['h:1'], securityProtocol: 'SASL_SSL' }))
    expect(sasl.map((p) => p.field)).to.deep.equal(['sasl'])
    const tls = problems(() => parseCluster({ name: 'c', bootstrapServers: ['h:1'], tls: { caFile: '/ca' } }))
    expect(tls[0]?.message).to.match(/only allowed with SSL or SASL_SSL/)
    const twoSecrets = problems(() =>
      parseCluster({ name: 'c', bootstrapServers: ['h:1'], securityProtocol: 'SASL_SSL', sasl: { mechanism: 'plain', username: 'u', password: 'p', passwordEnv: 'X' } }),
    )
    expect(twoSecrets[0]?.message).to.match(/exactly one of password, passwordFile or passwordEnv/)
    const halfMtls = problems(() => parseCluster({ name: 'c', bootstrapServers: ['h:1'], securityProtocol: 'SSL', tls: { certFile: '/c' } }))
    expect(halfMtls[0]?.message).to.match(/certFile and keyFile must be given together/)
    expect(problems(() => parseCluster({ name: 'c', bootstrapServers: ['nohostport'] }))[0]?.field).to.equal('bootstrapServers.0')
  })

  it('never shows an inline password, and keeps the rest', () => {
    const cluster = parseCluster({ name: 'c', bootstrapServers: ['h:1'], securityProtocol: 'SASL_SSL', sasl: { mechanism: 'scram-sha-512', username: 'u', password: 's3cret' } })
    const shown = JSON.stringify(redactCluster(cluster))
    expect(shown).not.to.include('s3cret')
    expect(shown).to.include('"username":"u"')
  })

  it('renames topics by map first, then by prefix', () => {
    expect(targetTopicName({ rename: { prefix: 'dc1.', map: { a: 'b' } } }, 'a')).to.equal('b')
    expect(targetTopicName({ rename: { prefix: 'dc1.' } }, 'x')).to.equal('dc1.x')
    expect(targetTopicName({}, 'x')).to.equal('x')
  })

  it('matches a topic pattern against the whole name', () => {
    expect(groupIncludesTopic({ topicPattern: 'orders' }, 'orders')).to.equal(true)
    expect(groupIncludesTopic({ topicPattern: 'orders' }, 'orders-eu')).to.equal(false)
    expect(groupIncludesTopic({ topicPattern: 'orders.*' }, 'orders-eu')).to.equal(true)
  })
})

describe('process configuration', () => {
  it('reads flags over env and names every missing or bad setting', () => {
    const config = loadProcessConfig({ zookeeper: 'zk:1' }, { FERRY_REDIS: 'redis://r:1', FERRY_ZOOKEEPER: 'ignored:2', FERRY_ID: 'w1' })
    expect(config).to.include({ zookeeper: 'zk:1', redis: 'redis://r:1', id: 'w1', deployment: 'default' })
    expect(Object.isFrozen(config)).to.equal(true)
    const fields = problems(() => loadProcessConfig({ redis: 'http://x', port: 'abc' }, {})).map((p) => p.field)
    expect(fields).to.include.members(['zookeeper', 'redis', 'port'])
  })
})

describe('ZooKeeper paths', () => {
  it('builds paths under the deployment and rejects unsafe names', () => {
    const paths = createPaths('prod')
    expect(paths.group('orders')).to.equal('/ferry/prod/groups/orders')
    expect(() => paths.assignment('../x')).to.throw(FerryError, /not a valid name/)
    expect(() => createPaths('a/b')).to.throw(FerryError)
  })
})

describe('Kafka error classification', () => {
  it('classifies TLS, SASL and unreachable errors by their cause chain', () => {
    const tls = Object.assign(new Error('self-signed certificate in certificate chain'), { code: 'SELF_SIGNED_CERT_IN_CHAIN' })
    const wrapped = Object.assign(new Error('Connection error: self-signed certificate in certificate chain'), { name: 'KafkaJSConnectionError', originalError: tls })
    expect(classifyKafkaError(wrapped, 'src', 'list topics').code).to.equal('KAFKA_TLS_FAILED')
    const sasl = Object.assign(new Error('SASL SCRAM SHA512 authentication failed: invalid credentials'), { name: 'KafkaJSSASLAuthenticationError' })
    const auth = classifyKafkaError(sasl, 'src', 'connect')
    expect(auth.code).to.equal('KAFKA_AUTH_FAILED')
    expect(auth.message).to.include('cluster "src"')
    const refused = Object.assign(new Error('Connection error: connect ECONNREFUSED 127.0.0.1:1'), { name: 'KafkaJSConnectionError' })
    expect(classifyKafkaError(refused, 'src', 'connect').code).to.equal('KAFKA_UNREACHABLE')
    expect(classifyKafkaError(new Error('boom'), 'src', 'x').code).to.equal('KAFKA_ERROR')
  })
})
