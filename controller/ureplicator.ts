/**
 * uReplicator-compatible `/topics` API, so tooling written for uReplicator's controller keeps
 * working. Each uReplicator "topic" is a Ferry topic group named `ureplicator.<topic>` that
 * mirrors exactly that topic, with every group option at its default.
 *
 * Which clusters: uReplicator mirrors one source cluster to one target per deployment. Ferry
 * takes the pair, in order, from the request's `src` and `dst` query parameters (what
 * federated uReplicator sends), else from the controller's `--ureplicator-source` and
 * `--ureplicator-target` (FERRY_UREPLICATOR_SOURCE / FERRY_UREPLICATOR_TARGET). Without either,
 * adding a topic is a 400 naming `src`/`dst`: guessing a direction between registered clusters
 * could mirror the wrong way.
 *
 * Replies follow uReplicator's: plain-text lines for list/add/delete, a JSON assignment view
 * (idealState, externalView, serverToPartitionMapping, serverToNumPartitionsMapping) for one
 * topic. Errors are Ferry's JSON errors with uReplicator's statuses where they are 4xx (a topic
 * added twice is a 409 here, where uReplicator answered 404).
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express'
import type { Redis } from 'ioredis'
import { topicNameSchema, parseOrThrow, parseTopicGroup } from '../common/config.js'
import { FerryError } from '../common/errors.js'
import type { Keys } from '../common/keys.js'
import type { Logger } from '../common/logger.js'
import { listInstances, type InstanceRecord } from '../common/registry.js'
import type { Store } from '../common/store.js'
import { z } from 'zod'

/** Group name prefix of topics added through this API. */
export const UREPLICATOR_GROUP_PREFIX = 'ureplicator.'
/** Longest topic this API takes: group names are at most 100 characters. */
export const UREPLICATOR_MAX_TOPIC_LENGTH = 100 - UREPLICATOR_GROUP_PREFIX.length

