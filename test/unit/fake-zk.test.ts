import { expect } from 'chai'
import type { Event as ZkEvent } from 'node-zookeeper-client'
import { parseCluster, parseTopicGroup } from '../../common/config.js'
import { createPaths } from '../../common/paths.js'
import { createStore } from '../../common/store.js'
import { CreateMode, isZkCode, toJsonBuffer, ZK_CODES } from '../../common/zk.js'
import { createFakeZk } from './fakes/fake-zk.js'

// The fake must keep ZooKeeper's rules that the store and the reconciler rely on, or tests over it prove nothing.
describe('fake ZooKeeper (test/unit/fakes/fake-zk.ts)', () => {
  const paths = createPaths('fake')

  async function fresh(): Promise<ReturnType<typeof createFakeZk>> {
    const zk = createFakeZk()
    await zk.ensurePaths(paths.containers())
    return zk
  }

  it('multi applies all ops or none, failing with the failing op\'s code', async () => {
    const zk = await fresh()
    await zk.create(paths.group('a'), toJsonBuffer({ n: 1 }))
    const before = zk.writes
    const error = await zk.multi([
      { op: 'set', path: paths.group('a'), data: toJsonBuffer({ n: 2 }), version: 0 },
      { op: 'create', path: paths.group('b'), data: toJsonBuffer({}) },
      { op: 'check', path: paths.group('a'), version: 0 },
    ]).then(() => null, (e: unknown) => e)
    expect(isZkCode(error, ZK_CODES.BAD_VERSION), String(error)).to.equal(true)
    expect(zk.json(paths.group('a'))).to.deep.equal({ n: 1 })
    expect(zk.json(paths.group('b'))).to.equal(undefined)
    expect(zk.writes).to.equal(before)
    await zk.multi([{ op: 'set', path: paths.group('a'), data: toJsonBuffer({ n: 3 }), version: 0 }, { op: 'create', path: paths.group('b') }])
    expect(zk.json(paths.group('a'))).to.deep.equal({ n: 3 })
    expect((await zk.getData(paths.group('a')))?.version).to.equal(1)
    expect(zk.multis).to.have.length(1)
  })

  it('checks parents, existence, versions and emptiness like a server', async () => {
    const zk = await fresh()
    const code = async (p: Promise<unknown>): Promise<number | null> => p.then(() => null, (e: unknown) => [ZK_CODES.NO_NODE, ZK_CODES.NODE_EXISTS, ZK_CODES.BAD_VERSION, ZK_CODES.NOT_EMPTY].find((c) => isZkCode(e, c)) ?? -1)
    expect(await code(zk.create('/nope/child'))).to.equal(ZK_CODES.NO_NODE)
    expect(await code(zk.create(paths.groups))).to.equal(ZK_CODES.NODE_EXISTS)
    expect(await code(zk.setData(paths.groups, Buffer.alloc(0), 5))).to.equal(ZK_CODES.BAD_VERSION)
    expect(await code(zk.remove(paths.root))).to.equal(ZK_CODES.NOT_EMPTY)
    expect(await zk.getData('/missing')).to.equal(null)
    expect(await zk.getChildren('/missing')).to.equal(null)
  })

  it('numbers sequential nodes per parent, drops ephemerals with the session and fires watches once', async () => {
    const zk = await fresh()
    const a = await zk.create(paths.electionPrefix, undefined, CreateMode.EPHEMERAL_SEQUENTIAL)
    const b = await zk.create(paths.electionPrefix, undefined, CreateMode.EPHEMERAL_SEQUENTIAL)
    expect([a, b]).to.deep.equal([`${paths.electionPrefix}0000000000`, `${paths.electionPrefix}0000000001`])
    const seen: string[] = []
    const watcher = (e: ZkEvent): void => void seen.push(`${e.getName()} ${e.getPath()}`)
    await zk.getChildren(paths.election, watcher)
    await zk.exists(a, watcher)
    let lost = ''
    zk.onSessionLost((reason) => (lost = reason))
    const session = zk.sessionId()
    zk.expireSession()
    await Promise.resolve()
    expect(await zk.getChildren(paths.election)).to.deep.equal([])
    expect(zk.sessionId()).to.not.equal(session)
    expect(lost).to.equal('session expired')
    expect(seen).to.deep.equal([`NODE_DELETED ${a}`, `NODE_CHILDREN_CHANGED ${paths.election}`])
    await zk.create(`${paths.election}/x`)
    await Promise.resolve()
    expect(seen).to.have.length(2)
  })

  it('runs the real store; an injected BAD_VERSION on its multi reads as a conflict', async () => {
    const zk = await fresh()
    const store = createStore(zk, paths)
    await store.createCluster(parseCluster({ name: 'src', bootstrapServers: ['h:1'] }))
    await store.createCluster(parseCluster({ name: 'dst', bootstrapServers: ['h:2'] }))
    zk.failNext('multi', ZK_CODES.BAD_VERSION)
    const spec = parseTopicGroup({ name: 'g', sourceCluster: 'src', targetCluster: 'dst', topics: ['t'] })
    const error = await store.createGroup(spec, 'running').then(() => null, (e: unknown) => e as { code?: string })
    expect(error?.code).to.equal('CONFLICT')
    await store.createGroup(spec, 'running')
    expect((await store.listGroups()).map((g) => g.value.spec.name)).to.deep.equal(['g'])
  })
})
