/**
 * One topic group's mirroring on this worker: consumes exactly the partitions the controller
 * assigned, produces each record to the target (key, value, headers, timestamp and, by
 * default, partition kept), then checkpoints the next source offset on the target. A changed
 * partition set restarts the consumer from fresh checkpoints, so a partition that moved here
 * resumes exactly where its previous owner's acknowledged data ends.
 *
 * The task sequences its parts, each with one job: target topics (target-topics.ts), where each
 * partition starts (start-offsets.ts), how records and checkpoints reach the target
 * (delivery.ts), one batch's records with refusals and dead letters (batch-mirror.ts,
 * dead-letter.ts), the partitions' statuses (partition-book.ts) and what a failure leads to
 * (failure-policy.ts).
 *
 * @example
 *   const task = createMirrorTask({ group, source, target, producer, checkpoints, ... })
 *   await task.update([{ group: 'g', topic: 'orders', partition: 3 }])
 *   task.status()   // per-partition progress
 *   await task.stop()
 */
import type { ClusterSpec, TopicGroupSpec } from '../common/config.js'
import { FerryError, errorMessage } from '../common/errors.js'
import type { KafkaAdmin } from '../common/kafka/admin.js'
import type { KafkaClientFactory } from '../common/kafka/port.js'
import { createSourceConsumer, type SourceConsumer } from '../common/kafka/source-consumer.js'
import type { Logger } from '../common/logger.js'
import type { AssignedPartition } from '../common/store.js'
import { partitionKey } from '../common/worker-report.js'
import { createBatchMirror } from './batch-mirror.js'
import type { CheckpointStore } from './checkpoint-store.js'
import { createDeadLetters } from './dead-letter.js'
import { createAtLeastOnce, createExactlyOnce, type Delivery } from './delivery.js'
import { backoffMs, partitionFailureRule, type BackoffBounds } from './failure-policy.js'
import { createIncidentLog } from './incidents.js'
import type { MirrorMetrics } from './mirror-metrics.js'
import { createPartitionBook, type PartitionStatus } from './partition-book.js'
import { createPartitionRetries } from './partition-retries.js'
import { createRateLimiter } from './rate-limiter.js'
import { missingPartitionError, readStarts } from './start-offsets.js'
import { ensureTargetTopics } from './target-topics.js'
import type { TargetProducer } from './target-producer.js'
import type { TransactionalProducer } from './transactional-producer.js'

export { createMirrorMetrics, type MirrorMetrics } from './mirror-metrics.js'
export type { PartitionStatus } from './partition-book.js'
export type { PartitionState } from '../common/worker-report.js'

export type TaskState = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed'

export interface MirrorTaskDeps {
  deployment: string
  worker: string
  group: TopicGroupSpec
  source: ClusterSpec
  target: ClusterSpec
  sourceAdmin: KafkaAdmin
  targetAdmin: KafkaAdmin
  producer: TargetProducer
  checkpoints: CheckpointStore
  logger: Logger
  metrics: MirrorMetrics
  /**
   * Partition counts per topic when the group was first discovered (the controller's baseline);
   * null when unknown. Partitions outside it start from their first offset.
   */
  baseline: () => Promise<Record<string, number> | null>
  /** Opens a transactional producer on the target (exactly-once groups). */
  createTransactional?: (transactionalId: string) => Promise<TransactionalProducer>
  /**
   * At-least-once: how often acknowledged positions are written to the checkpoint topic; default
   * 1000 ms. A crash replays at most about this much; a stop or hand-off writes them at once.
   */
  checkpointIntervalMs?: number
  /** Opens the source consumer; default createSourceConsumer, the kafkajs one (unit tests pass a fake). */
  createConsumer?: KafkaClientFactory['sourceConsumer']
  /** Retry delay bounds for a failed partition or consumer; defaults 1000 and 30000 ms. */
  minRetryMs?: number
  maxRetryMs?: number
}

export interface MirrorTask {
  readonly group: string
  state(): TaskState
  /** Make the task mirror exactly these partitions of its group. Serialised. */
  update(partitions: readonly AssignedPartition[]): Promise<void>
  status(): PartitionStatus[]
  stop(): Promise<void>
}

function sameSet(a: readonly AssignedPartition[], b: readonly AssignedPartition[]): boolean {
  const left = new Set(a.map((p) => partitionKey(p)))
  return left.size === new Set(b.map((p) => partitionKey(p))).size && b.every((p) => left.has(partitionKey(p)))
}

const TASK_INCIDENT = '\u0000task'

function asFerry(error: unknown): FerryError {
  return error instanceof FerryError ? error : new FerryError('INTERNAL', errorMessage(error), { cause: error })
}

