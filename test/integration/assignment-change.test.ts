/**
 * An assignment change touches only what changed (issue 15, point 4), with the shipped defaults:
 * two workers mirror an exactly-once group of 12 partitions under a steady load; a third worker
 * joins, takes its share, and is stopped, so the first two lose partitions and get them back.
 * The partitions that never move must keep flowing: their transactional ids are never fenced
 * again (their producer epochs, read with Kafka's Java Admin, do not change, while the moved
 * partitions' grow), and the group, sampled every 200 ms, shows no stall beyond the position
 * reports' cadence (a partition stalls while its position stands still with lag behind it).
 * Nothing may be lost or written twice. A worker that restarted its consumer and re-fenced every
 * partition on each change stalled them all for seconds.
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import type { LocalStack } from '../../deploy/local-stack.js'
import { FerryProcess, http, sharedStack, uniqueName, waitFor } from './harness.js'
import { createSampleProducer, createTopic } from './kafka-helpers.js'
import { leaderUrl, steadyLoad } from './deployment.js'
import { transactionalIdFor } from '../../worker/transactional-producer.js'
import { oracleEpochs } from './oracle.js'
import { figures, sampleEvery, seconds, type Row } from './stalls.js'

const PARTITIONS = 12

describe('assignment changes touch only what changed (real stack, exactly-once, defaults)', function () {
  this.timeout(300000)
  let stack: LocalStack
  let redis: Redis
  const deployment = uniqueName('assign')
  const keys = createKeys(deployment)
  const procs: FerryProcess[] = []
  const topic = uniqueName('assign')
  const startedAt = Date.now() - 3600000
  let load = { stop: async (): Promise<void> => undefined }
  let url = ''

  const start = (id: string, role: 'worker' | 'controller'): FerryProcess => {
    const proc = new FerryProcess(`assign-${id}`, ['bootstrap', '--role', role, '--id', id, '--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, ...(role === 'controller' ? ['--port', '0'] : [])])
    procs.push(proc)
    return proc
  }
  const rows = async (): Promise<Row[]> => ((await http('GET', `${url}/v1/groups/g`)).body?.partitions ?? []) as Row[]
  const allMirroring = (list: readonly Row[]): boolean => list.length === PARTITIONS && list.every((r) => r.state === 'mirroring' && typeof r.position === 'number')

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    redis = new Redis(stack.redis.url, { maxRetriesPerRequest: 2 })
    redis.on('error', () => undefined)
    for (const [id, role] of [['c1', 'controller'], ['w1', 'worker'], ['w2', 'worker']] as const) start(id, role)
    await waitFor('a controller and two workers', async () => (await listInstances(redis, keys)).length === 3, 90000)
    url = await leaderUrl(redis, keys)
    for (const cluster of [{ name: 'src', bootstrapServers: [stack.source.plaintext] }, { name: 'dst', bootstrapServers: [stack.target.plaintext] }]) {
      expect((await http('POST', `${url}/v1/clusters`, cluster)).status).to.equal(201)
    }
    await createTopic(stack.source.plaintext, topic, PARTITIONS)
    const producer = createSampleProducer(stack.source.plaintext, topic, PARTITIONS)
    expect((await http('POST', `${url}/v1/groups`, { name: 'g', sourceCluster: 'src', targetCluster: 'dst', topics: [topic], delivery: 'exactly-once' })).status).to.equal(201)
    // About 300 records/s, over every partition.
    load = steadyLoad(() => producer.send(30), 100)
    await waitFor('every partition mirroring on both workers', async () => {
      const list = await rows()
      return allMirroring(list) && new Set(list.map((r) => r.worker)).size === 2
    }, 90000)
  })

  after(async function () {
    this.timeout(60000)
    await load.stop()
    await Promise.all(procs.map((p) => p.stop(20000)))
    redis?.disconnect()
  })

  it('partitions that stay on their worker keep flowing while others move in and out; nothing lost or written twice', async () => {
    const ids = Array.from({ length: PARTITIONS }, (_, p) => transactionalIdFor(deployment, 'g', topic, p))
    const epochsBefore = await oracleEpochs(stack.target.plaintext, ids)
    expect(epochsBefore.size, 'every partition has a transactional id on the target').to.equal(PARTITIONS)
    const sampler = sampleEvery(200, rows)
    let taken: number[] = []
    try {
      const from = Date.now()
      const third = start('w3', 'worker')
      taken = await waitFor('w3 mirroring its share (4 of 12)', async () => {
        const list = await rows()
        const own = list.filter((r) => r.worker === 'w3')
        return allMirroring(list) && own.length === PARTITIONS / 3 ? own.map((r) => r.partition) : undefined
      }, 60000, 200)
      const tookAt = Date.now()
      await waitFor('3 s of w3 mirroring', () => Date.now() - tookAt >= 3000, 10000, 100)
      expect(await third.stop(20000), 'w3 exit code').to.equal(0)
      await waitFor("w3's partitions mirroring on w1 or w2 for 3 s", async () => {
        const list = await rows()
        return allMirroring(list) && list.every((r) => r.worker === 'w1' || r.worker === 'w2') ? Date.now() : undefined
      }, 60000, 200).then((backAt) => waitFor('3 s later', () => Date.now() - backAt >= 3000, 10000, 100))
      const f = figures(sampler.samples, from, Date.now())
      const staying = [...f.longestByPartition].filter(([p]) => !taken.includes(p))
      const longestStaying = Math.max(...staying.map(([, ms]) => ms))
      const longestMoved = Math.max(...[...f.longestByPartition].filter(([p]) => taken.includes(p)).map(([, ms]) => ms))
      const perPartition = [...f.longestByPartition].sort(([a], [b]) => a - b).map(([p, ms]) => `p${p} ${seconds(ms)} s/${f.handOvers.get(p) ?? 0}`).join(', ')
      process.stderr.write(`      measured: w3 took p${taken.join(', p')}; longest stall of the ${staying.length} partitions that stayed: ${seconds(longestStaying)} s; of the moved ones: ${seconds(longestMoved)} s (stall/hand-overs: ${perPartition})\n`)
      for (const [partition, n] of f.handOvers) expect(n, `hand-overs of p${partition}`).to.equal(taken.includes(partition) ? 2 : 0)
      // Guards (the machine is shared): a consumer restart with re-fencing on every change (the
      // old path) measured 1.2-1.4 s for the partitions that stayed and 3.2-3.4 s for the moved
      // ones here, against 0.8-0.9 s (quiet) and 1.8/2.2 s (loaded) now; issue 15 measured
      // 3-4.5 s with 24 partitions per worker. The epochs below tell the two apart.
      expect(longestStaying, 'longest stall of a partition that stayed (ms)').to.be.below(3000)
      expect(longestMoved, 'longest stall of a moved partition (ms)').to.be.below(5000)
    } finally {
      await sampler.stop()
    }

    const epochsAfter = await oracleEpochs(stack.target.plaintext, ids)
    const changed = ids.map((id, p) => `p${p} ${epochsBefore.get(id)}->${epochsAfter.get(id)}`).join(', ')
    process.stderr.write(`      measured: producer epochs ${changed}\n`)
    for (const [p, id] of ids.entries()) {
      if (taken.includes(p)) expect(epochsAfter.get(id), `epoch of moved p${p} (fenced by w3, then by its owner again)`).to.be.at.least((epochsBefore.get(id) ?? 0) + 2)
      else expect(epochsAfter.get(id), `epoch of p${p}, which stayed: never fenced again`).to.equal(epochsBefore.get(id))
    }

    await load.stop()
    await waitFor('the group caught up', async () => (await http('GET', `${url}/v1/groups/g`)).body?.status?.lag === 0, 120000)
    const audit = (await http('GET', `${url}/v1/groups/g/audit?from=${startedAt}&bucketMs=3600000`)).body as { source: number; missing: number; duplicates: number }
    process.stderr.write(`      audit: source ${audit.source}, missing ${audit.missing}, duplicates ${audit.duplicates}\n`)
    expect(audit.source).to.be.greaterThan(0)
    expect(audit.missing, 'missing').to.equal(0)
    expect(audit.duplicates, 'duplicates (exactly-once)').to.equal(0)
  })
})
