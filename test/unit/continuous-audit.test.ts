/**
 * The continuous audit (controller/continuous-audit.ts) on fakes of the two clusters and of
 * Redis: each run reads only what both sides appended since the previous one (offsets kept in
 * the state, also across a leader change), a copy mirrored later but within the grace settles its
 * minute, one mirrored after the grace is late (not missing, not a duplicate), duplicates and
 * dead letters are counted as the on-demand audit counts them, and only the leader runs it.
 */
import { expect } from 'chai'
import { parseTopicGroup } from '../../common/config.js'
import { FerryError } from '../../common/errors.js'
import { createKeys } from '../../common/keys.js'
import { silentLogger } from '../../common/logger.js'
import type { SourceRecord } from '../../common/kafka/source-consumer.js'
import { recordIdentity } from '../../common/record-identity.js'
import type { ReadRange } from '../../controller/audit.js'
import {
  createContinuousAudit,
  decodeAuditState,
  encodeAuditState,
  redisAuditStateStore,
  runAudit,
  type AuditRun,
  type AuditSide,
  type AuditSides,
  type ContinuousAuditState,
} from '../../controller/continuous-audit.js'
import { MINUTE_MS, auditSteps, createHistoryStore, decodeAuditMinute, encodeAuditMinute, type HistoryBackend } from '../../controller/history.js'

const T0 = Date.UTC(2026, 0, 31, 12, 0, 0)
const GRACE_MS = 2 * MINUTE_MS

/** Two clusters as append-only logs: `source` holds topic `t`, `target` holds `m.t` and the dead-letter topic. */
function fakeClusters() {
  const logs = new Map<string, SourceRecord[][]>()
  const read = { records: 0, calls: [] as Array<{ side: AuditSide; topic: string; ranges: ReadRange[] }> }
  const log = (side: AuditSide, topic: string): SourceRecord[][] => {
    const key = `${side}/${topic}`
    if (!logs.has(key)) logs.set(key, [[], []])
    return logs.get(key) as SourceRecord[][]
  }
  const append = (side: AuditSide, topic: string, partition: number, record: Omit<SourceRecord, 'offset'>): void => {
    const p = log(side, topic)[partition] as SourceRecord[]
    p.push({ ...record, offset: p.length })
  }
  const sides: AuditSides = {
    topics: async () => ['t'],
    targetTopic: (topic) => `m.${topic}`,
    deadLetterTopic: 'dlq',
    async ends(side, topic) {
      const l = logs.get(`${side}/${topic}`)
      return l === undefined ? [] : l.map((p, partition) => ({ partition, low: 0, stable: p.length }))
    },
    async offsetsForTime(side, topic, ms) {
      const out = new Map<number, number>()
      log(side, topic).forEach((p, partition) => {
        const i = p.findIndex((r) => Number(r.timestamp) >= ms)
        out.set(partition, i === -1 ? p.length : i)
      })
      return out
    },
    async read(side, topic, ranges, onRecord) {
      read.calls.push({ side, topic, ranges: [...ranges] })
      for (const r of ranges) {
        for (const record of (log(side, topic)[r.partition] ?? []).slice(r.from, r.to)) {
          read.records++
          onRecord(r.partition, record)
        }
      }
    },
  }
  const record = (n: number, ts: number): Omit<SourceRecord, 'offset'> => ({ key: Buffer.from(`k${n}`), value: Buffer.from(`v${n}`), headers: [], timestamp: String(ts) })
  /** Produces record `n` at the source and (unless `mirror` is false) its copy at the target. */
  const produce = (n: number, ts: number, mirror = true): Omit<SourceRecord, 'offset'> => {
    const r = record(n, ts)
    append('source', 't', n % 2, r)
    if (mirror) append('target', 'm.t', n % 2, r)
    return r
  }
  const mirror = (n: number, ts: number): void => append('target', 'm.t', n % 2, record(n, ts))
  const deadLetter = (n: number, ts: number): void => {
    const r = record(n, ts)
    const text = (key: string, value: string) => ({ key, value: Buffer.from(value) })
    append('target', 'dlq', 0, { ...r, headers: [text('ferry.source.topic', 't'), text('ferry.source.timestamp', String(ts)), text('ferry.source.id', recordIdentity(n % 2, r))] })
  }
  /** Deletes and creates the topic again on a side: its partitions start over at offset 0. */
  const recreate = (side: AuditSide, topic: string): void => void logs.set(`${side}/${topic}`, [[], []])
  return { sides, read, produce, mirror, deadLetter, recreate }
}

