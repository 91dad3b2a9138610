/**
 * The mirror task's data-path rules, driven through the unit harness (test/unit/mirror-harness.ts):
 * a fake source consumer and a fake target with checkpoints, transactions and fencing, so a
 * restart, a fence, a stop or a move in the middle of a batch is checked in milliseconds.
 */
import { expect } from 'chai'
import { FerryError } from '../../common/errors.js'
import { MAX_SLICES } from '../../worker/mirror-task.js'
import type { TargetRecord } from '../../worker/target-producer.js'
import { CHECKPOINT_TOPIC, offsetsOf, worldPerTest, type World } from './mirror-harness.js'

const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i)
const unreachable = (): FerryError => new FerryError('KAFKA_UNREACHABLE', 'cluster "target" is unreachable', { retriable: true })
const p0 = { group: 'g', topic: 't', partition: 0 }
const p1 = { group: 'g', topic: 't', partition: 1 }
const p2 = { group: 'g', topic: 't', partition: 2 }

describe('mirror task (unit harness)', function () {
  this.timeout(10000)
  const current = worldPerTest()
  let world: World
  beforeEach(() => {
    world = current()
  })

  for (const delivery of ['at-least-once', 'exactly-once'] as const) {
    describe(delivery, () => {
      it('mirrors every record in order with key, ordered headers (null values kept) and partition, and checkpoints the end', async () => {
        world.source.append('t', 0, 35)
        const w = world.task('w1', { delivery })
        await w.task.update([p0])
        await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 35, 'checkpoint 35')
        expect(offsetsOf(world.target.values('t'))).to.deep.equal(range(0, 35))
        const first = world.target.records('t')[0]
        expect(first?.partition).to.equal(0)
        expect(String(first?.key)).to.equal('k0')
        expect(first?.headers?.map((h) => [h.key, h.value === null ? null : String(h.value)])).to.deep.equal([['h', null], ['h', '2']])
        expect(world.target.checkpoints('g').get('t/0')?.mirrored).to.equal(35)
        expect(w.task.status()[0]).to.include({ position: 35, recordsMirrored: 35, targetEnd: 35, state: 'mirroring' })
      })

      it('stop in the middle of a batch: the batch finishes and is checkpointed before stop() returns; the next owner goes on without a gap or a duplicate', async () => {
        world.source.append('t', 0, 30)
        const w1 = world.task('w1', { delivery })
        const release = world.target.hold()
        await w1.task.update([p0])
        await world.until(() => world.target.held > 0, 'a batch in flight')
        const stopped = w1.task.stop()
        release()
        await stopped
        const written = world.target.values('t').length
        expect(written, 'the batch in flight was written').to.be.greaterThan(0)
        expect(world.target.checkpoints('g').get('t/0')?.offset, 'checkpoint at what was written').to.equal(written)
        const w2 = world.task('w2', { delivery })
        await w2.task.update([p0])
        await world.until(() => world.target.values('t').length >= 30, 'the rest mirrored by the next owner')
        await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 30, 'checkpoint 30')
        expect(offsetsOf(world.target.values('t'))).to.deep.equal(range(0, 30))
        expect(w2.task.status()[0]?.recordsMirrored, 'the count carried on').to.equal(30)
      })

      it('a partition moved away mid-flight: its batch lands and is checkpointed before the update returns, its status goes, the others keep going', async () => {
        world.source.append('t', 0, 30)
        world.source.append('t', 1, 30)
        const w1 = world.task('w1', { delivery })
        await w1.task.update([p0, p1])
        await world.until(() => world.target.values('t', 0).length >= 10, 'some of partition 0 mirrored')
        const release = world.target.hold()
        await world.until(() => world.target.held > 0, 'a batch in flight')
        const moved = w1.task.update([p1])
        release()
        await moved
        const written = world.target.values('t', 0).length
        expect(world.target.checkpoints('g').get('t/0')?.offset).to.equal(written)
        expect(w1.task.status().map((s) => s.partition)).to.deep.equal([1])
        const w2 = world.task('w2', { delivery })
        await w2.task.update([p0])
        world.source.append('t', 1, 5)
        await world.until(() => world.target.values('t', 0).length >= 30 && world.target.values('t', 1).length >= 35, 'both partitions mirrored')
        await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 30, 'checkpoint of the moved partition')
        expect(offsetsOf(world.target.values('t', 0))).to.deep.equal(range(0, 30))
        expect(offsetsOf(world.target.values('t', 1))).to.deep.equal(range(0, 35))
      })

      it('a partition moved away is released on the running consumer: the others keep flowing, never stopped or re-fenced', async () => {
        for (const p of [0, 1, 2]) world.source.append('t', p, 30)
        const w1 = world.task('w1', { delivery })
        await w1.task.update([p0, p1, p2])
        await world.until(() => [0, 1, 2].every((p) => world.target.checkpoints('g').get(`t/${p}`)?.offset === 30), 'all three mirrored')
        const fenced = [...w1.transactionalIds]
        const release = world.target.hold()
        world.source.append('t', 0, 5)
        await world.until(() => world.target.held > 0, 'a batch of partition 0 in flight')
        const moved = w1.task.update([p1, p2])
        release()
        await moved
        expect(w1.consumers, 'no consumer started or stopped').to.have.length(1)
        expect(w1.consumers[0]?.stopped).to.equal(false)
        expect(w1.consumers[0]?.reading()).to.deep.equal(['t/1', 't/2'])
        expect(w1.transactionalIds, 'nothing fenced again').to.deep.equal(fenced)
        // The batch in flight landed and is checkpointed for the next owner.
        expect(world.target.checkpoints('g').get('t/0')?.offset).to.equal(world.target.values('t', 0).length)
        expect(w1.task.status().map((s) => s.partition)).to.deep.equal([1, 2])
        world.source.append('t', 1, 7)
        world.source.append('t', 2, 7)
        await world.until(() => world.target.checkpoints('g').get('t/1')?.offset === 37 && world.target.checkpoints('g').get('t/2')?.offset === 37, 'the staying partitions go on')
        expect(offsetsOf(world.target.values('t', 1))).to.deep.equal(range(0, 37))
        expect(offsetsOf(world.target.values('t', 2))).to.deep.equal(range(0, 37))
      })

      it('an added partition starts on a consumer of its own; the running one goes on, and only the added partition is fenced', async () => {
        world.source.append('t', 0, 30)
        world.source.append('t', 1, 30)
        // A previous owner of partition 1 got to offset 12.
        world.target.logs.set(`${CHECKPOINT_TOPIC}/0`, [{ topic: CHECKPOINT_TOPIC, key: 'g/t/1', value: JSON.stringify({ offset: 12, mirrored: 12, sourceCluster: 'source', worker: 'old', at: '' }) }])
        const w1 = world.task('w1', { delivery })
        await w1.task.update([p0])
        await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 30, 'partition 0 mirrored')
        await w1.task.update([p0, p1])
        world.source.append('t', 0, 5)
        await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 35 && world.target.checkpoints('g').get('t/1')?.offset === 30, 'both mirrored')
        expect(w1.consumers).to.have.length(2)
        expect(w1.consumers[0]?.stopped, 'the running consumer was not stopped').to.equal(false)
        expect(w1.consumers[0]?.reading()).to.deep.equal(['t/0'])
        expect(w1.consumers[1]?.reading()).to.deep.equal(['t/1'])
        if (delivery === 'exactly-once') expect(w1.transactionalIds).to.deep.equal(['ferry.d.g.t.0', 'ferry.d.g.t.1'])
        expect(offsetsOf(world.target.values('t', 0))).to.deep.equal(range(0, 35))
        expect(offsetsOf(world.target.values('t', 1)), 'from the previous owner\'s checkpoint').to.deep.equal(range(12, 30))
      })

      it(`more than ${MAX_SLICES} consumers: the change restarts the task on one consumer, with nothing lost or written twice`, async () => {
        const partitions = range(0, MAX_SLICES + 1).map((partition) => ({ group: 'g', topic: 't', partition }))
        for (const p of partitions) world.source.append('t', p.partition, 20)
        const w1 = world.task('w1', { delivery })
        for (let n = 1; n <= MAX_SLICES; n++) {
          await w1.task.update(partitions.slice(0, n))
          await world.until(() => world.target.checkpoints('g').get(`t/${n - 1}`)?.offset === 20, `partition ${n - 1} mirrored`)
        }
        expect(w1.consumers.filter((c) => !c.stopped)).to.have.length(MAX_SLICES)
        await w1.task.update(partitions)
        const running = w1.consumers.filter((c) => !c.stopped)
        expect(running).to.have.length(1)
        expect(running[0]?.reading()).to.deep.equal(partitions.map((p) => `t/${p.partition}`))
        for (const p of partitions) world.source.append('t', p.partition, 3)
        await world.until(() => partitions.every((p) => world.target.checkpoints('g').get(`t/${p.partition}`)?.offset === 23), 'every partition mirrored')
        for (const p of partitions) expect(offsetsOf(world.target.values('t', p.partition))).to.deep.equal(range(0, 23))
      })

      it('a partition moved away and back resumes from its checkpoint on a new consumer, without a gap or a duplicate', async () => {
        world.source.append('t', 0, 20)
        world.source.append('t', 1, 20)
        const w1 = world.task('w1', { delivery })
        await w1.task.update([p0, p1])
        await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 20, 'partition 0 mirrored')
        await w1.task.update([p1])
        world.source.append('t', 0, 10)
        await w1.task.update([p0, p1])
        await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 30, 'partition 0 mirrored again')
        expect(offsetsOf(world.target.values('t', 0))).to.deep.equal(range(0, 30))
        expect(w1.consumers[0]?.stopped).to.equal(false)
        expect(w1.consumers.at(-1)?.reading()).to.deep.equal(['t/0'])
      })

      it('a checkpoint ahead of the source end (topic recreated): mirrors the partition from its start, and says so', async () => {
        world.target.logs.set(`${CHECKPOINT_TOPIC}/0`, [{ topic: CHECKPOINT_TOPIC, key: 'g/t/0', value: JSON.stringify({ offset: 500, mirrored: 500, sourceCluster: 'source', worker: 'old', at: '' }) }])
        world.source.append('t', 0, 20)
        const w = world.task('w1', { delivery })
        await w.task.update([p0])
        await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 20, 'checkpoint 20')
        expect(offsetsOf(world.target.values('t'))).to.deep.equal(range(0, 20))
        expect(w.lines.filter((l) => l.event === 'worker.checkpoint_ahead')).to.have.length(1)
      })

      it('a checkpoint behind the source log start (retention): resumes at the log start, and says so', async () => {
        world.target.logs.set(`${CHECKPOINT_TOPIC}/0`, [{ topic: CHECKPOINT_TOPIC, key: 'g/t/0', value: JSON.stringify({ offset: 5, mirrored: 5, sourceCluster: 'source', worker: 'old', at: '' }) }])
        world.source.append('t', 0, 20)
        world.source.lowOffsets.set('t/0', 12)
        const w = world.task('w1', { delivery })
        await w.task.update([p0])
        await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 20, 'checkpoint 20')
        expect(offsetsOf(world.target.values('t'))).to.deep.equal(range(12, 20))
        expect(w.lines.filter((l) => l.event === 'worker.retention_gap')).to.have.length(1)
      })
    })
  }

  it('at-least-once: a failed send is retried from the partition position; nothing is lost and the error clears', async () => {
    world.source.append('t', 0, 40)
    world.target.faults.push({ when: (rs) => rs.some((r) => String(r.value) === 't-0-20'), error: unreachable })
    const w = world.task('w1')
    await w.task.update([p0])
    await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 40, 'checkpoint 40')
    expect(offsetsOf(world.target.values('t'))).to.deep.equal(range(0, 40))
    expect(w.consumers, 'a partition retry, not a task restart').to.have.length(1)
    expect(w.lines.filter((l) => l.event === 'worker.partition_retry')).to.have.length(1)
    expect(w.task.status()[0]).to.include({ state: 'mirroring' })
    expect(w.task.status()[0]?.error).to.equal(undefined)
  })

  it('at-least-once: a hand-off checkpoint that failed to write is not written later, over the new owner\'s newer one', async () => {
    world.source.append('t', 0, 20)
    world.source.append('t', 1, 20)
    const w1 = world.task('w1')
    await w1.task.update([p0, p1])
    await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 20 && world.target.checkpoints('g').get('t/1')?.offset === 20, 'both checkpointed')
    // The old owner cannot write partition 0's checkpoint for a while, the hand-off's included.
    const oldOwnersCheckpointOf0 = (rs: readonly TargetRecord[]): boolean => rs.every((r) => r.topic === CHECKPOINT_TOPIC) && rs.some((r) => String(r.key) === 'g/t/0' && String(r.value).includes('"worker":"w1"'))
    for (let i = 0; i < 1000; i++) world.target.faults.push({ when: oldOwnersCheckpointOf0, error: unreachable })
    world.source.append('t', 0, 5)
    await world.until(() => w1.task.status().find((s) => s.partition === 0)?.position === 25, 'partition 0 at 25 on the old owner')
    await w1.task.update([p1])
    const w2 = world.task('w2')
    await w2.task.update([p0])
    world.source.append('t', 0, 15)
    await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 40, 'the new owner checkpointed 40')
    world.target.faults.length = 0
    // The old owner flushes again (partition 1 moves on): nothing of partition 0 may come with it.
    world.source.append('t', 1, 5)
    await world.until(() => world.target.checkpoints('g').get('t/1')?.offset === 25, 'partition 1 checkpointed again')
    expect(world.target.checkpoints('g').get('t/0')?.offset, 'the checkpoint of the partition that moved away').to.equal(40)
    expect(new Set(offsetsOf(world.target.values('t', 0)))).to.deep.equal(new Set(range(0, 40)))
  })

  it('exactly-once: a failed transaction restarts the task from the committed checkpoints; no record twice, none lost, the error clears', async () => {
    world.source.append('t', 0, 40)
    world.target.faults.push({ when: (rs) => rs.some((r) => String(r.value) === 't-0-20'), error: unreachable })
    const w = world.task('w1', { delivery: 'exactly-once' })
    await w.task.update([p0])
    await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 40, 'checkpoint 40')
    expect(offsetsOf(world.target.values('t'))).to.deep.equal(range(0, 40))
    expect(w.consumers, 'the task restarted').to.have.length(2)
    expect(w.lines.filter((l) => l.event === 'worker.transaction_failed')).to.have.length(1)
    await world.until(() => w.task.state() === 'running', 'the task running again')
    expect(w.task.status()[0]).to.include({ state: 'mirroring', recordsMirrored: 40 })
    expect(w.task.status()[0]?.error).to.equal(undefined)
  })

  it('exactly-once: a producer fenced by a newer owner stops writing; the new owner goes on with no record twice', async () => {
    world.source.append('t', 0, 30)
    const w1 = world.task('w1', { delivery: 'exactly-once' })
    await w1.task.update([p0])
    await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 30, 'checkpoint 30 by the first owner')
    const w2 = world.task('w2', { delivery: 'exactly-once' })
    await w2.task.update([p0])
    world.source.append('t', 0, 20)
    await world.until(() => w1.lines.some((l) => l.event === 'worker.partition_fenced'), 'the old owner fenced')
    await w1.task.update([])
    await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 50, 'checkpoint 50')
    await world.until(() => w2.task.state() === 'running' && w2.task.status()[0]?.state === 'mirroring', 'the new owner mirroring')
    expect(offsetsOf(world.target.values('t'))).to.deep.equal(range(0, 50))
    expect(w1.transactionalIds).to.include('ferry.d.g.t.0')
  })
})
