/**
 * uReplicator-compatible controller API, so tooling written for uReplicator's controller keeps
 * working: its `/topics` resource (TopicManagementRestletResource), `/health`, `/validation`,
 * `/admin/*` (auto-balancing and workload) and `/noprogress`. Each uReplicator "topic" is a
 * Ferry topic group named `ureplicator.<topic>` that mirrors exactly that topic, with every
 * group option at its default; the changes and views are the groups service's, so a topic added
 * here records the same events as a group created under /v1.
 *
 * Which clusters: uReplicator mirrors one source cluster to one target per deployment. Ferry
 * takes the pair, in order, from the request's `src` and `dst` query parameters (what
 * federated uReplicator sends), else from the controller's `--ureplicator-source` and
 * `--ureplicator-target` (FERRY_UREPLICATOR_SOURCE / FERRY_UREPLICATOR_TARGET). Without either,
 * adding a topic is a 400 naming `src`/`dst`: guessing a direction between registered clusters
 * could mirror the wrong way.
 *
 * Replies follow uReplicator's where a script reads them: plain-text lines for list, add, expand
 * and delete, and uReplicator's plain-text refusals with its statuses (a topic absent from the
 * source: 400 "Failed to add new topic: t, it's not exsited in source kafka cluster!" with its
 * spelling; added twice: 404 "... it is already existed!"; every 404 on these routes is text).
 * Malformed requests (invalid JSON or topic names, bodies over 256 KiB) keep Ferry's JSON errors.
 * The cluster-wide views (/validation, /noprogress, /admin/workloadinfo) cover every group of the
 * deployment, not only those added here.
 */
import type { Response } from 'express'
import { z } from 'zod'
import { noProgressSchema, topicViewSchema, validationSchema, workloadSchema, type ValidationView, type WorkerWorkload } from '../common/api-schemas.js'
import { TOPIC_NAME_MESSAGE, isValidTopicName, nameSchema, parseTopicGroup } from '../common/config.js'
import { FerryError, errorMessage } from '../common/errors.js'
import type { ApiContext } from './api-context.js'
import { TextRefusal, defineRoute, jsonOk, textOk, type ApiRoute } from './route.js'

/** Group name prefix of topics added through this API. */
export const UREPLICATOR_GROUP_PREFIX = 'ureplicator.'
/** Longest topic this API takes: group names are at most 100 characters. */
export const UREPLICATOR_MAX_TOPIC_LENGTH = 100 - UREPLICATOR_GROUP_PREFIX.length
/** Default of `GET /noprogress?seconds=`: how long a position must stand still to count. */
export const DEFAULT_NO_PROGRESS_SECONDS = 60

export function ureplicatorGroupName(topic: string): string {
  return `${UREPLICATOR_GROUP_PREFIX}${topic}`
}

const topicSchema = z
  .string({ required_error: 'is required' })
  .refine(isValidTopicName, TOPIC_NAME_MESSAGE)
  .refine((t) => t.length <= UREPLICATOR_MAX_TOPIC_LENGTH, `must be at most ${UREPLICATOR_MAX_TOPIC_LENGTH} characters (the group name is "${UREPLICATOR_GROUP_PREFIX}<topic>")`)
const topicParam = z.object({ topic: topicSchema.openapi({ description: 'Source topic name' }) })
const clusterPair = z.object({ src: nameSchema.optional(), dst: nameSchema.optional() })

/**
 * The request body as uReplicator clients send it: JSON text under any content type (or already
 * parsed JSON), or nothing at all, which reads as `{}`.
 */
function jsonObject(raw: unknown, ctx: z.RefinementCtx): unknown {
  let value = raw
  if (typeof value === 'string') {
    if (value.trim() === '') return {}
    try {
      value = JSON.parse(value)
    } catch {
      ctx.addIssue({ code: 'custom', message: 'is not valid JSON' })
      return z.NEVER
    }
  } else if (value === undefined) {
    return {}
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object' })
    return z.NEVER
  }
  return value
}
const topicFields = z
  .object({
    topic: topicSchema,
    numPartitions: z
      .union([z.number().int().positive(), z.string().regex(/^\d+$/, 'must be a positive whole number')])
      .transform(Number)
      .optional(),
  })
  .passthrough()
