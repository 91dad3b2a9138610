/**
 * Node status, as eBay's Rheos shows it: for every worker and controller, three checks, each ok,
 * failing (with the reason in words) or unknown.
 *
 * - `reachable`: a TCP connection to the node's probe port (bootstrap's health listener,
 *   registered as `healthUrl`; a controller without one: its API port) is accepted within
 *   `connectTimeoutMs`.
 * - `process`: its process runs. The lease in Redis is held (renewed by bootstrap's heartbeat),
 *   bootstrap reports its child running (`metrics.state`, `metrics.childPid`), and, when the node
 *   runs on this controller's host, both pids are alive and not stopped (/proc). A node whose lease
 *   lapsed is remembered from the previous round (for `forgetAfterMs`) and reported as
 *   "lease expired N s ago"; one that deregistered gracefully is dropped.
 * - `probe`: `GET /readyz` on that port is answered within `probeTimeoutMs` with 200 and the body
 *   expected of it (bootstrap: `status: "ok"`; the controller API: `ready: true`).
 *
 * The leader runs a round every `intervalMs` (probes concurrently, at most `concurrency` nodes at
 * a time) and saves it in Redis (`keys.nodes`), so any controller serves it; a controller asked
 * when the saved round is older than two intervals (no leader) or with `fresh`, runs one itself.
 * Nothing secret is kept or answered: ids, hosts, pids, URLs and the reasons below.
 *
 * @example
 *   const nodes = createNodeStatus({ instances, redis, keys, isLeader, leaseTtlMs, logger })
 *   nodes.start()                  // rounds every 10 s while leading
 *   const view = await nodes.view({ fresh: true })
 */
import { readFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { connect } from 'node:net'
import { hostname } from 'node:os'
import type { Redis } from 'ioredis'
import { errorMessage } from '../common/errors.js'
import type { Keys } from '../common/keys.js'
import type { Logger } from '../common/logger.js'
import type { InstanceRecord } from '../common/registry.js'

export const NODE_CHECKS = ['reachable', 'process', 'probe'] as const
export type NodeCheckName = (typeof NODE_CHECKS)[number]

export interface NodeCheck {
  check: NodeCheckName
  /** null: could not be checked (no probe port registered). */
  ok: boolean | null
  /** What was found, in words: why it fails, or what made it pass. */
  reason: string
}

export interface NodeStatus {
  id: string
  role: 'worker' | 'controller'
  host: string
  pid: number
  url?: string
  healthUrl?: string
  lastHeartbeatAt: string
  /** Whether the node holds a lease in Redis now. */
  registered: boolean
  /** failing when a check fails, unknown when none fails but one could not be made, else ok. */
  status: 'ok' | 'failing' | 'unknown'
  checks: NodeCheck[]
}

export interface NodesRound {
  checkedAt: string
  /** The controller that ran the round. */
  checkedBy: string
  nodes: NodeStatus[]
}

/** What the pure checks know of a node: its registry record, or what the last round saw of it. */
export interface KnownNode {
  id: string
  role: 'worker' | 'controller'
  host: string
  pid: number
  url?: string | undefined
  healthUrl?: string | undefined
  lastHeartbeatAt: string
  /** The instance's registry record when its lease is held now; undefined when it lapsed. */
  live?: InstanceRecord
}

export interface NodeStatusOptions {
  /** Longest wait for a TCP connection; default 1000 ms. */
  connectTimeoutMs?: number
  /** Longest wait for the /readyz answer; default 2000 ms. */
  probeTimeoutMs?: number
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 1000
export const DEFAULT_PROBE_TIMEOUT_MS = 2000
export const DEFAULT_NODE_INTERVAL_MS = 10000
export const DEFAULT_FORGET_AFTER_MS = 3600000

/** `1.5 s`, `12 s`, `3 min`: a duration as an operator reads it. */
export function seconds(ms: number): string {
  if (ms < 10000) return `${Math.round(ms / 100) / 10} s`
  if (ms < 120000) return `${Math.round(ms / 1000)} s`
  return `${Math.round(ms / 60000)} min`
}

/** Where to probe a node: its probe listener, or a controller's API; unspecified addresses replaced by the node's host. */
export function probeTarget(node: Pick<KnownNode, 'host' | 'url' | 'healthUrl'>): { url: URL; what: string } | null {
  const text = node.healthUrl ?? node.url
  if (text === undefined) return null
  let url: URL
  try {
    url = new URL(text)
  } catch {
    return null
  }
  // A listener on 0.0.0.0 or :: registers that address; from elsewhere the node is reached by its host name.
  if (url.hostname === '0.0.0.0' || url.hostname === '[::]') url.hostname = node.host
  if (url.port === '') url.port = url.protocol === 'https:' ? '443' : '80'
  return { url, what: `${node.healthUrl === undefined ? 'API port' : 'health port'} ${url.host}` }
}

/** The outcome of one TCP connection attempt. */
export type ConnectOutcome = { ok: true; ms: number } | { ok: false; code: string }

/** The reachable check from a connection outcome. */
export function reachableCheck(target: { what: string } | null, outcome: ConnectOutcome | null, connectTimeoutMs: number): NodeCheck {
  if (target === null || outcome === null) return { check: 'reachable', ok: null, reason: 'no probe port registered (start it under bootstrap with --health-port)' }
  if (outcome.ok) return { check: 'reachable', ok: true, reason: `${target.what} accepted a connection in ${Math.round(outcome.ms)} ms` }
  const why: Record<string, string> = {
    ECONNREFUSED: 'refused the connection',
    TIMEOUT: `did not accept a connection within ${seconds(connectTimeoutMs)}`,
    ENOTFOUND: 'is on a host name that does not resolve',
    EAI_AGAIN: 'is on a host name that does not resolve (DNS did not answer)',
    EHOSTUNREACH: 'is on an unreachable host',
    ENETUNREACH: 'is on an unreachable network',
    ECONNRESET: 'reset the connection',
  }
  return { check: 'reachable', ok: false, reason: `${target.what} ${why[outcome.code] ?? `could not be connected to (${outcome.code})`}` }
}

/** The outcome of GET /readyz. */
export type ProbeOutcome = { kind: 'answered'; status: number; body: unknown; ms: number } | { kind: 'timeout' } | { kind: 'error'; code: string }

/**
 * The probe check. Only fields known to hold no secret are quoted from a failing answer:
 * bootstrap's state, childReady and registered; the names of a controller's failing checks.
 */
export function probeCheck(reachable: NodeCheck, outcome: ProbeOutcome | null, probeTimeoutMs: number): NodeCheck {
  if (reachable.ok === null) return { check: 'probe', ok: null, reason: reachable.reason }
  if (reachable.ok === false || outcome === null) return { check: 'probe', ok: false, reason: 'not sent: the node is not reachable' }
  if (outcome.kind === 'timeout') return { check: 'probe', ok: false, reason: `probe /readyz timed out after ${seconds(probeTimeoutMs)}` }
  if (outcome.kind === 'error') return { check: 'probe', ok: false, reason: `probe /readyz failed before an answer (${outcome.code})` }
  const body = (typeof outcome.body === 'object' && outcome.body !== null ? outcome.body : {}) as Record<string, unknown>
  const expected = body.status === 'ok' || body.ready === true
  if (outcome.status === 200 && expected) return { check: 'probe', ok: true, reason: `probe /readyz answered 200 in ${Math.round(outcome.ms)} ms` }
  if (outcome.status === 200) return { check: 'probe', ok: false, reason: 'probe /readyz answered 200 with an unexpected body (neither status "ok" nor ready true)' }
  const said: string[] = []
  if (typeof body.state === 'string') said.push(`bootstrap ${body.state.slice(0, 20)}`)
  if (body.childReady === false) said.push('child not ready')
  if (body.registered === false) said.push('not registered')
  if (typeof body.checks === 'object' && body.checks !== null) {
    const failing = Object.entries(body.checks as Record<string, unknown>).filter(([, v]) => v !== 'ok').map(([k]) => k.slice(0, 30))
    if (failing.length > 0) said.push(`failing: ${failing.slice(0, 5).join(', ')}`)
  }
  return { check: 'probe', ok: false, reason: `probe /readyz answered ${outcome.status}${said.length > 0 ? ` (${said.join('; ')})` : ''}` }
}

/** What this host can tell of a local pid: running, stopped (SIGSTOP, traced), or gone. */
export type PidState = 'running' | 'stopped' | 'gone' | 'unknown'

/** The process check: the lease, bootstrap's own report, and (local nodes) the pids themselves. */
export function processCheck(node: KnownNode, nowMs: number, leaseTtlMs: number, pidState?: (pid: number) => PidState): NodeCheck {
  const beatMs = Date.parse(node.lastHeartbeatAt)
  const beatAge = Number.isFinite(beatMs) ? Math.max(0, nowMs - beatMs) : undefined
  const live = node.live
  if (live === undefined) {
    if (beatAge === undefined) return { check: 'process', ok: false, reason: 'lease expired (last heartbeat unknown)' }
    if (beatAge < leaseTtlMs) return { check: 'process', ok: false, reason: `lease gone from Redis before its ${seconds(leaseTtlMs)} ran out (last heartbeat ${seconds(beatAge)} ago): removed, or Redis lost it` }
    return { check: 'process', ok: false, reason: `lease expired ${seconds(beatAge - leaseTtlMs)} ago (last heartbeat ${seconds(beatAge)} ago; not renewed by its bootstrap)` }
  }
  const role = node.role
  const metrics = live.metrics
  const childPid = metrics?.childPid ?? null
  if (pidState !== undefined) {
    // The node runs on this host: the pids themselves say more than a lease that has yet to lapse.
    for (const [pid, what] of [[node.pid, 'bootstrap'], [childPid, role]] as const) {
      if (pid === null) continue
      const state = pidState(pid)
      if (state === 'gone') return { check: 'process', ok: false, reason: `${what} process ${pid} is not running on this host (lease still held until it lapses)` }
      if (state === 'stopped') return { check: 'process', ok: false, reason: `${what} process ${pid} is stopped (SIGSTOP or a debugger)` }
    }
  }
  if (beatAge !== undefined && beatAge > leaseTtlMs) return { check: 'process', ok: false, reason: `last heartbeat ${seconds(beatAge)} ago, longer than the lease (${seconds(leaseTtlMs)})` }
  const state = typeof metrics?.state === 'string' ? metrics.state : undefined
  if (state !== undefined && state !== 'running') return { check: 'process', ok: false, reason: `bootstrap is ${state}${metrics?.restarts ? ` (${metrics.restarts} restarts)` : ''}: the ${role} process is not serving` }
  if (metrics !== null && childPid === null) return { check: 'process', ok: false, reason: `bootstrap reports no ${role} process` }
  const local = pidState === undefined ? '' : ', checked on this host'
  return { check: 'process', ok: true, reason: `lease renewed ${beatAge === undefined ? '(time unknown)' : `${seconds(beatAge)} ago`}${childPid === null ? '' : `; ${role} process ${childPid} running`}${local}` }
}

export function overallStatus(checks: readonly NodeCheck[]): NodeStatus['status'] {
  if (checks.some((c) => c.ok === false)) return 'failing'
  if (checks.some((c) => c.ok === null)) return 'unknown'
  return 'ok'
}

/**
 * The nodes of a round: every live instance, and those of the previous round whose lease lapsed
 * (not deregistered gracefully, last heartbeat within `forgetAfterMs`).
 */
export function knownNodes(live: readonly InstanceRecord[], previous: readonly NodeStatus[], departed: ReadonlySet<string>, nowMs: number, forgetAfterMs: number): KnownNode[] {
  const nodes = new Map<string, KnownNode>()
  for (const i of live) nodes.set(i.id, { id: i.id, role: i.role, host: i.host, pid: i.pid, url: i.url, healthUrl: i.healthUrl, lastHeartbeatAt: i.lastHeartbeatAt, live: i })
  for (const p of previous) {
    if (nodes.has(p.id) || departed.has(p.id)) continue
    const beat = Date.parse(p.lastHeartbeatAt)
    if (!(nowMs - beat < forgetAfterMs)) continue
    nodes.set(p.id, { id: p.id, role: p.role, host: p.host, pid: p.pid, url: p.url, healthUrl: p.healthUrl, lastHeartbeatAt: p.lastHeartbeatAt })
  }
  return [...nodes.values()].sort((a, b) => (a.role === b.role ? a.id.localeCompare(b.id) : a.role.localeCompare(b.role)))
}

/** A TCP connection to `url`'s host and port, closed at once. */
export function tcpConnect(url: URL, timeoutMs: number): Promise<ConnectOutcome> {
  const started = performance.now()
  return new Promise((resolve) => {
    const socket = connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port) })
    const done = (outcome: ConnectOutcome): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(outcome)
    }
    const timer = setTimeout(() => done({ ok: false, code: 'TIMEOUT' }), timeoutMs)
    socket.once('connect', () => done({ ok: true, ms: performance.now() - started }))
    socket.once('error', (error: NodeJS.ErrnoException) => done({ ok: false, code: error.code ?? errorMessage(error).slice(0, 60) }))
  })
}

