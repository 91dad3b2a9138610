/**
 * worker/worker-metrics.ts without servers: lag is the last high watermark minus the mirrored
 * position and disappears with the partition's position series; checkpoint age follows the
 * clock from the last checkpoint write; records and bytes in count fetched batches; wrapped
 * producers time their sends and pass other methods through.
 */
import { expect } from 'chai'
import { Registry } from 'prom-client'
import { createMirrorMetrics } from '../../worker/mirror-task.js'
import { createWorkerMetrics } from '../../worker/worker-metrics.js'
import type { CheckpointStore } from '../../worker/checkpoint-store.js'
import type { SourceBatch } from '../../common/kafka/source-consumer.js'
import type { TargetProducer, TargetRecord } from '../../worker/target-producer.js'

function batch(topic: string, partition: number, highWatermark: number, offsets: number[]): SourceBatch {
  return { topic, partition, highWatermark, records: offsets.map((offset) => ({ offset, key: null, value: Buffer.from('v'), headers: {}, timestamp: '0' })) } as unknown as SourceBatch
}

async function sample(registry: Registry, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const metric = registry.getSingleMetric(name)
  if (metric === undefined) throw new Error(`${name} not registered`)
  const { values } = await metric.get()
  return values.find((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want) && !('le' in v.labels))?.value
}

describe('worker metrics', () => {
  it('reports lag per partition from the high watermark and the position, and drops moved partitions', async () => {
    const registry = new Registry()
    const mirror = createMirrorMetrics(registry)
    const wm = createWorkerMetrics(registry, mirror)
    wm.mirror.fetched?.('g', batch('t', 0, 100, [40, 41, 42]), 3)
    wm.mirror.fetched?.('g', batch('t', 1, 10, [9]), 1)
    mirror.position.set({ group: 'g', topic: 't', partition: '0' }, 43)
    mirror.position.set({ group: 'g', topic: 't', partition: '1' }, 10)
    expect(await sample(registry, 'ferry_worker_partition_lag_records', { partition: '0' })).to.equal(57)
    expect(await sample(registry, 'ferry_worker_partition_lag_records', { partition: '1' })).to.equal(0)
    expect(await sample(registry, 'ferry_worker_consumed_records_total', { group: 'g' })).to.equal(4)
    expect(await sample(registry, 'ferry_worker_consumed_bytes_total', { group: 'g' })).to.equal(4)
    mirror.position.remove({ group: 'g', topic: 't', partition: '0' })
    expect(await sample(registry, 'ferry_worker_partition_lag_records', { partition: '0' })).to.equal(undefined)
    expect(await sample(registry, 'ferry_worker_partition_lag_records', { partition: '1' })).to.equal(0)
  })

  it('ages checkpoints with the clock, for groups still mirrored here', async () => {
    let now = 1_000_000
    const registry = new Registry()
    const mirror = createMirrorMetrics(registry)
    const wm = createWorkerMetrics(registry, mirror, () => now)
    const writes: string[] = []
    const store = { topic: '_ferry.d.checkpoints', write: async (_p: TargetProducer, group: string) => { writes.push(group) } } as unknown as CheckpointStore
    const wrapped = wm.checkpoints('g', store)
    expect(wrapped.topic).to.equal('_ferry.d.checkpoints')
    mirror.position.set({ group: 'g', topic: 't', partition: '0' }, 1)
    expect(await sample(registry, 'ferry_worker_checkpoint_age_seconds', { group: 'g' })).to.equal(undefined)
    await wrapped.write({} as TargetProducer, 'g', [])
    expect(writes).to.deep.equal(['g'])
    now += 2500
    expect(await sample(registry, 'ferry_worker_checkpoint_age_seconds', { group: 'g' })).to.equal(2.5)
    mirror.position.remove({ group: 'g', topic: 't', partition: '0' })
    expect(await sample(registry, 'ferry_worker_checkpoint_age_seconds', { group: 'g' })).to.equal(undefined)
  })

  it('times produce requests (failed ones are not counted) and passes other methods through', async () => {
    const registry = new Registry()
    const wm = createWorkerMetrics(registry, createMirrorMetrics(registry))
    let closed = false
    let fail = false
    const producer = wm.producer('g', {
      send: async (_records: readonly TargetRecord[]) => {
        if (fail) throw new Error('refused')
      },
      acknowledgedEnd: () => undefined,
      close: async () => {
        closed = true
      },
    })
    await producer.send([])
    await producer.send([])
    fail = true
    let error: unknown
    await producer.send([]).catch((e: unknown) => (error = e))
    expect(error).to.be.instanceOf(Error)
    await producer.close()
    expect(closed).to.equal(true)
    const text = await registry.metrics()
    expect(text).to.match(/^ferry_worker_produce_latency_seconds_count\{group="g"\} 2$/m)
  })
})
