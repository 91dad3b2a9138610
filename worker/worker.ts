/**
 * A worker process: watches its own assignment znode and runs one mirror task per topic group
 * in it, each mirroring exactly the assigned partitions. Desired state (the assignment, written
 * by the leader) and actual state (the tasks) are kept apart; `sync()` moves the second towards
 * the first, on every watch event and on a periodic resync that covers a missed watch.
 *
 * @example
 *   const worker = await startWorker(config, logger)
 *   worker.status()   // per-partition progress, reported to Redis by bootstrap
 */
import { withinMs } from '../common/deadline.js'
import { errorMessage } from '../common/errors.js'
import type { ClusterSpec } from '../common/config.js'
import { createCheckpointStore } from './checkpoint-store.js'
import { createClusterAdmins } from '../common/kafka/cluster-admins.js'
import type { KafkaClientFactory, TargetProducer } from '../common/kafka/port.js'
import { kafkajsClients } from './kafka-clients.js'
import type { Logger } from '../common/logger.js'
import { createMetricsRegistry } from '../common/metrics.js'
import { startMetricsServer, type MetricsServer } from '../common/metrics-server.js'
import { createWorkerMetrics } from './worker-metrics.js'
import { createPaths } from '../common/paths.js'
import type { ProcessConfig } from '../common/process-config.js'
import { createStore, type AssignedPartition, type GroupRecord } from '../common/store.js'
import { connectZk, readZkAuthFile } from '../common/zk.js'
import type { Registry } from 'prom-client'
import { createMirrorMetrics, createMirrorTask, type MirrorTask } from './mirror-task.js'
import type { WorkerReport } from '../common/worker-report.js'

/** What the worker reports (to bootstrap, which keeps it in Redis for the controller). */
export type WorkerStatus = WorkerReport

export interface Worker {
  readonly registry: Registry
  status(): WorkerStatus
  /** Re-read the assignment and apply it now. */
  sync(): Promise<void>
  stop(): Promise<void>
}

interface RunningTask {
  task: MirrorTask
  producer: TargetProducer
  fingerprint: string
}

export interface WorkerOptions {
  /** Periodic resync; default 10000 ms. */
  resyncIntervalMs?: number
  onFatal: (reason: string) => void
  /** The Kafka client behind the port (common/kafka/port.ts); default kafkajs (worker/kafka-clients.ts). */
  clients?: KafkaClientFactory
}

