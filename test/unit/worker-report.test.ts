/**
 * The worker report schema (common/worker-report.ts), the start-offset rules
 * (worker/start-offsets.ts) and the failure table (worker/failure-policy.ts): plain functions
 * over plain data.
 */
import { expect } from 'chai'
import { parseInstanceMetrics, parseWorkerReport, partitionKey } from '../../common/worker-report.js'
import { backoffMs, partitionFailureRule } from '../../worker/failure-policy.js'
import { inBaseline, resolveStart } from '../../worker/start-offsets.js'
import { createWorld } from './mirror-harness.js'

describe('worker report', () => {
  it('a mirror task status survives the trip worker → bootstrap → Redis → controller unchanged', async () => {
    const world = createWorld()
    try {
      world.source.append('t', 0, 12)
      const w = world.task('w1')
      await w.task.update([{ group: 'g', topic: 't', partition: 0 }])
      await world.until(() => w.task.status()[0]?.position === 12, 'position 12')
      const report = { id: 'w1', assignmentEpoch: 3, partitions: w.task.status() }
      const sent = JSON.parse(JSON.stringify(report)) as unknown
      expect(parseWorkerReport(sent)).to.deep.equal(report)
      const stored = JSON.parse(JSON.stringify({ childPid: 7, restarts: 0, state: 'running', ...report })) as unknown
      expect(parseInstanceMetrics(stored)?.partitions).to.deep.equal(report.partitions)
    } finally {
      await world.close()
    }
  })

  it('drops a partition entry that is not one and keeps the others; counters an older worker lacks are zero', () => {
    const metrics = parseInstanceMetrics({
      restarts: 2,
      partitions: [{ topic: 't', partition: 0 }, { group: 'g', topic: 't', partition: 1, targetTopic: 't', state: 'mirroring', position: 5 }, 'junk'],
    })
    expect(metrics?.partitions).to.deep.equal([{ group: 'g', topic: 't', partition: 1, targetTopic: 't', state: 'mirroring', position: 5, recordsMirrored: 0, deadLettered: 0, latencyCounts: [], latencyMaxMs: 0, bytesPerSec: 0, recordsPerSec: 0 }])
    expect(metrics?.restarts).to.equal(2)
  })

  it('keeps bootstrap fields it does not know (shown as reported), and is null for what is not an object', () => {
    expect(parseInstanceMetrics({ childPid: null, somethingNew: 1 })).to.deep.include({ childPid: null, somethingNew: 1 })
    expect(parseInstanceMetrics(null)).to.equal(null)
    expect(parseInstanceMetrics('x')).to.equal(null)
    expect(parseWorkerReport({ id: 'w1', partitions: [] }), 'no assignmentEpoch').to.equal(null)
  })

  it('one partition key: topic/partition in a group, group/topic/partition across groups; a group field alone changes nothing', () => {
    expect(partitionKey({ topic: 'orders', partition: 3 })).to.equal('orders/3')
    expect(partitionKey({ topic: 'orders', partition: 3 }, 'g')).to.equal('g/orders/3')
    expect(partitionKey({ group: 'g', topic: 'orders', partition: 3 } as { topic: string; partition: number })).to.equal('orders/3')
  })
})

describe('start offsets', () => {
  const range = { low: 10, stable: 90, high: 100 }
  const table: Array<[string, Parameters<typeof resolveStart>[0], ReturnType<typeof resolveStart>]> = [
    ['checkpoint inside the log', { checkpoint: { offset: 50 }, range, startPosition: 'latest', inBaseline: true }, { offset: 50, rule: 'checkpoint' }],
    ['checkpoint at the end', { checkpoint: { offset: 100 }, range, startPosition: 'earliest', inBaseline: true }, { offset: 100, rule: 'checkpoint' }],
    ['checkpoint before the log start (retention)', { checkpoint: { offset: 5 }, range, startPosition: 'latest', inBaseline: true }, { offset: 10, rule: 'retention_gap' }],
    ['checkpoint past the end (topic recreated)', { checkpoint: { offset: 101 }, range, startPosition: 'latest', inBaseline: true }, { offset: 10, rule: 'checkpoint_ahead' }],
    ['no checkpoint, earliest', { range, startPosition: 'earliest', inBaseline: true }, { offset: 10, rule: 'fresh' }],
    ['no checkpoint, latest: the last stable offset, not the high watermark', { range, startPosition: 'latest', inBaseline: true }, { offset: 90, rule: 'fresh' }],
    ['no checkpoint, latest, a partition added after the group began', { range, startPosition: 'latest', inBaseline: false }, { offset: 10, rule: 'fresh' }],
  ]
  for (const [name, input, expected] of table) it(name, () => expect(resolveStart(input)).to.deep.equal(expected))

  it('the baseline: unknown counts every partition in; partitions and topics added later are out', () => {
    expect(inBaseline(null, 't', 7)).to.equal(true)
    expect(inBaseline({ t: 4 }, 't', 3)).to.equal(true)
    expect(inBaseline({ t: 4 }, 't', 4)).to.equal(false)
    expect(inBaseline({ t: 4 }, 'other', 0)).to.equal(false)
    expect(inBaseline({ t: 4 }, 'constructor', 0), 'no prototype keys').to.equal(false)
  })
})

describe('failure policy', () => {
  it('maps each failure to retry, stop or restart-task', () => {
    const action = (code: string, transactional: boolean): string => partitionFailureRule(code, transactional).action
    expect(action('KAFKA_UNREACHABLE', false)).to.equal('retry')
    expect(action('KAFKA_UNREACHABLE', true)).to.equal('restart-task')
    expect(action('TARGET_REJECTED', false)).to.equal('stop')
    expect(action('TARGET_REJECTED', true)).to.equal('stop')
    expect(action('FENCED', true)).to.equal('restart-task')
    expect(partitionFailureRule('FENCED', true).state).to.equal('failed')
  })

  it('backs off exponentially with jitter, within its bounds', () => {
    const bounds = { minMs: 100, maxMs: 1000 }
    expect(backoffMs(1, bounds, () => 0)).to.equal(100)
    expect(backoffMs(1, bounds, () => 1)).to.equal(200)
    expect(backoffMs(3, bounds, () => 1)).to.equal(800)
    expect(backoffMs(30, bounds, () => 1)).to.equal(1000)
    expect(backoffMs(30, bounds, () => 0)).to.equal(500)
  })
})
