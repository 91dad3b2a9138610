/**
 * A leader election the test decides (controller/election.ts `Election`): `elect()` bumps the
 * epoch znode in the (fake) ZooKeeper, as a real new leader does, and emits `elected`;
 * `fence()` checks that epoch version, so a write made after another leader bumped it fails
 * as it would on a real server.
 *
 * @example
 *   const election = createFakeElection(zk, paths)
 *   await election.elect()
 */
import { EventEmitter } from 'node:events'
import type { Paths } from '../../../common/paths.js'
import { toJsonBuffer, type Zk, type ZkOp } from '../../../common/zk.js'
import type { Election, LeaderInfo } from '../../../controller/election.js'

export interface FakeElection extends Election {
  /** Becomes leader with a new epoch and emits `elected`. */
  elect(): Promise<void>
  /** Stops leading and emits `deposed`. */
  depose(): void
}

export function createFakeElection(zk: Zk, paths: Pick<Paths, 'epoch' | 'containers'>, id = 'c1'): FakeElection {
  const events = new EventEmitter()
  let leading = false
  let epoch = -1
  const election: FakeElection = {
    async start() {
      await election.elect()
    },
    async elect() {
      await zk.ensurePaths([...paths.containers(), paths.epoch])
      epoch = (await zk.setData(paths.epoch, toJsonBuffer({ leader: id, at: new Date().toISOString() }))).version
      leading = true
      events.emit('elected')
    },
    depose() {
      if (!leading) return
      leading = false
      events.emit('deposed')
    },
    isLeader: () => leading,
    epoch: () => epoch,
    async leader(): Promise<LeaderInfo | null> {
      return leading ? { id } : null
    },
    fence(): ZkOp[] {
      if (!leading) throw new Error('fence() called while not leader')
      return [{ op: 'check', path: paths.epoch, version: epoch }]
    },
    on(event, listener) {
      events.on(event, listener)
    },
    async rejoin() {
      leading = false
      await election.elect()
    },
    resign() {
      leading = false
    },
    async stop() {
      leading = false
    },
  }
  return election
}