function minuteOfRun(run: AuditRun, minuteMs: number, topic = '') {
  return run.minutes.get(topic)?.find((m) => m.minuteMs === minuteMs)
}

/** Runs through an encode/decode of the state between runs, as Redis keeps it. */
async function runKept(state: ContinuousAuditState | null, sides: AuditSides, nowMs: number): Promise<AuditRun> {
  const run = await runAudit(state === null ? null : decodeAuditState(encodeAuditState(state)), sides, nowMs, GRACE_MS)
  return run
}

describe('continuous audit (incremental, by minute of record timestamp)', () => {
  it('reads only what each side appended since the previous run', async () => {
    const c = fakeClusters()
    for (let n = 0; n < 10; n++) c.produce(n, T0 + 1000 + n)
    const first = await runKept(null, c.sides, T0 + 20000)
    expect(first.recordsRead).to.equal(20)
    expect(minuteOfRun(first, T0)).to.include({ source: 10, target: 10, missing: 0, duplicates: 0, final: false })

    c.read.records = 0
    for (let n = 10; n < 13; n++) c.produce(n, T0 + 30000 + n)
    const second = await runKept(first.state, c.sides, T0 + 40000)
    // 3 new records on each side, not the 13 of the minute.
    expect(c.read.records).to.equal(6)
    expect(second.recordsRead).to.equal(6)
    expect(minuteOfRun(second, T0)).to.include({ source: 13, target: 13, missing: 0, duplicates: 0 })

    c.read.records = 0
    const idle = await runKept(second.state, c.sides, T0 + 50000)
    expect(c.read.records).to.equal(0)
    expect(minuteOfRun(idle, T0)).to.include({ source: 13, target: 13 })
  })

  it('does not audit records timestamped before its first run', async () => {
    const c = fakeClusters()
    c.produce(0, T0 - 10 * MINUTE_MS)
    c.produce(1, T0 - 10 * MINUTE_MS, false)
    c.produce(2, T0 + 1000)
    const run = await runKept(null, c.sides, T0 + 5000)
    expect(run.minutes.get('')).to.have.length(1)
    expect(minuteOfRun(run, T0)).to.include({ source: 1, target: 1, missing: 0 })
  })

  it('settles a record mirrored late but within the grace, and closes the minute after the grace', async () => {
    const c = fakeClusters()
    c.produce(0, T0 + 1000)
    c.produce(1, T0 + 2000, false)
    const first = await runKept(null, c.sides, T0 + 10000)
    expect(minuteOfRun(first, T0)).to.include({ source: 2, target: 1, missing: 1, final: false })

    c.mirror(1, T0 + 2000)
    const second = await runKept(first.state, c.sides, T0 + MINUTE_MS + 30000)
    expect(minuteOfRun(second, T0)).to.include({ source: 2, target: 2, missing: 0, duplicates: 0, final: false })

    // The first run at least the grace after the minute's end closes it and forgets its records.
    const third = await runKept(second.state, c.sides, T0 + MINUTE_MS + GRACE_MS)
    expect(minuteOfRun(third, T0)).to.include({ source: 2, target: 2, missing: 0, final: true })
    expect(third.state.topics.get('t')?.minutes.size).to.equal(0)
    const after = await runKept(third.state, c.sides, T0 + MINUTE_MS + GRACE_MS + 30000)
    expect(after.minutes.get('')).to.equal(undefined)
  })

  it('keeps a missing record missing when its minute closes, and counts its copy arriving after the grace as late', async () => {
    const c = fakeClusters()
    c.produce(0, T0 + 1000)
    c.produce(1, T0 + 2000, false)
    const first = await runKept(null, c.sides, T0 + 10000)
    const closed = await runKept(first.state, c.sides, T0 + MINUTE_MS + GRACE_MS)
    expect(minuteOfRun(closed, T0)).to.include({ source: 2, target: 1, missing: 1, final: true })

    c.mirror(1, T0 + 2000)
    const later = await runKept(closed.state, c.sides, T0 + MINUTE_MS + GRACE_MS + 30000)
    expect(later.late.get('t')?.get(T0)).to.equal(1)
    expect(later.late.get('')?.get(T0)).to.equal(1)
    // Not a duplicate of a new, empty minute.
    expect(later.minutes.get('')).to.equal(undefined)
  })

  it('counts extra copies at the target as duplicates, also when they arrive in a later run', async () => {
    const c = fakeClusters()
    for (let n = 0; n < 4; n++) c.produce(n, T0 + 1000 + n)
    const first = await runKept(null, c.sides, T0 + 10000)
    expect(minuteOfRun(first, T0)).to.include({ duplicates: 0 })
    c.mirror(2, T0 + 1002)
    c.mirror(2, T0 + 1002)
    const second = await runKept(first.state, c.sides, T0 + 20000)
    expect(minuteOfRun(second, T0)).to.include({ source: 4, target: 6, duplicates: 2, missing: 0 })
  })

  it('counts dead-lettered records as accounted for, not missing', async () => {
    const c = fakeClusters()
    c.produce(0, T0 + 1000)
    c.produce(1, T0 + 1001, false)
    c.deadLetter(1, T0 + 1001)
    c.produce(2, T0 + 1002, false)
    const run = await runKept(null, c.sides, T0 + 10000)
    expect(minuteOfRun(run, T0)).to.include({ source: 3, target: 1, missing: 1, deadLettered: 1 })
    expect(minuteOfRun(run, T0, 't')).to.include({ missing: 1, deadLettered: 1 })
  })

  it('reads a topic deleted and created again from its start, not from the offsets the old one reached', async () => {
    const c = fakeClusters()
    for (let n = 0; n < 6; n++) c.produce(n, T0 + 1000 + n)
    const first = await runKept(null, c.sides, T0 + 10000)
    c.recreate('source', 't')
    c.recreate('target', 'm.t')
    c.produce(100, T0 + 20000)
    c.produce(101, T0 + 20001, false)
    const second = await runKept(first.state, c.sides, T0 + 30000)
    expect(second.recordsRead).to.equal(3)
    expect(minuteOfRun(second, T0)).to.include({ source: 8, target: 7, missing: 1 })
  })

  it('keeps a minute per record timestamp, not per run', async () => {
    const c = fakeClusters()
    const first = await runKept(null, c.sides, T0 + 500)
    c.produce(0, T0 + 1000)
    c.produce(1, T0 + MINUTE_MS + 1000)
    c.produce(2, T0 + MINUTE_MS + 2000, false)
    const run = await runKept(first.state, c.sides, T0 + MINUTE_MS + 5000)
    expect(run.minutes.get('')?.map((m) => [m.minuteMs, m.source, m.missing])).to.deep.equal([
      [T0, 1, 0],
      [T0 + MINUTE_MS, 2, 1],
    ])
  })
})

