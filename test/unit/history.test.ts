/**
 * The history store and the leader's recorder (controller/history.ts, history-recorder.ts) on a
 * fake of the few sorted-set commands they use: samples land in 1-minute buckets, a series keeps
 * 48 h and no more, a takeover mid-minute adds to the old leader's bucket, a Redis that came back
 * empty gets the current minute back, and latency counts only what each sample added.
 */
import { expect } from 'chai'
import type { TopicGroupSpec } from '../../common/config.js'
import { createKeys } from '../../common/keys.js'
import { emptyLatencyCounts } from '../../common/latency.js'
import { silentLogger } from '../../common/logger.js'
import type { InstanceRecord } from '../../common/registry.js'
import type { PartitionReport } from '../../common/worker-report.js'
import { createHistoryRecorder, sampleBuckets } from '../../controller/history-recorder.js'
import { DEFAULT_HISTORY_RETENTION_MS, MINUTE_MS, createHistoryStore, decodeBucket, emptyBucket, encodeBucket, minuteOf, pointsOf, type HistoryBackend } from '../../controller/history.js'

/** Redis sorted sets as far as the store uses them: members by score, ZREMRANGEBYSCORE, PEXPIRE. */
function fakeBackend() {
  const sets = new Map<string, Array<{ score: number; member: string }>>()
  const ttls = new Map<string, number>()
  const backend: HistoryBackend = {
    async range(key, from, to) {
      return (sets.get(key) ?? []).filter((e) => e.score >= from && e.score <= to).sort((a, b) => a.score - b.score).map((e) => e.member)
    },
    async write(writes) {
      for (const w of writes) {
        const set = (sets.get(w.key) ?? []).filter((e) => e.score !== w.minuteMs && e.member !== w.member)
        set.push({ score: w.minuteMs, member: w.member })
        sets.set(w.key, set.filter((e) => e.score >= w.keepFromMs))
        ttls.set(w.key, w.ttlMs)
      }
    },
  }
  return { backend, sets, ttls, flushAll: () => (sets.clear(), ttls.clear()) }
}

const keys = createKeys('test')
const T0 = Date.UTC(2026, 0, 31, 12, 0, 0)
const spec = { name: 'g', sourceCluster: 'src', targetCluster: 'dst', topics: ['a', 'b'] } as unknown as TopicGroupSpec

function report(p: Partial<PartitionReport> & { topic: string; partition: number }): PartitionReport {
  return { group: 'g', targetTopic: p.topic, state: 'mirroring', recordsMirrored: 0, deadLettered: 0, latencyCounts: emptyLatencyCounts(), latencyMaxMs: 0, bytesPerSec: 0, recordsPerSec: 0, ...p }
}

function worker(id: string, partitions: PartitionReport[]): InstanceRecord {
  return { id, role: 'worker', host: 'h', pid: 1, version: 'v', startedAt: '', lastHeartbeatAt: '', metrics: { partitions } }
}

