/**
 * Leader election and fencing on a real ZooKeeper: a deposed leader that still believes it
 * leads cannot write an assignment, because every write carries its fence.
 */
import { expect } from 'chai'
import { silentLogger } from '../../common/logger.js'
import { createPaths } from '../../common/paths.js'
import { connectZk, isZkCode, toJsonBuffer, ZK_CODES, type Zk } from '../../common/zk.js'
import { createElection } from '../../controller/election.js'
import { sharedStack, uniqueName, waitFor } from './harness.js'

describe('leader election and fencing (real ZooKeeper)', function () {
  this.timeout(60000)
  const clients: Zk[] = []
  const connect = async (): Promise<Zk> => {
    const stack = await sharedStack()
    const zk = await connectZk({ connect: stack.zookeeper.connect, logger: silentLogger(), sessionTimeoutMs: 6000 })
    clients.push(zk)
    return zk
  }
  after(async () => {
    await Promise.all(clients.map((c) => c.close()))
  })

  it('elects one leader, fails over in order, and fences the deposed one', async () => {
    const paths = createPaths(uniqueName('elect'))
    const [zkA, zkB] = [await connect(), await connect()]
    const a = createElection({ zk: zkA, paths, info: { id: 'a' }, logger: silentLogger() })
    const b = createElection({ zk: zkB, paths, info: { id: 'b' }, logger: silentLogger() })
    await a.start()
    await b.start()
    expect(a.isLeader()).to.equal(true)
    expect(b.isLeader()).to.equal(false)
    expect((await b.leader())?.id).to.equal('a')

    // The leader's fenced write works.
    await zkA.ensurePaths([paths.assignments])
    await zkA.multi([...a.fence(), { op: 'create', path: paths.assignment('w1'), data: toJsonBuffer({ by: 'a' }) }])

    // Depose a the way an expired session does: its candidate node disappears. a is not told.
    const candidates = ((await zkB.getChildren(paths.election)) ?? []).sort()
    await zkB.remove(`${paths.election}/${candidates[0] as string}`)
    await waitFor('b to take over', () => b.isLeader(), 10000)
    expect(b.epoch()).to.be.greaterThan(a.epoch())
    expect(a.isLeader(), 'a has not noticed yet').to.equal(true)

    let rejected: unknown
    try {
      await zkA.multi([...a.fence(), { op: 'set', path: paths.assignment('w1'), data: toJsonBuffer({ by: 'a, deposed' }) }])
    } catch (error) {
      rejected = error
    }
    expect(isZkCode(rejected, ZK_CODES.NO_NODE) || isZkCode(rejected, ZK_CODES.BAD_VERSION), String(rejected)).to.equal(true)
    expect((await zkB.getData(paths.assignment('w1')))?.data.toString()).to.equal(JSON.stringify({ by: 'a' }))

    // The new leader writes.
    await zkB.multi([...b.fence(), { op: 'set', path: paths.assignment('w1'), data: toJsonBuffer({ by: 'b' }) }])
    expect((await zkA.getData(paths.assignment('w1')))?.data.toString()).to.equal(JSON.stringify({ by: 'b' }))
    await a.stop()
    await b.stop()
  })
})