const topicBody = z
  .preprocess(jsonObject, topicFields)
  .openapi('UReplicatorTopic', { description: 'As uReplicator takes it (any content type, JSON text). numPartitions is informational: Ferry reads the partition count from the source.' })
const optionalTopicBody = z.preprocess(jsonObject, topicFields.partial())


/** Keyed by worker ids: no prototype, so a worker named `constructor` is a key like any other. */
const table = <T>(): Record<string, T> => Object.create(null) as Record<string, T>

/** Partitions of `topic` on the source, or a 400 as uReplicator's when the source has no such topic. */
async function sourcePartitions(ctx: ApiContext, topic: string, sourceName: string): Promise<number> {
  const source = await ctx.store.getCluster(sourceName)
  if (source === null) throw new FerryError('CLUSTER_NOT_FOUND', `cluster "${sourceName}" (src) is not registered`, { details: [{ field: 'src', message: 'is not a registered cluster' }] })
  let counts: Map<string, number>
  try {
    counts = await ctx.admins.get(source.value).partitionCounts([topic])
  } catch (error) {
    throw new FerryError('UNAVAILABLE', `cannot read topic "${topic}" on source cluster "${sourceName}": ${errorMessage(error)}`, { cause: error })
  }
  const count = counts.get(topic)
  if (count === undefined || count === 0) throw new TextRefusal(400, `Failed to add new topic: ${topic}, it's not exsited in source kafka cluster!`)
  return count
}

/** Adds `topic` as its own group between the request's (or the default) clusters; uReplicator's answer text. */
async function addTopic(ctx: ApiContext, res: Response, request: { topic: string; numPartitions?: number | undefined; src?: string | undefined; dst?: string | undefined }): Promise<string> {
  const { topic, numPartitions } = request
  res.locals.auditTarget = { topic, group: ureplicatorGroupName(topic) }
  const source = request.src ?? ctx.ureplicator.source
  const target = request.dst ?? ctx.ureplicator.target
  const missing = [...(source === undefined ? [{ field: 'src', message: 'no source cluster: pass ?src= or start the controller with --ureplicator-source' }] : []), ...(target === undefined ? [{ field: 'dst', message: 'no target cluster: pass ?dst= or start the controller with --ureplicator-target' }] : [])]
  if (missing.length > 0) throw new FerryError('INVALID_INPUT', `cannot add topic "${topic}": ${missing.map((m) => `${m.field}: ${m.message}`).join('; ')}`, { details: missing })
  const spec = parseTopicGroup({ name: ureplicatorGroupName(topic), sourceCluster: source, targetCluster: target, topics: [topic] })
  // uReplicator checks "already existed" before anything else.
  if (await ctx.groups.exists(spec.name)) throw new TextRefusal(404, `Failed to add new topic: ${topic}, it is already existed!`)
  if ((await ctx.store.getCluster(spec.targetCluster)) === null) throw new FerryError('CLUSTER_NOT_FOUND', `cluster "${spec.targetCluster}" (dst) is not registered`, { details: [{ field: 'dst', message: 'is not a registered cluster' }] })
  const partitions = await sourcePartitions(ctx, topic, spec.sourceCluster)
  try {
    await ctx.groups.create({ spec, start: true, via: 'ureplicator' })
  } catch (error) {
    if (error instanceof FerryError && error.code === 'GROUP_EXISTS') throw new TextRefusal(404, `Failed to add new topic: ${topic}, it is already existed!`)
    throw error
  }
  return `Successfully add new topic: {topic: ${topic}, partition: ${numPartitions ?? partitions}}`
}

const ureplicator = { tag: 'ureplicator' } as const

