/**
 * One topic group's mirroring on this worker: consumes exactly the partitions the controller
 * assigned, produces each record to the target (key, value, headers, timestamp and, by
 * default, partition kept), then checkpoints the next source offset on the target.
 *
 * A changed assignment touches only what changed: partitions that stay keep flowing on their
 * consumer; removed ones are released (their batch in flight lands, at-least-once writes their
 * checkpoint, exactly-once closes their producer); added ones start on a consumer of their own
 * (a "slice"), from fresh checkpoints after fencing, so a partition that moved here resumes
 * exactly where its previous owner's acknowledged data ends. A task restart (a failure that
 * needs one) and a change that would make more than MAX_SLICES slices start one consumer for
 * everything again.
 *
 * The task sequences its parts, each with one job: target topics (target-topics.ts), where each
 * partition starts (start-offsets.ts), how records and checkpoints reach the target
 * (delivery.ts), one batch's records with refusals and dead letters (batch-mirror.ts,
 * dead-letter.ts), the partitions' statuses (partition-book.ts), what a failure leads to
 * (failure-policy.ts) and which consumer reads what (slices.ts). Its dependencies and interface
 * are in mirror-task-api.ts.
 *
 * @example
 *   const task = createMirrorTask({ group, source, target, producer, checkpoints, ... })
 *   await task.update([{ group: 'g', topic: 'orders', partition: 3 }])
 *   task.status()   // per-partition progress
 *   await task.stop()
 */
import { FerryError, errorMessage } from '../common/errors.js'
import { createSourceConsumer } from '../common/kafka/source-consumer.js'
import type { AssignedPartition } from '../common/store.js'
import { partitionKey } from '../common/worker-report.js'
import { createBatchMirror } from './batch-mirror.js'
import { createDeadLetters } from './dead-letter.js'
import { createDelivery } from './delivery.js'
import { backoffMs, partitionFailureRule, type BackoffBounds } from './failure-policy.js'
import { createIncidentLog } from './incidents.js'
import { createPartitionBook } from './partition-book.js'
import { createOffsetSyncWriter, offsetSyncTopicName, targetEndsAtStart } from './offset-syncs.js'
import { createPartitionRetries } from './partition-retries.js'
import { createProvenance } from './provenance.js'
import { createRateLimiter } from './rate-limiter.js'
import { MAX_SLICES, createSlices, prepareSlice, type SliceDeps } from './slices.js'

export { createMirrorMetrics, type MirrorMetrics } from './mirror-metrics.js'
export type { PartitionStatus } from './partition-book.js'
export { MAX_SLICES } from './slices.js'
export type { PartitionState } from '../common/worker-report.js'

