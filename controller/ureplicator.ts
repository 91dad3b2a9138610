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
import express, { type NextFunction, type Request, type Response, type Router } from 'express'
import { topicNameSchema, parseOrThrow, parseTopicGroup } from '../common/config.js'
import { FerryError, HTTP_STATUS_BY_CODE, errorMessage } from '../common/errors.js'
import type { Logger } from '../common/logger.js'
import type { Store } from '../common/store.js'
import type { ClusterAdmins } from '../common/kafka/cluster-admins.js'
import { z } from 'zod'
import type { GroupsService } from './groups-service.js'

/** Group name prefix of topics added through this API. */
export const UREPLICATOR_GROUP_PREFIX = 'ureplicator.'
/** Longest topic this API takes: group names are at most 100 characters. */
export const UREPLICATOR_MAX_TOPIC_LENGTH = 100 - UREPLICATOR_GROUP_PREFIX.length
/** Default of `GET /noprogress?seconds=`: how long a position must stand still to count. */
export const DEFAULT_NO_PROGRESS_SECONDS = 60

export interface UReplicatorDeps {
  store: Store
  groups: GroupsService
  admins: ClusterAdmins
  logger: Logger
  /** Whether this controller can reach ZooKeeper and Redis (`GET /health`). */
  healthy: () => Promise<boolean>
  /** The default cluster pair (--ureplicator-source / --ureplicator-target). */
  defaultSource?: string | undefined
  defaultTarget?: string | undefined
}

const bodySchema = z
  .object({
    topic: topicNameSchema.refine((t) => t.length <= UREPLICATOR_MAX_TOPIC_LENGTH, `must be at most ${UREPLICATOR_MAX_TOPIC_LENGTH} characters (the group name is "${UREPLICATOR_GROUP_PREFIX}<topic>")`),
    numPartitions: z.union([z.number().int().positive(), z.string().regex(/^\d+$/, 'must be a positive whole number')]).optional(),
  })
  .passthrough()

export function ureplicatorGroupName(topic: string): string {
  return `${UREPLICATOR_GROUP_PREFIX}${topic}`
}

/** A reply as uReplicator words it: plain text with its status. */
export class UReplicatorReply extends Error {
  constructor(
    readonly status: number,
    readonly text: string,
  ) {
    super(text)
    this.name = 'UReplicatorReply'
  }
}

type Handler = (req: Request, res: Response) => Promise<void>
const route = (handler: Handler) => (req: Request, res: Response, next: NextFunction): void => {
  handler(req, res).catch(next)
}

