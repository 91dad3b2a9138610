/**
 * The mirror task through the unit harness (test/unit/mirror-harness.ts): what it writes, what it
 * checkpoints, what its status says and what it logs, for the paths that need no broker to reach.
 * The data-path guarantees under failures are in mirror-task-harness.test.ts.
 */
import { expect } from 'chai'
import { FerryError } from '../../common/errors.js'
import { CHECKPOINT_TOPIC, offsetsOf, worldPerTest, type World } from './mirror-harness.js'

const p0 = { group: 'g', topic: 't', partition: 0 }
const unreachable = (): FerryError => new FerryError('KAFKA_UNREACHABLE', 'cluster "target" is unreachable', { retriable: true })
const refuse = (): FerryError => new FerryError('TARGET_REJECTED', 'cluster "target" rejected records: MESSAGE_TOO_LARGE', { retriable: false, context: { kafkaError: 'MESSAGE_TOO_LARGE' } })

describe('mirror task (fake Kafka)', function () {
  this.timeout(10000)
  const current = worldPerTest()
  let world: World
  beforeEach(() => {
    world = current()
  })

  it('does not cancel its own start when the same assignment is applied again', async () => {
    world.source.append('t', 0, 1)
    world.source.append('t', 1, 1)
    world.blockCheckpointReads = true
    const w = world.task('w1')
    void w.task.update([p0])
    await world.until(() => world.checkpointReads.length === 1, 'the first checkpoint read')
    // The worker read the unchanged assignment again (a resync, or a duplicate watch).
    void w.task.update([p0])
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(world.checkpointReads[0]?.aborted, 'the start of the same set was cancelled').to.equal(false)
    void w.task.update([{ group: 'g', topic: 't', partition: 1 }])
    await world.until(() => world.checkpointReads[0]?.aborted === true, 'a different set to cancel the start')
    world.blockCheckpointReads = false
  })

  for (const delivery of ['at-least-once', 'exactly-once'] as const) {
    describe(`a record the target refuses (${delivery})`, () => {
      beforeEach(() => {
        world.source.append('t', 0, 15)
        // Refused as often as it is sent (each bisection step, and each slow retry, sends it again).
        for (let i = 0; i < 50; i++) world.target.faults.push({ when: (rs) => rs.some((r) => String(r.value) === 't-0-12'), error: refuse })
      })

      it('stop: the records before it are written and checkpointed, the partition waits at its offset with an error naming it', async () => {
        const w = world.task('w1', { delivery })
        await w.task.update([p0])
        await world.until(() => w.task.status()[0]?.error?.code === 'TARGET_REJECTED', 'the partition stopped')
        expect(offsetsOf(world.target.values('t'))).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
        expect(w.task.status()[0]?.error?.message).to.include('offset 12').and.include('t[0]')
        expect(w.task.status()[0]).to.include({ state: 'failed', position: 12 })
        await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 12, 'checkpoint 12')
        expect(w.lines.filter((l) => l.event === 'worker.partition_stopped')).to.have.length(1)
      })

      it('dead-letter: every other record is written in order, the refused one goes to the dead-letter topic', async () => {
        const w = world.task('w1', { delivery, onRejectedRecord: 'dead-letter' })
        await w.task.update([p0])
        await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 15, 'checkpoint 15')
        expect(offsetsOf(world.target.values('t'))).to.deep.equal([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14])
        const letters = [...world.target.logs].filter(([key]) => key.includes('dead-letter')).flatMap(([, records]) => records)
        expect(letters).to.have.length(1)
        expect(letters[0]?.value, 'no value: it was too large').to.equal(null)
        expect(letters[0]?.headers?.find((h) => h.key === 'ferry.source.offset')?.value?.toString()).to.equal('12')
        expect(w.task.status()[0]).to.include({ position: 15, deadLettered: 1, recordsMirrored: 14 })
      })
    })
  }

  it('logs a partition failure once per incident, with the count when it recovers', async () => {
    world.source.append('t', 0, 1)
    const w = world.task('w1')
    await w.task.update([p0])
    await world.until(() => w.task.status()[0]?.position === 1, 'the first record mirrored')
    const { options } = w.consumers[0] ?? { options: undefined }
    for (let i = 0; i < 20; i++) options?.onPartitionError?.('t', 0, unreachable())
    expect(w.task.status()[0]?.error?.code).to.equal('KAFKA_UNREACHABLE')
    expect(w.lines.filter((l) => l.event === 'worker.partition_retry')).to.have.length(1)
    world.source.append('t', 0, 1)
    await world.until(() => w.task.status()[0]?.position === 2, 'mirroring again')
    expect(w.task.status()[0]?.error).to.equal(undefined)
    const recovered = w.lines.filter((l) => l.event === 'worker.recovered')
    expect(recovered).to.have.length(1)
    expect(recovered[0]).to.include({ failures: 20, code: 'KAFKA_UNREACHABLE' })
  })

  it('clears the error of a restarted task once it is mirroring again, without new records', async () => {
    world.source.append('t', 0, 1)
    const w = world.task('w1', { delivery: 'exactly-once' })
    await w.task.update([p0])
    await world.until(() => w.task.status()[0]?.position === 1, 'the first record mirrored')
    // A transaction failed (target broker restarted): the task restarts from its checkpoints.
    w.consumers[0]?.options.onPartitionError?.('t', 0, unreachable())
    expect(w.task.status()[0]?.error?.code).to.equal('KAFKA_UNREACHABLE')
    await world.until(() => w.consumers.length === 2, 'the restarted consumer')
    await world.until(() => w.task.state() === 'running', 'the task running again')
    expect(w.task.status()[0]).to.include({ state: 'mirroring' })
    expect(w.task.status()[0]?.error).to.equal(undefined)
  })

  for (const delivery of ['at-least-once', 'exactly-once'] as const) {
    it(`keeps the mirrored count of a partition that moved here, and carries it on in its checkpoints (${delivery})`, async () => {
      world.target.logs.set(`${CHECKPOINT_TOPIC}/0`, [{ topic: CHECKPOINT_TOPIC, key: 'g/t/0', value: JSON.stringify({ offset: 10, mirrored: 500, sourceCluster: 'source', worker: 'w-old', at: '' }) }])
      const w = world.task('w1', { delivery })
      world.source.append('t', 0, 10)
      world.batchSize = 3
      await w.task.update([p0])
      expect(w.task.status()[0]?.recordsMirrored, "the previous owners' count").to.equal(500)
      world.source.append('t', 0, 3)
      await world.until(() => world.target.checkpoints('g').get('t/0')?.offset === 13, 'checkpoint 13')
      expect(w.task.status()[0]?.recordsMirrored).to.equal(503)
      expect(world.target.checkpoints('g').get('t/0')?.mirrored, 'the count in the checkpoint').to.equal(503)
    })
  }
})
