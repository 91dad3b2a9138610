/** Mirror loops between a group and its reverse (controller/mirror-loops.ts): which pairs loop, and the error naming them. */
import { expect } from 'chai'
import { parseTopicGroup, type TopicGroupSpec } from '../../common/config.js'
import { findMirrorLoop, isReverse, mirrorLoopError } from '../../controller/mirror-loops.js'

const group = (fields: Record<string, unknown>): TopicGroupSpec => parseTopicGroup({ name: 'ab', sourceCluster: 'a', targetCluster: 'b', ...fields })
const back = (fields: Record<string, unknown>): TopicGroupSpec => group({ name: 'ba', sourceCluster: 'b', targetCluster: 'a', ...fields })

describe('mirror loops', () => {
  it('finds the topic two opposite groups with identity naming both mirror', () => {
    expect(findMirrorLoop(group({ topics: ['x', 'orders'] }), back({ topics: ['orders', 'y'] }))?.topic).to.equal('orders')
    // Either way round.
    expect(findMirrorLoop(back({ topics: ['orders', 'y'] }), group({ topics: ['x', 'orders'] }))?.topic).to.equal('orders')
  })

  it('finds a loop through renames that map a topic back onto itself, a pattern against a list, and identical patterns', () => {
    expect(findMirrorLoop(group({ topics: ['orders'], rename: { prefix: 'a.' } }), back({ topicPattern: 'a\\..*', rename: { map: { 'a.orders': 'orders' } } }))?.topic).to.equal('orders')
    expect(findMirrorLoop(group({ topicPattern: 'orders.*' }), back({ topics: ['orders-eu'] }))?.topic).to.equal('orders-eu')
    expect(findMirrorLoop(group({ topicPattern: 'orders.*' }), back({ topicPattern: 'orders.*' }))).to.deep.include({ topicPattern: 'orders.*' })
    // Two different patterns: only the topics on the clusters now can tell.
    expect(findMirrorLoop(group({ topicPattern: 'orders.*' }), back({ topicPattern: '.*-eu' }))).to.equal(undefined)
    expect(findMirrorLoop(group({ topicPattern: 'orders.*' }), back({ topicPattern: '.*-eu' }), { onSource: ['orders-eu'], onTarget: [] })?.topic).to.equal('orders-eu')
    expect(findMirrorLoop(group({ topicPattern: 'orders.*' }), back({ topicPattern: '.*-eu' }), { onSource: [], onTarget: ['orders-eu'] })?.topic).to.equal('orders-eu')
  })

  it('finds none where the topics do not come back onto themselves', () => {
    expect(findMirrorLoop(group({ topics: ['orders'] }), back({ topics: ['payments'] }))).to.equal(undefined)
    // A prefix one way and identity the other: "orders" comes back as "a.orders", not onto itself.
    expect(findMirrorLoop(group({ topics: ['orders'], rename: { prefix: 'a.' } }), back({ topics: ['a.orders'] }))).to.equal(undefined)
    // Same direction (fan-in from two sources is no loop), and a group onto its own cluster.
    expect(findMirrorLoop(group({ topics: ['orders'] }), group({ name: 'ab2', topics: ['orders'] }))).to.equal(undefined)
    expect(isReverse(group({ topics: ['t'], targetCluster: 'a', rename: { prefix: 'p.' } }), group({ topics: ['t'], targetCluster: 'a', rename: { prefix: 'q.' } }))).to.equal(false)
  })

  it('refuses with a 409 that names both groups, the topic and the group without provenance', () => {
    const loop = findMirrorLoop(group({ topics: ['orders'], provenance: true }), back({ topics: ['orders'] }))
    expect(loop).to.not.equal(undefined)
    const error = mirrorLoopError(loop as NonNullable<typeof loop>)
    expect(error.code).to.equal('CONFLICT')
    expect(error.message).to.include('"ab"').and.include('"ba"').and.include('topic "orders"').and.include('provenance: true').and.include('missing on "ba"')
    expect(error.message).to.not.include('missing on "ab"')
    expect(error.details).to.deep.equal([{ field: 'provenance', message: 'topic "orders" loops between topic groups "ab" and "ba"; needs provenance: true on both (missing on "ba")' }])
  })
})
