/**
 * Consumer groups follow the data to the target: their committed source offsets, translated with
 * the workers' offset syncs (worker/offset-syncs.ts, common/offset-translation.ts) into target
 * offsets, committed on the target.
 *
 * - Continuously, for the consumer groups a topic group names (`consumerGroups`), every
 *   `intervalSeconds` (5 by default), while this controller leads. A target offset only moves
 *   forward (as MirrorMaker 2's checkpoints), so a group that already runs on the target after a
 *   failover is never set back by its stale source offsets; and it is written only while the
 *   group has no members on the target (Kafka refuses otherwise), which its status says.
 * - At once, by `failover` (REST and CLI), for a planned or unplanned switch: exactly the
 *   translation, forward or back, after checking every named group has no members on the
 *   target (nothing is written when one has).
 *
 * The syncs are read from the target's sync topic into a per-partition index (appendSync merges a
 * chain's syncs and bounds the runs kept), each refresh reading only what was appended since the
 * last.
 *
 * @example
 *   const offsets = createConsumerOffsets({ isLeader, groups, spec, sides, sourceConsumer, deployment, logger })
 *   await offsets.translations('orders')         // GET /v1/groups/orders/consumer-offsets
 *   await offsets.failover('orders', { dryRun: true })
 *   offsets.start()                               // the continuous sync, while leading
 */
import { groupIncludesTopic, targetTopicName, type ClusterSpec, type TopicGroupSpec } from '../common/config.js'
import { FerryError, errorMessage } from '../common/errors.js'
import type { KafkaAdmin, KafkaReadClients, PartitionOffsets } from '../common/kafka/port.js'
import type { Logger } from '../common/logger.js'
import { appendSync, offsetSyncTopicName, skippedRecords, translateBack, translateOffset, type OffsetSync } from '../common/offset-translation.js'
import { topicPatternMatches } from '../common/topic-pattern.js'
import { readRanges } from './audit.js'
import { isInternalTopic } from './discovery.js'
import type { EventLog } from './events.js'
import type { ClusterAdmins } from '../common/kafka/cluster-admins.js'
import type { Store } from '../common/store.js'

export const DEFAULT_CONSUMER_SYNC_SECONDS = 5
/** A failover translates inexact rows again up to this many times, this far apart (the workers write syncs every second). */
const FAILOVER_SYNC_WAITS = 3
const FAILOVER_SYNC_WAIT_MS = 1000

/** One partition of one consumer group: where it is on the source and where that is on the target. */
export interface OffsetTranslationRow {
  consumerGroup: string
  topic: string
  partition: number
  /** The group's committed offset on the source (the next record it would read). */
  sourceOffset: number
  targetTopic: string
  /** The target offset of the first mirrored record at or after sourceOffset. */
  targetOffset: number
  /** True when the group resumes at its first uncommitted record; false: it re-reads some records before it (see reason). */
  exact: boolean
  reason: string
  /** Records the group would skip at targetOffset (mirrored records at or after sourceOffset whose copy lies before it): always 0, checked. */
  skipped: number
  /** The group's committed offset on the target now, if any. */
  targetCommitted?: number
}

export interface ConsumerGroupSyncState {
  consumerGroup: string
  /** `synced`: offsets written (or already there); `has-members`: not written, the group runs on the target; `failed`: see message. */
  state: 'synced' | 'has-members' | 'failed'
  message: string
  at: string
}

export interface ConsumerOffsetsView {
  group: string
  consumerGroups: string[]
  partitions: OffsetTranslationRow[]
  /** The continuous sync's last result per consumer group (this controller's, while it leads). */
  sync: ConsumerGroupSyncState[]
}

export interface FailoverResult {
  group: string
  dryRun: boolean
  consumerGroups: string[]
  partitions: OffsetTranslationRow[]
  /** Sum of `skipped` over the partitions: 0, or nothing is written. */
  skipped: number
  /** Partitions whose translation is not exact (the group re-reads records before its position there). */
  inexact: number
  written: boolean
}

interface Side {
  cluster: ClusterSpec
  admin: KafkaAdmin
}