/** Most of an answer read: /readyz bodies are small. */
const MAX_PROBE_BODY_BYTES = 65536

/** GET `url`/readyz, with the whole exchange bounded by `timeoutMs`. */
export function httpProbe(base: URL, timeoutMs: number): Promise<ProbeOutcome> {
  const started = performance.now()
  const url = new URL('/readyz', base)
  return new Promise((resolve) => {
    let settled = false
    const done = (outcome: ProbeOutcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      req.destroy()
      resolve(outcome)
    }
    // The probe sends no credential and reads only readiness, so a controller's self-signed API
    // certificate need not be trusted for it.
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', agent: false, ...(url.protocol === 'https:' ? { rejectUnauthorized: false } : {}) }, (res) => {
      const chunks: Buffer[] = []
      let size = 0
      res.on('data', (chunk: Buffer) => {
        size += chunk.length
        if (size <= MAX_PROBE_BODY_BYTES) chunks.push(chunk)
      })
      res.on('end', () => {
        let body: unknown = null
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'))
        } catch {
          body = null
        }
        done({ kind: 'answered', status: res.statusCode ?? 0, body, ms: performance.now() - started })
      })
      res.on('error', (error: NodeJS.ErrnoException) => done({ kind: 'error', code: error.code ?? 'error' }))
    })
    const timer = setTimeout(() => done({ kind: 'timeout' }), timeoutMs)
    req.on('error', (error: NodeJS.ErrnoException) => done({ kind: 'error', code: error.code ?? errorMessage(error).slice(0, 60) }))
    req.end()
  })
}

