/**
 * The worker reads its assignment once per change (real ZooKeeper): resyncs must not pile up
 * watches that all fire, and replay the assignment, on the next change.
 */
import { expect } from 'chai'
import { loadProcessConfig } from '../../common/process-config.js'
import { createPaths } from '../../common/paths.js'
import { connectZk, type Zk } from '../../common/zk.js'
import { startWorker, type Worker } from '../../worker/worker.js'
import { captureLogs } from '../log-capture.js'
import { sharedStack, uniqueName } from './harness.js'

describe('worker assignment watch (real ZooKeeper)', function () {
  this.timeout(60000)
  let zk: Zk | undefined
  let worker: Worker | undefined

  afterEach(async () => {
    await worker?.stop()
    await zk?.close()
    worker = undefined
    zk = undefined
  })

  it('reads the assignment once per change however many resyncs came before', async () => {
    const stack = await sharedStack()
    const deployment = uniqueName('watch')
    const paths = createPaths(deployment)
    zk = await connectZk({ connect: stack.zookeeper.connect, sessionTimeoutMs: 10000, logger: captureLogs().logger })
    await zk.ensurePaths(paths.containers())
    const { logger, lines } = captureLogs('debug')
    const warnings: string[] = []
    const onWarning = (warning: Error): void => void warnings.push(warning.name)
    process.on('warning', onWarning)
    try {
      const config = loadProcessConfig({ id: 'w1', deployment, zookeeper: stack.zookeeper.connect, redis: stack.redis.url }, {})
      // No periodic resync of its own: the test drives them.
      worker = await startWorker(config, logger, { resyncIntervalMs: 3600000, onFatal: () => undefined })
      const assignment = (epoch: number): Buffer => Buffer.from(JSON.stringify({ epoch, leader: 'test', partitions: [] }))
      await zk.create(paths.assignment('w1'), assignment(1))
      const reads = (): Array<Record<string, unknown>> => lines.filter((l) => l.event === 'worker.assignment_read')
      const deadline = async (what: string, condition: () => boolean): Promise<void> => {
        const until = Date.now() + 10000
        while (!condition()) {
          if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
          await new Promise((resolve) => setTimeout(resolve, 20))
        }
      }
      await deadline('the created assignment to be read', () => reads().some((r) => r.epoch === 1))
      // Twenty-five resyncs of an unchanged assignment (a worker makes one every 10 s by default).
      for (let i = 0; i < 25; i++) await worker.sync()
      const before = reads().length
      await zk.setData(paths.assignment('w1'), assignment(2))
      await deadline('the changed assignment to be read', () => reads().some((r) => r.epoch === 2))
      // Let any further watches fire.
      await new Promise((resolve) => setTimeout(resolve, 1000))
      const after = reads().slice(before)
      expect(after.map((r) => r.epoch), 'reads of the assignment after one change').to.deep.equal([2])
      expect(warnings, 'process warnings (MaxListenersExceededWarning)').to.not.include('MaxListenersExceededWarning')
    } finally {
      process.off('warning', onWarning)
    }
  })
})