export interface ConsumerOffsetsDeps {
  isLeader(): boolean
  groups(): Promise<TopicGroupSpec[]>
  /** The group's spec, or GROUP_NOT_FOUND. */
  spec(name: string): Promise<TopicGroupSpec>
  sides(spec: TopicGroupSpec): Promise<{ source: Side; target: Side }>
  sourceConsumer: KafkaReadClients['sourceConsumer']
  deployment: string
  logger: Logger
  /** Between a failover's translations of inexact rows; default 1000 ms (tests: 0). */
  failoverSyncWaitMs?: number
  /** Tells operators about continuous-sync trouble (the event log). */
  onProblem?: (group: string, consumerGroup: string, message: string) => void
}

export interface ConsumerOffsets {
  translations(group: string, consumerGroups?: readonly string[]): Promise<ConsumerOffsetsView>
  failover(group: string, options: { consumerGroups?: readonly string[]; dryRun?: boolean }): Promise<FailoverResult>
  /** Runs the continuous sync (while leading). */
  start(): void
  /** One pass of the continuous sync now, every following group whatever its interval (while leading). */
  syncOnce(): Promise<void>
  stop(): Promise<void>
}

/** Whether the kept syncs of an earlier group name its copies from before `c` on (none deleted or trimmed between). */
function forwardSyncsReach(syncs: readonly OffsetSync[], c: number): boolean {
  let first: number | undefined
  for (const sync of syncs) for (const [, t] of sync.runs) if (first === undefined || t < first) first = t
  return first !== undefined && first <= c
}

/** The syncs of one target cluster's sync topic, read incrementally. */
interface SyncIndex {
  /** Per sync-topic partition, the next offset to read. */
  next: Map<number, number>
  /** `<group>/<topic>/<partition>` → syncs in write order. */
  syncs: Map<string, OffsetSync[]>
  refreshing?: Promise<void>
}

