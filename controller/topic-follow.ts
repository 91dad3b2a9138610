/**
 * Topic configs and ACLs follow the mirrored topics (docs/disaster-recovery.md, "Topic configs
 * and ACLs follow"). While this controller leads, for each running group:
 * - configs (on unless the group's `topicConfigs.sync` is false), every `topicConfigs.intervalMs`
 *   (default 30 s): each target topic gets its source topic's allow-listed configs, the group's
 *   overrides winning; the target's other configs are kept (common/topic-configs.ts);
 * - ACLs (only with `acls.sync: true`), every `acls.intervalMs` (default 30 s): the source topic's
 *   literal ALLOW READ and DESCRIBE ACLs are created on the target topic for the mapped principal.
 *   WRITE never (the port cannot even express it), and nothing is ever deleted.
 * Next to partition growth, which the same leader discovers (reconciler.ts) and workers apply.
 * Each change is an event and a log line; what fails is in the group status (`followErrors`,
 * written by the reconciler from {@link TopicFollower.statusOf}), an event when it is new, and
 * `ferry_controller_topic_follow_total{kind,result}`. A source topic deleted never deletes its
 * target topic: the sync only stops looking at it.
 *
 * @example
 *   const follower = createTopicFollower({ isLeader, groups, topicsOf, admins, events, logger, registry })
 *   follower.start()
 *   follower.statusOf('orders')   // { errors: [...] } once it ran for the group under this leader
 */
import { Counter, type Registry } from 'prom-client'
import { targetTopicName, DEFAULT_FOLLOW_INTERVAL_MS, type TopicGroupSpec } from '../common/config.js'
import { errorMessage } from '../common/errors.js'
import type { KafkaAdmin, TopicReadAcl } from '../common/kafka/port.js'
import type { Logger } from '../common/logger.js'
import type { FollowError } from '../common/store.js'
import { describeConfigChange, planTopicConfigs, type TopicConfigChange } from '../common/topic-configs.js'
import type { EventLog } from './events.js'

export interface TopicFollowDeps {
  isLeader(): boolean
  /** Every group, with whether it runs. */
  groups(): Promise<Array<{ spec: TopicGroupSpec; running: boolean }>>
  /** The source topics the group covers now (the reconciler's last discovery). */
  topicsOf(group: string): Promise<string[]>
  /** The admins of the group's clusters; throws when a cluster is not registered. */
  admins(spec: TopicGroupSpec): Promise<{ source: KafkaAdmin; target: KafkaAdmin }>
  events?: EventLog
  logger: Logger
  registry: Registry
  /** A group's follow errors changed (the reconciler writes them into the status). */
  onStatusChanged?: (group: string) => void
  now?: () => number
  /** How often the loop looks for groups that are due; default 1000 ms. */
  tickMs?: number
}

export interface GroupFollowStatus {
  errors: FollowError[]
}

export interface TopicFollower {
  start(): void
  /** The group's errors at its last runs under this leadership; undefined before its first run. */
  statusOf(group: string): GroupFollowStatus | undefined
  /** Runs what is due now (every group, when `force`) and resolves when done; for tests and the loop. */
  runOnce(force?: boolean): Promise<void>
  stop(): Promise<void>
}

/** The ACLs a target topic should have for a source topic's READ/DESCRIBE ACLs, principals mapped (unmapped kept). */
export function planTopicAcls(source: readonly TopicReadAcl[], targetTopic: string, principals: Readonly<Record<string, string>> = {}, existing: readonly TopicReadAcl[] = []): TopicReadAcl[] {
  const have = new Set(existing.map((a) => `${a.principal}\u0000${a.operation}`))
  const wanted = new Map<string, TopicReadAcl>()
  for (const acl of source) {
    // Only what the port's type allows, checked again at run time: a WRITE must never be copied.
    if (acl.operation !== 'READ' && acl.operation !== 'DESCRIBE') continue
    const principal = Object.hasOwn(principals, acl.principal) ? (principals[acl.principal] ?? acl.principal) : acl.principal
    const key = `${principal}\u0000${acl.operation}`
    if (!have.has(key)) wanted.set(key, { principal, topic: targetTopic, operation: acl.operation })
  }
  return [...wanted.values()].sort((a, b) => a.principal.localeCompare(b.principal) || a.operation.localeCompare(b.operation))
}

function errorKey(e: FollowError): string {
  return [e.kind, e.topic ?? '', e.config ?? '', e.principal ?? ''].join('\u0000')
}

