/**
 * A mirrored source topic grows twice (6 → 8 → 10 partitions) while Kafka's Java producer writes
 * 1,000 records/s to every partition it knows, mirrored by an at-least-once and an exactly-once
 * group at once. Afterwards the Java consumer finds every source record on the target, per
 * partition and in order, and the group status never called a partition caught up (lag 0) while
 * the target was short of it.
 */
import { expect } from 'chai'
import type { LocalStack } from '../../deploy/local-stack.js'
import { sharedStack, uniqueName, waitFor } from './harness.js'
import { addPartitions, createTopic } from './kafka-helpers.js'
import { startMirrorDeployment, type MirrorDeployment } from './mirror-setup.js'
import { compareMirror, countRecords, describeComparison, oracleDump, oracleProduce, type Comparison, type OracleRecord } from './oracle.js'

const RATE = 1000
const RECORDS = 30000

interface StatusRow {
  topic: string
  partition: number
  state: string
  position: number | null
  highWatermark?: number | null
  lag?: number | null
}

describe('partition growth under load (real stack, Kafka Java clients as the oracle)', function () {
  this.timeout(240000)
  let stack: LocalStack
  let ferry: MirrorDeployment

  before(async function () {
    this.timeout(300000)
    stack = await sharedStack()
    ferry = await startMirrorDeployment(stack, 'growth')
  })

  after(async function () {
    this.timeout(60000)
    await ferry?.stop()
  })

  it('grown 6 → 8 → 10 at 1,000 records/s: nothing missing in either delivery mode, and the status agrees with the target', async () => {
    const topic = uniqueName('growing')
    await createTopic(stack.source.plaintext, topic, 6)
    const groups = [
      { name: 'grow-alo', prefix: 'galo.', delivery: 'at-least-once', mode: 'at-least-once' },
      { name: 'grow-eos', prefix: 'geos.', delivery: 'exactly-once', mode: 'exact' },
    ] as const
    for (const g of groups) {
      const created = await ferry.api('POST', '/v1/groups', { name: g.name, sourceCluster: 'src-tls', targetCluster: 'dst', topics: [topic], rename: { prefix: g.prefix }, delivery: g.delivery })
      expect(created.status, created.text).to.equal(201)
      await waitFor(`${g.name} mirroring its 6 partitions`, async () => {
        const rows = (await ferry.api('GET', `/v1/groups/${g.name}`)).body?.partitions as StatusRow[] | undefined
        return rows?.length === 6 && rows.every((r) => r.state === 'mirroring')
      }, 60000)
    }

    let produced = 0
    const producing = oracleProduce(stack.source.plaintext, topic, { profile: 'steady', count: RECORDS, rate: RATE }, (n) => (produced = n))
    const grown: string[] = []
    const growing = (async () => {
      for (const [after, count] of [[RECORDS / 4, 8], [RECORDS / 2, 10]] as const) {
        await waitFor(`${after} records produced`, () => produced >= after, 90000, 100)
        await addPartitions(stack.source.plaintext, topic, count)
        grown.push(`${count} partitions at record ~${produced}`)
      }
    })()
    const [summary] = await Promise.all([producing, growing])
    expect(summary.committed).to.equal(RECORDS)
    const source = await oracleDump(stack.source.plaintext, topic)
    expect(countRecords(source)).to.equal(RECORDS)
    // The producer saw the new partitions: they hold records written after each growth.
    for (const partition of [6, 7, 8, 9]) expect((source.get(partition) ?? []).length, `source partition ${partition}`).to.be.greaterThan(0)

    // Poll status, then the target (which only grows): a partition the status calls caught up
    // must already be complete on the target.
    const violations: string[] = []
    const last = new Map<string, Comparison>()
    const settled = new Set<string>()
    const deadline = Date.now() + 90000
    while (settled.size < groups.length && Date.now() < deadline) {
      for (const g of groups) {
        if (settled.has(g.name)) continue
        const rows = ((await ferry.api('GET', `/v1/groups/${g.name}`)).body?.partitions ?? []) as StatusRow[]
        const comparison = compareMirror(source, await oracleDump(stack.target.plaintext, `${g.prefix}${topic}`).catch(() => new Map<number, OracleRecord[]>()), g.mode)
        last.set(g.name, comparison)
        for (const row of rows) {
          const short = comparison.partitions.find((p) => p.partition === row.partition)
          if (row.lag === 0 && short !== undefined && short.missing > 0) {
            violations.push(`${g.name} partition ${row.partition}: status position ${row.position}, highWatermark ${row.highWatermark}, lag 0, but the target misses ${short.missing} of ${short.source} source records`)
          }
        }
        const caughtUp = rows.length === 10 && rows.every((r) => r.lag === 0 && r.state === 'mirroring')
        if (comparison.missing === 0 && comparison.problems.length === 0 && caughtUp) settled.add(g.name)
      }
      if (settled.size < groups.length) await new Promise((resolve) => setTimeout(resolve, 1000))
    }
    const failures = groups.flatMap((g) => {
      const comparison = last.get(g.name)
      return comparison && (comparison.missing > 0 || comparison.problems.length > 0) ? [`${g.name} (${grown.join(', ')}): ${describeComparison(comparison)}`] : []
    })
    const unique = [...new Set(violations)]
    if (unique.length > 0) failures.push(`the status said caught up while the target was short (${unique.length} observations):\n${unique.slice(0, 20).join('\n')}`)
    expect(failures, failures.join('\n\n')).to.deep.equal([])
    expect([...settled].sort(), 'both groups report 10 partitions mirroring with lag 0').to.deep.equal(groups.map((g) => g.name).sort())
  })
})