describe('history store (1-minute buckets, 48 h)', () => {
  it('encodes a bucket compactly with its minute and decodes it back; foreign members are skipped', () => {
    const b = { ...emptyBucket(), samples: 4, recordsPerSecSum: 400, bytesPerSecSum: 40000, lagSum: 12, lagSamples: 4, lagMax: 5 }
    b.latencyCounts[3] = 7
    const member = encodeBucket(T0, b)
    expect(member).to.equal(`[1,${T0 / MINUTE_MS},4,400,40000,12,4,5,0,0,0,7]`)
    expect(decodeBucket(member)).to.deep.equal({ minuteMs: T0, bucket: b })
    expect(decodeBucket('not json')).to.equal(null)
    expect(decodeBucket('[2,1,2,3,4,5,6,7]')).to.equal(null)
    expect(decodeBucket('[1,1,2,3,4,5,6,-7]')).to.equal(null)
  })

  it('puts samples of the same minute in one bucket and the next minute in another', async () => {
    const fake = fakeBackend()
    const history = createHistoryStore({ backend: fake.backend, keys })
    expect(minuteOf(T0 + 59999)).to.equal(T0)
    expect(minuteOf(T0 + 60000)).to.equal(T0 + MINUTE_MS)
    await history.write([{ group: 'g', minuteMs: minuteOf(T0 + 5000), bucket: { ...emptyBucket(), samples: 1, recordsPerSecSum: 100 } }])
    await history.write([{ group: 'g', minuteMs: minuteOf(T0 + 55000), bucket: { ...emptyBucket(), samples: 2, recordsPerSecSum: 300 } }])
    await history.write([{ group: 'g', minuteMs: minuteOf(T0 + 61000), bucket: { ...emptyBucket(), samples: 1, recordsPerSecSum: 50 } }])
    expect(fake.sets.get(keys.history('g'))).to.have.length(2)
    const points = await history.read('g', { fromMs: T0, toMs: T0 + 3 * MINUTE_MS, stepMs: MINUTE_MS })
    expect(points.map((p) => [p.t, p.recordsPerSec])).to.deep.equal([
      [T0, 150],
      [T0 + MINUTE_MS, 50],
      [T0 + 2 * MINUTE_MS, null],
    ])
  })

  it('keeps 48 hours of minutes and no more, and gives every series a TTL of the retention', async () => {
    const fake = fakeBackend()
    const history = createHistoryStore({ backend: fake.backend, keys })
    const minutes = 48 * 60 + 120
    const start = T0 - minutes * MINUTE_MS
    for (let i = 0; i <= minutes; i++) await history.write([{ group: 'g', minuteMs: start + i * MINUTE_MS, bucket: { ...emptyBucket(), samples: 1, recordsPerSecSum: i } }])
    const set = fake.sets.get(keys.history('g')) ?? []
    // The newest minute and the 2880 before it: 48 h back from the newest write, bounded.
    expect(set).to.have.length(48 * 60 + 1)
    expect(Math.min(...set.map((e) => e.score))).to.equal(T0 - DEFAULT_HISTORY_RETENTION_MS)
    expect(fake.ttls.get(keys.history('g'))).to.equal(DEFAULT_HISTORY_RETENTION_MS + MINUTE_MS)
    const dayBefore = await history.read('g', { fromMs: T0 - 48 * 3600000, toMs: T0 - 48 * 3600000 + MINUTE_MS, stepMs: MINUTE_MS })
    expect(dayBefore[0]?.recordsPerSec).to.equal(120)
  })

  it('merges minutes into coarser steps by adding their sums', () => {
    const buckets = [0, 1, 2, 3, 4].map((i) => ({ minuteMs: T0 + i * MINUTE_MS, bucket: { ...emptyBucket(), samples: 4, recordsPerSecSum: 4 * 10 * (i + 1), lagSum: 4 * i, lagSamples: 4, lagMax: i, latencyCounts: emptyLatencyCounts().map((_, j) => (j === 1 ? 99 : j === 9 ? 1 : 0)) } }))
    const [point] = pointsOf(buckets, { fromMs: T0, toMs: T0 + 5 * MINUTE_MS, stepMs: 5 * MINUTE_MS })
    expect(point).to.deep.include({ t: T0, recordsPerSec: 30, lag: 2, lagMax: 4, latencyP50Ms: 10, latencyP99Ms: 10, latencyRecords: 500 })
  })
})

