/**
 * A controller process: joins the election, serves the REST API, and (while leader) runs the
 * reconcile loop. Losing the ZooKeeper session ends the process (bootstrap restarts it),
 * because leadership and every watch went with the session.
 */
import type { Server } from 'node:http'
import { readFileSync } from 'node:fs'
import { createServer as createHttpServer } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { Redis } from 'ioredis'
import { errorMessage } from '../common/errors.js'
import { answerClientErrors } from '../common/http-listener.js'
import { createKeys } from '../common/keys.js'
import type { Logger } from '../common/logger.js'
import { createMetricsRegistry } from '../common/metrics.js'
import { createPaths } from '../common/paths.js'
import type { ProcessConfig } from '../common/process-config.js'
import { createStore } from '../common/store.js'
import { installedSecretPolicy } from '../common/secrets.js'
import { connectZk, readZkAuthFile } from '../common/zk.js'
import { createApi } from './api.js'
import { apiAccess, loadApiTokens, type ApiAccess } from './auth.js'
import { registerContinuousAuditMetrics, registerControllerMetrics } from './controller-metrics.js'
import { createClusterAdmins } from '../common/kafka/cluster-admins.js'
import { kafkajsReadClients } from '../common/kafka/kafkajs-clients.js'
import type { KafkaReadClients } from '../common/kafka/port.js'
import { createElection } from './election.js'
import { createEventLog } from './events.js'
import { createGroupsService } from './groups-service.js'
import { createHistoryStore, redisHistoryBackend } from './history.js'
import { createHistoryRecorder } from './history-recorder.js'
import { consumerOffsetsOnStore } from './consumer-offsets.js'
import { createContinuousAudit, portAuditSides, redisAuditStateStore } from './continuous-audit.js'
import { listDeparted, listInstances } from '../common/registry.js'
import { createNodeStatus } from './node-status.js'
import { createReconciler, type Reconciler } from './reconciler.js'
import { createTopicFollower } from './topic-follow.js'

export interface Controller {
  readonly url: string
  /** How the API admits callers (see controller/auth.ts). */
  readonly api: ApiAccess
  readonly reconciler: Reconciler
  isLeader(): boolean
  stop(): Promise<void>
}

