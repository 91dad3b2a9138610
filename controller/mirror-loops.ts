/**
 * Mirror loops: two topic groups that mirror opposite ways between the same two clusters (A → B
 * and B → A) and carry some topic back onto the name it came from. Each record the one writes,
 * the other reads and writes back, for ever, unless both groups have `provenance: true`
 * (worker/provenance.ts), which leaves out every record whose origin is the group's target.
 * A group that would close such a loop without provenance on both is refused at create time.
 *
 * A loop is a source topic `t` of group `a` whose target name `u` (after `a`'s rename) group `b`
 * covers and renames back to `t`. Topic lists are checked name by name; two patterns cannot be
 * compared in general, so a pattern is checked against the topic names the caller passes (those
 * on the two clusters now) and against an identical pattern under identity naming on both sides.
 *
 * @example
 *   const loop = findMirrorLoop(ab, ba, { onSource: ['orders'], onTarget: [] })
 *   if (loop) throw mirrorLoopError(loop)   // 409 naming both groups and the topic
 */
import { groupIncludesTopic, targetTopicName, type TopicGroupSpec } from '../common/config.js'
import { FerryError } from '../common/errors.js'

export interface MirrorLoop {
  /** The group being created (or changed) and the existing group mirroring the other way. */
  groups: [TopicGroupSpec, TopicGroupSpec]
  /** The topic, on the first group's source cluster, that comes back onto itself. */
  topic?: string
  /** Or: the pattern both groups match under identity naming. */
  topicPattern?: string
}

/** Whether `b` mirrors the other way between `a`'s two clusters. */
export function isReverse(a: Pick<TopicGroupSpec, 'sourceCluster' | 'targetCluster'>, b: Pick<TopicGroupSpec, 'sourceCluster' | 'targetCluster'>): boolean {
  return a.sourceCluster === b.targetCluster && a.targetCluster === b.sourceCluster && a.sourceCluster !== a.targetCluster
}

const identityNaming = (g: TopicGroupSpec): boolean => !g.rename?.prefix && (g.rename?.map === undefined || Object.keys(g.rename.map).length === 0)

/** Whether topic `t` of `a`'s source goes to the target through `a` and comes back onto `t` through `b`. */
function comesBack(a: TopicGroupSpec, b: TopicGroupSpec, t: string): boolean {
  if (!groupIncludesTopic(a, t)) return false
  const there = targetTopicName(a, t)
  return groupIncludesTopic(b, there) && targetTopicName(b, there) === t
}

/**
 * The loop `a` and its reverse `b` make, if any (whatever their provenance: the caller decides).
 * `known`: topic names on `a`'s source cluster and on its target cluster now (may be empty).
 */
export function findMirrorLoop(a: TopicGroupSpec, b: TopicGroupSpec, known: { onSource: readonly string[]; onTarget: readonly string[] } = { onSource: [], onTarget: [] }): MirrorLoop | undefined {
  if (!isReverse(a, b)) return undefined
  // Names on a's source that could come back: a's own list, what b writes there, and what is there now.
  const candidates = new Set<string>([...(a.topics ?? []), ...known.onSource])
  for (const u of [...(b.topics ?? []), ...known.onTarget]) candidates.add(targetTopicName(b, u))
  for (const t of [...candidates].sort()) if (comesBack(a, b, t)) return { groups: [a, b], topic: t }
  if (a.topicPattern !== undefined && a.topicPattern === b.topicPattern && identityNaming(a) && identityNaming(b)) return { groups: [a, b], topicPattern: a.topicPattern }
  return undefined
}

/** The 409 for a loop that is not guarded by provenance on both groups. */
export function mirrorLoopError(loop: MirrorLoop): FerryError {
  const [a, b] = loop.groups
  const what = loop.topic !== undefined ? `topic "${loop.topic}"` : `topics matching "${loop.topicPattern}"`
  const path = loop.topic !== undefined ? ` ("${loop.topic}" → "${targetTopicName(a, loop.topic)}" on "${a.targetCluster}" → "${loop.topic}" on "${a.sourceCluster}")` : ''
  const without = [a, b].filter((g) => !g.provenance).map((g) => `"${g.name}"`)
  return new FerryError(
    'CONFLICT',
    `mirror loop: topic group "${a.name}" (${a.sourceCluster} → ${a.targetCluster}) and topic group "${b.name}" (${b.sourceCluster} → ${b.targetCluster}) would mirror ${what} back onto itself${path}, for ever; ` +
      `active-active needs provenance: true on both groups (missing on ${without.join(' and ')}), or the groups must not cover each other's topics`,
    {
      context: { group: a.name },
      details: [{ field: 'provenance', message: `${what} loops between topic groups "${a.name}" and "${b.name}"; needs provenance: true on both (missing on ${without.join(' and ')})` }],
    },
  )
}