export async function startWorker(config: ProcessConfig, logger: Logger, options: WorkerOptions): Promise<Worker> {
  const registry = createMetricsRegistry({ role: 'worker', instance: config.id })
  const workerMetrics = createWorkerMetrics(registry, createMirrorMetrics(registry))
  const metrics = workerMetrics.mirror
  const metricsServer: MetricsServer | undefined = config.metricsPort === undefined ? undefined : await startMetricsServer({ host: config.host, port: config.metricsPort, registry, logger, event: 'worker.metrics_listening' })
  // A lost session is replaced by a new one (see zk.onSessionLost below).
  const zk = await connectZk({ connect: config.zookeeper, sessionTimeoutMs: config.zkSessionTimeoutMs, auth: readZkAuthFile(config.zookeeperAuthFile), renewSession: true, logger })
  const paths = createPaths(config.deployment)
  const store = createStore(zk, paths)
  const clients: KafkaClientFactory = options.clients ?? kafkajsClients
  const admins = createClusterAdmins(`ferry-worker-${config.id}`, logger, clients)
  const tasks = new Map<string, RunningTask>()
  let epoch: number | null = null
  let stopped = false
  let syncing: Promise<void> = Promise.resolve()
  let queuedSync: Promise<void> | undefined
  let resyncTimer: NodeJS.Timeout | undefined

  const startTask = async (record: GroupRecord, source: ClusterSpec, target: ClusterSpec, fingerprint: string): Promise<RunningTask> => {
    const producer = await clients.targetProducer(target, { clientId: `ferry-${config.id}`, logger, compression: record.spec.compression })
    const targetAdmin = admins.get(target)
    const task = createMirrorTask({
      deployment: config.deployment,
      worker: config.id,
      group: record.spec,
      source,
      target,
      sourceAdmin: admins.get(source),
      targetAdmin,
      producer: workerMetrics.producer(record.spec.name, producer),
      checkpoints: workerMetrics.checkpoints(record.spec.name, createCheckpointStore({ target, admin: targetAdmin, createConsumer: clients.sourceConsumer, deployment: config.deployment, sourceCluster: source.name, worker: config.id, logger })),
      logger,
      metrics,
      baseline: async () => (await bounded(store.getStatus(record.spec.name), `reading the status of group "${record.spec.name}"`))?.baseline ?? null,
      createConsumer: clients.sourceConsumer,
      createTransactional: (transactionalId) => clients.transactionalProducer(target, transactionalId, { clientId: `ferry-${config.id}`, logger, compression: record.spec.compression }).then((p) => workerMetrics.transactional(record.spec.name, p)),
    })
    return { task, producer, fingerprint }
  }

  const stopTask = async (name: string): Promise<void> => {
    const running = tasks.get(name)
    if (!running) return
    tasks.delete(name)
    await running.task.stop()
    await running.producer.close()
  }

  /**
   * A ZooKeeper read that has not answered within a session timeout fails, so a read stuck on a
   * connection that is going away cannot hold up every later sync (they run one at a time).
   */
  const bounded = <T>(read: Promise<T>, what: string): Promise<T> =>
    withinMs(read, config.zkSessionTimeoutMs, () => new Error(`${what}: no answer from ZooKeeper within ${config.zkSessionTimeoutMs} ms`))

  /**
   * One watch on the assignment at a time. A ZooKeeper watch fires once, but every read that
   * passes a watcher adds one, and they all fire on the next change: a watch per resync piled
   * up listeners and replayed the assignment as many times (issue 12).
   */
  let watchArmed = false
  const onAssignmentChanged = (): void => {
    watchArmed = false
    if (!stopped) void worker.sync()
  }

  const applyAssignment = async (): Promise<void> => {
    const arm = !watchArmed
    watchArmed = true
    let assignment: Awaited<ReturnType<typeof store.getAssignment>>
    try {
      assignment = await bounded(store.getAssignment(config.id, arm ? onAssignmentChanged : undefined), 'reading the assignment')
    } catch (error) {
      // The read failed, so its watch may not be set: the next sync sets one.
      if (arm) watchArmed = false
      throw error
    }
    logger.debug({ event: 'worker.assignment_read', version: assignment?.version ?? null, epoch: assignment?.value.epoch ?? null, watch: arm }, 'assignment read')
    epoch = assignment?.value.epoch ?? null
    const byGroup = new Map<string, AssignedPartition[]>()
    for (const p of assignment?.value.partitions ?? []) byGroup.set(p.group, [...(byGroup.get(p.group) ?? []), p])

    for (const name of [...tasks.keys()]) if (!byGroup.has(name)) await stopTask(name)
    for (const [name, partitions] of byGroup) {
      try {
        const group = await bounded(store.getGroup(name), `reading group "${name}"`)
        if (group === null) {
          await stopTask(name)
          continue
        }
        const [source, target] = await bounded(Promise.all([store.getCluster(group.value.spec.sourceCluster), store.getCluster(group.value.spec.targetCluster)]), `reading the clusters of group "${name}"`)
        if (source === null || target === null) throw new Error(`a cluster of group "${name}" is not registered`)
        // A changed group spec or cluster definition restarts the task with the new settings.
        const fingerprint = JSON.stringify([group.value.spec, source.value, target.value])
        let running = tasks.get(name)
        if (running && running.fingerprint !== fingerprint) {
          await stopTask(name)
          running = undefined
        }
        if (!running) {
          running = await startTask(group.value, source.value, target.value, fingerprint)
          tasks.set(name, running)
        }
        void running.task.update(partitions).catch((error: unknown) => logger.error({ event: 'worker.update_failed', group: name, err: errorMessage(error) }, 'applying assignment failed'))
      } catch (error) {
        logger.error({ event: 'worker.group_failed', group: name, err: errorMessage(error) }, 'cannot start mirroring group; will retry on resync')
      }
    }
  }

  const worker: Worker = {
    registry,
    status: () => ({ id: config.id, assignmentEpoch: epoch, partitions: [...tasks.values()].flatMap((t) => t.task.status()) }),
    sync() {
      // A sync that has not begun yet will read the newest assignment: calls meanwhile join it
      // instead of queueing more reads of the same state.
      if (queuedSync !== undefined) return queuedSync
      const next = syncing.then(() => {
        queuedSync = undefined
        if (stopped) return undefined
        return applyAssignment().catch((error: unknown) => {
          logger.error({ event: 'worker.sync_failed', err: errorMessage(error) }, 'reading the assignment failed')
        })
      })
      queuedSync = next
      syncing = next
      return next
    },
    async stop() {
      if (stopped) return
      stopped = true
      if (resyncTimer) clearTimeout(resyncTimer)
      await syncing
      // Stopping a task lets in-flight batches finish and checkpoint: a graceful drain.
      await Promise.all([...tasks.keys()].map((name) => stopTask(name)))
      await admins.closeAll()
      await zk.close()
      await metricsServer?.close()
      logger.info({ event: 'worker.stopped' }, 'worker stopped')
    },
  }

  /**
   * Without a ZooKeeper session the worker cannot see assignment changes, but nobody can make
   * any while ZooKeeper is down, and the controller moves a live worker's partitions only when
   * its lease (in Redis, kept by bootstrap, which fences the worker when the lease lapses) says
   * it is gone. So, as a kubelet keeps its pods while the API server is away, the worker keeps
   * mirroring its last assignment and opens a new session in the background; the first sync on
   * it applies whatever changed meanwhile. Should a partition have moved to another worker all
   * the same, the overlap is bounded by the reconnect: exactly-once writes are fenced by the
   * broker (the new owner's transactional id), at-least-once ones may be duplicated, never lost.
   */
  zk.onSessionLost((reason) => {
    watchArmed = false
    if (!stopped) logger.warn({ event: 'worker.zookeeper_lost', reason, groups: tasks.size }, 'ZooKeeper session lost: mirroring the last assignment while reconnecting')
  })
  zk.onSessionRenewed(() => {
    // The old session's watch is gone with it: the next read sets one on the new session.
    watchArmed = false
    if (stopped) return
    logger.info({ event: 'worker.zookeeper_reconnected' }, 'new ZooKeeper session; reading the assignment again')
    void worker.sync()
  })
  await worker.sync()
  const resync = (): void => {
    if (stopped) return
    void worker.sync().finally(() => {
      if (!stopped) resyncTimer = setTimeout(resync, options.resyncIntervalMs ?? 10000)
    })
  }
  resyncTimer = setTimeout(resync, options.resyncIntervalMs ?? 10000)
  logger.info({ event: 'worker.started', id: config.id }, 'worker started')
  return worker
}