export function createTopicFollower(deps: TopicFollowDeps): TopicFollower {
  const { logger } = deps
  const now = deps.now ?? Date.now
  const tickMs = deps.tickMs ?? 1000
  const follows = new Counter({ name: 'ferry_controller_topic_follow_total', help: 'Topic configs changed and ACLs created on target topics by the follow sync (kind config|acl, result applied|failed)', labelNames: ['kind', 'result'], registers: [deps.registry] })
  /** Per group: when each kind last ran, and its errors then. */
  const state = new Map<string, { configsAt?: number; aclsAt?: number; configErrors: FollowError[]; aclErrors: FollowError[] }>()
  let timer: NodeJS.Timeout | undefined
  let running: Promise<void> | undefined
  let stopped = false

  const record = (group: string, kind: 'config' | 'acl', errors: FollowError[]): void => {
    const entry = state.get(group)
    if (entry === undefined) return
    const previous = kind === 'config' ? entry.configErrors : entry.aclErrors
    const known = new Set(previous.map(errorKey))
    for (const error of errors) {
      if (known.has(errorKey(error))) continue
      // New since the last run: once in the log and the event log, not every interval.
      logger.warn({ event: `controller.${kind === 'config' ? 'topic_config' : 'acl'}_sync_failed`, group, topic: error.topic, config: error.config, principal: error.principal, err: error.message }, 'topic follow sync failed')
      deps.events?.record({ type: kind === 'config' ? 'topic_config_failed' : 'acl_failed', group, message: error.message })
    }
    const changed = JSON.stringify(previous) !== JSON.stringify(errors)
    if (kind === 'config') entry.configErrors = errors
    else entry.aclErrors = errors
    if (changed) deps.onStatusChanged?.(group)
  }

  const syncConfigs = async (spec: TopicGroupSpec, admins: { source: KafkaAdmin; target: KafkaAdmin }, topics: readonly string[]): Promise<FollowError[]> => {
    const errors: FollowError[] = []
    const overrides = spec.topicConfigs?.overrides ?? {}
    // Target topics the workers have not created yet are left for the next run.
    const existing = await admins.target.partitionCounts(topics.map((t) => targetTopicName(spec, t)))
    for (const topic of topics) {
      const targetTopic = targetTopicName(spec, topic)
      if (!existing.has(targetTopic)) continue
      let source: Record<string, string>
      let target: Record<string, string>
      try {
        source = await admins.source.topicConfigs(topic)
        target = await admins.target.topicConfigs(targetTopic)
      } catch (error) {
        errors.push({ kind: 'config', topic, targetTopic, message: `cannot read the configs of "${topic}" or "${targetTopic}": ${errorMessage(error)}` })
        continue
      }
      const plan = planTopicConfigs(source, target, overrides)
      if (plan.changes.length === 0) continue
      const applied: TopicConfigChange[] = []
      try {
        // AlterConfigs replaces every config of the topic: `next` carries the target's others unchanged.
        await admins.target.replaceTopicConfigs(targetTopic, plan.next)
        applied.push(...plan.changes)
      } catch {
        // The target refused the set: apply the changes one at a time, so one refused value names
        // itself and does not hold back the others.
        let base: Record<string, string> = { ...target }
        for (const change of plan.changes) {
          const candidate = { ...base }
          if (change.to === undefined) delete candidate[change.config]
          else candidate[change.config] = change.to
          try {
            await admins.target.replaceTopicConfigs(targetTopic, candidate)
            base = candidate
            applied.push(change)
          } catch (error) {
            follows.inc({ kind: 'config', result: 'failed' })
            errors.push({ kind: 'config', topic, targetTopic, config: change.config, message: `target topic "${targetTopic}" refused ${describeConfigChange(change)} (from ${change.why === 'override' ? "the group's override" : `source topic "${topic}"`}): ${errorMessage(error)}` })
          }
        }
      }
      if (applied.length > 0) {
        follows.inc({ kind: 'config', result: 'applied' }, applied.length)
        const summary = applied.map(describeConfigChange).join(', ')
        logger.info({ event: 'controller.topic_config_synced', group: spec.name, topic, targetTopic, changes: applied }, 'target topic configs follow the source')
        deps.events?.record({ type: 'topic_config_changed', group: spec.name, message: `${targetTopic}: ${summary}` })
      }
    }
    return errors
  }

  const syncAcls = async (spec: TopicGroupSpec, admins: { source: KafkaAdmin; target: KafkaAdmin }, topics: readonly string[]): Promise<FollowError[]> => {
    const errors: FollowError[] = []
    for (const topic of topics) {
      const targetTopic = targetTopicName(spec, topic)
      let sourceAcls: TopicReadAcl[]
      try {
        sourceAcls = await admins.source.describeTopicAcls(topic)
      } catch (error) {
        // Usually the whole cluster (no authorizer, not allowed to describe): one error, not one per topic.
        errors.push({ kind: 'acl', topic, message: `cannot read the ACLs of source topic "${topic}" on cluster "${spec.sourceCluster}": ${errorMessage(error)}` })
        follows.inc({ kind: 'acl', result: 'failed' })
        break
      }
      try {
        const missing = planTopicAcls(sourceAcls, targetTopic, spec.acls?.principals, await admins.target.describeTopicAcls(targetTopic))
        if (missing.length === 0) continue
        await admins.target.createTopicReadAcls(missing)
        follows.inc({ kind: 'acl', result: 'applied' }, missing.length)
        const summary = missing.map((a) => `${a.operation} for ${a.principal}`).join(', ')
        logger.info({ event: 'controller.acls_synced', group: spec.name, topic, targetTopic, acls: missing }, 'target topic ACLs follow the source')
        deps.events?.record({ type: 'acl_created', group: spec.name, message: `${targetTopic}: ALLOW ${summary}` })
      } catch (error) {
        follows.inc({ kind: 'acl', result: 'failed' })
        errors.push({ kind: 'acl', topic, targetTopic, message: `cannot create the ACLs of target topic "${targetTopic}" on cluster "${spec.targetCluster}": ${errorMessage(error)}` })
      }
    }
    return errors
  }

  const runGroup = async (spec: TopicGroupSpec, force: boolean): Promise<void> => {
    let entry = state.get(spec.name)
    if (entry === undefined) {
      entry = { configErrors: [], aclErrors: [] }
      state.set(spec.name, entry)
    }
    const t = now()
    const configsOn = spec.topicConfigs?.sync !== false
    const aclsOn = spec.acls?.sync === true
    const configsDue = configsOn && (force || entry.configsAt === undefined || t - entry.configsAt >= (spec.topicConfigs?.intervalMs ?? DEFAULT_FOLLOW_INTERVAL_MS))
    const aclsDue = aclsOn && (force || entry.aclsAt === undefined || t - entry.aclsAt >= (spec.acls?.intervalMs ?? DEFAULT_FOLLOW_INTERVAL_MS))
    if (!configsOn && entry.configErrors.length > 0) record(spec.name, 'config', [])
    if (!aclsOn && entry.aclErrors.length > 0) record(spec.name, 'acl', [])
    if (!configsDue && !aclsDue) return
    if (configsDue) entry.configsAt = t
    if (aclsDue) entry.aclsAt = t
    let admins: { source: KafkaAdmin; target: KafkaAdmin }
    let topics: string[]
    try {
      admins = await deps.admins(spec)
      topics = await deps.topicsOf(spec.name)
    } catch (error) {
      const message = `cannot sync topic configs or ACLs of group "${spec.name}": ${errorMessage(error)}`
      if (configsDue) record(spec.name, 'config', [{ kind: 'config', message }])
      if (aclsDue) record(spec.name, 'acl', [{ kind: 'acl', message }])
      return
    }
    const guard = async (kind: 'config' | 'acl', run: () => Promise<FollowError[]>): Promise<void> => {
      try {
        record(spec.name, kind, await run())
      } catch (error) {
        record(spec.name, kind, [{ kind, message: `${kind === 'config' ? 'topic config' : 'ACL'} sync of group "${spec.name}" failed: ${errorMessage(error)}` }])
      }
    }
    if (configsDue) await guard('config', () => syncConfigs(spec, admins, topics))
    if (aclsDue) await guard('acl', () => syncAcls(spec, admins, topics))
  }

  const runOnce = async (force = false): Promise<void> => {
    if (!deps.isLeader()) {
      // A new leadership starts afresh (statusOf undefined: the reconciler keeps the stored errors).
      state.clear()
      return
    }
    const groups = await deps.groups()
    const names = new Set(groups.map((g) => g.spec.name))
    for (const name of state.keys()) if (!names.has(name)) state.delete(name)
    for (const { spec, running } of groups) {
      if (stopped) return
      if (!running) continue
      await runGroup(spec, force)
    }
  }

  return {
    start() {
      const loop = (): void => {
        if (stopped) return
        running = runOnce()
          .catch((error: unknown) => logger.warn({ event: 'controller.topic_follow_failed', err: errorMessage(error) }, 'topic follow pass failed'))
          .finally(() => {
            running = undefined
            if (!stopped) timer = setTimeout(loop, tickMs)
          })
      }
      timer = setTimeout(loop, tickMs)
    },
    statusOf(group) {
      const entry = state.get(group)
      if (entry === undefined || (entry.configsAt === undefined && entry.aclsAt === undefined)) return undefined
      return { errors: [...entry.configErrors, ...entry.aclErrors] }
    },
    runOnce,
    async stop() {
      stopped = true
      if (timer) clearTimeout(timer)
      await running
    },
  }
}
