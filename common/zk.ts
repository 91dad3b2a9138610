/**
 * A small promise layer over node-zookeeper-client: typed results, ZooKeeper error codes
 * classified in one table, atomic multi-ops for fenced writes, and a "session lost" signal.
 *
 * node-zookeeper-client only reports `expired` once it reconnects (issue #20), so a
 * disconnect that lasts a whole session timeout is treated as lost too (Curator's LOST):
 * whoever holds ephemerals or leadership must stop acting on them.
 *
 * With credentials (`auth`, digest scheme) the session authenticates and every znode Ferry
 * creates gets CREATOR_ALL_ACL: only that identity may read or change it. Without, znodes get
 * world:anyone, as ZooKeeper's default; inline secrets are sealed either way (common/secrets.ts).
 *
 * @example
 *   const zk = await connectZk({ connect: '127.0.0.1:2181', logger, auth: readZkAuthFile('/etc/ferry/zk-auth') })
 *   zk.onSessionLost(() => process.exit(1))
 *   const node = await zk.getData('/ferry/prod/groups/orders')
 */
import { EventEmitter } from 'node:events'
import { readFileSync } from 'node:fs'
import zookeeper from 'node-zookeeper-client'
import type { ACL, Client, Event as ZkEvent, Stat } from 'node-zookeeper-client'
import { FerryError, errorMessage } from './errors.js'
import type { Logger } from './logger.js'

export const CreateMode = zookeeper.CreateMode

/** ZooKeeper error codes we react to (org.apache.zookeeper.KeeperException.Code). */
export const ZK_CODES = Object.freeze({
  CONNECTION_LOSS: -4,
  OPERATION_TIMEOUT: -7,
  NO_NODE: -101,
  BAD_VERSION: -103,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
})

const RETRIABLE_ZK_CODES = new Set<number>([ZK_CODES.CONNECTION_LOSS, ZK_CODES.OPERATION_TIMEOUT])

export class ZkError extends FerryError {
  readonly zkCode: number
  constructor(operation: string, path: string, cause: unknown) {
    const zkCode = zkErrorCode(cause)
    super('ZOOKEEPER_ERROR', `ZooKeeper ${operation} ${path} failed: ${(cause as Error)?.message ?? String(cause)}`, {
      cause,
      retriable: RETRIABLE_ZK_CODES.has(zkCode),
      context: { path, zkCode },
    })
    this.name = 'ZkError'
    this.zkCode = zkCode
  }
}

function zkErrorCode(error: unknown): number {
  const candidate = error as { getCode?: () => number; code?: unknown } | null
  if (candidate && typeof candidate.getCode === 'function') return candidate.getCode()
  return 0
}

/** True when `error` is a ZooKeeper error with this code. */
export function isZkCode(error: unknown, code: number): boolean {
  return error instanceof ZkError ? error.zkCode === code : zkErrorCode(error) === code
}

export interface ZkNode {
  data: Buffer
  version: number
  stat: Stat
}

export type ZkOp =
  | { op: 'create'; path: string; data?: Buffer; mode?: number }
  | { op: 'set'; path: string; data: Buffer; version?: number }
  | { op: 'check'; path: string; version?: number }
  | { op: 'remove'; path: string; version?: number }

export type Watcher = (event: ZkEvent) => void

export interface Zk {
  readonly client: Client
  /** Node data and version, or null when the node does not exist. */
  getData(path: string, watcher?: Watcher): Promise<ZkNode | null>
  /** Children names, or null when the node does not exist. */
  getChildren(path: string, watcher?: Watcher): Promise<string[] | null>
  exists(path: string, watcher?: Watcher): Promise<Stat | null>
  create(path: string, data?: Buffer, mode?: number): Promise<string>
  setData(path: string, data: Buffer, version?: number): Promise<Stat>
  remove(path: string, version?: number): Promise<void>
  /** Create every node on `paths` that is missing (parents first); existing nodes are fine. */
  ensurePaths(paths: readonly string[]): Promise<void>
  /** Atomic multi-op: all apply or none. */
  multi(ops: readonly ZkOp[]): Promise<void>
  sessionId(): string
  /**
   * Called when the session is expired or has been unreachable for a whole session timeout:
   * once, or (with `renewSession`) each time, before a new session is opened.
   */
  onSessionLost(listener: (reason: string) => void): void
  /** With `renewSession`: called each time a new session replaced a lost one (watches and ephemeral nodes are gone). */
  onSessionRenewed(listener: () => void): void
  close(): Promise<void>
}

/** ZooKeeper credentials: digest scheme, `user:password`. */
export interface ZkAuth {
  scheme: 'digest'
  credentials: Buffer
}

/**
 * The credentials in a file holding `user:password` (one line); undefined without a file.
 * @throws FerryError INVALID_CONFIG naming the file, never its content.
 */
