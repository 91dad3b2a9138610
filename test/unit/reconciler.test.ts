import { expect } from 'chai'
import { Registry } from 'prom-client'
import { parseCluster, parseTopicGroup } from '../../common/config.js'
import { silentLogger } from '../../common/logger.js'
import { createPaths } from '../../common/paths.js'
import { createStore, type GroupStatusRecord, type Store } from '../../common/store.js'
import type { EventLog, NewEvent } from '../../controller/events.js'
import type { ReportedPartition } from './fakes/fake-registry.js'
import { createReconciler, type Reconciler, type ReconcilerOptions } from '../../controller/reconciler.js'
import { createFakeElection, type FakeElection } from './fakes/fake-election.js'
import { createFakeKafka, type FakeKafka } from './fakes/fake-kafka.js'
import { createFakeRegistry, type FakeRegistry } from './fakes/fake-registry.js'
import { createFakeZk, type FakeZk } from './fakes/fake-zk.js'

// The real createReconciler over the real store, on an in-memory ZooKeeper, registry, election
// and Kafka, with a clock the test moves: the loop's rules in milliseconds. Passes are driven
// with pass(); start() (the timers) is never called.

const DEBOUNCE_MS = 3000
const TTL_MS = 10000
const paths = createPaths('unit')

interface World {
  zk: FakeZk
  store: Store
  kafka: FakeKafka
  registry: FakeRegistry
  election: FakeElection
  reconciler: Reconciler
  events: NewEvent[]
  /** Moves the fake clock. */
  advance(ms: number): void
  now(): number
  /** Worker → its partitions as `group/topic/partition`, sorted; workers holding nothing left out. */
  owners(): Promise<Record<string, string[]>>
  /** A new controller takes over: a new reconciler and election (epoch bumped) over the same ZooKeeper and registry. */
  takeover(): Promise<void>
  status(group: string): GroupStatusRecord | undefined
}

const reconcilers: Reconciler[] = []

async function world(options: { workers?: string[]; partitions?: number; extra?: Partial<ReconcilerOptions> } = {}): Promise<World> {
  const zk = createFakeZk()
  const store = createStore(zk, paths)
  const kafka = createFakeKafka()
  const registry = createFakeRegistry()
  const events: NewEvent[] = []
  const eventLog: EventLog = { record: (e) => void events.push(e), list: async () => [], flush: async () => undefined }
  let t = Date.parse('2025-06-01T00:00:00Z')
  await zk.ensurePaths(paths.containers())
  await store.createCluster(parseCluster({ name: 'src', bootstrapServers: ['src:9092'] }))
  await store.createCluster(parseCluster({ name: 'dst', bootstrapServers: ['dst:9092'] }))
  await store.createGroup(parseTopicGroup({ name: 'g1', sourceCluster: 'src', targetCluster: 'dst', topics: ['t'] }), 'running')
  kafka.topic('src', 't', options.partitions ?? 6)
  for (const id of options.workers ?? []) registry.join(id)

  const build = (id: string): { election: FakeElection; reconciler: Reconciler } => {
    const election = createFakeElection(zk, paths, id)
    const reconciler = createReconciler({
      zk,
      store,
      paths,
      election,
      instances: registry,
      admins: kafka,
      logger: silentLogger(),
      registry: new Registry(),
      events: eventLog,
      id,
      debounceMs: DEBOUNCE_MS,
      leaseTtlMs: TTL_MS,
      healAfterMs: 0,
      now: () => t,
      ...options.extra,
    })
    reconcilers.push(reconciler)
    return { election, reconciler }
  }
  const first = build('c1')
  const w: World = {
    zk,
    store,
    kafka,
    registry,
    events,
    election: first.election,
    reconciler: first.reconciler,
    advance: (ms) => void (t += ms),
    now: () => t,
    async owners() {
      const result: Record<string, string[]> = {}
      for (const [worker, record] of await store.listAssignments()) {
        const keys = record.value.partitions.map((p) => `${p.group}/${p.topic}/${p.partition}`).sort()
        if (keys.length > 0) result[worker] = keys
      }
      return result
    },
    async takeover() {
      const next = build(`c${reconcilers.length + 1}`)
      w.election = next.election
      w.reconciler = next.reconciler
      await next.election.elect()
    },
    status: (group) => zk.json<GroupStatusRecord>(paths.status(group)),
  }
  await first.election.elect()
  return w
}