export function createMirrorTask(deps: MirrorTaskDeps): MirrorTask {
  const { group, metrics } = deps
  const log = deps.logger.child({ group: group.name })
  const bounds: BackoffBounds = { minMs: deps.minRetryMs ?? 1000, maxMs: deps.maxRetryMs ?? 30000 }
  const book = createPartitionBook(group, metrics)
  /** Failures logged once per incident (per partition, and the task's restarts). */
  const incidents = createIncidentLog({ logger: log })
  const deliveryDeps = { group, producer: deps.producer, checkpoints: deps.checkpoints, log, metrics }
  const delivery: Delivery =
    group.delivery === 'exactly-once'
      ? createExactlyOnce({ ...deliveryDeps, deployment: deps.deployment, createTransactional: deps.createTransactional ?? (() => Promise.reject(new FerryError('INVALID_CONFIG', 'exactly-once needs a transactional producer factory'))) })
      : createAtLeastOnce({ ...deliveryDeps, ...(deps.checkpointIntervalMs === undefined ? {} : { checkpointIntervalMs: deps.checkpointIntervalMs }) })
  const retries = createPartitionRetries({ againMs: bounds.minMs })
  const mirrorBatch = createBatchMirror({
    group,
    targetCluster: deps.target.name,
    delivery,
    deadLetters: createDeadLetters({ group, sourceCluster: deps.source.name, targetAdmin: deps.targetAdmin }),
    book,
    limiter: group.maxBytesPerSec === undefined ? undefined : createRateLimiter(group.maxBytesPerSec),
    metrics,
    log,
    onRecovered: (topic, partition) => {
      retries.recovered(partitionKey({ topic, partition }))
      incidents.recovered(partitionKey({ topic, partition }), { topic, partition })
    },
  })

  let state: TaskState = 'starting'
  let assigned: AssignedPartition[] = []
  /** The newest set passed to update(); `assigned` catches up with it on the chain. */
  let requested: AssignedPartition[] = []
  let consumer: SourceConsumer | undefined
  /** Every change of the consumer runs on this chain, one at a time. */
  let chain: Promise<void> = Promise.resolve()
  /** Counts consumer starts and stops: a timer of an earlier one does nothing. */
  let incarnation = 0
  let restartTimer: NodeJS.Timeout | undefined
  let restartAttempt = 0
  /** Cancels the start under way (its checkpoint read can wait for open transactions). */
  let starting: AbortController | undefined

  const setState = (next: TaskState): void => {
    if (next === state) return
    log.info({ event: 'worker.task_state', from: state, to: next }, `task ${next}`)
    state = next
  }
  const halted = (): boolean => state === 'stopping' || state === 'stopped'

  const markTopicFailed = (topic: string, error: FerryError): void => {
    for (const p of assigned.filter((a) => a.topic === topic)) book.fail(p.topic, p.partition, 'failed', error)
    metrics.errors.inc({ group: group.name, code: error.code })
    log.error({ event: 'worker.topic_failed', topic, code: error.code, err: error.message }, 'cannot mirror topic')
  }

  /** Resumes a paused partition at its position, on the consumer it failed on (true when done or moot). */
  const resume = (topic: string, partition: number, myIncarnation: number): boolean => {
    if (myIncarnation !== incarnation || consumer === undefined) return true
    const position = consumer.positions().get(partitionKey({ topic, partition }))
    return position === undefined || consumer.resumeAt(topic, partition, position)
  }

  const onPartitionError = (topic: string, partition: number, error: unknown): void => {
    const ferry = asFerry(error)
    const key = partitionKey({ topic, partition })
    const attempt = retries.failed(key)
    const rule = partitionFailureRule(ferry.code, delivery.transactional(topic, partition))
    book.fail(topic, partition, rule.state, ferry)
    metrics.errors.inc({ group: group.name, code: ferry.code })
    // A refused record will be refused again unless an operator changes the target: it is
    // tried again only at the slowest pace.
    const delayMs = rule.action === 'restart-task' ? undefined : rule.action === 'stop' ? bounds.maxMs : backoffMs(attempt, bounds)
    const offset = ferry.context.offset === undefined ? {} : { offset: ferry.context.offset }
    incidents.failure(key, { event: rule.event, code: ferry.code, level: rule.level, msg: rule.msg, fields: { topic, partition, ...(delayMs === undefined ? {} : { delayMs }), err: ferry.message, ...offset } })
    if (delayMs === undefined) scheduleRestart(ferry)
    else {
      const myIncarnation = incarnation
      retries.resumeLater(key, delayMs, () => resume(topic, partition, myIncarnation))
    }
  }

  const stopConsumer = async (): Promise<void> => {
    incarnation++
    retries.cancelAll()
    if (restartTimer) clearTimeout(restartTimer)
    restartTimer = undefined
    const current = consumer
    consumer = undefined
    await current?.stop()
    // Every batch has finished: what was acknowledged is checkpointed before anyone takes over.
    await delivery.close()
  }

  const startConsumer = async (): Promise<void> => {
    const myIncarnation = ++incarnation
    if (assigned.length === 0) return
    const abort = new AbortController()
    starting = abort
    try {
      await deps.checkpoints.ensureTopic()
      const topics = await ensureTargetTopics({ group, sourceCluster: deps.source.name, sourceAdmin: deps.sourceAdmin, targetAdmin: deps.targetAdmin, log }, [...new Set(assigned.map((p) => p.topic))].sort())
      for (const [topic, error] of topics.failed) markTopicFailed(topic, error)
      const usable = assigned.filter((p) => topics.usable.has(p.topic))
      await delivery.open(usable)
      const saved = await deps.checkpoints.read(group.name, abort.signal)
      const read = await readStarts({ group, sourceAdmin: deps.sourceAdmin, checkpoints: saved, baseline: deps.baseline, log, onAnomaly: (code) => metrics.errors.inc({ group: group.name, code }) }, usable)
      for (const m of read.missing) markTopicFailed(m.topic, missingPartitionError(m.topic, m.partition, deps.source.name))
      // Record the start of partitions never mirrored, so a move before the first record cannot skip to a later "latest".
      if (read.fresh.length > 0) await deps.checkpoints.write(deps.producer, group.name, read.fresh)
      if (myIncarnation !== incarnation) return
      for (const s of read.starts) book.started(s.topic, s.partition, s.offset, s.mirrored ?? 0)
      if (read.starts.length === 0) return
      const created = (deps.createConsumer ?? createSourceConsumer)(deps.source, {
        clientId: `ferry-${deps.worker}`,
        groupId: `ferry.${deps.deployment}.${deps.worker}.${group.name}.${Date.now().toString(36)}`,
        logger: log,
        onPartitionError,
        onCrash: (error) => scheduleRestart(error),
      })
      consumer = created
      delivery.start()
      await created.start(read.starts, mirrorBatch)
      restartAttempt = 0
      incidents.recovered(TASK_INCIDENT)
      setState('running')
      log.info({ event: 'worker.task_started', partitions: read.starts.length }, 'mirroring')
    } catch (error) {
      // Cancelled by stop() or a new assignment, which take over from here.
      if (!abort.signal.aborted) scheduleRestart(error)
    } finally {
      if (starting === abort) starting = undefined
    }
  }

  const scheduleRestart = (error: unknown): void => {
    // One restart per incident: further failures before it runs would only stretch its backoff.
    if (halted() || restartTimer !== undefined) return
    const ferry = asFerry(error)
    restartAttempt++
    const delayMs = backoffMs(restartAttempt, bounds)
    for (const p of assigned) if (book.of(p.topic, p.partition).state !== 'failed') book.fail(p.topic, p.partition, 'retrying', ferry)
    metrics.errors.inc({ group: group.name, code: ferry.code })
    incidents.failure(TASK_INCIDENT, { event: 'worker.task_restart', code: ferry.code, level: 'error', msg: 'task failed; restarting', fields: { attempt: restartAttempt, delayMs, err: ferry.message } })
    setState('starting')
    restartTimer = setTimeout(() => {
      restartTimer = undefined
      chain = chain.then(async () => {
        if (halted()) return
        await stopConsumer()
        await startConsumer()
      })
    }, delayMs)
  }

  return {
    group: group.name,
    state: () => state,
    update(partitions) {
      const next = [...partitions]
      // A start still reading checkpoints for another set (it may wait on an open transaction,
      // perhaps of a partition this assignment brings here to fence) gives way at once. The
      // same set again (a repeated read of one assignment) leaves it alone: compare with the
      // newest set asked for, not the one applied, or every repeat would cancel its own start.
      if (!sameSet(requested, next)) starting?.abort()
      requested = next
      chain = chain.then(async () => {
        if (halted()) return
        if (sameSet(assigned, next) && consumer !== undefined) return
        await stopConsumer()
        const keep = new Set(next.map((p) => partitionKey(p)))
        book.retain(keep)
        delivery.retain(keep)
        book.retryFailed()
        assigned = next
        log.info({ event: 'worker.assignment_applied', partitions: next.length }, 'assignment changed')
        await startConsumer()
      })
      return chain
    },
    status: () => book.snapshot(),
    async stop() {
      if (state === 'stopped') return
      setState('stopping')
      starting?.abort()
      const done = chain.then(async () => {
        await stopConsumer()
        book.retain(new Set())
        setState('stopped')
      })
      chain = done
      await done
    },
  }
}
