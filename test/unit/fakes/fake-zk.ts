/**
 * An in-memory ZooKeeper behind the `Zk` interface (common/zk.ts), for unit tests of code that
 * runs over the real store (common/store.ts) or election. It keeps ZooKeeper's rules that Ferry
 * relies on: parents must exist, versions are checked (`-1`/undefined: any), a node with
 * children cannot be removed, sequential names count per parent, ephemerals belong to the
 * session, watches fire once, and `multi` applies all its ops or none (failing with the first
 * failing op's code, as a real transaction does). Errors are `ZkError`s carrying the real
 * client's codes, so `isZkCode` works on them.
 *
 * Test controls: `writes` (successful mutating calls, a multi counting once), `multis` (every
 * committed multi's ops), `failNext()` (the next matching call fails), `expireSession()`.
 *
 * @example
 *   const zk = createFakeZk()
 *   const store = createStore(zk, createPaths('t'))
 *   await zk.ensurePaths(createPaths('t').containers())
 */
import zookeeper from 'node-zookeeper-client'
import type { Client, Stat } from 'node-zookeeper-client'
import { CreateMode, ZK_CODES, ZkError, type Watcher, type Zk, type ZkNode, type ZkOp } from '../../../common/zk.js'

interface FakeNode {
  data: Buffer
  version: number
  /** Next sequence number for sequential children. */
  sequence: number
  cversion: number
  /** Session id (hex) of an ephemeral's owner; undefined for persistent nodes. */
  owner: string | undefined
}

type Call = 'getData' | 'getChildren' | 'exists' | 'create' | 'setData' | 'remove' | 'multi'

export interface FakeZk extends Zk {
  /** Successful mutating calls so far (create, setData, remove, multi: one each). */
  readonly writes: number
  /** The ops of every committed multi, oldest first. */
  readonly multis: readonly (readonly ZkOp[])[]
  /** Node data parsed as JSON, or undefined when the node does not exist. */
  json<T>(path: string): T | undefined
  /** Every path in the tree, sorted. */
  paths(): string[]
  /** Makes the next call of `call` (any call when omitted) fail with this ZooKeeper code (default CONNECTION_LOSS). */
  failNext(call?: Call, code?: number): void
  /** Ends the session: its ephemeral nodes go, watches fire, and `onSessionLost` listeners run. A new session id follows. */
  expireSession(reason?: string): void
}

const isSequential = (mode: number): boolean => mode === CreateMode.PERSISTENT_SEQUENTIAL || mode === CreateMode.EPHEMERAL_SEQUENTIAL
const isEphemeral = (mode: number): boolean => mode === CreateMode.EPHEMERAL || mode === CreateMode.EPHEMERAL_SEQUENTIAL

function parentOf(path: string): string {
  const i = path.lastIndexOf('/')
  return i <= 0 ? '/' : path.slice(0, i)
}