/** A world whose workers hold every partition, with the takeover hold and the debounce long past. */
async function settled(workers: string[], options: { partitions?: number; extra?: Partial<ReconcilerOptions> } = {}): Promise<World> {
  const w = await world({ ...options, workers })
  w.advance(TTL_MS + DEBOUNCE_MS)
  await w.reconciler.pass()
  w.advance(DEBOUNCE_MS + 1)
  await w.reconciler.pass()
  const owners = await w.owners()
  expect(Object.keys(owners).sort(), 'every worker holds partitions once settled').to.deep.equal([...workers].sort())
  expect(Object.values(owners).flat(), 'every partition placed').to.have.length(options.partitions ?? 6)
  expect((await w.reconciler.pass()).writes, 'settled').to.equal(0)
  return w
}

const all = (owners: Record<string, string[]>): string[] => Object.values(owners).flat().sort()

describe('reconciler (createReconciler over fakes)', () => {
  afterEach(async () => {
    for (const r of reconcilers.splice(0)) await r.stop()
  })

  describe('status bookkeeping', () => {
    it('a settled world writes nothing on a second pass', async () => {
      const w = await world({ workers: ['w1', 'w2'] })
      const firstPass = await w.reconciler.pass()
      expect(firstPass.writes).to.equal(1)
      expect(all(await w.owners())).to.have.length(6)
      expect(w.status('g1')?.topics).to.deep.equal({ t: 6 })
      const writes = w.zk.writes
      w.advance(DEBOUNCE_MS + 1)
      expect(await w.reconciler.pass()).to.deep.equal({ writes: 0, moves: 0 })
      w.advance(60000)
      expect(await w.reconciler.pass()).to.deep.equal({ writes: 0, moves: 0 })
      expect(w.zk.writes).to.equal(writes)
    })

    it('records a new group error as an event once, keeps the partitions where they are, and clears the error when it goes', async () => {
      const w = await settled(['w1', 'w2'])
      const before = await w.owners()
      w.kafka.setUnreachable('src', new Error('connect ECONNREFUSED'))
      expect((await w.reconciler.pass()).writes).to.equal(1)
      expect(w.status('g1')?.error?.code).to.equal('KAFKA_ERROR')
      expect(w.status('g1')?.topics, 'last known topics kept').to.deep.equal({ t: 6 })
      const writes = w.zk.writes
      for (let i = 0; i < 3; i++) {
        w.advance(2000)
        expect((await w.reconciler.pass()).writes).to.equal(0)
      }
      expect(w.zk.writes).to.equal(writes)
      // Another group's status is written meanwhile: g1's error is not recorded again.
      w.kafka.topic('dst', 'u', 2)
      await w.store.createGroup(parseTopicGroup({ name: 'g2', sourceCluster: 'dst', targetCluster: 'src', topics: ['u'] }), 'running')
      expect((await w.reconciler.pass()).writes).to.equal(1)
      expect(w.status('g2')?.topics).to.deep.equal({ u: 2 })
      expect(w.events.filter((e) => e.type === 'group_error').map((e) => e.group)).to.deep.equal(['g1'])
      const owners = await w.owners()
      expect(all(owners).filter((k) => k.startsWith('g1/')), 'an unreachable source moves nothing').to.deep.equal(all(before))
      w.kafka.setUnreachable('src', null)
      expect((await w.reconciler.pass()).writes).to.equal(1)
      expect(w.status('g1')?.error).to.equal(undefined)
    })

    it('removes a status znode no group owns (written by a pass that raced the group delete)', async () => {
      const w = await settled(['w1'])
      await w.zk.create(paths.status('gone'), Buffer.from(JSON.stringify({ group: 'gone', observedAt: '', topics: {} })))
      expect((await w.reconciler.pass()).writes).to.equal(1)
      expect(w.status('gone')).to.equal(undefined)
      expect(w.status('g1')).to.not.equal(undefined)
    })
  })

  describe('membership debounce', () => {
    it('a join waits for membership to be stable for the debounce, then rebalances', async () => {
      const w = await settled(['w1', 'w2'])
      const before = await w.owners()
      w.registry.join('w3')
      const joined = await w.reconciler.pass()
      expect(joined).to.deep.equal({ writes: 0, moves: 0, skipped: 'membership settling' })
      w.advance(DEBOUNCE_MS - 1)
      expect((await w.reconciler.pass()).moves).to.equal(0)
      expect(await w.owners()).to.deep.equal(before)
      w.advance(2)
      const settledPass = await w.reconciler.pass()
      expect(settledPass.moves).to.equal(2)
      expect((await w.owners()).w3).to.have.length(2)
      expect(w.events.filter((e) => e.type === 'worker_joined').map((e) => e.worker)).to.deep.equal(['w3'])
    })

    it('a worker that joins and leaves within the debounce moves nothing', async () => {
      const w = await settled(['w1', 'w2'])
      const before = await w.owners()
      const writes = w.zk.writes
      w.registry.join('w3')
      await w.reconciler.pass()
      w.advance(DEBOUNCE_MS / 2)
      w.registry.leave('w3')
      await w.reconciler.pass()
      w.advance(DEBOUNCE_MS + 1)
      expect(await w.reconciler.pass()).to.deep.equal({ writes: 0, moves: 0 })
      expect(await w.owners()).to.deep.equal(before)
      expect(w.zk.writes).to.equal(writes)
    })

    it('places a dead worker\'s partitions at once while membership settles, moving none between live workers', async () => {
      const w = await settled(['w1', 'w2', 'w3'])
      const before = await w.owners()
      w.registry.vanish('w3')
      w.registry.join('w4')
      const result = await w.reconciler.pass()
      expect(result.moves).to.equal(2)
      const after = await w.owners()
      expect(after.w3).to.equal(undefined)
      expect(all(after)).to.deep.equal(all(before))
      expect(after.w1).to.include.members(before.w1 ?? [])
      expect(after.w2).to.include.members(before.w2 ?? [])
      for (const key of after.w4 ?? []) expect(before.w3, 'the joiner gets only orphans').to.include(key)
      expect(w.events.filter((e) => e.type === 'worker_left').map((e) => e.worker)).to.deep.equal(['w3'])
    })
  })

  describe('hold after takeover', () => {
    it('a new leader moves nothing for one lease TTL while an assigned worker is unseen, then places its partitions', async () => {
      const w = await settled(['w1', 'w2', 'w3'])
      const before = await w.owners()
      w.registry.vanish('w3')
      await w.takeover()
      expect((await w.reconciler.pass()).moves).to.equal(0)
      w.advance(TTL_MS - 1)
      expect((await w.reconciler.pass()).moves).to.equal(0)
      expect(await w.owners()).to.deep.equal(before)
      w.advance(2)
      expect((await w.reconciler.pass()).moves).to.equal(2)
      const after = await w.owners()
      expect(after.w3).to.equal(undefined)
      expect(all(after)).to.deep.equal(all(before))
    })

    it('a departed (deregistered) worker\'s partitions are placed at once after a takeover', async () => {
      const w = await settled(['w1', 'w2', 'w3'])
      w.registry.leave('w3')
      await w.takeover()
      expect((await w.reconciler.pass()).moves).to.equal(2)
      expect((await w.owners()).w3).to.equal(undefined)
      expect(all(await w.owners())).to.have.length(6)
    })

    it('the deposed leader\'s write is fenced off by the new epoch', async () => {
      const w = await settled(['w1', 'w2'])
      const old = w.reconciler
      await w.takeover()
      w.registry.vanish('w2')
      const error = await old.pass().then(() => null, (e: unknown) => e as Error)
      expect(error?.message).to.match(/BAD_VERSION/)
      expect((await w.owners()).w2, 'nothing written by the old leader').to.have.length(3)
    })
  })

  describe('frozen rebalancing (registry unreadable)', () => {
    it('writes nothing while the registry cannot be read, then holds one lease TTL after it returns', async () => {
      const w = await settled(['w1', 'w2', 'w3'])
      const before = await w.owners()
      const writes = w.zk.writes
      w.registry.setDown(new Error('Connection is closed.'))
      w.registry.vanish('w3')
      w.kafka.topic('src', 't', 8)
      expect(await w.reconciler.pass()).to.deep.equal({ writes: 0, moves: 0, skipped: 'rebalancing frozen' })
      expect(w.reconciler.frozenReason()).to.match(/Redis unreachable \(Connection is closed\.\)/)
      w.advance(TTL_MS * 3)
      expect((await w.reconciler.pass()).writes).to.equal(0)
      expect(w.zk.writes, 'not even a status write while frozen').to.equal(writes)
      await w.reconciler.dryRun().then(() => expect.fail('dry run while frozen'), (e: unknown) => expect((e as { code?: string }).code).to.equal('UNAVAILABLE'))

      w.registry.setDown(null)
      const resumed = await w.reconciler.pass()
      expect(w.reconciler.frozenReason()).to.equal(null)
      // The status (now 8 partitions) is written; no assignment while w3 is unseen, not even the new partitions.
      expect(resumed).to.deep.equal({ writes: 1, moves: 0 })
      expect(w.status('g1')?.topics).to.deep.equal({ t: 8 })
      expect(await w.owners(), 'w3 unseen: held').to.deep.equal(before)
      w.advance(TTL_MS - 1)
      await w.reconciler.pass()
      expect((await w.owners()).w3).to.deep.equal(before.w3)
      w.advance(2)
      expect((await w.reconciler.pass()).moves).to.be.greaterThan(0)
      const after = await w.owners()
      expect(after.w3).to.equal(undefined)
      expect(all(after)).to.have.length(8)
    })
  })

  describe('mass disappearance', () => {
    it('holds for one lease TTL when most assigned workers vanish at once, then moves their partitions', async () => {
      const w = await settled(['w1', 'w2', 'w3', 'w4'], { partitions: 8 })
      const before = await w.owners()
      for (const id of ['w2', 'w3', 'w4']) w.registry.vanish(id)
      expect((await w.reconciler.pass()).moves).to.equal(0)
      w.advance(TTL_MS - 1)
      expect((await w.reconciler.pass()).moves).to.equal(0)
      expect(await w.owners()).to.deep.equal(before)
      w.advance(2)
      expect((await w.reconciler.pass()).moves).to.equal(6)
      expect(await w.owners()).to.deep.equal({ w1: all(before) })
    })

    it('a minority vanishing is not held', async () => {
      const w = await settled(['w1', 'w2', 'w3', 'w4'], { partitions: 8 })
      w.registry.vanish('w4')
      expect((await w.reconciler.pass()).moves).to.equal(2)
    })
  })

  describe('auto-balancing off', () => {
    it('moves nothing between live workers, but still places a dead worker\'s partitions', async () => {
      const w = await settled(['w1', 'w2'])
      await w.store.updateSettings({ autoBalancing: false })
      const before = await w.owners()
      w.registry.join('w3')
      await w.reconciler.pass()
      w.advance(DEBOUNCE_MS + 1)
      expect(await w.reconciler.pass()).to.deep.equal({ writes: 0, moves: 0 })
      expect(await w.owners()).to.deep.equal(before)
      w.registry.vanish('w1')
      expect((await w.reconciler.pass()).moves).to.equal(3)
      w.advance(DEBOUNCE_MS + 1)
      await w.reconciler.pass()
      const after = await w.owners()
      expect(after.w1).to.equal(undefined)
      expect(after.w2, 'w2 keeps its own').to.include.members(before.w2 ?? [])
      expect(all(after)).to.deep.equal(all(before))
    })
  })

  describe('healing through the reconciler', () => {
    const HEAL_MS = 6000
    const STEP_MS = 2000

    /** Each worker reports its assigned partitions: `advancing` ones move forward each call, `stuck` ones say retrying. */
    async function report(w: World, round: number, how: (worker: string) => 'advancing' | 'still' | 'retrying'): Promise<void> {
      for (const [worker, keys] of Object.entries(await w.owners())) {
        const mode = how(worker)
        const partitions: ReportedPartition[] = keys.map((key) => {
          const [group = '', topic = '', partition = '0'] = key.split('/')
          return { group, topic, partition: Number(partition), state: mode === 'retrying' ? 'retrying' : 'mirroring', position: mode === 'advancing' ? 100 + round * 10 : 100 }
        })
        w.registry.report(worker, partitions)
      }
    }

    it('reassigns the group\'s partitions of a live worker that keeps retrying while another worker advances, after the heal time', async () => {
      const w = await settled(['w1', 'w2', 'w3'], { extra: { healAfterMs: HEAL_MS } })
      const before = await w.owners()
      let round = 0
      // Everyone mirrors first, so w1's trouble is not an incident the others shared.
      for (; round < 3; round++) {
        await report(w, round, () => 'advancing')
        await w.reconciler.pass()
        w.advance(STEP_MS)
      }
      const stuckAt = w.now()
      let movedAt: number | undefined
      for (; round < 12 && movedAt === undefined; round++) {
        await report(w, round, (worker) => (worker === 'w1' ? 'retrying' : 'advancing'))
        if ((await w.reconciler.pass()).moves > 0) movedAt = w.now()
        else w.advance(STEP_MS)
      }
      expect(movedAt, 'w1 healed').to.not.equal(undefined)
      expect((movedAt ?? 0) - stuckAt).to.be.at.least(HEAL_MS)
      expect((movedAt ?? 0) - stuckAt).to.be.at.most(HEAL_MS + 2 * STEP_MS)
      const after = await w.owners()
      expect(after.w1).to.equal(undefined)
      expect(all(after)).to.deep.equal(all(before))
      expect(w.reconciler.quarantines().map((q) => `${q.worker} ${q.group}`)).to.deep.equal(['w1 g1'])
      expect(w.status('g1')?.quarantined?.map((q) => q.worker)).to.deep.equal(['w1'])
      expect(w.events.filter((e) => e.type === 'worker_quarantined').map((e) => e.worker)).to.deep.equal(['w1'])
    })

    it('moves nothing when no worker advances (a cluster down for everyone)', async () => {
      const w = await settled(['w1', 'w2', 'w3'], { extra: { healAfterMs: HEAL_MS } })
      const before = await w.owners()
      w.kafka.setEnd('src', 't', 0, 100)
      for (let round = 0; round < 20; round++) {
        await report(w, round, (worker) => (worker === 'w1' ? 'retrying' : 'still'))
        expect((await w.reconciler.pass()).moves).to.equal(0)
        w.advance(STEP_MS)
      }
      expect(await w.owners()).to.deep.equal(before)
      expect(w.reconciler.quarantines()).to.deep.equal([])
      expect(w.kafka.calls.some((c) => c.startsWith('src stableOffsets')), 'the healer looked at the source ends').to.equal(true)
    })
  })
})