export function readZkAuthFile(file: string | undefined): ZkAuth | undefined {
  if (file === undefined) return undefined
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    throw new FerryError('INVALID_CONFIG', `--zookeeper-auth-file (FERRY_ZOOKEEPER_AUTH_FILE) ${file} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  const line = text.replace(/\r?\n$/, '')
  const colon = line.indexOf(':')
  if (colon < 1 || colon === line.length - 1 || line.includes('\n')) {
    throw new FerryError('INVALID_CONFIG', `--zookeeper-auth-file (FERRY_ZOOKEEPER_AUTH_FILE) ${file} must hold one line "user:password"`)
  }
  return { scheme: 'digest', credentials: Buffer.from(line, 'utf8') }
}

/** Only the authenticated identity that created a znode may do anything with it. */
const CREATOR_ALL_ACL: ACL[] = [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id('auth', ''))]
const OPEN_ACL_UNSAFE: ACL[] = [new zookeeper.ACL(zookeeper.Permission.ALL, new zookeeper.Id('world', 'anyone'))]

export interface ZkOptions {
  /** host:port[,host:port][/chroot] */
  connect: string
  /** Credentials for the session; with them, created znodes are readable by this identity only. */
  auth?: ZkAuth | undefined
  /** Default 15000. */
  sessionTimeoutMs?: number
  /** How long to wait for the first connection; default 30000. */
  connectTimeoutMs?: number
  /**
   * Open a new session whenever the session is lost, for as long as it takes, instead of
   * reporting the loss once and leaving the Zk dead. Calls in the meantime fail (no session).
   */
  renewSession?: boolean
  logger: Logger
}

function call<T>(operation: string, path: string, fn: (cb: (error: unknown, result: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    fn((error, result) => (error ? reject(new ZkError(operation, path, error)) : resolve(result)))
  })
}

export async function connectZk(options: ZkOptions): Promise<Zk> {
  return options.renewSession === true ? connectRenewing(options) : openSession(options)
}

/** A Zk whose calls go to the current session, replaced by a new one whenever it is lost. */
async function connectRenewing(options: ZkOptions): Promise<Zk> {
  let current = await openSession(options)
  const lostListeners: Array<(reason: string) => void> = []
  const renewedListeners: Array<() => void> = []
  let closed = false
  const arm = (session: Zk): void => {
    session.onSessionLost((reason) => {
      if (closed) return
      for (const listener of lostListeners) listener(reason)
      void renew(reason)
    })
  }
  const renew = async (reason: string): Promise<void> => {
    const lostAt = Date.now()
    for (let attempt = 1; !closed; attempt++) {
      try {
        const fresh = await openSession({ ...options, connectTimeoutMs: Math.max(options.sessionTimeoutMs ?? 15000, 5000) })
        if (closed) {
          await fresh.close()
          return
        }
        const old = current
        current = fresh
        arm(fresh)
        void old.close()
        options.logger.info({ event: 'zookeeper.session_renewed', attempts: attempt, outageMs: Date.now() - lostAt, reason }, 'new ZooKeeper session')
        for (const listener of renewedListeners) listener()
        return
      } catch (error) {
        options.logger.debug({ event: 'zookeeper.renew_failed', attempt, err: errorMessage(error) }, 'ZooKeeper still unreachable')
        await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 500 * attempt)))
      }
    }
  }
  arm(current)
  return {
    get client() {
      return current.client
    },
    getData: (path, watcher) => current.getData(path, watcher),
    getChildren: (path, watcher) => current.getChildren(path, watcher),
    exists: (path, watcher) => current.exists(path, watcher),
    create: (path, data, mode) => current.create(path, data, mode),
    setData: (path, data, version) => current.setData(path, data, version),
    remove: (path, version) => current.remove(path, version),
    ensurePaths: (paths) => current.ensurePaths(paths),
    multi: (ops) => current.multi(ops),
    sessionId: () => current.sessionId(),
    onSessionLost(listener) {
      lostListeners.push(listener)
    },
    onSessionRenewed(listener) {
      renewedListeners.push(listener)
    },
    async close() {
      closed = true
      await current.close()
    },
  }
}

async function openSession(options: ZkOptions): Promise<Zk> {
  const sessionTimeoutMs = options.sessionTimeoutMs ?? 15000
  const connectTimeoutMs = options.connectTimeoutMs ?? 30000
  const client = zookeeper.createClient(options.connect, { sessionTimeout: sessionTimeoutMs, spinDelay: 500, retries: 2 })
  // Added before connect: the client sends it with every (re)connection, ahead of any request.
  if (options.auth !== undefined) client.addAuthInfo(options.auth.scheme, options.auth.credentials)
  const acls = options.auth === undefined ? OPEN_ACL_UNSAFE : CREATOR_ALL_ACL
  const lost = new EventEmitter()
  let lostFired = false
  let closing = false
  let disconnectTimer: NodeJS.Timeout | undefined

  const fireLost = (reason: string): void => {
    if (lostFired || closing) return
    lostFired = true
    options.logger.error({ event: 'zookeeper.session_lost', reason }, 'ZooKeeper session lost')
    lost.emit('lost', reason)
  }

  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      client.close()
      reject(new FerryError('UNAVAILABLE', `cannot connect to ZooKeeper at ${options.connect} within ${connectTimeoutMs} ms`, { retriable: true }))
    }, connectTimeoutMs)
    client.once('connected', () => {
      clearTimeout(timer)
      resolve()
    })
    client.connect()
  })

  client.on('state', (state: { name: string }) => {
    if (state.name === 'DISCONNECTED' && !closing) {
      options.logger.warn({ event: 'zookeeper.disconnected' }, 'ZooKeeper disconnected')
      disconnectTimer ??= setTimeout(() => fireLost(`disconnected for ${sessionTimeoutMs} ms`), sessionTimeoutMs)
      disconnectTimer.unref()
    } else if (state.name === 'SYNC_CONNECTED') {
      if (disconnectTimer) clearTimeout(disconnectTimer)
      disconnectTimer = undefined
    } else if (state.name === 'EXPIRED') {
      fireLost('session expired')
    }
  })

  const zk: Zk = {
    client,
    getData: (path, watcher) =>
      new Promise((resolve, reject) => {
        const cb = (error: unknown, data: Buffer, stat: Stat): void => {
          if (error) {
            if (zkErrorCode(error) !== ZK_CODES.NO_NODE) reject(new ZkError('getData', path, error))
            else if (!watcher) resolve(null)
            else {
              // getData sets no watch on a missing node: watch for its creation instead, and
              // read again should it have appeared in between.
              client.exists(path, watcher, (existsError: unknown, existsStat: Stat | null) => {
                if (existsError) reject(new ZkError('exists', path, existsError))
                else if (existsStat) client.getData(path, watcher, cb)
                else resolve(null)
              })
            }
            return
          }
          resolve({ data: data ?? Buffer.alloc(0), version: stat.version, stat })
        }
        if (watcher) client.getData(path, watcher, cb)
        else client.getData(path, cb)
      }),
    getChildren: (path, watcher) =>
      new Promise((resolve, reject) => {
        const cb = (error: unknown, children: string[]): void => {
          if (error) {
            if (zkErrorCode(error) === ZK_CODES.NO_NODE) resolve(null)
            else reject(new ZkError('getChildren', path, error))
            return
          }
          resolve(children)
        }
        if (watcher) client.getChildren(path, watcher, cb)
        else client.getChildren(path, cb)
      }),
    exists: (path, watcher) =>
      new Promise((resolve, reject) => {
        const cb = (error: unknown, stat: Stat): void => (error ? reject(new ZkError('exists', path, error)) : resolve(stat ?? null))
        if (watcher) client.exists(path, watcher, cb)
        else client.exists(path, cb)
      }),
    create: (path, data, mode) =>
      call<string>('create', path, (cb) => client.create(path, data ?? Buffer.alloc(0), acls, mode ?? CreateMode.PERSISTENT, cb)),
    setData: (path, data, version) => call<Stat>('setData', path, (cb) => client.setData(path, data, version ?? -1, cb)),
    remove: (path, version) => call<void>('remove', path, (cb) => client.remove(path, version ?? -1, (error) => cb(error, undefined))),
    async ensurePaths(paths) {
      for (const path of paths) {
        try {
          await zk.create(path)
        } catch (error) {
          if (!isZkCode(error, ZK_CODES.NODE_EXISTS)) throw error
        }
      }
    },
    multi: (ops) =>
      new Promise((resolve, reject) => {
        const transaction = client.transaction()
        for (const op of ops) {
          if (op.op === 'create') transaction.create(op.path, op.data ?? Buffer.alloc(0), acls, op.mode ?? CreateMode.PERSISTENT)
          else if (op.op === 'set') transaction.setData(op.path, op.data, op.version ?? -1)
          else if (op.op === 'check') transaction.check(op.path, op.version ?? -1)
          else transaction.remove(op.path, op.version ?? -1)
        }
        transaction.commit((error) => (error ? reject(new ZkError('multi', ops.map((o) => `${o.op} ${o.path}`).join(', '), error)) : resolve()))
      }),
    sessionId: () => client.getSessionId().toString('hex'),
    onSessionLost(listener) {
      lost.once('lost', listener)
    },
    onSessionRenewed() {
      // A single session is never renewed (see renewSession).
    },
    async close() {
      closing = true
      if (disconnectTimer) clearTimeout(disconnectTimer)
      client.close()
    },
  }
  return zk
}

/** JSON helpers for znode payloads. */
export function toJsonBuffer(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value))
}

export function fromJsonBuffer<T>(data: Buffer): T {
  return JSON.parse(data.toString('utf8')) as T
}