/** `clients`: the Kafka client library behind the port (common/kafka/port.ts); default the kafkajs fork. */
export async function startController(config: ProcessConfig, logger: Logger, clients: KafkaReadClients = kafkajsReadClients): Promise<Controller> {
  const registry = createMetricsRegistry({ role: 'controller', instance: config.id })
  // A lost session is replaced by a new one; meanwhile this controller does not lead (below).
  const zk = await connectZk({ connect: config.zookeeper, sessionTimeoutMs: config.zkSessionTimeoutMs, auth: readZkAuthFile(config.zookeeperAuthFile), renewSession: true, logger })
  const redis = new Redis(config.redis, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 3000, lazyConnect: false })
  redis.on('error', (error) => logger.debug({ event: 'controller.redis_error', err: errorMessage(error) }, 'redis error'))
  const paths = createPaths(config.deployment)
  const keys = createKeys(config.deployment)
  const store = createStore(zk, paths, { secrets: installedSecretPolicy() })
  const admins = createClusterAdmins(`ferry-controller-${config.id}`, logger, clients)

  let url = ''
  // The URL is known only once the server listens, after the election is wired up; the getter
  // is read when election.start() writes the candidate node, which is after listen.
  const election = createElection({ zk, paths, info: { id: config.id, get url() { return url } }, logger })
  const events = createEventLog({ redis, keys, logger, controller: config.id })
  const follower = createTopicFollower({
    isLeader: () => election.isLeader(),
    groups: async () => (await store.listGroups()).map((g) => ({ spec: g.value.spec, running: g.value.state === 'running' })),
    topicsOf: async (group) => Object.keys((await store.getStatus(group))?.topics ?? {}).sort(),
    async admins(spec) {
      const [source, target] = await Promise.all([store.getCluster(spec.sourceCluster), store.getCluster(spec.targetCluster)])
      if (source === null || target === null) throw new Error(`a cluster of group "${spec.name}" is not registered`)
      return { source: admins.get(source.value), target: admins.get(target.value) }
    },
    events,
    logger,
    registry,
    onStatusChanged: () => reconciler.trigger(),
  })
  const reconciler = createReconciler({
    follow: follower,
    events,
    zk,
    store,
    paths,
    election,
    redis,
    keys,
    admins,
    logger,
    registry,
    id: config.id,
    debounceMs: config.rebalanceDebounceMs,
    healAfterMs: config.healAfterMs,
    maxMovesPerPass: config.maxMovesPerPass,
    leaseTtlMs: config.leaseTtlMs,
  })
  const apiTokens = loadApiTokens({ file: config.apiTokensFile, env: process.env })
  const groups = createGroupsService({ store, redis, keys, admins, events, logger, changed: () => reconciler.trigger() })
  const history = createHistoryStore({ backend: redisHistoryBackend(redis), keys })
  const recorder = createHistoryRecorder({
    history,
    isLeader: () => election.isLeader(),
    groups: async () => (await store.listGroups()).map((g) => ({ name: g.value.spec.name, spec: g.value.spec })),
    instances: () => listInstances(redis, keys),
    async sourceEnds(spec, topics) {
      const source = await store.getCluster(spec.sourceCluster)
      if (source === null) throw new Error(`source cluster "${spec.sourceCluster}" is not registered`)
      const admin = admins.get(source.value)
      const ends = new Map<string, number>()
      for (const topic of topics) for (const o of await admin.stableOffsets(topic)) ends.set(`${topic}/${o.partition}`, o.stable)
      return ends
    },
    logger,
  })
  const continuousAudit = createContinuousAudit({
    isLeader: () => election.isLeader(),
    groups: async () => (await store.listGroups()).map((g) => ({ name: g.value.spec.name, spec: g.value.spec })),
    async sides(spec) {
      const [source, target] = await Promise.all([store.getCluster(spec.sourceCluster), store.getCluster(spec.targetCluster)])
      if (source === null || target === null) throw new Error(`a cluster of group "${spec.name}" is not registered`)
      return portAuditSides({ group: spec, source: { cluster: source.value, admin: admins.get(source.value) }, target: { cluster: target.value, admin: admins.get(target.value) }, sourceConsumer: admins.clients.sourceConsumer, logger })
    },
    state: redisAuditStateStore(redis, keys, history),
    logger,
    onRun: registerContinuousAuditMetrics(registry, () => election.isLeader()),
  })
  const consumerOffsets = consumerOffsetsOnStore({ store, admins, isLeader: () => election.isLeader(), deployment: () => config.deployment, logger, events })
  const nodes = createNodeStatus({
    instances: () => listInstances(redis, keys),
    departed: (ids) => listDeparted(redis, keys, ids),
    redis,
    keys,
    isLeader: () => election.isLeader(),
    id: config.id,
    leaseTtlMs: config.leaseTtlMs,
    logger,
  })
  registerControllerMetrics({ registry, redis, keys, isLeader: () => election.isLeader(), drift: () => groups.drift(), nodes: () => nodes.latest() })
  const app = createApi({ nodes, groups, apiTokens, apiOpen: config.apiOpen, ureplicator: { source: config.ureplicatorSource, target: config.ureplicatorTarget }, store, zk, redis, keys, election, reconciler, admins, registry, logger, events, history, consumerOffsets })

  const server: Server = await new Promise((resolve, reject) => {
    // HTTPS when a certificate and key are configured (read once at start; a restart picks up new ones).
    const s: Server = config.apiTlsCert !== undefined && config.apiTlsKey !== undefined ? createHttpsServer({ cert: readFileSync(config.apiTlsCert), key: readFileSync(config.apiTlsKey) }, app) : createHttpServer(app)
    answerClientErrors(s)
    s.listen(config.port, config.host, () => resolve(s))
    s.once('error', reject)
  })
  const address = server.address() as AddressInfo
  url = `${config.apiTlsCert !== undefined ? 'https' : 'http'}://${config.host}:${address.port}`

  // Without a session this controller cannot lead (its candidate node goes with the session),
  // but it keeps serving the API and /readyz (503, naming ZooKeeper) and enters the election
  // again once a new session is open, instead of exiting and being restarted.
  let stopped = false
  let rejoining: Promise<void> = Promise.resolve()
  const rejoin = (why: string): void => {
    rejoining = rejoining.then(async () => {
      for (let attempt = 1; !stopped; attempt++) {
        try {
          await election.rejoin()
          logger.info({ event: 'controller.election_rejoined', why, leader: election.isLeader() }, 'entered the election again')
          return
        } catch (error) {
          logger.warn({ event: 'controller.rejoin_failed', why, attempt, err: errorMessage(error) }, 'could not enter the election again; retrying')
          await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 500 * attempt)))
        }
      }
    })
  }
  zk.onSessionLost((reason) => {
    logger.warn({ event: 'controller.zookeeper_lost', reason, wasLeader: election.isLeader() }, 'ZooKeeper session lost: not leading until a new session is open')
    // The candidate node goes with the session: stop leading now; rejoin() runs on renewal.
    election.resign()
  })
  zk.onSessionRenewed(() => rejoin('new ZooKeeper session'))
  election.on('elected', () => reconciler.trigger())
  election.on('deposed', () => rejoin('deposed: our candidate node vanished'))
  await zk.ensurePaths(paths.containers())
  await election.start()
  reconciler.start()
  recorder.start()
  continuousAudit.start()
  consumerOffsets.start()
  nodes.start()
  follower.start()
  const api = apiAccess(apiTokens, config.apiOpen)
  logger.info({ event: 'controller.started', url, leader: election.isLeader(), api }, `controller started; API ${api === 'tokens' ? 'requires bearer tokens' : api === 'open' ? 'is OPEN to anyone who can reach it (--api-open)' : 'is CLOSED: no tokens configured and no --api-open'}`)

  let stopping: Promise<void> | undefined
  return {
    url,
    api,
    reconciler,
    isLeader: () => election.isLeader(),
    stop() {
      stopping ??= (async () => {
        stopped = true
        groups.stop()
        await recorder.stop()
        await continuousAudit.stop()
        await consumerOffsets.stop()
        await nodes.stop()
        await follower.stop()
        await reconciler.stop()
        await events.flush()
        await new Promise<void>((resolve) => server.close(() => resolve()))
        await election.stop()
        await admins.closeAll()
        redis.disconnect()
        await zk.close()
        logger.info({ event: 'controller.stopped' }, 'controller stopped')
      })()
      return stopping
    },
  }
}