export function createConsumerOffsets(deps: ConsumerOffsetsDeps): ConsumerOffsets {
  const indexes = new Map<string, SyncIndex>()
  const syncStates = new Map<string, Map<string, ConsumerGroupSyncState>>()
  const lastRun = new Map<string, number>()
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> = Promise.resolve()
  let stopped = false

  /** Reads what the sync topic on `target` gained since the last refresh. */
  const refresh = (target: Side): Promise<void> => {
    let index = indexes.get(target.cluster.name)
    if (index === undefined) {
      index = { next: new Map(), syncs: new Map() }
      indexes.set(target.cluster.name, index)
    }
    const own = index
    own.refreshing ??= (async () => {
      const syncTopic = offsetSyncTopicName(deps.deployment)
      try {
        if (!(await target.admin.partitionCounts([syncTopic])).has(syncTopic)) return
        const offsets = await target.admin.offsets(syncTopic)
        const ranges = offsets.map((o) => ({ partition: o.partition, from: Math.max(o.low, own.next.get(o.partition) ?? 0), to: o.high }))
        await readRanges(target.cluster, syncTopic, ranges, { sourceConsumer: deps.sourceConsumer, logger: deps.logger }, (_partition, record) => {
          const key = record.key?.toString('utf8')
          if (key === undefined || record.value === null) return
          let sync: OffsetSync
          try {
            sync = JSON.parse(record.value.toString('utf8')) as OffsetSync
          } catch {
            return
          }
          if (!Number.isSafeInteger(sync.from) || !Number.isSafeInteger(sync.to) || !Array.isArray(sync.runs)) return
          let list = own.syncs.get(key)
          if (list === undefined) {
            list = []
            own.syncs.set(key, list)
          }
          appendSync(list, sync)
        })
        for (const r of ranges) own.next.set(r.partition, Math.max(r.from, r.to))
      } finally {
        own.refreshing = undefined
      }
    })()
    return own.refreshing
  }

  /** The source topics of a group now (its list, or its pattern's matches). */
  const topicsOf = async (spec: TopicGroupSpec, source: Side): Promise<string[]> => {
    if (spec.topics !== undefined) return [...spec.topics]
    return (await source.admin.listTopics()).filter((t) => !isInternalTopic(t) && groupIncludesTopic(spec, t)).sort()
  }

  /** The consumer groups to translate: the ones asked for (each must exist on the source), else the group's `consumerGroups`. */
  const consumerGroupsOf = async (spec: TopicGroupSpec, source: Side, requested: readonly string[] | undefined): Promise<string[]> => {
    const existing = await source.admin.listGroups()
    if (requested !== undefined && requested.length > 0) {
      const unknown = requested.filter((g) => !existing.includes(g))
      if (unknown.length > 0) throw new FerryError('NOT_FOUND', `consumer group(s) ${unknown.map((g) => `"${g}"`).join(', ')} do not exist on source cluster "${source.cluster.name}"`, { details: unknown.map((g) => ({ field: 'consumerGroups', message: `"${g}" does not exist on the source` })) })
      return [...new Set(requested)]
    }
    const follow = spec.consumerGroups
    if (follow === undefined) throw new FerryError('INVALID_INPUT', `group "${spec.name}" follows no consumer groups: name them (--consumer-group / consumerGroups in the request) or set consumerGroups on the group`, { details: [{ field: 'consumerGroups', message: 'required: the group names none' }] })
    return existing.filter((g) => (follow.names ?? []).includes(g) || (follow.pattern !== undefined && topicPatternMatches(follow.pattern, g)))
  }

  const translate = async (spec: TopicGroupSpec, sides: { source: Side; target: Side }, consumerGroups: readonly string[]): Promise<OffsetTranslationRow[]> => {
    if (!spec.preservePartition) throw new FerryError('CONFLICT', `group "${spec.name}" does not keep partition numbers (preservePartition: false): consumer offsets cannot be translated`)
    await refresh(sides.target)
    const index = indexes.get(sides.target.cluster.name) as SyncIndex
    // Fail back: the earlier group's syncs (on this group's source, its target) say where the copies came from.
    const forward = spec.failbackOf === undefined ? undefined : await deps.spec(spec.failbackOf)
    if (forward !== undefined) await refresh(sides.source)
    const forwardIndex = forward === undefined ? undefined : (indexes.get(sides.source.cluster.name) as SyncIndex)
    const topics = await topicsOf(spec, sides.source)
    const targetEnds = new Map<string, PartitionOffsets[]>()
    const rows: OffsetTranslationRow[] = []
    for (const consumerGroup of consumerGroups) {
      for (const topic of topics) {
        const committed = await sides.source.admin.groupOffsets(consumerGroup, topic)
        if (committed.length === 0) continue
        const targetTopic = targetTopicName(spec, topic)
        if (!targetEnds.has(targetTopic)) targetEnds.set(targetTopic, (await sides.target.admin.partitionCounts([targetTopic])).has(targetTopic) ? await sides.target.admin.offsets(targetTopic) : [])
        const ends = targetEnds.get(targetTopic) as PartitionOffsets[]
        const onTarget = new Map((await sides.target.admin.groupOffsets(consumerGroup, targetTopic)).map((o) => [o.partition, o.offset]))
        for (const { partition, offset: c } of committed) {
          const syncs = index.syncs.get(`${spec.name}/${topic}/${partition}`) ?? []
          const t = translateOffset(syncs, c)
          const end = ends.find((e) => e.partition === partition)
          const targetOffset = t.offset ?? (t.fallback === 'target-start' ? (end?.low ?? 0) : (end?.high ?? 0))
          const row: OffsetTranslationRow = { consumerGroup, topic, partition, sourceOffset: c, targetTopic, targetOffset, exact: t.exact, reason: t.reason, skipped: skippedRecords(syncs, c, targetOffset) }
          if (forward !== undefined) {
            const forwardSyncs = forwardIndex?.syncs.get(`${forward.name}/${targetTopic}/${partition}`) ?? []
            const back = translateBack(forwardSyncs, c)
            if (!forwardSyncsReach(forwardSyncs, c)) {
              // Copies at or after c may exist that no kept sync of the earlier group names (deleted
              // after 24 h, trimmed): their originals could lie anywhere before this answer.
              const low = ends.find((e) => e.partition === partition)?.low ?? 0
              Object.assign(row, { targetOffset: low, exact: false, reason: `the offset syncs of group "${forward.name}" kept no longer reach back to the committed offset: the log start here (the group re-reads everything before its position)`, skipped: 0 })
            } else if (back !== undefined && back < targetOffset) {
              // The first record at or after c came from the target: back to its original offset there.
              Object.assign(row, { targetOffset: back, exact: true, reason: `exact: the record came from this cluster through group "${forward.name}": its original offset`, skipped: skippedRecords(syncs, c, back) })
            }
          }
          const current = onTarget.get(partition)
          if (current !== undefined) row.targetCommitted = current
          rows.push(row)
        }
      }
    }
    return rows
  }

  const membersProblem = async (target: Side, consumerGroup: string): Promise<string | undefined> => {
    const { state, members } = await target.admin.describeGroup(consumerGroup)
    return members > 0 ? `consumer group "${consumerGroup}" has ${members} live member(s) on target cluster "${target.cluster.name}" (state ${state}): Kafka refuses to set offsets of a group with members; stop them first` : undefined
  }

  /** One continuous-sync pass of a group. */
  const follow = async (spec: TopicGroupSpec): Promise<void> => {
    const sides = await deps.sides(spec)
    const consumerGroups = await consumerGroupsOf(spec, sides.source, undefined)
    const states = syncStates.get(spec.name) ?? new Map<string, ConsumerGroupSyncState>()
    syncStates.set(spec.name, states)
    for (const name of [...states.keys()]) if (!consumerGroups.includes(name)) states.delete(name)
    const rows = consumerGroups.length === 0 ? [] : await translate(spec, sides, consumerGroups)
    for (const consumerGroup of consumerGroups) {
      const at = new Date().toISOString()
      try {
        // Forward only: a group already reading on the target is never set back.
        const due = rows.filter((r) => r.consumerGroup === consumerGroup && r.skipped === 0 && (r.targetCommitted === undefined || r.targetOffset > r.targetCommitted))
        if (due.length > 0) {
          const members = await membersProblem(sides.target, consumerGroup)
          if (members !== undefined) {
            if (states.get(consumerGroup)?.state !== 'has-members') deps.onProblem?.(spec.name, consumerGroup, members)
            states.set(consumerGroup, { consumerGroup, state: 'has-members', message: members, at })
            continue
          }
          await sides.target.admin.setGroupOffsets(consumerGroup, due.map((r) => ({ topic: r.targetTopic, partition: r.partition, offset: r.targetOffset })))
        }
        states.set(consumerGroup, { consumerGroup, state: 'synced', message: due.length === 0 ? 'up to date' : `${due.length} partition offset(s) written`, at })
      } catch (error) {
        const message = `writing offsets of consumer group "${consumerGroup}" on target cluster "${sides.target.cluster.name}" failed: ${errorMessage(error)}`
        if (states.get(consumerGroup)?.state !== 'failed') deps.onProblem?.(spec.name, consumerGroup, message)
        states.set(consumerGroup, { consumerGroup, state: 'failed', message, at })
      }
    }
  }

  const pass = async (due: 'when-due' | 'now' = 'when-due'): Promise<void> => {
    if (!deps.isLeader()) return
    const now = Date.now()
    for (const spec of await deps.groups()) {
      if (stopped || spec.consumerGroups === undefined) continue
      const everyMs = (spec.consumerGroups.intervalSeconds ?? DEFAULT_CONSUMER_SYNC_SECONDS) * 1000
      if (due === 'when-due' && now - (lastRun.get(spec.name) ?? 0) < everyMs) continue
      lastRun.set(spec.name, now)
      try {
        await follow(spec)
      } catch (error) {
        deps.logger.warn({ event: 'controller.consumer_offsets_failed', group: spec.name, err: errorMessage(error) }, 'consumer offset sync failed; will retry')
      }
    }
  }

  return {
    async translations(name, consumerGroups) {
      const spec = await deps.spec(name)
      const sides = await deps.sides(spec)
      const groups = await consumerGroupsOf(spec, sides.source, consumerGroups)
      return { group: name, consumerGroups: groups, partitions: await translate(spec, sides, groups), sync: [...(syncStates.get(name)?.values() ?? [])] }
    },
    async failover(name, options) {
      const spec = await deps.spec(name)
      const sides = await deps.sides(spec)
      const consumerGroups = await consumerGroupsOf(spec, sides.source, options.consumerGroups).catch((error: unknown) => {
        // An unplanned loss of the source: what the continuous sync committed on the target stands.
        if (!(error instanceof FerryError) || !['KAFKA_UNREACHABLE', 'KAFKA_TLS_FAILED', 'KAFKA_AUTH_FAILED'].includes(error.code)) throw error
        const synced = [...(syncStates.get(name)?.values() ?? [])].map((s) => `"${s.consumerGroup}" ${s.state} at ${s.at}`)
        throw new FerryError('UNAVAILABLE', `cannot read committed offsets on source cluster "${sides.source.cluster.name}" (${error.message}); nothing written. The offsets the continuous sync last committed on the target stand${synced.length > 0 ? `: ${synced.join(', ')}` : ' (this controller has no record of a sync of this group)'}`, { cause: error })
      })
      if (consumerGroups.length === 0) throw new FerryError('NOT_FOUND', `no consumer group of group "${name}" exists on source cluster "${sides.source.cluster.name}" (consumerGroups names none that exist)`)
      // Syncs are written a second apart, after the data: a failover right after the mirror caught
      // up may find them a step behind. Inexact rows are translated again a few times first.
      let partitions = await translate(spec, sides, consumerGroups)
      for (let attempt = 1; attempt <= FAILOVER_SYNC_WAITS && partitions.some((r) => !r.exact); attempt++) {
        await new Promise((resolve) => setTimeout(resolve, deps.failoverSyncWaitMs ?? FAILOVER_SYNC_WAIT_MS))
        partitions = await translate(spec, sides, consumerGroups)
      }
      const skipped = partitions.reduce((sum, r) => sum + r.skipped, 0)
      const inexact = partitions.filter((r) => !r.exact).length
      const result: FailoverResult = { group: name, dryRun: options.dryRun === true, consumerGroups, partitions, skipped, inexact, written: false }
      if (options.dryRun === true) return result
      if (skipped > 0) throw new FerryError('CONFLICT', `the translation of group "${name}" would skip ${skipped} record(s); nothing written`, { details: partitions.filter((r) => r.skipped > 0).map((r) => ({ field: `${r.consumerGroup}/${r.topic}/${r.partition}`, message: `would skip ${r.skipped}` })) })
      // Every group is checked before any is written: a refusal leaves all as they were.
      const refusals = (await Promise.all(consumerGroups.map((g) => membersProblem(sides.target, g)))).filter((p): p is string => p !== undefined)
      if (refusals.length > 0) throw new FerryError('CONFLICT', refusals.join('; '), { details: refusals.map((message) => ({ field: 'consumerGroups', message })) })
      for (const consumerGroup of consumerGroups) {
        const offsets = partitions.filter((r) => r.consumerGroup === consumerGroup).map((r) => ({ topic: r.targetTopic, partition: r.partition, offset: r.targetOffset }))
        if (offsets.length > 0) await sides.target.admin.setGroupOffsets(consumerGroup, offsets)
      }
      deps.logger.info({ event: 'controller.failover', group: name, consumerGroups, partitions: partitions.length, inexact }, 'consumer group offsets failed over to the target')
      return { ...result, written: true }
    },
    start() {
      if (timer) return
      timer = setInterval(() => {
        running = running.then(() => pass())
      }, 1000)
      timer.unref?.()
    },
    syncOnce() {
      running = running.then(() => pass('now'))
      return running
    },
    async stop() {
      stopped = true
      if (timer) clearInterval(timer)
      timer = undefined
      await running
    },
  }
}