export interface UReplicatorDeps {
  store: Store
  redis: Redis
  keys: Keys
  logger: Logger
  /** Called after a group is added or deleted (the reconciler's trigger). */
  changed: () => void
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

export function createUReplicatorRouter(deps: UReplicatorDeps): Router {
  const { store, logger } = deps
  const router = express.Router()
  // uReplicator's clients post JSON as form data or text (curl -d); read any body as text.
  router.use(express.text({ type: () => true, limit: '256kb' }))

  router.get(
    '/topics',
    route(async (_req, res) => {
      const topics = (await store.listGroups())
        .filter((g) => g.value.spec.name.startsWith(UREPLICATOR_GROUP_PREFIX))
        .map((g) => g.value.spec.name.slice(UREPLICATOR_GROUP_PREFIX.length))
        .sort()
      res.type('text/plain').send(topics.length === 0 ? 'No topic is added in MirrorMaker Controller!' : `Current serving topics: [${topics.join(', ')}]`)
    }),
  )

  const add = route(async (req, res) => {
    const { topic, numPartitions } = topicOf(req)
    res.locals.auditTarget = { topic, group: ureplicatorGroupName(topic) }
    const source = queryName(req, 'src') ?? deps.defaultSource
    const target = queryName(req, 'dst') ?? deps.defaultTarget
    const missing = [...(source === undefined ? [{ field: 'src', message: 'no source cluster: pass ?src= or start the controller with --ureplicator-source' }] : []), ...(target === undefined ? [{ field: 'dst', message: 'no target cluster: pass ?dst= or start the controller with --ureplicator-target' }] : [])]
    if (missing.length > 0) throw new FerryError('INVALID_INPUT', `cannot add topic "${topic}": ${missing.map((m) => `${m.field}: ${m.message}`).join('; ')}`, { details: missing })
    const spec = parseTopicGroup({ name: ureplicatorGroupName(topic), sourceCluster: source, targetCluster: target, topics: [topic] })
    for (const [field, name] of [['src', spec.sourceCluster], ['dst', spec.targetCluster]] as const) {
      if ((await store.getCluster(name)) === null) throw new FerryError('CLUSTER_NOT_FOUND', `cluster "${name}" (${field}) is not registered`, { details: [{ field, message: 'is not a registered cluster' }] })
    }
    await store.createGroup(spec, 'running')
    logger.info({ event: 'controller.group_created', group: spec.name, via: 'ureplicator' }, 'topic group created')
    deps.changed()
    res.type('text/plain').send(`Successfully add new topic: {topic: ${topic}, numPartitions: ${numPartitions ?? 'from source'}, src: ${spec.sourceCluster}, dst: ${spec.targetCluster}}`)
  })
  router.post('/topics', add)
  router.post('/topics/:topic', add)

  router.put(
    '/topics',
    route(async (req, res) => {
      const { topic } = topicOf(req)
      if ((await store.getGroup(ureplicatorGroupName(topic))) === null) throw new FerryError('GROUP_NOT_FOUND', `Failed to expand topic, topic: ${topic} is not existed!`, { details: [{ field: 'topic', message: 'is not mirrored' }] })
      // Ferry follows partition changes of mirrored topics by itself; nothing to write.
      res.type('text/plain').send(`Successfully expand topic: ${topic}`)
    }),
  )

  router.get(
    '/topics/:topic',
    route(async (req, res) => {
      const { topic } = topicOf(req)
      const name = ureplicatorGroupName(topic)
      if ((await store.getGroup(name)) === null) throw new FerryError('GROUP_NOT_FOUND', `Failed to get ExternalView for topic: ${topic}, it is not existed!`, { details: [{ field: 'topic', message: 'is not mirrored' }] })
      const [assignments, instances] = await Promise.all([store.listAssignments(), listInstances(deps.redis, deps.keys).catch(() => [] as InstanceRecord[])])
      const running = new Set<string>()
      for (const instance of instances) {
        const partitions = (instance.metrics as { partitions?: Array<{ group: string; topic: string; partition: number; state?: string }> } | null)?.partitions ?? []
        for (const p of partitions) if (p.group === name && p.state === 'mirroring') running.add(`${instance.id}/${p.partition}`)
      }
      // Keyed by worker ids: no prototype, so a worker named `constructor` is a key like any other.
      const table = <T>(): Record<string, T> => Object.create(null) as Record<string, T>
      const idealState = table<Record<string, string>>()
      const externalView = table<Record<string, string>>()
      const serverToPartitionMapping = table<Record<string, string>>()
      const serverToNumPartitionsMapping = table<number>()
      for (const [worker, record] of assignments) {
        for (const p of record.value.partitions) {
          if (p.group !== name || p.topic !== topic) continue
          const partition = String(p.partition)
          const state = running.has(`${worker}/${p.partition}`) ? 'ONLINE' : 'OFFLINE'
          ;(idealState[partition] ??= table())[worker] = 'ONLINE'
          ;(externalView[partition] ??= table())[worker] = state
          ;(serverToPartitionMapping[worker] ??= table())[partition] = state
          serverToNumPartitionsMapping[worker] = (serverToNumPartitionsMapping[worker] ?? 0) + (state === 'ONLINE' ? 1 : 0)
        }
      }
      res.json({ topic, group: name, idealState, externalView, serverToPartitionMapping, serverToNumPartitionsMapping })
    }),
  )

  router.delete(
    '/topics/:topic',
    route(async (req, res) => {
      const { topic } = topicOf(req)
      const name = ureplicatorGroupName(topic)
      if ((await store.getGroup(name)) === null) throw new FerryError('GROUP_NOT_FOUND', `Failed to delete not existed topic: ${topic}`, { details: [{ field: 'topic', message: 'is not mirrored' }] })
      await store.deleteGroup(name)
      logger.info({ event: 'controller.group_deleted', group: name, via: 'ureplicator' }, 'topic group deleted')
      deps.changed()
      res.type('text/plain').send(`Successfully finished delete topic: ${topic}`)
    }),
  )
  return router
}
