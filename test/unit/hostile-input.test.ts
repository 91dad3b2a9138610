/**
 * Pure parts of issue 13: topic patterns by RE2 (linear time, refusals naming the reason),
 * names that are Object keys in rename maps, Kafka's topic-name limits, and bootstrap's
 * liveness rule.
 */
import { expect } from 'chai'
import { childUnresponsive } from '../../bootstrap/bootstrap.js'
import { groupIncludesTopic, parseTopicGroup, targetTopicName } from '../../common/config.js'
import { topicPatternProblem } from '../../common/topic-pattern.js'

const base = { name: 'g', sourceCluster: 'a', targetCluster: 'b' }

describe('hostile input (pure)', () => {
  it('matches catastrophic-backtracking patterns in linear time', () => {
    const started = Date.now()
    const topic = `${'a'.repeat(40)}-`
    expect(groupIncludesTopic({ topicPattern: '(a+)+$' }, topic)).to.equal(false)
    expect(groupIncludesTopic({ topicPattern: '(.*a){25}' }, topic)).to.equal(false)
    expect(groupIncludesTopic({ topicPattern: '(a+)+' }, 'aaaa')).to.equal(true)
    expect(Date.now() - started).to.be.below(500)
  })

  it('refuses what RE2 cannot run, saying why', () => {
    expect(topicPatternProblem('(a)\\1')).to.match(/linear time.*invalid escape/)
    expect(topicPatternProblem('(?<=a)b')).to.match(/lookahead or lookbehind/)
    expect(topicPatternProblem('a'.repeat(1001))).to.match(/at most 1000/)
    expect(topicPatternProblem('orders\\..*')).to.equal(undefined)
    expect(() => parseTopicGroup({ ...base, topicPattern: '(?!x)y' })).to.throw(/topicPattern: is not a pattern Ferry can match in linear time/)
  })

  it('maps source topics named like Object properties, __proto__ included', () => {
    const group = parseTopicGroup({ ...base, topics: ['constructor', 'x'], rename: { map: JSON.parse('{"__proto__":"p","constructor":"c"}') as unknown } })
    expect(Object.keys(group.rename?.map ?? {}).sort()).to.deep.equal(['__proto__', 'constructor'])
    expect(targetTopicName(group, '__proto__')).to.equal('p')
    expect(targetTopicName(group, 'constructor')).to.equal('c')
    expect(targetTopicName(group, 'toString')).to.equal('toString')
    expect(targetTopicName({ rename: { prefix: 'x.', map: {} } }, 'hasOwnProperty')).to.equal('x.hasOwnProperty')
    expect(JSON.parse(JSON.stringify(group.rename?.map))).to.deep.equal(JSON.parse('{"__proto__":"p","constructor":"c"}'))
  })

  it('refuses names Kafka cannot take and targets over 249 characters', () => {
    expect(() => parseTopicGroup({ ...base, topics: ['.'] })).to.throw(/topics\.0/)
    expect(() => parseTopicGroup({ ...base, topics: ['t'.repeat(200)], rename: { prefix: 'p'.repeat(50) } })).to.throw(/topics\.0: with rename.prefix/)
    expect(() => parseTopicGroup({ ...base, topics: ['t'.repeat(200)], rename: { prefix: 'p'.repeat(49) } })).to.not.throw()
    expect(() => parseTopicGroup({ ...base, topics: ['t'], maxBytesPerSec: 2 ** 63 })).to.throw(/maxBytesPerSec/)
  })

  it('calls a child unresponsive only after it spoke and then stayed silent past the timeout', () => {
    expect(childUnresponsive(undefined, 100000, 5000), 'never heard: still starting').to.equal(false)
    expect(childUnresponsive(1000, 6000, 5000)).to.equal(false)
    expect(childUnresponsive(1000, 6001, 5000)).to.equal(true)
    expect(childUnresponsive(1000, 60000, 0), 'check off').to.equal(false)
  })
})
