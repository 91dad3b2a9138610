/**
 * The leader's reconcile loop, level-based and idempotent: snapshot (groups, partitions, live
 * workers, current assignment) → desired (strategy) → diff → one fenced multi-op → status.
 * A settled world writes nothing. Runs every `intervalMs` and whenever `trigger()` is called.
 * If Redis cannot be read the pass stops before planning: a worker we cannot see may be
 * alive, so nothing is moved until liveness is known again.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import type { Redis } from 'ioredis'
import { withinMs } from '../common/deadline.js'
import { FerryError, errorMessage } from '../common/errors.js'
import type { Keys } from '../common/keys.js'
import type { Paths } from '../common/paths.js'
import type { Logger } from '../common/logger.js'
import { redisInstanceReads, type InstanceReads, type InstanceRecord } from '../common/registry.js'
import { partitionKey } from '../common/worker-report.js'
import type { AssignedPartition, AssignmentRecord, GroupStatusRecord, Store, Versioned } from '../common/store.js'
import type { Zk, ZkOp } from '../common/zk.js'
import type { ClusterAdmins } from '../common/kafka/cluster-admins.js'
import { discoverPartitions, missingTopicsError } from './discovery.js'
import type { Election } from './election.js'
import type { EventLog } from './events.js'
import { freezeGate, gateMoves, gatedPlan, holdMoves, initialGate, lostLiveWorker, unfreezeGate } from './gate.js'
import { HEAL_DEFAULTS, createHealer, type HealReport, type Quarantine } from './healer.js'
import { planAssignments, type Move, type Plan, type PlanGroup, type PlanInput } from './plan.js'
import { reportsByPartition } from './groups-service.js'
import { diffStatuses } from './status-diff.js'
import type { PartitionRef } from './strategies/index.js'

export interface ReconcilerOptions {
  zk: Zk
  store: Store
  /** Where the status znodes are (a deleted group's status left by a racing pass is removed). */
  paths: Pick<Paths, 'status'>
  election: Election
  /** Where workers' leases are read, unless `instances` is given. */
  redis?: Redis
  keys?: Keys
  /** The registry reads (live instances, departed markers); default over `redis` and `keys`. */
  instances?: InstanceReads
  admins: ClusterAdmins
  logger: Logger
  registry: Registry
  /** Where rebalances, membership changes and new group errors are recorded for operators. */
  events?: EventLog
  id: string
  /** Default 2000 ms. */
  intervalMs?: number
  /** How often the leader checks that every worker it knows still holds a lease; default 500 ms. */
  membershipPollMs?: number
  /**
   * After the set of live workers changes, wait until it has been stable this long before
   * moving partitions, so a rolling restart is one rebalance, not N. Default 3000 ms.
   */
  debounceMs?: number
  /** Partitions moved between live workers per pass; default 100. */
  maxMovesPerPass?: number
  /** load-aware overload threshold; default 1.2. */
  overloadRatio?: number
  /**
   * Instance lease TTL. After this controller becomes leader, and after Redis comes back,
   * nothing moves for one TTL: every live instance has renewed (or re-created) its lease by then,
   * so an empty or partial registry is not mistaken for dead workers. Default 10000 ms.
   */
  leaseTtlMs?: number
  /**
   * Healing of live workers that hold partitions without progress (healer.ts): how long a
   * partition may be stuck before its worker is quarantined for the group. Default 5000 ms;
   * 0 turns healing off.
   */
  healAfterMs?: number
  /** The topic config and ACL sync (topic-follow.ts): its errors go into each group's status. */
  follow?: { statusOf(group: string): { errors: GroupStatusRecord['followErrors'] } | undefined }
  now?: () => number
}

export interface ReconcileResult {
  writes: number
  moves: number
  /** Why nothing was planned, when nothing was. */
  skipped?: string
}

export interface DryRun {
  epoch: number
  workers: string[]
  moves: Move[]
  deferred: number
  unplaced: Record<string, string>
  /** Worker → the partitions it would hold. */
  assignments: Record<string, AssignedPartition[]>
}