/** Redis as far as the store uses it: sorted sets with TTLs, and GET/SET of the state. */
function fakeRedis() {
  const sets = new Map<string, Array<{ score: number; member: string }>>()
  const strings = new Map<string, string>()
  const backend: HistoryBackend = {
    async range(key, from, to) {
      return (sets.get(key) ?? []).filter((e) => e.score >= from && e.score <= to).sort((a, b) => a.score - b.score).map((e) => e.member)
    },
    async write(writes, also) {
      for (const w of writes) {
        const set = (sets.get(w.key) ?? []).filter((e) => e.score !== w.minuteMs)
        set.push({ score: w.minuteMs, member: w.member })
        sets.set(w.key, set.filter((e) => e.score >= w.keepFromMs))
      }
      if (also !== undefined) strings.set(also.key, also.value)
    },
  }
  return { backend, strings, redis: { get: async (key: string) => strings.get(key) ?? null } }
}

describe('continuous audit runner (leader only, state in Redis, history)', () => {
  const keys = createKeys('test')
  const spec = parseTopicGroup({ name: 'g', sourceCluster: 'a', targetCluster: 'b', topics: ['t'], audit: { intervalMinutes: 1, graceMinutes: 2 } })

  function setup(fake = fakeRedis(), clusters = fakeClusters()) {
    let at = T0 + 10000
    let leader = true
    const history = createHistoryStore({ backend: fake.backend, keys })
    const runs: AuditRun[] = []
    const make = () =>
      createContinuousAudit({
        isLeader: () => leader,
        groups: async () => [{ name: 'g', spec }],
        sides: async () => clusters.sides,
        state: redisAuditStateStore(fake.redis, keys, history),
        logger: silentLogger(),
        now: () => at,
        onRun: (_g, run) => runs.push(run),
      })
    return { fake, clusters, history, runs, make, setAt: (ms: number) => (at = ms), setLeader: (l: boolean) => (leader = l) }
  }

  it('writes each minute to the history API series, and a new leader goes on from the offsets saved', async () => {
    const s = setup()
    for (let n = 0; n < 5; n++) s.clusters.produce(n, T0 + 1000 + n)
    s.clusters.produce(5, T0 + 1005, false)
    await s.make().tick()
    expect(s.runs.at(-1)?.recordsRead).to.equal(11)
    const points = await s.history.read('g', { fromMs: T0, toMs: T0 + 2 * MINUTE_MS, stepMs: MINUTE_MS })
    expect(points[0]?.audit).to.include({ source: 6, target: 5, missing: 1, final: false })
    expect(points[1]?.audit).to.equal(null)
    expect((await s.history.read('g', { fromMs: T0, toMs: T0 + MINUTE_MS, stepMs: MINUTE_MS, topic: 't' }))[0]?.audit).to.include({ missing: 1 })

    // Another controller takes over: it reads the saved offsets, not the minute again.
    s.clusters.mirror(5, T0 + 1005)
    s.clusters.read.records = 0
    s.setAt(T0 + MINUTE_MS + GRACE_MS + 1000)
    await s.make().tick()
    expect(s.clusters.read.records).to.equal(1)
    const closed = await s.history.read('g', { fromMs: T0, toMs: T0 + MINUTE_MS, stepMs: MINUTE_MS })
    expect(closed[0]?.audit).to.include({ source: 6, target: 6, missing: 0, duplicates: 0, final: true })
  })

  it('adds late records to their final minute as stored', async () => {
    const s = setup()
    s.clusters.produce(0, T0 + 1000, false)
    const audit = s.make()
    await audit.tick()
    s.setAt(T0 + MINUTE_MS + GRACE_MS)
    await audit.tick()
    s.clusters.mirror(0, T0 + 1000)
    s.setAt(T0 + MINUTE_MS + GRACE_MS + MINUTE_MS)
    await audit.tick()
    const [point] = await s.history.read('g', { fromMs: T0, toMs: T0 + MINUTE_MS, stepMs: MINUTE_MS })
    expect(point?.audit).to.deep.equal({ source: 1, target: 0, missing: 1, duplicates: 0, deadLettered: 0, late: 1, final: true })
  })

  it('runs a group only once its interval has passed since the last run', async () => {
    const s = setup()
    s.clusters.produce(0, T0 + 1000)
    const audit = s.make()
    await audit.tick()
    s.setAt(T0 + 10000 + MINUTE_MS - 1)
    await audit.tick()
    expect(s.runs).to.have.length(1)
    s.setAt(T0 + 10000 + MINUTE_MS)
    await audit.tick()
    expect(s.runs).to.have.length(2)
  })

  it('does nothing on a follower, and a deposed leader writes nothing', async () => {
    const s = setup()
    s.clusters.produce(0, T0 + 1000)
    s.setLeader(false)
    await s.make().tick(true)
    expect(s.clusters.read.records).to.equal(0)
    expect(s.fake.strings.size).to.equal(0)

    // Deposed while reading.
    let leading = true
    const deposed = createContinuousAudit({
      isLeader: () => leading,
      groups: async () => [{ name: 'g', spec }],
      sides: async () => ({ ...s.clusters.sides, read: async (...args) => ((leading = false), s.clusters.sides.read(...args)) }),
      state: redisAuditStateStore(s.fake.redis, keys, s.history),
      logger: silentLogger(),
      now: () => T0 + 10000,
    })
    await deposed.tick(true)
    expect(s.fake.strings.size).to.equal(0)
  })

  it('leaves groups without `audit` alone', async () => {
    const s = setup()
    let asked = 0
    const audit = createContinuousAudit({
      isLeader: () => true,
      groups: async () => [{ name: 'plain', spec: parseTopicGroup({ name: 'plain', sourceCluster: 'a', targetCluster: 'b', topics: ['t'] }) }],
      sides: async () => (asked++, s.clusters.sides),
      state: redisAuditStateStore(s.fake.redis, keys, s.history),
      logger: silentLogger(),
    })
    await audit.tick(true)
    expect(asked).to.equal(0)
  })
})