/** uReplicator's controller resources, one declaration each (controller/route.ts). */
export const UREPLICATOR_ROUTES: readonly ApiRoute[] = [
  defineRoute({
    ...ureplicator,
    method: 'get',
    path: '/topics',
    summary: 'uReplicator: list mirrored topics ("Current serving topics: [...]")',
    responses: textOk('Topic list as uReplicator prints it'),
    handler: async (_input, ctx) => {
      const topics = (await ctx.groups.list())
        .filter((g) => g.name.startsWith(UREPLICATOR_GROUP_PREFIX))
        .map((g) => g.name.slice(UREPLICATOR_GROUP_PREFIX.length))
        .sort()
      return { status: 200, body: topics.length === 0 ? 'No topic is added in MirrorMaker Controller!' : `Current serving topics: [${topics.join(', ')}]` }
    },
  }),
  defineRoute({
    ...ureplicator,
    method: 'post',
    path: '/topics',
    summary: 'uReplicator: add a topic to mirror between the default clusters',
    query: clusterPair,
    body: topicBody,
    bodyName: 'topic',
    bodyMediaType: '*/*',
    textRefusals: [400, 404],
    responses: textOk('Added'),
    handler: async ({ query, body, res }, ctx) => ({ status: 200, body: await addTopic(ctx, res, { ...query, ...body }) }),
  }),
  defineRoute({
    ...ureplicator,
    method: 'put',
    path: '/topics',
    summary: 'uReplicator: expand a topic (Ferry follows partition changes by itself; 404 when not mirrored)',
    body: topicBody,
    bodyName: 'topic',
    bodyMediaType: '*/*',
    textRefusals: [404],
    responses: textOk('Expanded'),
    handler: async ({ body }, ctx) => {
      const name = ureplicatorGroupName(body.topic)
      if (!(await ctx.groups.exists(name))) throw new TextRefusal(404, `Failed to expand topic, topic: ${body.topic} is not existed!`)
      // Ferry follows partition changes of mirrored topics by itself; nothing to write.
      const partitions = body.numPartitions ?? (await ctx.groups.serving((g) => g === name)).length
      return { status: 200, body: `Successfully expand topic: {topic: ${body.topic}, partition: ${partitions}}` }
    },
  }),
  defineRoute({
    ...ureplicator,
    method: 'get',
    path: '/topics/:topic',
    summary: 'uReplicator: assignment view of a topic (idealState, externalView, serverToPartitionMapping)',
    params: topicParam,
    textRefusals: [404],
    responses: jsonOk('Topic view', topicViewSchema),
    handler: async ({ params: { topic } }, ctx) => {
      const name = ureplicatorGroupName(topic)
      if (!(await ctx.groups.exists(name))) throw new TextRefusal(404, `Failed to get ExternalView for topic: ${topic}, it is not existed!`)
      const idealState = table<Record<string, 'ONLINE' | 'OFFLINE'>>()
      const externalView = table<Record<string, 'ONLINE' | 'OFFLINE'>>()
      const serverToPartitionMapping = table<Record<string, 'ONLINE' | 'OFFLINE'>>()
      const serverToNumPartitionsMapping = table<number>()
      for (const row of await ctx.groups.serving((g) => g === name)) {
        if (row.topic !== topic) continue
        const partition = String(row.partition)
        const state = row.actualWorker === row.idealWorker ? 'ONLINE' : 'OFFLINE'
        ;(idealState[partition] ??= table())[row.idealWorker] = 'ONLINE'
        ;(externalView[partition] ??= table())[row.idealWorker] = state
        ;(serverToPartitionMapping[row.idealWorker] ??= table())[partition] = state
        serverToNumPartitionsMapping[row.idealWorker] = (serverToNumPartitionsMapping[row.idealWorker] ?? 0) + (state === 'ONLINE' ? 1 : 0)
      }
      return { status: 200, body: { topic, group: name, idealState, externalView, serverToPartitionMapping, serverToNumPartitionsMapping } }
    },
  }),
  defineRoute({
    ...ureplicator,
    method: 'post',
    path: '/topics/:topic',
    summary: 'uReplicator: add a topic (body optional)',
    params: topicParam,
    query: clusterPair,
    body: optionalTopicBody,
    bodyName: 'topic',
    bodyMediaType: '*/*',
    textRefusals: [400, 404],
    responses: textOk('Added'),
    handler: async ({ params, query, body, res }, ctx) => {
      if (body.topic !== undefined && body.topic !== params.topic) {
        throw new FerryError('INVALID_INPUT', `invalid topic: topic: the body names "${body.topic}" but the path names "${params.topic}"`, { details: [{ field: 'topic', message: 'differs from the path' }] })
      }
      return { status: 200, body: await addTopic(ctx, res, { ...query, ...body, topic: params.topic }) }
    },
  }),
  defineRoute({
    ...ureplicator,
    method: 'delete',
    path: '/topics/:topic',
    summary: 'uReplicator: stop mirroring a topic (deletes its topic group)',
    params: topicParam,
    textRefusals: [404],
    responses: textOk('Deleted'),
    handler: async ({ params: { topic } }, ctx) => {
      const name = ureplicatorGroupName(topic)
      if (!(await ctx.groups.exists(name))) throw new TextRefusal(404, `Failed to delete not existed topic: ${topic}`)
      try {
        await ctx.groups.delete(name, 'ureplicator')
      } catch (error) {
        if (error instanceof FerryError && error.code === 'GROUP_NOT_FOUND') throw new TextRefusal(404, `Failed to delete not existed topic: ${topic}`)
        throw error
      }
      return { status: 200, body: `Successfully finished delete topic: ${topic}` }
    },
  }),
  defineRoute({
    ...ureplicator,
    method: 'get',
    path: '/health',
    open: true,
    summary: 'uReplicator: "OK" when ZooKeeper and Redis answer, else 503 "Unhealthy"',
    responses: { ...textOk('OK'), 503: { description: 'Unhealthy', mediaType: 'text/plain', schema: z.string() } },
    handler: async (_input, ctx) => {
      const healthy = await Promise.all([ctx.zk.exists('/'), ctx.redis.ping()]).then(
        () => true,
        () => false,
      )
      return healthy ? { status: 200, body: 'OK\n' } : { status: 503, body: 'Unhealthy\n' }
    },
  }),
  // Ideal (Ferry's assignment) vs actual (what workers report mirroring), counted as uReplicator's ValidationManager does.
  defineRoute({
    ...ureplicator,
    method: 'get',
    path: '/validation',
    summary: 'uReplicator: ideal (assignment) vs actual (what workers report mirroring) per worker, with the partitions that differ',
    responses: jsonOk('Validation', validationSchema),
    handler: async (_input, ctx) => {
      const rows = await ctx.groups.serving()
      const ideal = table<number>()
      const actual = table<number>()
      const topics = new Map<string, boolean>()
      let online = 0
      let offline = 0
      let failed = 0
      const mismatches: ValidationView['mismatches'] = []
      for (const row of rows) {
        ideal[row.idealWorker] = (ideal[row.idealWorker] ?? 0) + 1
        if (row.actualWorker !== null) actual[row.actualWorker] = (actual[row.actualWorker] ?? 0) + 1
        const topicKey = `${row.group}\u0000${row.topic}`
        const served = row.actualWorker === row.idealWorker
        if (served) online++
        else if (row.state === 'failed') failed++
        else offline++
        if (!served) mismatches.push({ group: row.group, topic: row.topic, partition: row.partition, idealWorker: row.idealWorker, actualWorker: row.actualWorker, reportedBy: row.reportedBy, state: row.state })
        topics.set(topicKey, (topics.get(topicKey) ?? true) && served)
      }
      return {
        status: 200,
        body: {
          numTopics: topics.size,
          numTopicPartitions: rows.length,
          numOnlineTopicPartitions: online,
          numOfflineTopicPartitions: offline,
          numErrorTopicPartitions: failed,
          numErrorTopics: [...topics.values()].filter((ok) => !ok).length,
          IdealState: ideal,
          ExternalView: actual,
          mismatches,
        },
      }
    },
  }),
  ...(
    [
      ['enable_autobalancing', true, 'uReplicator: let the reconciler move partitions between live workers (persisted in ZooKeeper)'],
      ['disable_autobalancing', false, 'uReplicator: keep partitions on their live workers (unserved ones are still placed)'],
    ] as const
  ).map(([opt, autoBalancing, summary]) =>
    defineRoute({
      ...ureplicator,
      method: 'post',
      path: `/admin/${opt}`,
      summary,
      responses: jsonOk('Switched', z.object({ opt: z.literal(opt), auto_balancing: z.boolean() })),
      handler: async (_input, ctx) => {
        const settings = await ctx.store.updateSettings({ autoBalancing })
        ctx.logger.info({ event: 'controller.autobalancing_changed', autoBalancing: settings.autoBalancing, via: 'ureplicator' }, `auto-balancing ${settings.autoBalancing ? 'enabled' : 'disabled'}`)
        return { status: 200, body: { opt, auto_balancing: settings.autoBalancing } }
      },
    }),
  ),
  defineRoute({
    ...ureplicator,
    method: 'get',
    path: '/admin/autobalancing_status',
    summary: 'uReplicator: whether auto-balancing is on',
    responses: jsonOk('Status', z.object({ auto_balancing: z.boolean() })),
    handler: async (_input, ctx) => ({ status: 200, body: { auto_balancing: (await ctx.store.getSettings()).autoBalancing } }),
  }),
  defineRoute({
    ...ureplicator,
    method: 'get',
    path: '/admin/workloadinfo',
    summary: 'uReplicator: per worker partitions, reported throughput and lagging partitions',
    responses: jsonOk('Workload', workloadSchema),
    handler: async (_input, ctx) => {
      const [settings, workers, stalled] = await Promise.all([ctx.store.getSettings(), ctx.groups.workload(), ctx.groups.noProgress(0)])
      // A worker "lags" when one of its partitions has records at the source past its position.
      const lagging = table<WorkerWorkload['laggingTopicPartition']>()
      for (const row of stalled) (lagging[row.idealWorker] ??= []).push({ topicName: row.topic, partitionId: row.partition, latestOffset: row.highWatermark, commitOffset: row.position, lag: row.highWatermark - row.position, timeStamp: Date.now() })
      const workerInstances = workers.map((w) => ({ ...w, laggingTopicPartition: lagging[w.workerId] ?? [] }))
      const total = workerInstances.reduce((sum, w) => ({ bytesPerSecond: sum.bytesPerSecond + w.totalWorkload.bytesPerSecond, msgsPerSecond: sum.msgsPerSecond + w.totalWorkload.msgsPerSecond, partitions: sum.partitions + w.totalWorkload.partitions }), { bytesPerSecond: 0, msgsPerSecond: 0, partitions: 0 })
      return {
        status: 200,
        body: {
          autoBalancingEnabled: settings.autoBalancing,
          numOfExpectedWorkers: workerInstances.length,
          numOfLaggingWorkers: workerInstances.filter((w) => w.laggingTopicPartition.length > 0).length,
          topicWorkload: total,
          workerInstances,
        },
      }
    },
  }),
  defineRoute({
    ...ureplicator,
    method: 'get',
    path: '/noprogress',
    summary: 'uReplicator: assigned partitions whose reported position has not advanced for `seconds` (default 60) while the source has records past it',
    query: z.object({ seconds: z.string().regex(/^\d{1,6}$/, 'must be a whole number of seconds').transform(Number).optional() }),
    responses: jsonOk('Stalled partitions ({} when none)', noProgressSchema),
    handler: async ({ query }, ctx) => {
      const rows = await ctx.groups.noProgress((query.seconds ?? DEFAULT_NO_PROGRESS_SECONDS) * 1000)
      // uReplicator answers an empty object when every partition progresses.
      return { status: 200, body: rows.length === 0 ? {} : { topics: rows } }
    },
  }),
]