export interface Reconciler {
  start(): void
  /** Run a pass soon (coalesced with one already queued). */
  trigger(): void
  /** Run one pass now (leader only); resolves with what it wrote. */
  pass(): Promise<ReconcileResult>
  /** Compute what a pass would do now, ignoring the debounce, without writing anything. */
  dryRun(): Promise<DryRun>
  /** Why rebalancing is frozen, if it is. */
  frozenReason(): string | null
  /** Workers quarantined now for holding a group's partitions without progress (healer.ts). */
  quarantines(): Quarantine[]
  stop(): Promise<void>
}

export function createReconciler(options: ReconcilerOptions): Reconciler {
  const { store, election, logger } = options
  const instanceReads = options.instances ?? registryOver(options.redis, options.keys)
  const intervalMs = options.intervalMs ?? 2000
  const membershipPollMs = options.membershipPollMs ?? 500
  let timer: NodeJS.Timeout | undefined
  let pollTimer: NodeJS.Timeout | undefined
  let running: Promise<ReconcileResult> | undefined
  let queued = false
  let stopped = false
  const now = options.now ?? Date.now
  const debounceMs = options.debounceMs ?? 3000
  const maxMovesPerPass = options.maxMovesPerPass ?? 100
  let debounceTimer: NodeJS.Timeout | undefined
  const leaseTtlMs = options.leaseTtlMs ?? 10000
  // Membership debounce, holds and the Redis freeze: replaced (never mutated) by the gate's functions.
  let gate = initialGate()
  election.on('elected', () => {
    gate = holdMoves(gate, now(), leaseTtlMs)
  })

  const passSeconds = new Histogram({ name: 'ferry_controller_reconcile_seconds', help: 'Duration of a reconcile pass', registers: [options.registry], buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 30] })
  const writesTotal = new Counter({ name: 'ferry_controller_assignment_writes_total', help: 'Fenced multi-op writes of assignments or status', registers: [options.registry] })
  const movesTotal = new Counter({ name: 'ferry_controller_partition_moves_total', help: 'Partitions whose owner changed', registers: [options.registry] })
  const healAfterMs = options.healAfterMs ?? HEAL_DEFAULTS.healAfterMs
  const healer = createHealer({ now, healAfterMs: Math.max(1, healAfterMs) })
  // Source end offsets read for the healer, per group and topic, reused for a few seconds.
  const endCache = new Map<string, { at: number; ends: Map<number, number> }>()
  new Gauge({ name: 'ferry_controller_quarantined_workers', help: 'Worker-group pairs quarantined for holding partitions without progress while other workers move data between the same clusters (leader only)', registers: [options.registry], collect() { this.set(election.isLeader() ? healer.active().length : 0) } })
  const quarantinesTotal = new Counter({ name: 'ferry_controller_quarantines_total', help: 'Times a worker was quarantined for a group (its partitions of the group moved to other workers)', registers: [options.registry] })
  const frozenGauge = new Gauge({ name: 'ferry_controller_rebalance_frozen', help: '1 while rebalancing is frozen (e.g. Redis unreachable)', registers: [options.registry] })
  new Gauge({ name: 'ferry_controller_is_leader', help: '1 on the leader controller', registers: [options.registry], collect() { this.set(election.isLeader() ? 1 : 0) } })

  interface Snapshot {
    plan: Plan
    /** What the plan was made from, to plan again with other limits. */
    planInput: PlanInput
    current: Map<string, Versioned<AssignmentRecord>>
    statuses: Map<string, GroupStatusRecord>
    newStatuses: GroupStatusRecord[]
    workerIds: string[]
    /** Assigned workers not in the registry that deregistered gracefully: known gone, never held for. */
    departedIds: string[]
    /** Whether moves between live workers are allowed (the settings znode). */
    autoBalancing: boolean
  }

  /**
   * One look of the healer: feed it the assignment and the reports, read the source ends it
   * asks for (bounded; an unreadable cluster counts as unknown, never as stuck) and log what it
   * quarantines.
   */
  const heal = async (instances: InstanceRecord[], current: ReadonlyMap<string, Versioned<AssignmentRecord>>, pairs: ReadonlyMap<string, { pair: string; sourceCluster: string }>, clusters: ReadonlyMap<string, Parameters<ClusterAdmins['get']>[0]>): Promise<void> => {
    const live = new Set(instances.filter((i) => i.role === 'worker').map((i) => i.id))
    const assignments = new Map([...current].filter(([worker]) => live.has(worker)).map(([worker, record]) => [worker, record.value.partitions]))
    const reports = new Map<string, HealReport[]>()
    for (const [key, list] of reportsByPartition(instances)) reports.set(key, list.map((r) => ({ worker: r.worker, state: r.state, position: r.position })))
    healer.observe({ assignments, reports, pairOf: (group) => pairs.get(group)?.pair })
    const wanted = healer.needsSourceEnd()
    const ends = new Map<string, number>()
    const byTopic = new Map<string, { group: string; topic: string }>()
    for (const p of wanted) byTopic.set(`${p.group}/${p.topic}`, { group: p.group, topic: p.topic })
    await Promise.all(
      [...byTopic].map(async ([key, { group, topic }]) => {
        let cached = endCache.get(key)
        if (cached === undefined || now() - cached.at > 3000) {
          const source = clusters.get(pairs.get(group)?.sourceCluster ?? '')
          if (source === undefined) return
          try {
            const offsets = await withinMs(options.admins.get(source).stableOffsets(topic), 3000, () => new Error('no answer within 3000 ms'))
            cached = { at: now(), ends: new Map(offsets.map((o) => [o.partition, o.stable])) }
            endCache.set(key, cached)
          } catch (error) {
            logger.debug({ event: 'controller.heal_source_unreadable', group, topic, err: errorMessage(error) }, 'cannot read source end offsets for the healer')
            return
          }
        }
        for (const [partition, end] of cached.ends) ends.set(`${key}/${partition}`, end)
      }),
    )
    for (const key of endCache.keys()) if (!byTopic.has(key)) endCache.delete(key)
    for (const q of healer.decide(ends)) {
      quarantinesTotal.inc()
      const forS = Math.round((q.until - q.since) / 1000)
      logger.warn({ event: 'controller.worker_quarantined', worker: q.worker, group: q.group, reason: q.reason, strike: q.strike, forMs: q.until - q.since, partitions: q.partitions.length }, 'worker quarantined for the group: its partitions move to other workers')
      options.events?.record({ type: 'worker_quarantined', worker: q.worker, group: q.group, message: `worker ${q.worker} quarantined for ${forS} s: ${q.reason}` })
    }
  }

  /**
   * Reads the world and plans; null when Redis cannot be read (rebalancing frozen). With
   * `healing`, the healer looks at the workers' reports first (passes do, dry runs do not).
   */
  const snapshot = async (healing = false): Promise<Snapshot | null> => {
    const [groups, clusters, current, statuses, settings] = await Promise.all([store.listGroups(), store.listClusters(), store.listAssignments(), store.listStatuses(), store.getSettings()])
    let instances
    let departedIds: string[]
    try {
      instances = await instanceReads.listInstances()
      const seen = new Set(instances.map((i) => i.id))
      departedIds = await instanceReads.listDeparted([...current.keys()].filter((worker) => !seen.has(worker)))
      const unfrozen = unfreezeGate(gate, now(), leaseTtlMs)
      gate = unfrozen.state
      if (unfrozen.resumed) logger.info({ event: 'controller.rebalance_unfrozen', holdMs: leaseTtlMs }, 'Redis reachable again; rebalancing resumes after one lease TTL')
      frozenGauge.set(0)
    } catch (error) {
      gate = freezeGate(gate, `Redis unreachable (${errorMessage(error)}): cannot tell dead workers from unreachable ones, rebalancing is frozen`)
      frozenGauge.set(1)
      logger.warn({ event: 'controller.rebalance_frozen', err: errorMessage(error) }, 'rebalancing frozen')
      return null
    }
    const live = instances.filter((i) => i.role === 'worker')
    const workers = live.map((i) => ({ id: i.id, ...(i.zone ? { zone: i.zone } : {}), ...(i.dc ? { dc: i.dc } : {}) }))
    // Reported load per partition (bytes/s), for load-aware groups; +1 so idle partitions still count.
    const weights = new Map<string, number>()
    for (const instance of live) {
      for (const p of instance.metrics?.partitions ?? []) weights.set(partitionKey(p, p.group), 1 + Math.max(0, p.bytesPerSec))
    }

    const clusterByName = new Map(clusters.map((c) => [c.name, c]))
    if (healing && healAfterMs > 0) {
      const pairs = new Map(groups.map(({ value: g }) => [g.spec.name, { pair: `${g.spec.sourceCluster}\u2192${g.spec.targetCluster}`, sourceCluster: g.spec.sourceCluster }]))
      await heal(instances, current, pairs, clusterByName)
    }
    const assignedByGroup = new Map<string, PartitionRef[]>()
    for (const record of current.values()) {
      for (const p of record.value.partitions) {
        const list = assignedByGroup.get(p.group)
        if (list === undefined) assignedByGroup.set(p.group, [p])
        else list.push(p)
      }
    }

    const observedAt = new Date().toISOString()
    const planGroups: PlanGroup[] = []
    const newStatuses: GroupStatusRecord[] = []
    await Promise.all(
      groups.map(async ({ value: group }) => {
        const spec = group.spec
        const running = group.state === 'running'
        const status: GroupStatusRecord = { group: spec.name, observedAt, topics: {} }
        const previousBaseline = statuses.get(spec.name)?.baseline
        if (previousBaseline) status.baseline = previousBaseline
        let partitions: PartitionRef[] = []
        if (running) {
          const source = clusterByName.get(spec.sourceCluster)
          try {
            if (source === undefined) throw new FerryError('CLUSTER_NOT_FOUND', `source cluster "${spec.sourceCluster}" is not registered`)
            const found = await discoverPartitions(spec, options.admins.get(source))
            partitions = found.partitions
            status.topics = found.topics
            status.baseline = statuses.get(spec.name)?.baseline ?? found.topics
            if (found.missingTopics.length > 0) {
              const error = missingTopicsError(spec.name, spec.sourceCluster, found.missingTopics)
              status.error = { code: error.code, message: error.message }
            }
            if (found.unmirrorable.length > 0 && status.error === undefined) {
              status.error = { code: 'INVALID_INPUT', message: `topic(s) ${found.unmirrorable.join(', ')} are not mirrored: with the group's rename the target name would be longer than Kafka's 249 characters` }
            }
            const previous = statuses.get(spec.name)?.topics ?? {}
            const dropped = Object.keys(previous).filter((t) => !Object.hasOwn(found.topics, t))
            if (dropped.length > 0) {
              logger.warn({ event: 'controller.topics_dropped', group: spec.name, topics: dropped }, 'source topics disappeared; no longer mirrored')
              status.droppedTopics = [...new Set([...(statuses.get(spec.name)?.droppedTopics ?? []), ...dropped])].sort()
            } else if (statuses.get(spec.name)?.droppedTopics) {
              status.droppedTopics = (statuses.get(spec.name)?.droppedTopics ?? []).filter((t) => !Object.hasOwn(found.topics, t))
            }
          } catch (error) {
            // Keep what the group has: a cluster we cannot reach right now is no reason to stop mirroring it.
            partitions = assignedByGroup.get(spec.name) ?? []
            status.topics = statuses.get(spec.name)?.topics ?? {}
            const baseline = statuses.get(spec.name)?.baseline
            if (baseline) status.baseline = baseline
            const ferry = error instanceof FerryError ? error : new FerryError('KAFKA_ERROR', errorMessage(error))
            status.error = { code: ferry.code, message: ferry.message }
            logger.warn({ event: 'controller.discovery_failed', group: spec.name, code: ferry.code, err: ferry.message }, 'partition discovery failed')
          }
        }
        const excluded = healer.excluded(spec.name)
        const quarantined = healer.active().filter((q) => q.group === spec.name)
        if (quarantined.length > 0) status.quarantined = quarantined.map((q) => ({ worker: q.worker, reason: q.reason, since: new Date(q.since).toISOString(), until: new Date(q.until).toISOString() }))
        // Before the sync has run under this leader, the stored errors stand (a new leader must not clear them unseen).
        const followErrors = options.follow?.statusOf(spec.name)?.errors ?? statuses.get(spec.name)?.followErrors
        if (followErrors !== undefined && followErrors.length > 0) status.followErrors = followErrors
        planGroups.push({ spec, running, partitions, ...(excluded.size > 0 ? { excluded } : {}) })
        newStatuses.push(status)
      }),
    )

    const planInput: PlanInput = {
      groups: planGroups,
      workers,
      current,
      epoch: election.epoch(),
      leader: options.id,
      weights,
      // Auto-balancing off: nothing moves between live workers; unserved partitions are still placed.
      maxMovesPerPass: settings.autoBalancing ? maxMovesPerPass : 0,
      ...(options.overloadRatio ? { overloadRatio: options.overloadRatio } : {}),
    }
    const plan = planAssignments(planInput)
    for (const status of newStatuses) {
      const reason = plan.unplaced.get(status.group)
      if (reason !== undefined && status.error === undefined) status.error = { code: 'UNAVAILABLE', message: reason }
    }
    return { plan, planInput, current, statuses, newStatuses, workerIds: workers.map((w) => w.id).sort(), departedIds, autoBalancing: settings.autoBalancing }
  }

  const runPass = async (): Promise<ReconcileResult> => {
    if (!election.isLeader()) return { writes: 0, moves: 0, skipped: 'not leader' }
    const end = passSeconds.startTimer()
    try {
      const snap = await snapshot(true)
      if (snap === null) return { writes: 0, moves: 0, skipped: 'rebalancing frozen' }
      const owners = [...snap.current].filter(([, record]) => record.value.partitions.length > 0).map(([worker]) => worker)
      const decision = gateMoves(gate, { workerIds: snap.workerIds, owners, departedIds: snap.departedIds }, now(), { debounceMs, leaseTtlMs })
      gate = decision.state
      const { membershipChange, massDisappearance, waitMs } = decision
      if (membershipChange) {
        logger.info({ event: 'controller.membership_changed', workers: membershipChange.workers }, 'live workers changed')
        for (const worker of membershipChange.joined) options.events?.record({ type: 'worker_joined', worker, message: `worker ${worker} joined` })
        for (const worker of membershipChange.left) options.events?.record({ type: 'worker_left', worker, message: `worker ${worker} left` })
      }
      if (massDisappearance) {
        logger.warn({ event: 'controller.mass_disappearance', ...massDisappearance, holdMs: leaseTtlMs }, 'most assigned workers vanished from the registry at once; holding moves for one lease TTL')
      }
      const { current, statuses, newStatuses } = snap
      const plan = gatedPlan(decision.mode, snap.planInput, snap.plan)
      const ops: ZkOp[] = plan === null ? [] : store.assignmentOps(plan.changes, current)
      const { writes, newErrors, removals } = diffStatuses(statuses, newStatuses)
      for (const { status, exists } of writes) ops.push(...store.statusOps(status, exists))
      for (const group of removals) ops.push({ op: 'remove', path: options.paths.status(group) })
      if (waitMs > 0) {
        // Membership moved recently: hold moves until it settles, then look again.
        if (debounceTimer === undefined) {
          debounceTimer = setTimeout(() => {
            debounceTimer = undefined
            reconciler.trigger()
          }, waitMs + 10)
        }
      }
      if (ops.length === 0) return { writes: 0, moves: 0, ...(waitMs > 0 ? { skipped: 'membership settling' } : {}) }
      if (!election.isLeader()) return { writes: 0, moves: 0, skipped: 'not leader' }
      await options.zk.multi([...election.fence(), ...ops])
      writesTotal.inc()
      const moves = plan === null ? 0 : plan.moves.length
      movesTotal.inc(moves)
      if (plan !== null && moves > 0) {
        logger.info({ event: 'controller.assignment_written', epoch: election.epoch(), moves, deferred: plan.deferred, workers: snap.workerIds.length }, 'assignment written')
        options.events?.record({ type: 'rebalance', moves, deferred: plan.deferred, message: `${moves} partition${moves === 1 ? '' : 's'} moved over ${snap.workerIds.length} worker${snap.workerIds.length === 1 ? '' : 's'}${plan.deferred > 0 ? `, ${plan.deferred} deferred` : ''}` })
      }
      // Recorded once the status carrying them is written, so a failed write does not log them twice.
      for (const status of newErrors) options.events?.record({ type: 'group_error', group: status.group, code: status.error?.code ?? 'UNKNOWN', message: status.error?.message ?? 'error' })
      // Throttled moves remain: come back for them without waiting a whole interval.
      // (With auto-balancing off every such move is held back on purpose: no point in coming back.)
      if (decision.mode === 'all' && snap.plan.deferred > 0 && snap.autoBalancing) reconciler.trigger()
      return { writes: 1, moves }
    } finally {
      end()
    }
  }

  const reconciler: Reconciler = {
    start() {
      const loop = (): void => {
        if (stopped) return
        reconciler.trigger()
        timer = setTimeout(loop, intervalMs)
      }
      loop()
      // Between passes, a cheap look at who holds a lease: a worker whose lease is gone (it died
      // or left) has its partitions placed within this poll instead of the next pass. Joins
      // wait for the debounce anyway.
      const poll = (): void => {
        if (stopped) return
        if (election.isLeader()) {
          void instanceReads.listLiveIds().then(
            (ids) => {
              if (lostLiveWorker(gate, new Set(ids))) reconciler.trigger()
            },
            () => undefined,
          )
        }
        pollTimer = setTimeout(poll, membershipPollMs)
      }
      pollTimer = setTimeout(poll, membershipPollMs)
    },
    trigger() {
      if (running) {
        queued = true
        return
      }
      void reconciler.pass().catch((error: unknown) => {
        logger.error({ event: 'controller.reconcile_failed', err: errorMessage(error) }, 'reconcile pass failed')
      })
    },
    async pass() {
      if (running) return running
      running = runPass().finally(() => {
        running = undefined
        if (queued && !stopped) {
          queued = false
          reconciler.trigger()
        }
      })
      return running
    },
    async dryRun() {
      const snap = await snapshot()
      if (snap === null) throw new FerryError('UNAVAILABLE', gate.frozen ?? 'Redis unreachable')
      const owners = new Map<string, AssignedPartition[]>()
      for (const [worker, record] of snap.current) owners.set(worker, record.value.partitions)
      for (const [worker, record] of snap.plan.changes) {
        if (record === null) owners.delete(worker)
        else owners.set(worker, record.partitions)
      }
      return {
        epoch: election.epoch(),
        workers: snap.workerIds,
        moves: snap.plan.moves,
        deferred: snap.plan.deferred,
        unplaced: Object.fromEntries(snap.plan.unplaced),
        assignments: Object.fromEntries([...owners].sort(([a], [b]) => a.localeCompare(b))),
      }
    },
    frozenReason: () => gate.frozen,
    quarantines: () => healer.active(),
    async stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      if (pollTimer) clearTimeout(pollTimer)
      if (debounceTimer) clearTimeout(debounceTimer)
      await running?.catch(() => undefined)
    },
  }
  return reconciler
}

function registryOver(redis: Redis | undefined, keys: Keys | undefined): InstanceReads {
  if (redis === undefined || keys === undefined) throw new Error('createReconciler needs redis and keys, or instances')
  return redisInstanceReads(redis, keys)
}