/** A pid on this host (Linux /proc for the stopped state; elsewhere only running or gone). */
export function localPidState(pid: number): PidState {
  try {
    process.kill(pid, 0)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ESRCH') return 'gone'
    if (code !== 'EPERM') return 'unknown'
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const state = stat.charAt(stat.lastIndexOf(')') + 2)
    if (state === 'Z' || state === 'X') return 'gone'
    return state === 'T' || state === 't' ? 'stopped' : 'running'
  } catch {
    return 'running'
  }
}

/** How a round reaches the nodes (the real network and /proc in production; fakes in unit tests). */
export interface NodeProbes {
  connect(url: URL, timeoutMs: number): Promise<ConnectOutcome>
  probe(url: URL, timeoutMs: number): Promise<ProbeOutcome>
  /** A pid's state when `host` is this host; undefined for other hosts. */
  pidState(host: string): ((pid: number) => PidState) | undefined
}

export const realNodeProbes: NodeProbes = {
  connect: tcpConnect,
  probe: httpProbe,
  pidState: (host) => (host === hostname() ? localPidState : undefined),
}

/** Runs `work` over `items`, at most `limit` at a time, results in input order. */
export async function mapBounded<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await work(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, lane))
  return results
}

/** The three checks of one node. */
export async function checkNode(node: KnownNode, probes: NodeProbes, nowMs: number, leaseTtlMs: number, options: NodeStatusOptions = {}): Promise<NodeStatus> {
  const connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS
  const probeTimeoutMs = options.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS
  const target = probeTarget(node)
  const connected = target === null ? null : await probes.connect(target.url, connectTimeoutMs)
  const reachable = reachableCheck(target, connected, connectTimeoutMs)
  const answered = target !== null && reachable.ok === true ? await probes.probe(target.url, probeTimeoutMs) : null
  const checks = [reachable, processCheck(node, nowMs, leaseTtlMs, probes.pidState(node.host)), probeCheck(reachable, answered, probeTimeoutMs)]
  return {
    id: node.id,
    role: node.role,
    host: node.host,
    pid: node.pid,
    ...(node.url === undefined ? {} : { url: node.url }),
    ...(node.healthUrl === undefined ? {} : { healthUrl: node.healthUrl }),
    lastHeartbeatAt: node.lastHeartbeatAt,
    registered: node.live !== undefined,
    status: overallStatus(checks),
    checks,
  }
}

export interface NodeStatusDeps {
  /** Live instances (registry reads). */
  instances: () => Promise<InstanceRecord[]>
  /** Which of the ids deregistered gracefully. */
  departed: (ids: readonly string[]) => Promise<string[]>
  redis: Pick<Redis, 'get' | 'set'>
  keys: Pick<Keys, 'nodes'>
  isLeader: () => boolean
  /** This controller's id (`checkedBy`). */
  id: string
  /** The deployment's lease TTL (how long after its last heartbeat a lease lapses). */
  leaseTtlMs: number
  logger: Logger
  probes?: NodeProbes
  now?: () => number
  /** Between the leader's rounds; default 10000 ms. */
  intervalMs?: number
  /** Nodes probed at once; default 8. */
  concurrency?: number
  /** A node whose lease lapsed is reported this long after its last heartbeat; default 1 h. */
  forgetAfterMs?: number
  connectTimeoutMs?: number
  probeTimeoutMs?: number
}