describe('continuous audit configuration and formats', () => {
  it('is off unless asked, defaults to every 10 minutes with a 10-minute grace, and names a bad field', () => {
    const base = { name: 'g', sourceCluster: 'a', targetCluster: 'b', topics: ['t'] }
    expect(parseTopicGroup(base).audit).to.equal(undefined)
    expect(parseTopicGroup({ ...base, audit: {} }).audit).to.deep.equal({ intervalMinutes: 10, graceMinutes: 10 })
    for (const [audit, field] of [
      [{ intervalMinutes: 0 }, 'audit.intervalMinutes'],
      [{ intervalMinutes: 'often' }, 'audit.intervalMinutes'],
      [{ graceMinutes: -1 }, 'audit.graceMinutes'],
      [{ every: 5 }, 'audit.every'],
    ] as const) {
      try {
        parseTopicGroup({ ...base, audit })
        expect.fail(`accepted ${JSON.stringify(audit)}`)
      } catch (error) {
        expect(error).to.be.instanceOf(FerryError)
        expect((error as FerryError).message).to.contain(field)
      }
    }
  })

  it('encodes an audit minute with its minute and decodes it back; foreign members are skipped; steps add minutes', () => {
    const m = { source: 5, target: 6, missing: 1, duplicates: 2, deadLettered: 0, late: 0, final: true }
    const member = encodeAuditMinute(T0, m)
    expect(member).to.equal(`[1,${T0 / MINUTE_MS},5,6,1,2,0,0,1]`)
    expect(decodeAuditMinute(member)).to.deep.equal({ minuteMs: T0, minute: m })
    expect(decodeAuditMinute('[2,1,2,3,4,5,6,7,1]')).to.equal(null)
    expect(decodeAuditMinute('[1,1,2,3,4,5,6,7]')).to.equal(null)
    const steps = auditSteps(
      [
        { minuteMs: T0, minute: m },
        { minuteMs: T0 + MINUTE_MS, minute: { ...m, final: false } },
      ],
      10 * MINUTE_MS,
    )
    expect(steps.get(T0)).to.deep.equal({ source: 10, target: 12, missing: 2, duplicates: 4, deadLettered: 0, late: 0, final: false })
  })

  it('keeps its state through the text Redis holds', () => {
    const state: ContinuousAuditState = { startMs: T0, finalBeforeMs: T0, lastRunMs: T0 + 1, deadLetter: new Map([[0, 3]]), topics: new Map([['t', { source: new Map([[0, 4]]), target: new Map([[0, 2]]), minutes: new Map([[T0, { source: 4, target: 2 }]]), open: new Map([['id', [T0, 1, 0, 0]]]) }]]) }
    expect(decodeAuditState(encodeAuditState(state))).to.deep.equal(state)
    expect(decodeAuditState('{"v":9}')).to.equal(null)
    expect(decodeAuditState('nope')).to.equal(null)
    expect(decodeAuditState(null)).to.equal(null)
  })
})