/** The consumer offsets of a controller: groups and clusters from the store, Kafka through the admins. */
export function consumerOffsetsOnStore(parts: { store: Store; admins: ClusterAdmins; isLeader(): boolean; deployment: () => string; logger: Logger; events?: EventLog }): ConsumerOffsets {
  const side = async (name: string): Promise<Side> => {
    const cluster = await parts.store.getCluster(name)
    if (cluster === null) throw new FerryError('CLUSTER_NOT_FOUND', `cluster "${name}" is not registered`)
    return { cluster: cluster.value, admin: parts.admins.get(cluster.value) }
  }
  return createConsumerOffsets({
    isLeader: parts.isLeader,
    groups: async () => (await parts.store.listGroups()).map((g) => g.value.spec),
    async spec(name) {
      const group = await parts.store.getGroup(name)
      if (group === null) throw new FerryError('GROUP_NOT_FOUND', `topic group "${name}" does not exist`, { context: { group: name } })
      return group.value.spec
    },
    sides: async (spec) => ({ source: await side(spec.sourceCluster), target: await side(spec.targetCluster) }),
    // Read when used: the API is built before (and in tests without) working dependencies.
    sourceConsumer: (cluster, options) => parts.admins.clients.sourceConsumer(cluster, options),
    get deployment() {
      return parts.deployment()
    },
    logger: parts.logger,
    onProblem: (group, consumerGroup, message) => parts.events?.record({ type: 'group_error', group, message: `consumer group "${consumerGroup}": ${message}` }),
  })
}