export interface NodeStatusService {
  /** The saved round, or a new one when it is older than two intervals, missing, or `fresh`. */
  view(options?: { fresh?: boolean }): Promise<NodesRound & { intervalMs: number }>
  /** Runs a round now and saves it. */
  round(): Promise<NodesRound>
  /** This controller's last round while it leads (for metrics); null otherwise. */
  latest(): NodesRound | null
  start(): void
  stop(): Promise<void>
}

function parseRound(text: string | null): NodesRound | null {
  if (text === null) return null
  try {
    const round = JSON.parse(text) as NodesRound
    return Array.isArray(round.nodes) && typeof round.checkedAt === 'string' ? round : null
  } catch {
    return null
  }
}

export function createNodeStatus(deps: NodeStatusDeps): NodeStatusService {
  const probes = deps.probes ?? realNodeProbes
  const now = deps.now ?? Date.now
  const intervalMs = deps.intervalMs ?? DEFAULT_NODE_INTERVAL_MS
  const forgetAfterMs = deps.forgetAfterMs ?? DEFAULT_FORGET_AFTER_MS
  const options = { connectTimeoutMs: deps.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS, probeTimeoutMs: deps.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS }
  let last: NodesRound | null = null
  let timer: NodeJS.Timeout | undefined
  let stopped = true
  let running: Promise<unknown> = Promise.resolve()
  const failing = new Set<string>()

  let inflight: Promise<NodesRound> | undefined
  /** One round at a time: callers that ask meanwhile share it. */
  const round = (): Promise<NodesRound> => {
    inflight ??= runRound().finally(() => {
      inflight = undefined
    })
    return inflight
  }

  const runRound = async (): Promise<NodesRound> => {
    const [live, previous] = await Promise.all([deps.instances(), deps.redis.get(deps.keys.nodes).then(parseRound)])
    const gone = (previous?.nodes ?? []).map((n) => n.id).filter((id) => !live.some((i) => i.id === id))
    const departed = new Set(await deps.departed(gone))
    const at = now()
    const nodes = await mapBounded(knownNodes(live, previous?.nodes ?? [], departed, at, forgetAfterMs), deps.concurrency ?? 8, (node) => checkNode(node, probes, at, deps.leaseTtlMs, options))
    const result: NodesRound = { checkedAt: new Date(at).toISOString(), checkedBy: deps.id, nodes }
    await deps.redis.set(deps.keys.nodes, JSON.stringify(result), 'PX', forgetAfterMs)
    // Logged when a node starts or stops failing, not every round.
    for (const node of nodes) {
      const reasons = node.checks.filter((c) => c.ok === false).map((c) => `${c.check}: ${c.reason}`)
      if (reasons.length > 0 && !failing.has(node.id)) deps.logger.warn({ event: 'controller.node_failing', node: node.id, role: node.role, reasons }, `${node.role} ${node.id} fails its checks: ${reasons.join('; ')}`)
      if (reasons.length === 0 && failing.delete(node.id)) deps.logger.info({ event: 'controller.node_recovered', node: node.id }, `${node.role} ${node.id} passes its checks again`)
      if (reasons.length > 0) failing.add(node.id)
    }
    if (deps.isLeader()) last = result
    return result
  }

  const schedule = (): void => {
    if (stopped) return
    timer = setTimeout(() => {
      const pass = async (): Promise<void> => {
        if (!deps.isLeader()) {
          last = null
          return
        }
        await round().catch((error: unknown) => {
          deps.logger.warn({ event: 'controller.node_round_failed', err: errorMessage(error) }, 'could not check the nodes; trying again at the next round')
        })
      }
      running = pass().finally(schedule)
    }, intervalMs)
    timer.unref()
  }

  return {
    async view(request = {}) {
      const saved = request.fresh ? null : parseRound(await deps.redis.get(deps.keys.nodes))
      const fresh = saved !== null && now() - Date.parse(saved.checkedAt) < 2 * intervalMs ? saved : await round()
      return { ...fresh, intervalMs }
    },
    round,
    latest: () => (deps.isLeader() ? last : null),
    start() {
      if (!stopped) return
      stopped = false
      schedule()
    },
    async stop() {
      stopped = true
      if (timer !== undefined) clearTimeout(timer)
      await running
    },
  }
}