import type { MirrorTask, MirrorTaskDeps, TaskState } from './mirror-task-api.js'
export type { MirrorTask, MirrorTaskDeps, TaskState } from './mirror-task-api.js'

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
  const delivery = createDelivery({ ...deps, group, log, metrics })
  const retries = createPartitionRetries({ againMs: bounds.minMs })
  const syncs = createOffsetSyncWriter({ group, producer: deps.producer, topic: offsetSyncTopicName(deps.deployment), admin: deps.targetAdmin, log })
  const mirrorBatch = createBatchMirror({
    syncs,
    group,
    targetCluster: deps.target.name,
    delivery,
    deadLetters: createDeadLetters({ group, sourceCluster: deps.source.name, targetAdmin: deps.targetAdmin }),
    book,
    limiter: group.maxBytesPerSec === undefined ? undefined : createRateLimiter(group.maxBytesPerSec),
    provenance: group.provenance ? createProvenance({ group: group.name, sourceAdmin: deps.sourceAdmin, targetAdmin: deps.targetAdmin, dropped: metrics.loopDropped }) : undefined,
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
  /** The task's source consumers; none when stopped or between a failure and the restart. */
  const slices = createSlices()
  /** Every change of the consumers runs on this chain, one at a time. */
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

  /** `topic` cannot be mirrored now: its partitions `among` those starting (other slices' mirror on). */
  const markTopicFailed = (topic: string, error: FerryError, among: readonly AssignedPartition[]): void => {
    for (const p of among.filter((a) => a.topic === topic)) book.fail(p.topic, p.partition, 'failed', error)
    metrics.errors.inc({ group: group.name, code: error.code })
    log.error({ event: 'worker.topic_failed', topic, code: error.code, err: error.message }, 'cannot mirror topic')
  }

  /** Resumes a paused partition at its position, on the consumer it failed on (true when done or moot). */
  const resume = (topic: string, partition: number, myIncarnation: number): boolean => {
    const consumer = slices.of(partitionKey({ topic, partition }))
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
    await slices.stopAll()
    // Every batch has finished: what was acknowledged is checkpointed before anyone takes over.
    await delivery.close()
    await syncs.close()
  }

  const sliceDeps = (among: readonly AssignedPartition[]): SliceDeps => ({
    ...deps,
    sourceCluster: deps.source.name,
    delivery,
    log,
    onAnomaly: (code) => metrics.errors.inc({ group: group.name, code }),
    onTopicFailed: (topic, error) => markTopicFailed(topic, error, among),
  })

  /** Consumers made so far: each gets its own private source group. */
  let consumersMade = 0

  /**
   * Starts mirroring `partitions` on a new slice: target topics, fencing (exactly-once), then
   * checkpoints and start offsets. A failure restarts the whole task.
   */
  const startSlice = async (partitions: readonly AssignedPartition[]): Promise<void> => {
    const myIncarnation = incarnation
    if (partitions.length === 0) return
    const abort = new AbortController()
    starting = abort
    try {
      const starts = await prepareSlice(sliceDeps(partitions), partitions, abort.signal)
      if (myIncarnation !== incarnation) return
      const targetEnds = group.preservePartition ? await targetEndsAtStart(deps.targetAdmin, group, starts) : new Map<string, number>()
      if (myIncarnation !== incarnation) return
      for (const s of starts) {
        book.started(s.topic, s.partition, s.offset, s.mirrored ?? 0)
        syncs.begin(s.topic, s.partition, s.offset, targetEnds.get(partitionKey(s)))
      }
      if (starts.length === 0) return
      const created = (deps.createConsumer ?? createSourceConsumer)(deps.source, {
        clientId: `ferry-${deps.worker}`,
        groupId: `ferry.${deps.deployment}.${deps.worker}.${group.name}.${Date.now().toString(36)}.${++consumersMade}`,
        logger: log,
        onPartitionError,
        onCrash: (error) => scheduleRestart(error),
      })
      slices.add(created, starts)
      delivery.start()
      syncs.start()
      await created.start(starts, mirrorBatch)
      restartAttempt = 0
      incidents.recovered(TASK_INCIDENT)
      setState('running')
      log.info({ event: 'worker.task_started', partitions: starts.length, consumers: slices.size }, 'mirroring')
    } catch (error) {
      // Cancelled by stop() or a new assignment, which take over from here.
      if (!abort.signal.aborted) scheduleRestart(error)
    } finally {
      if (starting === abort) starting = undefined
    }
  }

  /** The whole assignment on one new consumer (the first start, and every restart). */
  const startConsumer = async (): Promise<void> => {
    ++incarnation
    await startSlice(assigned)
  }

  /**
   * Applies a new assignment while the task runs: releases what left (the rest keeps flowing) and
   * starts what came, including assigned partitions that no slice reads (a topic that failed to
   * start gets another chance, as on a restart).
   */
  const changeSlices = async (next: readonly AssignedPartition[]): Promise<void> => {
    const keep = new Set(next.map((p) => partitionKey(p)))
    const removed = assigned.filter((p) => !keep.has(partitionKey(p)))
    await slices.release(removed)
    retries.cancel(removed.map((p) => partitionKey(p)))
    // Their last batches have landed: checkpoint them (or close their producers) before anyone takes over.
    await delivery.release(removed)
    await syncs.release(removed)
    book.retain(keep)
    delivery.retain(keep)
    assigned = [...next]
    const unread = assigned.filter((p) => slices.of(partitionKey(p)) === undefined)
    book.retryFailed(new Set(unread.map((p) => partitionKey(p))))
    await startSlice(unread)
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
        if (sameSet(assigned, next) && slices.size > 0) return
        const added = next.filter((p) => slices.of(partitionKey(p)) === undefined).length
        // Incrementally while it runs and no restart is due; otherwise (or to merge many slices) from scratch.
        if (slices.size > 0 && restartTimer === undefined && (added === 0 || slices.size < MAX_SLICES)) {
          const keep = new Set(next.map((p) => partitionKey(p)))
          log.info({ event: 'worker.assignment_applied', partitions: next.length, added, removed: assigned.filter((p) => !keep.has(partitionKey(p))).length }, 'assignment changed')
          await changeSlices(next)
          return
        }
        await stopConsumer()
        const keep = new Set(next.map((p) => partitionKey(p)))
        book.retain(keep)
        delivery.retain(keep)
        book.retryFailed()
        assigned = next
        log.info({ event: 'worker.assignment_applied', partitions: next.length, restarted: true }, 'assignment changed')
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
