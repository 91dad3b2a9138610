/**
 * Active-active, fan-out and fan-in on the real stack, one deployment (a controller and one
 * worker under bootstrap), records written and read back by Kafka's own Java clients (oracle.ts).
 *
 * - Loop refusal: a group mirroring back the topic another group mirrors, without provenance on
 *   both, is a 409 naming both groups and the topic; nothing is written.
 * - Active-active: groups A → B and B → A on the same topic name, both with provenance. Java
 *   producers write to both clusters for 60 s; then each cluster holds its own records untouched
 *   and every record of the other once (at-least-once duplicates counted, reported, bounded),
 *   each mirrored record with `ferry.origin` (the origin cluster's id) as its last header, and
 *   the system comes to rest: both groups at the end of both logs, the ends unchanged after.
 * - Fan-out: one source topic into two clusters (the target, and the source itself under a
 *   prefix: the stack has two clusters), byte for byte (exactly-once, every record shape).
 * - Fan-in: a topic on each cluster into one aggregate topic on the target, each source's
 *   records complete and in order within the aggregate (exactly-once).
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import { Kafka, logLevel } from '../../common/kafka/kafkajs.js'
import type { LocalStack } from '../../deploy/local-stack.js'
import { FerryProcess, http, sharedStack, stackSecretFlags, uniqueName, waitFor, type HttpResult } from './harness.js'
import { createTopic, partitionEnds } from './kafka-helpers.js'
import { compareMirror, countRecords, describeComparison, oracleDump, oracleProduce, type OracleRecord, type ProduceSummary } from './oracle.js'

const SEED = Number(process.env.FERRY_ORACLE_SEED ?? Math.floor(Math.random() * 2 ** 31))
const ORIGIN_KEY = Buffer.from('ferry.origin').toString('base64')
/** Records per second each active-active producer writes, for 60 s (the figure). */
const RATE = 100
const SECONDS = 60

async function clusterIdOf(brokers: string): Promise<string> {
  const admin = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING }).admin()
  await admin.connect()
  try {
    return (await admin.describeCluster()).clusterId
  } finally {
    await admin.disconnect()
  }
}

const originOf = (r: OracleRecord): string | undefined => {
  const header = r.h.find(([k]) => k === ORIGIN_KEY)
  return header === undefined ? undefined : Buffer.from(header[1] ?? '', 'base64').toString('utf8')
}

/** Records of `dump` (per partition) that pass `keep`, with `map` applied. */
function select(dump: Map<number, OracleRecord[]>, keep: (r: OracleRecord) => boolean, map: (r: OracleRecord) => OracleRecord = (r) => r): Map<number, OracleRecord[]> {
  return new Map([...dump].map(([p, list]) => [p, list.filter(keep).map(map)]))
}