/** The request body as uReplicator clients send it: JSON text under any content type, or nothing. */
function readBody(req: Request): Record<string, unknown> | undefined {
  const raw: unknown = req.body
  if (raw === undefined || raw === null) return undefined
  if (typeof raw === 'string') {
    if (raw.trim() === '') return undefined
    let parsed: unknown
    try {
      parsed = JSON.parse(raw)
    } catch {
      throw new FerryError('INVALID_INPUT', 'request body is not valid JSON', { details: [{ field: '(body)', message: 'is not valid JSON' }] })
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new FerryError('INVALID_INPUT', 'request body must be a JSON object', { details: [{ field: '(body)', message: 'must be a JSON object' }] })
    return parsed as Record<string, unknown>
  }
  if (typeof raw === 'object' && !Array.isArray(raw)) return Object.keys(raw).length === 0 ? undefined : (raw as Record<string, unknown>)
  throw new FerryError('INVALID_INPUT', 'request body must be a JSON object', { details: [{ field: '(body)', message: 'must be a JSON object' }] })
}

function topicOf(req: Request): { topic: string; numPartitions?: number } {
  const fromPath = req.params.topic
  const body = readBody(req)
  if (body === undefined && fromPath === undefined) throw new FerryError('INVALID_INPUT', 'invalid topic: topic: is required', { details: [{ field: 'topic', message: 'is required' }] })
  const parsed = parseOrThrow(bodySchema, { ...(fromPath === undefined ? {} : { topic: fromPath }), ...body }, 'topic')
  if (fromPath !== undefined && parsed.topic !== fromPath) {
    throw new FerryError('INVALID_INPUT', `invalid topic: topic: the body names "${parsed.topic}" but the path names "${fromPath}"`, { details: [{ field: 'topic', message: 'differs from the path' }] })
  }
  return { topic: parsed.topic, ...(parsed.numPartitions === undefined ? {} : { numPartitions: Number(parsed.numPartitions) }) }
}

function queryName(req: Request, name: 'src' | 'dst'): string | undefined {
  const value = req.query[name]
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw new FerryError('INVALID_INPUT', `${name} must be given once`, { details: [{ field: name, message: 'must be given once' }] })
  return value
}

/** Keyed by worker ids: no prototype, so a worker named `constructor` is a key like any other. */
const table = <T>(): Record<string, T> => Object.create(null) as Record<string, T>

export function createUReplicatorRouter(deps: UReplicatorDeps): Router {
  const { store, groups } = deps
  const router = express.Router()
  // uReplicator's clients post JSON as form data, text or with no content type (curl -d); read any body as text.
  router.use(express.text({ type: () => true, limit: '256kb' }))

  router.get(
    '/topics',
    route(async (_req, res) => {
      const topics = (await groups.list())
        .filter((g) => g.name.startsWith(UREPLICATOR_GROUP_PREFIX))
        .map((g) => g.name.slice(UREPLICATOR_GROUP_PREFIX.length))
        .sort()
      res.type('text/plain').send(topics.length === 0 ? 'No topic is added in MirrorMaker Controller!' : `Current serving topics: [${topics.join(', ')}]`)
    }),
  )

  /** Partitions of `topic` on the source, or a 400 as uReplicator's when the source has no such topic. */
  const sourcePartitions = async (topic: string, sourceName: string): Promise<number> => {
    const source = await store.getCluster(sourceName)
    if (source === null) throw new FerryError('CLUSTER_NOT_FOUND', `cluster "${sourceName}" (src) is not registered`, { details: [{ field: 'src', message: 'is not a registered cluster' }] })
    let counts: Map<string, number>
    try {
      counts = await deps.admins.get(source.value).partitionCounts([topic])
    } catch (error) {
      throw new FerryError('UNAVAILABLE', `cannot read topic "${topic}" on source cluster "${sourceName}": ${errorMessage(error)}`, { cause: error })
    }
    const count = counts.get(topic)
    if (count === undefined || count === 0) throw new UReplicatorReply(400, `Failed to add new topic: ${topic}, it's not exsited in source kafka cluster!`)
    return count
  }

  const add = route(async (req, res) => {
    const { topic, numPartitions } = topicOf(req)
    res.locals.auditTarget = { topic, group: ureplicatorGroupName(topic) }
    const source = queryName(req, 'src') ?? deps.defaultSource
    const target = queryName(req, 'dst') ?? deps.defaultTarget
    const missing = [...(source === undefined ? [{ field: 'src', message: 'no source cluster: pass ?src= or start the controller with --ureplicator-source' }] : []), ...(target === undefined ? [{ field: 'dst', message: 'no target cluster: pass ?dst= or start the controller with --ureplicator-target' }] : [])]
    if (missing.length > 0) throw new FerryError('INVALID_INPUT', `cannot add topic "${topic}": ${missing.map((m) => `${m.field}: ${m.message}`).join('; ')}`, { details: missing })
    const spec = parseTopicGroup({ name: ureplicatorGroupName(topic), sourceCluster: source, targetCluster: target, topics: [topic] })
    // uReplicator checks "already existed" before anything else.
    if (await groups.exists(spec.name)) throw new UReplicatorReply(404, `Failed to add new topic: ${topic}, it is already existed!`)
    if ((await store.getCluster(spec.targetCluster)) === null) throw new FerryError('CLUSTER_NOT_FOUND', `cluster "${spec.targetCluster}" (dst) is not registered`, { details: [{ field: 'dst', message: 'is not a registered cluster' }] })
    const partitions = await sourcePartitions(topic, spec.sourceCluster)
    try {
      await groups.create({ spec, start: true, via: 'ureplicator' })
    } catch (error) {
      if (error instanceof FerryError && error.code === 'GROUP_EXISTS') throw new UReplicatorReply(404, `Failed to add new topic: ${topic}, it is already existed!`)
      throw error
    }
    res.type('text/plain').send(`Successfully add new topic: {topic: ${topic}, partition: ${numPartitions ?? partitions}}`)
  })
  router.post('/topics', add)
  router.post('/topics/:topic', add)

  router.put(
    '/topics',
    route(async (req, res) => {
      const { topic, numPartitions } = topicOf(req)
      const name = ureplicatorGroupName(topic)
      if (!(await groups.exists(name))) throw new UReplicatorReply(404, `Failed to expand topic, topic: ${topic} is not existed!`)
      // Ferry follows partition changes of mirrored topics by itself; nothing to write.
      const partitions = numPartitions ?? (await groups.serving((g) => g === name)).length
      res.type('text/plain').send(`Successfully expand topic: {topic: ${topic}, partition: ${partitions}}`)
    }),
  )

  router.get(
    '/topics/:topic',
    route(async (req, res) => {
      const { topic } = topicOf(req)
      const name = ureplicatorGroupName(topic)
      if (!(await groups.exists(name))) throw new UReplicatorReply(404, `Failed to get ExternalView for topic: ${topic}, it is not existed!`)
      const idealState = table<Record<string, string>>()
      const externalView = table<Record<string, string>>()
      const serverToPartitionMapping = table<Record<string, string>>()
      const serverToNumPartitionsMapping = table<number>()
      for (const row of await groups.serving((g) => g === name)) {
        if (row.topic !== topic) continue
        const partition = String(row.partition)
        const state = row.actualWorker === row.idealWorker ? 'ONLINE' : 'OFFLINE'
        ;(idealState[partition] ??= table())[row.idealWorker] = 'ONLINE'
        ;(externalView[partition] ??= table())[row.idealWorker] = state
        ;(serverToPartitionMapping[row.idealWorker] ??= table())[partition] = state
        serverToNumPartitionsMapping[row.idealWorker] = (serverToNumPartitionsMapping[row.idealWorker] ?? 0) + (state === 'ONLINE' ? 1 : 0)
      }
      res.json({ topic, group: name, idealState, externalView, serverToPartitionMapping, serverToNumPartitionsMapping })
    }),
  )

  router.delete(
    '/topics/:topic',
    route(async (req, res) => {
      const { topic } = topicOf(req)
      const name = ureplicatorGroupName(topic)
      if (!(await groups.exists(name))) throw new UReplicatorReply(404, `Failed to delete not existed topic: ${topic}`)
      try {
        await groups.delete(name, 'ureplicator')
      } catch (error) {
        if (error instanceof FerryError && error.code === 'GROUP_NOT_FOUND') throw new UReplicatorReply(404, `Failed to delete not existed topic: ${topic}`)
        throw error
      }
      res.type('text/plain').send(`Successfully finished delete topic: ${topic}`)
    }),
  )

  router.get(
    '/health',
    route(async (_req, res) => {
      const healthy = await deps.healthy().catch(() => false)
      res.status(healthy ? 200 : 503).type('text/plain').send(healthy ? 'OK\n' : 'Unhealthy\n')
    }),
  )

  // Ideal (Ferry's assignment) vs actual (what workers report mirroring), counted as uReplicator's ValidationManager does.
  router.get(
    '/validation',
    route(async (_req, res) => {
      const rows = await groups.serving()
      const ideal = table<number>()
      const actual = table<number>()
      const topics = new Map<string, boolean>()
      let online = 0
      let offline = 0
      let failed = 0
      const mismatches: Array<{ group: string; topic: string; partition: number; idealWorker: string; actualWorker: string | null; reportedBy: string[]; state: string | null }> = []
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
      res.json({
        numTopics: topics.size,
        numTopicPartitions: rows.length,
        numOnlineTopicPartitions: online,
        numOfflineTopicPartitions: offline,
        numErrorTopicPartitions: failed,
        numErrorTopics: [...topics.values()].filter((ok) => !ok).length,
        IdealState: ideal,
        ExternalView: actual,
        mismatches,
      })
    }),
  )

  for (const [opt, autoBalancing] of [['enable_autobalancing', true], ['disable_autobalancing', false]] as const) {
    router.post(
      `/admin/${opt}`,
      route(async (_req, res) => {
        const settings = await store.updateSettings({ autoBalancing })
        deps.logger.info({ event: 'controller.autobalancing_changed', autoBalancing: settings.autoBalancing, via: 'ureplicator' }, `auto-balancing ${settings.autoBalancing ? 'enabled' : 'disabled'}`)
        res.json({ opt, auto_balancing: settings.autoBalancing })
      }),
    )
  }
  router.get(
    '/admin/autobalancing_status',
    route(async (_req, res) => {
      res.json({ auto_balancing: (await store.getSettings()).autoBalancing })
    }),
  )
  router.get(
    '/admin/workloadinfo',
    route(async (_req, res) => {
      const [settings, workers, stalled] = await Promise.all([store.getSettings(), groups.workload(), groups.noProgress(0)])
      // A worker "lags" when one of its partitions has records at the source past its position.
      const lagging = table<Array<{ topicName: string; partitionId: number; latestOffset: number; commitOffset: number; lag: number; timeStamp: number }>>()
      for (const row of stalled) (lagging[row.idealWorker] ??= []).push({ topicName: row.topic, partitionId: row.partition, latestOffset: row.highWatermark, commitOffset: row.position, lag: row.highWatermark - row.position, timeStamp: Date.now() })
      const workerInstances = workers.map((w) => ({ ...w, laggingTopicPartition: lagging[w.workerId] ?? [] }))
      const total = workerInstances.reduce((sum, w) => ({ bytesPerSecond: sum.bytesPerSecond + w.totalWorkload.bytesPerSecond, msgsPerSecond: sum.msgsPerSecond + w.totalWorkload.msgsPerSecond, partitions: sum.partitions + w.totalWorkload.partitions }), { bytesPerSecond: 0, msgsPerSecond: 0, partitions: 0 })
      res.json({
        autoBalancingEnabled: settings.autoBalancing,
        numOfExpectedWorkers: workerInstances.length,
        numOfLaggingWorkers: workerInstances.filter((w) => w.laggingTopicPartition.length > 0).length,
        topicWorkload: total,
        workerInstances,
      })
    }),
  )

  router.get(
    '/noprogress',
    route(async (req, res) => {
      const raw = req.query.seconds
      const text = raw === undefined ? String(DEFAULT_NO_PROGRESS_SECONDS) : String(raw)
      if (!/^\d{1,6}$/.test(text)) throw new FerryError('INVALID_INPUT', `seconds must be a whole number of seconds, got "${text.slice(0, 40)}"`, { details: [{ field: 'seconds', message: 'must be a whole number' }] })
      const rows = await groups.noProgress(Number(text) * 1000)
      // uReplicator answers an empty object when every partition progresses.
      res.json(rows.length === 0 ? {} : { topics: rows })
    }),
  )

  // Refusals a uReplicator script reads: its texts, and every 404 on these routes as text.
  router.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (error instanceof UReplicatorReply) {
      res.status(error.status).type('text/plain').send(error.text)
      return
    }
    if (error instanceof FerryError && HTTP_STATUS_BY_CODE[error.code] === 404) {
      res.status(404).type('text/plain').send(error.message)
      return
    }
    next(error)
  })
  return router
}
