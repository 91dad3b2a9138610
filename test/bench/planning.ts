/**
 * Planning benchmark (issue 4): how long the controller's planner takes for 100,000
 * partitions over 500 workers, and how many partitions move when one worker leaves or joins.
 * Pure computation, no servers. Writes its section of docs/benchmarks.md.
 *
 *   npm run bench:planning
 */
import { cpus, loadavg, totalmem } from 'node:os'
import { performance } from 'node:perf_hooks'
import { parseTopicGroup } from '../../common/config.js'
import type { AssignmentRecord, Versioned } from '../../common/store.js'
import { planAssignments, type PlanGroup, type PlanInput } from '../../controller/plan.js'
import { writeSection } from '../report-section.js'

const PARTITIONS = 100_000
const WORKERS = 500
const GROUPS = 20
const RUNS = 9
const ZONES = ['z1', 'z2']

/** What the bench places: every strategy the product ships, and load-aware with reported load. */
type Case = 'balanced' | 'load-aware' | 'load-aware, reported load' | 'zone-aware'
const CASES: readonly Case[] = ['balanced', 'zone-aware', 'load-aware', 'load-aware, reported load']

function groups(kind: Case): PlanGroup[] {
  const perGroup = PARTITIONS / GROUPS
  const strategy = kind === 'load-aware, reported load' ? 'load-aware' : kind
  return Array.from({ length: GROUPS }, (_, g) => {
    const name = `g${g}`
    // zone-aware: half the groups in each zone, each zone with half the workers.
    const zone = strategy === 'zone-aware' ? { zone: ZONES[g % ZONES.length] } : {}
    const spec = parseTopicGroup({ name, sourceCluster: 'src', targetCluster: 'dst', topicPattern: '.*', strategy, ...zone })
    // 50 topics of 100 partitions per group.
    const partitions = Array.from({ length: perGroup }, (_, i) => ({ group: name, topic: `t${Math.floor(i / 100)}`, partition: i % 100 }))
    return { spec, running: true, partitions }
  })
}

function workers(count: number, offset = 0): Array<{ id: string; zone: string }> {
  return Array.from({ length: count }, (_, i) => ({ id: `w${String(i + offset).padStart(4, '0')}`, zone: ZONES[(i + offset) % ZONES.length] as string }))
}

/** Reported load as the reconciler passes it: partition key → bytes/s + 1, spread over 1 B/s to 1 MB/s. */
function reportedLoad(gs: readonly PlanGroup[]): Map<string, number> {
  const weights = new Map<string, number>()
  let n = 0
  for (const g of gs) for (const p of g.partitions) weights.set(`${p.group}/${p.topic}/${p.partition}`, 1 + ((n++ * 7919) % 1000) * 1000)
  return weights
}

function apply(changes: Map<string, AssignmentRecord | null>, current: Map<string, Versioned<AssignmentRecord>>): Map<string, Versioned<AssignmentRecord>> {
  const next = new Map(current)
  for (const [worker, record] of changes) {
    if (record === null) next.delete(worker)
    else next.set(worker, { value: record, version: 0 })
  }
  return next
}

function time(input: PlanInput): { ms: number; minMs: number; plan: ReturnType<typeof planAssignments> } {
  const samples: number[] = []
  let plan = planAssignments(input)
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now()
    plan = planAssignments(input)
    samples.push(performance.now() - start)
  }
  samples.sort((a, b) => a - b)
  return { ms: samples[Math.floor(samples.length / 2)] as number, minMs: samples[0] as number, plan }
}

const loadAtStart = loadavg()[0] ?? 0
const rows: string[] = []
for (const kind of CASES) {
  const gs = groups(kind)
  const base = { groups: gs, epoch: 1, leader: 'c', ...(kind === 'load-aware, reported load' ? { weights: reportedLoad(gs) } : {}) }
  const first = time({ ...base, workers: workers(WORKERS), current: new Map() })
  const settled = apply(first.plan.changes, new Map())
  const steady = time({ ...base, workers: workers(WORKERS), current: settled })
  const leave = time({ ...base, workers: workers(WORKERS).filter((w) => w.id !== 'w0250'), current: settled })
  const join = time({ ...base, workers: [...workers(WORKERS), { id: 'w9999', zone: 'z1' }], current: settled })
  const held = settled.get('w0250')?.value.partitions.length ?? 0
  // zone-aware: the joiner competes only within its zone, for that zone's groups.
  const [p, w] = kind === 'zone-aware' ? [PARTITIONS / ZONES.length, WORKERS / ZONES.length + 1] : [PARTITIONS, WORKERS + 1]
  // Workers report load only for partitions they serve: an initial placement has none to use.
  if (kind !== 'load-aware, reported load') rows.push(`| ${kind} | initial placement | ${first.ms.toFixed(0)} | ${first.minMs.toFixed(0)} | ${first.plan.moves.length} |`)
  rows.push(
    `| ${kind} | settled (no change) | ${steady.ms.toFixed(0)} | ${steady.minMs.toFixed(0)} | ${steady.plan.moves.length} |`,
    `| ${kind} | 1 of 500 leaves (held ${held}) | ${leave.ms.toFixed(0)} | ${leave.minMs.toFixed(0)} | ${leave.plan.moves.length} |`,
    `| ${kind} | 1 joins (ceil(P/W) = ${Math.ceil(p / w)}) | ${join.ms.toFixed(0)} | ${join.minMs.toFixed(0)} | ${join.plan.moves.length} |`,
  )
}

const cpu = cpus()[0]?.model ?? 'unknown CPU'
const section = [
  `Planner over ${PARTITIONS.toLocaleString('en')} partitions (${GROUPS} groups × 50 topics × 100 partitions) and ${WORKERS} workers;`,
  `median and fastest of ${RUNS} runs after one warm-up (the fastest is the least disturbed by other load). Machine: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version};`,
  `1-minute load average ${loadAtStart.toFixed(1)} at the start (the machine is shared).`,
  'zone-aware: workers and groups split over two zones (250 workers and 50,000 partitions each);',
  'load-aware, reported load: every assigned partition reports a load between 1 B/s and 1 MB/s, as workers do',
  '(no initial placement row: workers report only what they serve, so a first placement has no load to use).',
  '',
  '| strategy | scenario | plan time, median (ms) | fastest run (ms) | partitions moved |',
  '|---|---|---:|---:|---:|',
  ...rows,
  '',
  'No throttle (`maxMovesPerPass`) applied here: the counts are what the strategy itself moves.',
].join('\n')
process.stdout.write(`${section}\n`)
writeSection('benchmarks.md', 'Ferry benchmarks', 'Controller planning (issue 4)', 'npm run bench:planning', section)