describe('active-active, fan-out and fan-in (real stack, Kafka Java clients as the oracle)', function () {
  this.timeout(300000)
  let stack: LocalStack
  let controller: FerryProcess
  let worker: FerryProcess
  let api: (method: string, path: string, body?: unknown) => Promise<HttpResult>
  const aa = uniqueName('aa')
  const fanOut = uniqueName('fanout')
  const regionA = uniqueName('region-a')
  const regionB = uniqueName('region-b')
  const aggregate = uniqueName('aggregate')
  const produced = new Map<string, ProduceSummary>()

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    process.stderr.write(`      [oracle] seed ${SEED} (set FERRY_ORACLE_SEED to replay)\n`)
    const deployment = uniqueName('aa')
    const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '4000', ...stackSecretFlags(stack)]
    controller = new FerryProcess('aa-controller', ['bootstrap', '--role', 'controller', '--id', 'c1', '--port', '0', '--rebalance-debounce-ms', '500', ...common])
    worker = new FerryProcess('aa-worker', ['bootstrap', '--role', 'worker', '--id', 'w1', '--metrics-port', '0', ...common])
    // One at a time: concurrent creates with waitForLeaders can read metadata before a partition has its leader.
    for (const [brokers, topic] of [[stack.source.plaintext, aa], [stack.target.plaintext, aa], [stack.source.plaintext, fanOut], [stack.source.plaintext, regionA], [stack.target.plaintext, regionB], [stack.target.plaintext, aggregate]] as const) await createTopic(brokers, topic, 2)
    const redis = new Redis(stack.redis.url)
    try {
      const [live] = await Promise.all([
        waitFor('controller and worker registered', async () => {
          const instances = await listInstances(redis, createKeys(deployment))
          return instances.some((i) => i.role === 'worker') ? instances.find((i) => i.role === 'controller' && i.url) : undefined
        }, 90000),
        // The fan-out and fan-in sources are written while the processes start.
        (async () => produced.set(fanOut, await oracleProduce(stack.source.plaintext, fanOut, { profile: 'shapes', seed: SEED, count: 300 })))(),
        (async () => produced.set(regionA, await oracleProduce(stack.source.plaintext, regionA, { profile: 'steady', seed: SEED + 1, count: 400, rate: 2000 })))(),
        (async () => produced.set(regionB, await oracleProduce(stack.target.plaintext, regionB, { profile: 'steady', seed: SEED + 2, count: 400, rate: 2000 })))(),
      ])
      const url = live.url as string
      api = (method, path, body) => http(method, `${url}${path}`, body)
    } finally {
      redis.disconnect()
    }
    // Cluster A is the source cluster through its mTLS listener, cluster B the target cluster.
    const clusters = [
      { name: 'a', bootstrapServers: [stack.source.ssl], securityProtocol: 'SSL', tls: { caFile: stack.source.caFile, certFile: stack.source.clientCertFile, keyFile: stack.source.clientKeyFile } },
      { name: 'b', bootstrapServers: [stack.target.plaintext] },
    ]
    for (const cluster of clusters) expect((await api('POST', '/v1/clusters', cluster)).status).to.equal(201)
  })

  after(async function () {
    this.timeout(60000)
    await Promise.all([controller?.stop(20000), worker?.stop(20000)])
  })

  /** Per-partition positions of a group equal `ends` (its source's ends), as the controller reports them. */
  const caughtUp = async (group: string, ends: Map<number, number>): Promise<boolean> => {
    const view = await api('GET', `/v1/groups/${group}`)
    const rows = (view.body as { partitions?: Array<{ partition: number; position: number | null; highWatermark?: number | null }> }).partitions ?? []
    return rows.length === ends.size && rows.every((r) => r.position === ends.get(r.partition) && r.highWatermark === ends.get(r.partition))
  }
  const same = (x: Map<number, number>, y: Map<number, number>): boolean => x.size === y.size && [...x].every(([p, o]) => y.get(p) === o)

  it('refuses a group that mirrors a topic back onto itself without provenance on both: 409 naming both groups and the topic, nothing written', async () => {
    const ab = await api('POST', '/v1/groups', { name: 'aa-ab', sourceCluster: 'a', targetCluster: 'b', topics: [aa], provenance: true, start: false })
    expect(ab.status, ab.text).to.equal(201)
    const refused = await api('POST', '/v1/groups', { name: 'aa-ba', sourceCluster: 'b', targetCluster: 'a', topics: [aa], start: false })
    expect(refused.status, refused.text).to.equal(409)
    const error = (refused.body as { error: { code: string; message: string; details: Array<{ field: string }> } }).error
    expect(error.code).to.equal('CONFLICT')
    expect(error.message).to.include('mirror loop').and.include('"aa-ab"').and.include('"aa-ba"').and.include(`topic "${aa}"`).and.include('provenance: true').and.include('missing on "aa-ba"')
    expect(error.details.map((d) => d.field)).to.deep.equal(['provenance'])
    expect((await api('GET', '/v1/groups/aa-ba')).status, 'the refused group was not created').to.equal(404)
    // A pattern catching the topic is the same loop.
    const pattern = await api('POST', '/v1/groups', { name: 'aa-ba', sourceCluster: 'b', targetCluster: 'a', topicPattern: 'aa-.*', provenance: false, start: false })
    expect(pattern.status, pattern.text).to.equal(409)
    expect((pattern.body as { error: { message: string } }).error.message).to.include(`topic "${aa}"`)
  })

  it(`active-active: producers write to both clusters for ${SECONDS} s; each ends with every record of both once, ferry.origin on the mirrored ones, and the counts stop growing`, async function () {
    this.timeout((SECONDS + 200) * 1000)
    const [idA, idB] = await Promise.all([clusterIdOf(stack.source.plaintext), clusterIdOf(stack.target.plaintext)])
    const ba = await api('POST', '/v1/groups', { name: 'aa-ba', sourceCluster: 'b', targetCluster: 'a', topics: [aa], provenance: true })
    expect(ba.status, ba.text).to.equal(201)
    expect((await api('POST', '/v1/groups/aa-ab/start')).status).to.equal(200)
    const [onA, onB] = await Promise.all([
      oracleProduce(stack.source.plaintext, aa, { profile: 'steady', seed: SEED + 3, count: RATE * SECONDS, rate: RATE }),
      oracleProduce(stack.target.plaintext, aa, { profile: 'steady', seed: SEED + 4, count: RATE * SECONDS, rate: RATE }),
    ])
    // At rest: both groups at the end of their source, and neither end moved while we looked.
    const rest = await waitFor('both groups caught up with ends that no longer move', async () => {
      const before = { a: await partitionEnds(stack.source.plaintext, aa), b: await partitionEnds(stack.target.plaintext, aa) }
      if (!(await caughtUp('aa-ab', before.a)) || !(await caughtUp('aa-ba', before.b))) return undefined
      const after = { a: await partitionEnds(stack.source.plaintext, aa), b: await partitionEnds(stack.target.plaintext, aa) }
      return same(before.a, after.a) && same(before.b, after.b) ? after : undefined
    }, 150000, 1000)
    const [dumpA, dumpB] = await Promise.all([oracleDump(stack.source.plaintext, aa), oracleDump(stack.target.plaintext, aa)])

    const strip = (r: OracleRecord): OracleRecord => ({ ...r, h: r.h.slice(0, -1) })
    const report: string[] = []
    for (const [here, dump, own, other, ownId, otherId, ownCount] of [
      ['A', dumpA, dumpA, dumpB, idA, idB, onA.committed],
      ['B', dumpB, dumpB, dumpA, idB, idA, onB.committed],
    ] as const) {
      const local = select(own, (r) => originOf(r) === undefined)
      expect(countRecords(local), `cluster ${here} keeps exactly what its producer wrote`).to.equal(ownCount)
      const all = [...dump.values()].flat()
      expect(all.filter((r) => originOf(r) === ownId), `no record of cluster ${here} came back to it`).to.deep.equal([])
      const mirrored = all.filter((r) => originOf(r) !== undefined)
      expect(mirrored.every((r) => r.h[r.h.length - 1]?.[0] === ORIGIN_KEY && originOf(r) === otherId), `the records mirrored into ${here} carry ferry.origin = the other cluster's id, as their last header`).to.equal(true)
      // Every record of the other cluster, once, in order, byte for byte once the header is removed.
      const otherLocal = select(other, (r) => originOf(r) === undefined)
      const comparison = compareMirror(otherLocal, select(dump, (r) => originOf(r) !== undefined, strip), 'at-least-once')
      expect(comparison.missing, describeComparison(comparison)).to.equal(0)
      expect(comparison.problems, describeComparison(comparison)).to.deep.equal([])
      expect(comparison.duplicates, `duplicates into ${here} are bounded (at most 1%): ${describeComparison(comparison)}`).to.be.at.most(Math.ceil(countRecords(otherLocal) / 100))
      expect(countRecords(dump)).to.equal(ownCount + countRecords(otherLocal) + comparison.duplicates)
      report.push(`${here}: ${ownCount} own + ${countRecords(otherLocal)} mirrored + ${comparison.duplicates} duplicates`)
    }
    process.stderr.write(`      [active-active] ${report.join('; ')}\n`)
    // Still at rest after the reads (seconds later): the record counts stopped growing.
    expect(same(await partitionEnds(stack.source.plaintext, aa), rest.a), 'cluster A grew after rest').to.equal(true)
    expect(same(await partitionEnds(stack.target.plaintext, aa), rest.b), 'cluster B grew after rest').to.equal(true)
    // Each group saw the other's mirrored records and left them out (counted once or more).
    const metricsUrl = await waitFor('the worker metrics listener', () => {
      const line = worker.log().split('\n').filter((l) => l.includes('"worker.metrics_listening"')).pop()
      return line === undefined ? undefined : (JSON.parse(line) as { url: string }).url
    })
    const metrics = (await http('GET', metricsUrl)).text
    for (const [group, atLeast] of [['aa-ab', onB.committed], ['aa-ba', onA.committed]] as const) {
      // The worker's registry adds default labels (worker id ...) next to group.
      const sample = new RegExp(`^ferry_worker_records_loop_dropped_total\\{[^}]*group="${group}"[^}]*\\} (\\d+)`, 'm').exec(metrics)
      expect(Number(sample?.[1]), `${group} left out the records that came from its target`).to.be.at.least(atLeast)
    }
  })

  it('fan-out: one source topic into two clusters (the target, and the source under a prefix), every record exactly as written', async () => {
    for (const [name, targetCluster, rename] of [['fan-b', 'b', undefined], ['fan-a', 'a', { prefix: 'copy.' }]] as const) {
      const created = await api('POST', '/v1/groups', { name, sourceCluster: 'a', targetCluster, topics: [fanOut], delivery: 'exactly-once', ...(rename ? { rename } : {}) })
      expect(created.status, created.text).to.equal(201)
    }
    const source = await oracleDump(stack.source.plaintext, fanOut)
    expect(countRecords(source)).to.equal(produced.get(fanOut)?.committed)
    for (const [brokers, topic] of [[stack.target.plaintext, fanOut], [stack.source.plaintext, `copy.${fanOut}`]] as const) {
      const comparison = await waitFor(`${topic} complete`, async () => {
        const c = compareMirror(source, await oracleDump(brokers, topic), 'exact')
        return c.missing === 0 ? c : undefined
      }, 90000, 1000).catch(async () => compareMirror(source, await oracleDump(brokers, topic), 'exact'))
      expect(comparison.problems, `${topic}: ${describeComparison(comparison)}`).to.deep.equal([])
      expect(comparison.missing, `${topic}: ${describeComparison(comparison)}`).to.equal(0)
    }
  })

  it('fan-in: a topic on each cluster into one aggregate topic, each source\'s records complete, in order and exactly as written', async () => {
    for (const [name, sourceCluster, topic] of [['in-a', 'a', regionA], ['in-b', 'b', regionB]] as const) {
      const created = await api('POST', '/v1/groups', { name, sourceCluster, targetCluster: 'b', topics: [topic], rename: { map: { [topic]: aggregate } }, delivery: 'exactly-once' })
      expect(created.status, created.text).to.equal(201)
    }
    const [fromA, fromB] = await Promise.all([oracleDump(stack.source.plaintext, regionA), oracleDump(stack.target.plaintext, regionB)])
    const expected = countRecords(fromA) + countRecords(fromB)
    expect(expected).to.equal((produced.get(regionA)?.committed ?? 0) + (produced.get(regionB)?.committed ?? 0))
    const merged = await waitFor('the aggregate holds both sources', async () => {
      const dump = await oracleDump(stack.target.plaintext, aggregate)
      return countRecords(dump) >= expected ? dump : undefined
    }, 90000, 1000)
    expect(countRecords(merged), 'nothing more than both sources').to.equal(expected)
    // preservePartition (the default): each source partition lands in the aggregate partition of its number, interleaved with the other source's.
    for (const [label, source] of [['region A', fromA], ['region B', fromB]] as const) {
      const values = new Set([...source.values()].flat().map((r) => r.v))
      const comparison = compareMirror(source, select(merged, (r) => values.has(r.v)), 'exact')
      expect(comparison.problems, `${label}: ${describeComparison(comparison)}`).to.deep.equal([])
      expect(comparison.missing, `${label}: ${describeComparison(comparison)}`).to.equal(0)
    }
  })
})
