/**
 * Which topic configs follow a mirrored topic from the source to the target, and the pure plan of
 * one sync: the target's configs after it, and each change. Ferry owns the configs of
 * {@link MIRRORED_TOPIC_CONFIGS} on its target topics (the source's value, or the group's
 * override); every other config set on a target topic is the operator's and is kept as it is.
 *
 * @example
 *   const { next, changes } = planTopicConfigs(await source.topicConfigs(t), await target.topicConfigs(tt), overrides)
 *   if (changes.length > 0) await target.replaceTopicConfigs(tt, next)
 */

/**
 * Topic configs carried from a source topic to its target topic, at creation and by the
 * continuous sync: how long and how much the topic keeps, how it is compacted, how large a record
 * may be, its segments and codec. An allow list, so a config a broker release adds (or a vendor's
 * `confluent.*`) is never copied before someone decides it should be.
 */
export const MIRRORED_TOPIC_CONFIGS: ReadonlySet<string> = new Set([
  'cleanup.policy',
  'compression.type',
  'delete.retention.ms',
  'file.delete.delay.ms',
  'index.interval.bytes',
  'max.compaction.lag.ms',
  'max.message.bytes',
  'min.cleanable.dirty.ratio',
  'min.compaction.lag.ms',
  'retention.bytes',
  'retention.ms',
  'segment.bytes',
  'segment.index.bytes',
  'segment.jitter.ms',
  'segment.ms',
])

/**
 * Topic configs never carried, even as an override, with why (docs/disaster-recovery.md lists
 * them). Replication and placement belong to the target cluster's own layout; the timestamp
 * settings would change or refuse the source timestamps Ferry keeps; tiered storage needs the
 * target's own remote store.
 */
export const DENIED_TOPIC_CONFIGS: ReadonlyMap<string, string> = new Map([
  ['min.insync.replicas', 'replication: depends on the target cluster\'s replication factor'],
  ['unclean.leader.election.enable', 'replication: a durability choice of the target cluster'],
  ['leader.replication.throttled.replicas', 'replication: names broker ids of the source cluster'],
  ['follower.replication.throttled.replicas', 'replication: names broker ids of the source cluster'],
  ['confluent.placement.constraints', 'placement: names racks of the source cluster'],
  ['message.timestamp.type', 'LogAppendTime on the target would replace the source timestamps Ferry keeps'],
  ['message.timestamp.difference.max.ms', 'would refuse mirrored records whose source timestamp is old (a lagging or catching-up mirror)'],
  ['message.timestamp.before.max.ms', 'would refuse mirrored records whose source timestamp is old (a lagging or catching-up mirror)'],
  ['message.timestamp.after.max.ms', 'would refuse mirrored records whose source timestamp is ahead of the target\'s clock'],
  ['remote.storage.enable', 'tiered storage needs the target cluster\'s own remote store'],
  ['local.retention.ms', 'tiered storage needs the target cluster\'s own remote store'],
  ['local.retention.bytes', 'tiered storage needs the target cluster\'s own remote store'],
  ['preallocate', 'a property of the target brokers\' disks'],
  ['flush.messages', 'a property of the target brokers\' disks'],
  ['flush.ms', 'a property of the target brokers\' disks'],
])

/** The source's configs that follow to the target (allow-listed, set on the source topic). */
export function mirroredConfigs(source: Readonly<Record<string, string>>): Record<string, string> {
  const result = Object.create(null) as Record<string, string>
  for (const [name, value] of Object.entries(source)) if (MIRRORED_TOPIC_CONFIGS.has(name)) result[name] = value
  return result
}

/** One config a sync changes on a target topic. */
export interface TopicConfigChange {
  config: string
  /** The target's value before; undefined: not set on the topic (the broker default). */
  from: string | undefined
  /** The value after; undefined: removed, back to the target broker's default. */
  to: string | undefined
  /** Where `to` comes from. */
  why: 'source' | 'override'
}

export interface TopicConfigPlan {
  /** Every config to set on the target topic (AlterConfigs replaces them all), non-synced ones kept. */
  next: Record<string, string>
  changes: TopicConfigChange[]
}

/**
 * The target topic's configs after a sync: for each allow-listed config the group's override, else
 * the source's value, else not set (the target's default); every other config the target topic
 * has is kept. `changes` is empty when the target already agrees.
 */
export function planTopicConfigs(source: Readonly<Record<string, string>>, target: Readonly<Record<string, string>>, overrides: Readonly<Record<string, string>> = {}): TopicConfigPlan {
  const next = Object.create(null) as Record<string, string>
  for (const [name, value] of Object.entries(target)) next[name] = value
  const changes: TopicConfigChange[] = []
  for (const config of [...MIRRORED_TOPIC_CONFIGS].sort()) {
    const override = Object.hasOwn(overrides, config) ? overrides[config] : undefined
    const wanted = override ?? (Object.hasOwn(source, config) ? source[config] : undefined)
    const current = Object.hasOwn(target, config) ? target[config] : undefined
    if (wanted === undefined) delete next[config]
    else next[config] = wanted
    if (wanted !== current) changes.push({ config, from: current, to: wanted, why: override !== undefined ? 'override' : 'source' })
  }
  return { next, changes }
}

/** `retention.ms 604800000 → 3600000`, `cleanup.policy (default) → compact`. */
export function describeConfigChange(change: Pick<TopicConfigChange, 'config' | 'from' | 'to'>): string {
  return `${change.config} ${change.from ?? '(default)'} \u2192 ${change.to ?? '(default)'}`
}
