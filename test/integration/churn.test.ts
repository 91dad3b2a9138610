/**
 * Worker churn with the shipped defaults (issue 14, point 8): nothing here sets a lease TTL, a
 * ZooKeeper session or a debounce. Two steady workers mirror an at-least-once group under a
 * steady load while a third worker, three times in a row, joins and is stopped (SIGTERM,
 * graceful) as soon as the leader has seen it. A join shorter than the membership debounce must
 * move nothing, and mirroring must not stall: the test samples the group every 200 ms and
 * measures, per partition, the longest time its position did not advance while the source had
 * records past it. It prints what it measured.
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import type { LocalStack } from '../../deploy/local-stack.js'
import { FerryProcess, http, sharedStack, uniqueName, waitFor } from './harness.js'
import { createSampleProducer, createTopic } from './kafka-helpers.js'
import { leaderUrl, steadyLoad } from './deployment.js'
import { figures, sampleEvery, seconds, type Figures, type Row } from './stalls.js'


describe('worker churn with the default settings (real stack)', function () {
  this.timeout(300000)
  let stack: LocalStack
  let redis: Redis
  const deployment = uniqueName('churn')
  const keys = createKeys(deployment)
  const procs = new Map<string, FerryProcess>()
  const topic = uniqueName('churn')
  const startedAt = Date.now() - 2 * 3600000
  let producer: ReturnType<typeof createSampleProducer>
  let load = { stop: async (): Promise<void> => undefined }
  let url = ''

  const start = (id: string, role: 'worker' | 'controller'): FerryProcess => {
    const args = ['bootstrap', '--role', role, '--id', id, '--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, ...(role === 'controller' ? ['--port', '0'] : [])]
    const proc = new FerryProcess(`churn-${id}`, args)
    procs.set(id, proc)
    return proc
  }
  const instances = () => listInstances(redis, keys)
  const rows = async (): Promise<Row[]> => ((await http('GET', `${url}/v1/groups/g`)).body?.partitions ?? []) as Row[]
  const events = async (): Promise<Array<{ at: string; type: string; worker?: string; moves?: number }>> => (await http('GET', `${url}/v1/events?limit=200`)).body?.events ?? []
  /** Group status every 200 ms until stopped. */
  const startSampler = () => sampleEvery(200, rows)
  const allMirroring = (list: readonly Row[]): boolean => list.length === 6 && list.every((r) => r.state === 'mirroring' && typeof r.position === 'number')

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    redis = new Redis(stack.redis.url, { maxRetriesPerRequest: 2 })
    redis.on('error', () => undefined)
    for (const [id, role] of [['c1', 'controller'], ['w1', 'worker'], ['w2', 'worker']] as const) start(id, role)
    await waitFor('a controller and two workers', async () => (await instances()).length === 3, 90000)
    url = await leaderUrl(redis, keys)
    for (const cluster of [{ name: 'src', bootstrapServers: [stack.source.plaintext] }, { name: 'dst', bootstrapServers: [stack.target.plaintext] }]) {
      expect((await http('POST', `${url}/v1/clusters`, cluster)).status).to.equal(201)
    }
    await createTopic(stack.source.plaintext, topic, 6)
    producer = createSampleProducer(stack.source.plaintext, topic, 6)
    expect((await http('POST', `${url}/v1/groups`, { name: 'g', sourceCluster: 'src', targetCluster: 'dst', topics: [topic] })).status).to.equal(201)
    // About 300 records/s.
    load = steadyLoad(() => producer.send(30), 100)
    await waitFor('every partition mirroring on both workers', async () => {
      const list = await rows()
      return allMirroring(list) && new Set(list.map((r) => r.worker)).size === 2
    }, 90000)
  })

  after(async function () {
    this.timeout(60000)
    await load.stop()
    await Promise.all([...procs.values()].map((p) => p.stop(20000)))
    redis?.disconnect()
  })

  it('a worker joining and leaving within seconds, three times, moves no partition and stalls none for long', async () => {
    const { samples, stop: stopSampling } = startSampler()
    try {
      const initial = await waitFor('every partition mirroring', async () => {
        const list = await rows()
        return allMirroring(list) ? list : undefined
      }, 60000)
      const owners = new Map(initial.map((r) => [r.partition, r.worker]))
      // A quiet window first: the stall a partition shows without churn (the position reports' cadence).
      const quietFrom = Date.now()
      await waitFor('a 6 s quiet window sampled', () => Date.now() - quietFrom >= 6000 && samples.filter((s) => s.at >= quietFrom).length >= 20, 30000, 100)
      const quiet = figures(samples, quietFrom, Date.now())
      process.stderr.write(`      measured: no churn, longest stall ${seconds(quiet.longest)} s over 6 s\n`)

      const cycles: Array<{ from: number; to: number; lifeMs: number; memberMs: number; figures: Figures }> = []
      for (let cycle = 1; cycle <= 3; cycle++) {
        const id = `w3-${cycle}`
        const from = Date.now()
        const third = start(id, 'worker')
        const joined = await waitFor(`the leader to see ${id} join`, async () => (await events()).find((e) => e.type === 'worker_joined' && e.worker === id), 60000, 100)
        // The scenario, not a wait for an outcome: it stays a member 1.5 s past the leader seeing
        // it (about 2 s with its shutdown), shorter than the 3 s debounce.
        await waitFor(`${id} a member for 1.5 s`, () => Date.now() - Date.parse(joined.at) >= 1500, 10000, 50)
        const stoppedAt = Date.now()
        expect(await third.stop(20000), `${id} exit code`).to.equal(0)
        const left = await waitFor(`the leader to see ${id} leave`, async () => (await events()).find((e) => e.type === 'worker_left' && e.worker === id), 30000, 100)
        const memberMs = Date.parse(left.at) - Date.parse(joined.at)
        // Measured on past the debounce after the leave (3 s by default): a move it would cause shows up.
        const leftSeenAt = Date.now()
        const positions = new Map((await rows()).map((r) => [r.partition, r.position ?? 0]))
        await waitFor('5 s after the leave, every partition mirroring past where it was', async () => {
          const list = await rows()
          return Date.now() - leftSeenAt >= 5000 && allMirroring(list) && list.every((r) => (r.position ?? 0) > (positions.get(r.partition) ?? 0))
        }, 60000, 200)
        const to = Date.now()
        cycles.push({ from, to, lifeMs: stoppedAt - from, memberMs, figures: figures(samples, from, to) })
      }
      const moves = (await events()).filter((e) => e.type === 'rebalance' && Date.parse(e.at) >= (cycles[0]?.from ?? 0) - 1000)

      let total = 0
      for (const [i, c] of cycles.entries()) {
        total += c.figures.longest
        const perPartition = [...c.figures.longestByPartition].sort(([a], [b]) => a - b).map(([p, ms]) => `p${p} ${seconds(ms)}`).join(', ')
        const handOvers = [...c.figures.handOvers.values()].reduce((a, b) => a + b, 0)
        process.stderr.write(`      cycle ${i + 1}: third worker started then stopped after ${seconds(c.lifeMs)} s (a member for ${seconds(c.memberMs)} s as the leader saw it); longest stall ${seconds(c.figures.longest)} s (${perPartition}); hand-overs ${handOvers}\n`)
      }
      process.stderr.write(`      measured: longest stalls summed over the three cycles ${seconds(total)} s; rebalance events during the churn: ${moves.length}\n`)

      // Each join was shorter than the debounce (3 s), so no partition needed to move: none did.
      for (const c of cycles) expect(c.memberMs, 'a member for less than the debounce').to.be.below(3000)
      for (const c of cycles) expect([...c.figures.handOvers.values()].every((n) => n === 0), 'hand-overs in a cycle').to.equal(true)
      expect(moves.map((e) => e.moves), 'rebalances during the churn').to.deep.equal([])
      const final = await rows()
      expect(new Map(final.map((r) => [r.partition, r.worker])), 'the assignment after the churn').to.deep.equal(owners)
      // Goal: churn costs no more than the position reports' cadence; issue 14 measured 27 s.
      for (const c of cycles) expect(c.figures.longest, 'longest stall in a cycle (ms)').to.be.below(5000)
    } finally {
      await stopSampling()
    }
  })

  it('a worker staying past the debounce, then stopped: each partition it took is handed over twice (in and out), the others not at all', async () => {
    const { samples, stop: stopSampling } = startSampler()
    try {
      await waitFor('every partition mirroring', async () => allMirroring(await rows()), 60000)
      const from = Date.now()
      const third = start('w4', 'worker')
      const taken = await waitFor('w4 mirroring its share (2 of 6)', async () => {
        const list = await rows()
        const own = list.filter((r) => r.worker === 'w4')
        return allMirroring(list) && own.length === 2 ? own.map((r) => r.partition) : undefined
      }, 60000, 200)
      const tookAt = Date.now()
      expect(await third.stop(20000), 'w4 exit code').to.equal(0)
      const stoppedAt = Date.now()
      await waitFor("w4's partitions mirroring on w1 or w2", async () => {
        const list = await rows()
        return allMirroring(list) && list.every((r) => r.worker === 'w1' || r.worker === 'w2')
      }, 60000, 200)
      const backAt = Date.now()
      const positions = new Map((await rows()).map((r) => [r.partition, r.position ?? 0]))
      await waitFor('5 s later, every partition mirroring past where it was', async () => {
        const list = await rows()
        return Date.now() - backAt >= 5000 && allMirroring(list) && list.every((r) => (r.position ?? 0) > (positions.get(r.partition) ?? 0))
      }, 60000, 200)
      const f = figures(samples, from, Date.now())
      const perPartition = [...f.longestByPartition].sort(([a], [b]) => a - b).map(([p, ms]) => `p${p} ${seconds(ms)} s/${f.handOvers.get(p) ?? 0}`).join(', ')
      process.stderr.write(`      measured: w4 took p${taken.join(', p')} after ${seconds(tookAt - from)} s; stopped; they mirror on w1/w2 ${seconds(backAt - stoppedAt)} s after the stop; longest stall ${seconds(f.longest)} s (per partition stall/hand-overs: ${perPartition})\n`)
      // Partitions that never moved: their workers' assignments changed twice around them.
      const staying = Math.max(...[...f.longestByPartition].filter(([p]) => !taken.includes(p)).map(([, ms]) => ms))
      process.stderr.write(`      measured: longest stall of the partitions that stayed on w1/w2: ${seconds(staying)} s\n`)
      for (const [partition, n] of f.handOvers) expect(n, `hand-overs of p${partition}`).to.equal(taken.includes(partition) ? 2 : 0)
      // Goal: a graceful hand-over costs about the position reports' cadence plus a task start.
      expect(f.longest, 'longest stall (ms)').to.be.below(5000)
      // Issue 15, point 4: an assignment change touches only what changed; the others flow on.
      // A guard only: with 3 at-least-once partitions per worker the old path (a consumer restart
      // per change) measured 1.0 s here; test/integration/assignment-change.test.ts tells them apart.
      expect(staying, 'longest stall of a partition that stayed (ms)').to.be.below(2500)
    } finally {
      await stopSampling()
    }
  })

  it('nothing is lost over the churn (audit)', async () => {
    await load.stop()
    await waitFor('the group caught up', async () => (await http('GET', `${url}/v1/groups/g`)).body?.status?.lag === 0, 120000)
    const audit = (await http('GET', `${url}/v1/groups/g/audit?from=${startedAt}&bucketMs=600000`)).body as { source: number; missing: number; duplicates: number }
    process.stderr.write(`      audit g: source ${audit.source}, missing ${audit.missing}, duplicates ${audit.duplicates}\n`)
    expect(audit.source).to.be.greaterThan(0)
    expect(audit.missing, 'missing').to.equal(0)
  })
})