function nameOf(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

// The client's own exception (its typings omit the factory), so code and message read as a server's.
const exception = zookeeper.Exception as unknown as { create(code: number, path?: string): Error }

function fail(operation: string, path: string, code: number): never {
  throw new ZkError(operation, path, exception.create(code, path))
}

function statOf(node: FakeNode, children: number): Stat {
  const zero = Buffer.alloc(8)
  return {
    czxid: zero,
    mzxid: zero,
    ctime: zero,
    mtime: zero,
    version: node.version,
    cversion: node.cversion,
    aversion: 0,
    ephemeralOwner: node.owner === undefined ? zero : Buffer.from(node.owner, 'hex'),
    dataLength: node.data.length,
    numChildren: children,
    pzxid: zero,
  }
}

export function createFakeZk(): FakeZk {
  let tree = new Map<string, FakeNode>([['/', { data: Buffer.alloc(0), version: 0, sequence: 0, cversion: 0, owner: undefined }]])
  let session = 1
  let writes = 0
  const multis: ZkOp[][] = []
  const failures: Array<{ call: Call | undefined; code: number }> = []
  const lostListeners: Array<(reason: string) => void> = []
  const renewedListeners: Array<() => void> = []
  /** One-shot watches: data (getData/exists) and children (getChildren), by path. */
  let dataWatches = new Map<string, Watcher[]>()
  let childWatches = new Map<string, Watcher[]>()
  let closed = false

  const sessionHex = (): string => session.toString(16).padStart(16, '0')
  const childrenOf = (t: Map<string, FakeNode>, path: string): string[] => {
    const prefix = path === '/' ? '/' : `${path}/`
    return [...t.keys()].filter((p) => p !== '/' && p.startsWith(prefix) && !p.slice(prefix.length).includes('/')).map(nameOf)
  }
  const take = (call: Call, path: string): void => {
    if (closed) fail(call, path, ZK_CODES.SESSION_EXPIRED)
    const i = failures.findIndex((f) => f.call === undefined || f.call === call)
    if (i < 0) return
    const [failure] = failures.splice(i, 1)
    fail(call, path, failure?.code ?? ZK_CODES.CONNECTION_LOSS)
  }
  const watch = (watches: Map<string, Watcher[]>, path: string, watcher: Watcher | undefined): void => {
    if (watcher === undefined) return
    watches.set(path, [...(watches.get(path) ?? []), watcher])
  }
  type Fired = Array<{ watcher: Watcher; type: number; name: string; path: string }>
  const fire = (fired: Fired, watches: Map<string, Watcher[]>, path: string, type: number, name: string): void => {
    for (const watcher of watches.get(path) ?? []) fired.push({ watcher, type, name, path })
    watches.delete(path)
  }
  // Watchers run after the change is in place and the call has returned, as with a real server.
  const deliver = (fired: Fired): void => {
    if (fired.length === 0) return
    queueMicrotask(() => {
      for (const f of fired) f.watcher(new zookeeper.Event(f.type, f.name, f.path))
    })
  }

  /** Applies one op to `t`; returns the created path for creates. Throws a ZkError. */
  const apply = (t: Map<string, FakeNode>, op: ZkOp, fired: Fired, operation: string): string => {
    const { path } = op
    if (op.op === 'create') {
      const parent = t.get(parentOf(path))
      if (parent === undefined) fail(operation, path, ZK_CODES.NO_NODE)
      if (parent.owner !== undefined) fail(operation, path, -108 /* NO_CHILDREN_FOR_EPHEMERALS */)
      const mode = op.mode ?? CreateMode.PERSISTENT
      const created = isSequential(mode) ? `${path}${String(parent.sequence).padStart(10, '0')}` : path
      if (t.has(created)) fail(operation, path, ZK_CODES.NODE_EXISTS)
      t.set(parentOf(path), { ...parent, sequence: parent.sequence + 1, cversion: parent.cversion + 1 })
      t.set(created, { data: op.data ?? Buffer.alloc(0), version: 0, sequence: 0, cversion: 0, owner: isEphemeral(mode) ? sessionHex() : undefined })
      fire(fired, dataWatches, created, zookeeper.Event.NODE_CREATED, 'NODE_CREATED')
      fire(fired, childWatches, parentOf(created), zookeeper.Event.NODE_CHILDREN_CHANGED, 'NODE_CHILDREN_CHANGED')
      return created
    }
    const node = t.get(path)
    if (node === undefined) fail(operation, path, ZK_CODES.NO_NODE)
    if (op.version !== undefined && op.version !== -1 && op.version !== node.version) fail(operation, path, ZK_CODES.BAD_VERSION)
    if (op.op === 'set') {
      t.set(path, { ...node, data: op.data, version: node.version + 1 })
      fire(fired, dataWatches, path, zookeeper.Event.NODE_DATA_CHANGED, 'NODE_DATA_CHANGED')
    } else if (op.op === 'remove') {
      if (childrenOf(t, path).length > 0) fail(operation, path, ZK_CODES.NOT_EMPTY)
      t.delete(path)
      const parent = t.get(parentOf(path))
      if (parent !== undefined) t.set(parentOf(path), { ...parent, cversion: parent.cversion + 1 })
      fire(fired, dataWatches, path, zookeeper.Event.NODE_DELETED, 'NODE_DELETED')
      fire(fired, childWatches, path, zookeeper.Event.NODE_DELETED, 'NODE_DELETED')
      fire(fired, childWatches, parentOf(path), zookeeper.Event.NODE_CHILDREN_CHANGED, 'NODE_CHILDREN_CHANGED')
    }
    return path
  }

  /** A single mutating call: applied to the tree, counted, watches delivered. */
  const mutate = (call: Call, op: ZkOp): { created: string; node: FakeNode | undefined } => {
    take(call, op.path)
    const fired: Fired = []
    const created = apply(tree, op, fired, call)
    writes++
    deliver(fired)
    return { created, node: tree.get(created) }
  }

  const zk: FakeZk = {
    client: new Proxy({}, {
      get(_target, property) {
        throw new Error(`FakeZk: client.${String(property)} is not faked; use the Zk methods`)
      },
    }) as Client,
    get writes() {
      return writes
    },
    get multis() {
      return multis
    },
    async getData(path, watcher) {
      take('getData', path)
      const node = tree.get(path)
      watch(dataWatches, path, watcher)
      return node === undefined ? null : ({ data: node.data, version: node.version, stat: statOf(node, childrenOf(tree, path).length) } satisfies ZkNode)
    },
    async getChildren(path, watcher) {
      take('getChildren', path)
      if (!tree.has(path)) return null
      watch(childWatches, path, watcher)
      return childrenOf(tree, path)
    },
    async exists(path, watcher) {
      take('exists', path)
      const node = tree.get(path)
      watch(dataWatches, path, watcher)
      return node === undefined ? null : statOf(node, childrenOf(tree, path).length)
    },
    async create(path, data, mode) {
      return mutate('create', { op: 'create', path, ...(data !== undefined ? { data } : {}), ...(mode !== undefined ? { mode } : {}) }).created
    },
    async setData(path, data, version) {
      const { node, created } = mutate('setData', { op: 'set', path, data, ...(version !== undefined ? { version } : {}) })
      return statOf(node as FakeNode, childrenOf(tree, created).length)
    },
    async remove(path, version) {
      mutate('remove', { op: 'remove', path, ...(version !== undefined ? { version } : {}) })
    },
    async ensurePaths(paths) {
      for (const path of paths) {
        if (tree.has(path)) continue
        await zk.create(path)
      }
    },
    async multi(ops) {
      take('multi', ops[0]?.path ?? '/')
      // Applied to a copy, which replaces the tree only if every op succeeded.
      const copy = new Map(tree)
      const fired: Fired = []
      const savedData = new Map(dataWatches)
      const savedChild = new Map(childWatches)
      try {
        for (const op of ops) {
          if (op.op === 'check') {
            const node = copy.get(op.path)
            if (node === undefined) fail('multi', op.path, ZK_CODES.NO_NODE)
            if (op.version !== undefined && op.version !== -1 && op.version !== node.version) fail('multi', op.path, ZK_CODES.BAD_VERSION)
          } else {
            apply(copy, op, fired, 'multi')
          }
        }
      } catch (error) {
        dataWatches = savedData
        childWatches = savedChild
        throw error
      }
      tree = copy
      writes++
      multis.push([...ops])
      deliver(fired)
    },
    sessionId: () => sessionHex(),
    onSessionLost(listener) {
      lostListeners.push(listener)
    },
    onSessionRenewed(listener) {
      renewedListeners.push(listener)
    },
    async close() {
      closed = true
    },
    json<T>(path: string): T | undefined {
      const node = tree.get(path)
      return node === undefined ? undefined : (JSON.parse(node.data.toString('utf8')) as T)
    },
    paths: () => [...tree.keys()].sort(),
    failNext(call, code = ZK_CODES.CONNECTION_LOSS) {
      failures.push({ call, code })
    },
    expireSession(reason = 'session expired') {
      const mine = sessionHex()
      const fired: Fired = []
      for (const [path, node] of [...tree].sort(([a], [b]) => b.length - a.length)) {
        if (node.owner === mine) apply(tree, { op: 'remove', path }, fired, 'expire')
      }
      session++
      deliver(fired)
      for (const listener of lostListeners) listener(reason)
      for (const listener of renewedListeners) listener()
    },
  }
  return zk
}