describe('history recorder (the leader samples worker reports)', () => {
  const setup = (fake = fakeBackend()) => {
    let now = T0 + 5000
    let leader = true
    let reports: InstanceRecord[] = [worker('w1', [report({ topic: 'a', partition: 0, recordsPerSec: 100, bytesPerSec: 1000, position: 90 }), report({ topic: 'b', partition: 0, recordsPerSec: 20, bytesPerSec: 200, position: 10 })])]
    const history = createHistoryStore({ backend: fake.backend, keys })
    const make = () =>
      createHistoryRecorder({
        history,
        isLeader: () => leader,
        groups: async () => [{ name: 'g', spec }],
        instances: async () => reports,
        sourceEnds: async () => new Map([['a/0', 100], ['b/0', 15]]),
        logger: silentLogger(),
        sampleMs: 0,
        now: () => now,
      })
    return {
      fake,
      history,
      make,
      advance: (ms: number) => (now += ms),
      setLeader: (v: boolean) => (leader = v),
      setReports: (r: InstanceRecord[]) => (reports = r),
      bucket: (topic?: string) => history.bucket('g', topic, T0),
    }
  }

  it('adds each sample to the minute of the group and of each topic, with lag from the source ends', async () => {
    const s = setup()
    const recorder = s.make()
    await recorder.sample()
    s.advance(15000)
    await recorder.sample()
    expect(await s.bucket()).to.deep.include({ samples: 2, recordsPerSecSum: 240, bytesPerSecSum: 2400, lagSum: 30, lagSamples: 2, lagMax: 15 })
    expect(await s.bucket('a')).to.deep.include({ samples: 2, recordsPerSecSum: 200, lagSum: 20 })
    expect(await s.bucket('b')).to.deep.include({ samples: 2, recordsPerSecSum: 40, lagSum: 10 })
    s.advance(60000)
    await recorder.sample()
    expect(await s.history.bucket('g', undefined, T0 + MINUTE_MS)).to.deep.include({ samples: 1, recordsPerSecSum: 120 })
    expect(await s.bucket()).to.deep.include({ samples: 2 })
  })

  it('writes nothing while following', async () => {
    const s = setup()
    s.setLeader(false)
    await s.make().sample()
    expect(s.fake.sets.size).to.equal(0)
  })

  it('a new leader mid-minute adds to the bucket the old leader wrote instead of replacing it', async () => {
    const s = setup()
    const old = s.make()
    await old.sample()
    s.advance(15000)
    await old.sample()
    // The old leader is gone; a standby with nothing in memory takes over within the same minute.
    const successor = s.make()
    s.advance(15000)
    await successor.sample()
    expect(await s.bucket()).to.deep.include({ samples: 3, recordsPerSecSum: 360 })
    expect(s.fake.sets.get(keys.history('g'))).to.have.length(1)
  })

  it('after Redis restarted empty, the next sample writes the whole current minute back; older minutes are lost', async () => {
    const s = setup()
    const recorder = s.make()
    await recorder.sample()
    s.advance(60000)
    await recorder.sample()
    s.advance(15000)
    await recorder.sample()
    s.fake.flushAll()
    s.advance(15000)
    await recorder.sample()
    expect(await s.history.bucket('g', undefined, T0 + MINUTE_MS)).to.deep.include({ samples: 3, recordsPerSecSum: 360 })
    expect(await s.bucket()).to.equal(null)
  })

  it('counts latency added since the previous sample: a first sight is only a baseline, a restarted task counts whole', () => {
    const counts = (n: number) => emptyLatencyCounts().map((_, i) => (i === 2 ? n : 0))
    const at = (n: number, worker = 'w1') => ({ ...report({ topic: 'a', partition: 0, latencyCounts: counts(n) }), worker })
    const first = sampleBuckets({ groups: ['g'], reports: [at(50)], ends: new Map(), baselines: new Map() })
    expect(first.buckets.get('g')?.latencyCounts[2]).to.equal(0)
    const second = sampleBuckets({ groups: ['g'], reports: [at(80)], ends: new Map(), baselines: first.baselines })
    expect(second.buckets.get('g')?.latencyCounts[2]).to.equal(30)
    const restarted = sampleBuckets({ groups: ['g'], reports: [at(5)], ends: new Map(), baselines: second.baselines })
    expect(restarted.buckets.get('g')?.latencyCounts[2]).to.equal(5)
    // The partition moved to w2: a new task, seen for the first time.
    const moved = sampleBuckets({ groups: ['g'], reports: [at(7, 'w2')], ends: new Map(), baselines: restarted.baselines })
    expect(moved.buckets.get('g')?.latencyCounts[2]).to.equal(0)
    // No source end for a partition: no lag in that sample rather than a wrong sum.
    expect(moved.buckets.get('g')).to.deep.include({ lagSamples: 0, lagSum: 0 })
  })

  it('samples a group without reported partitions as zero traffic and unknown lag', async () => {
    const s = setup()
    s.setReports([])
    await s.make().sample()
    expect(await s.bucket()).to.deep.include({ samples: 1, recordsPerSecSum: 0, lagSamples: 0 })
    expect(await s.bucket('a')).to.equal(null)
  })
})
