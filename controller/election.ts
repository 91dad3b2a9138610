/**
 * Leader election in ZooKeeper (the recipe from the ZooKeeper docs): each candidate creates an
 * ephemeral-sequential node; the lowest is leader; the others watch only their predecessor.
 * A new leader bumps the epoch znode; its writes are fenced by `fence()`: a check that its
 * candidate node still exists (its session is alive) and that the epoch is still its own.
 */
import { EventEmitter } from 'node:events'
import { errorMessage } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import type { Paths } from '../common/paths.js'
import { CreateMode, fromJsonBuffer, toJsonBuffer, type Zk, type ZkOp } from '../common/zk.js'

export interface LeaderInfo {
  id: string
  url?: string
}

export interface Election {
  start(): Promise<void>
  isLeader(): boolean
  epoch(): number
  /** The current leader as the candidates' nodes say, or null. */
  leader(): Promise<LeaderInfo | null>
  /** Checks that make a multi-op fail unless we are still the leader of our epoch. */
  fence(): ZkOp[]
  on(event: 'elected' | 'deposed', listener: () => void): void
  /**
   * Enter the election again with a new candidate node (after the session was lost, or our node
   * vanished). Stops leading at once; `elected` follows if this candidate wins.
   */
  rejoin(): Promise<void>
  /** Stop leading now, without an event: the session (and with it our candidate node) is gone. */
  resign(): void
  stop(): Promise<void>
}

export interface ElectionOptions {
  zk: Zk
  paths: Paths
  info: LeaderInfo
  logger: Logger
}

export function createElection(options: ElectionOptions): Election {
  const { zk, paths, logger } = options
  const events = new EventEmitter()
  let node: string | undefined
  let leading = false
  let epoch = -1
  let stopped = false

  const nodeName = (path: string): string => path.slice(path.lastIndexOf('/') + 1)

  const check = async (): Promise<void> => {
    if (stopped || node === undefined) return
    const children = ((await zk.getChildren(paths.election)) ?? []).sort()
    const mine = nodeName(node)
    const index = children.indexOf(mine)
    if (index < 0) {
      // Our ephemeral node is gone: the session expired underneath us.
      if (leading) {
        leading = false
        events.emit('deposed')
      }
      return
    }
    if (index === 0) {
      if (!leading) {
        const stat = await zk.setData(paths.epoch, toJsonBuffer({ leader: options.info.id, at: new Date().toISOString() }))
        epoch = stat.version
        leading = true
        logger.info({ event: 'controller.elected', epoch }, 'elected leader')
        events.emit('elected')
      }
      return
    }
    const predecessor = `${paths.election}/${children[index - 1] as string}`
    const exists = await zk.exists(predecessor, () => {
      void check().catch((error: unknown) => logger.error({ event: 'controller.election_failed', err: errorMessage(error) }, 'election check failed'))
    })
    if (exists === null) await check()
  }

  /**
   * A candidate node with our id from an earlier incarnation (this controller crashed and its
   * bootstrap started it again, which bootstrap does for one live process per id) would keep
   * leading, or block the line, until ZooKeeper expires that dead session. It is ours: remove it,
   * so the next candidate takes over now rather than a session timeout later.
   */
  const removeStaleNodes = async (): Promise<void> => {
    for (const child of (await zk.getChildren(paths.election)) ?? []) {
      const path = `${paths.election}/${child}`
      const data = await zk.getData(path)
      if (data === null || fromJsonBuffer<LeaderInfo>(data.data).id !== options.info.id) continue
      await zk.remove(path, data.version).catch(() => undefined)
      logger.info({ event: 'controller.stale_candidate_removed', node: child, ephemeralOwner: data.stat.ephemeralOwner.toString('hex') }, 'removed the election node of an earlier incarnation of this controller')
    }
  }

  return {
    async start() {
      await zk.ensurePaths([...paths.containers(), paths.epoch])
      await removeStaleNodes()
      node = await zk.create(paths.electionPrefix, toJsonBuffer(options.info), CreateMode.EPHEMERAL_SEQUENTIAL)
      await check()
    },
    isLeader: () => leading,
    epoch: () => epoch,
    async leader() {
      const children = ((await zk.getChildren(paths.election)) ?? []).sort()
      for (const child of children) {
        const data = await zk.getData(`${paths.election}/${child}`)
        if (data) return fromJsonBuffer<LeaderInfo>(data.data)
      }
      return null
    },
    fence() {
      if (!leading || node === undefined) throw new Error('fence() called while not leader')
      return [
        { op: 'check', path: node },
        { op: 'check', path: paths.epoch, version: epoch },
      ]
    },
    on(event, listener) {
      events.on(event, listener)
    },
    resign() {
      if (leading) logger.warn({ event: 'controller.resigned', epoch }, 'no longer leading')
      leading = false
      node = undefined
    },
    async rejoin() {
      if (stopped) return
      leading = false
      node = undefined
      await zk.ensurePaths([...paths.containers(), paths.epoch])
      await removeStaleNodes()
      if (stopped) return
      node = await zk.create(paths.electionPrefix, toJsonBuffer(options.info), CreateMode.EPHEMERAL_SEQUENTIAL)
      await check()
    },
    async stop() {
      stopped = true
      leading = false
      if (node !== undefined) await zk.remove(node).catch(() => undefined)
      node = undefined
    },
  }
}
