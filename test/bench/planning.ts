/**
 * Planning benchmark (issue 4): how long the controller's planner takes for 100,000
 * partitions over 500 workers, and how many partitions move when one worker leaves or joins.
 * Pure computation, no servers. Writes its section of docs/benchmarks.md.
 *
 *   npm run bench:planning
 */
import { cpus, totalmem } from 'node:os'
import { performance } from 'node:perf_hooks'
import { parseTopicGroup } from '../../common/config.js'
import type { AssignmentRecord, Versioned } from '../../common/store.js'
import { planAssignments, type PlanGroup, type PlanInput } from '../../controller/plan.js'
import { writeSection } from '../report-section.js'

const PARTITIONS = 100_000
const WORKERS = 500
const GROUPS = 20
const RUNS = 5

function groups(strategy: 'balanced' | 'load-aware'): PlanGroup[] {
  const perGroup = PARTITIONS / GROUPS
  return Array.from({ length: GROUPS }, (_, g) => {
    const name = `g${g}`
    const spec = parseTopicGroup({ name, sourceCluster: 'src', targetCluster: 'dst', topicPattern: '.*', strategy })
    // 50 topics of 100 partitions per group.
    const partitions = Array.from({ length: perGroup }, (_, i) => ({ group: name, topic: `t${Math.floor(i / 100)}`, partition: i % 100 }))
    return { spec, running: true, partitions }
  })
}

function workers(count: number, offset = 0): Array<{ id: string }> {
  return Array.from({ length: count }, (_, i) => ({ id: `w${String(i + offset).padStart(4, '0')}` }))
}

function apply(changes: Map<string, AssignmentRecord | null>, current: Map<string, Versioned<AssignmentRecord>>): Map<string, Versioned<AssignmentRecord>> {
  const next = new Map(current)
  for (const [worker, record] of changes) {
    if (record === null) next.delete(worker)
    else next.set(worker, { value: record, version: 0 })
  }
  return next
}

function time(input: PlanInput): { ms: number; plan: ReturnType<typeof planAssignments> } {
  const samples: number[] = []
  let plan = planAssignments(input)
  for (let i = 0; i < RUNS; i++) {
    const start = performance.now()
    plan = planAssignments(input)
    samples.push(performance.now() - start)
  }
  samples.sort((a, b) => a - b)
  return { ms: samples[Math.floor(samples.length / 2)] as number, plan }
}

const rows: string[] = []
for (const strategy of ['balanced', 'load-aware'] as const) {
  const gs = groups(strategy)
  const base = { groups: gs, epoch: 1, leader: 'c' }
  const first = time({ ...base, workers: workers(WORKERS), current: new Map() })
  const settled = apply(first.plan.changes, new Map())
  const steady = time({ ...base, workers: workers(WORKERS), current: settled })
  const leave = time({ ...base, workers: workers(WORKERS).filter((w) => w.id !== 'w0250'), current: settled })
  const join = time({ ...base, workers: [...workers(WORKERS), { id: 'w9999' }], current: settled })
  const held = settled.get('w0250')?.value.partitions.length ?? 0
  rows.push(
    `| ${strategy} | initial placement | ${first.ms.toFixed(0)} | ${first.plan.moves.length} |`,
    `| ${strategy} | settled (no change) | ${steady.ms.toFixed(0)} | ${steady.plan.moves.length} |`,
    `| ${strategy} | 1 of 500 leaves (held ${held}) | ${leave.ms.toFixed(0)} | ${leave.plan.moves.length} |`,
    `| ${strategy} | 1 joins (ceil(P/W) = ${Math.ceil(PARTITIONS / (WORKERS + 1))}) | ${join.ms.toFixed(0)} | ${join.plan.moves.length} |`,
  )
}

const cpu = cpus()[0]?.model ?? 'unknown CPU'
const section = [
  `Planner over ${PARTITIONS.toLocaleString('en')} partitions (${GROUPS} groups × 50 topics × 100 partitions) and ${WORKERS} workers;`,
  `median of ${RUNS} runs after one warm-up. Machine: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}.`,
  '',
  '| strategy | scenario | plan time (ms) | partitions moved |',
  '|---|---|---:|---:|',
  ...rows,
  '',
  'No throttle (`maxMovesPerPass`) applied here: the counts are what the strategy itself moves.',
].join('\n')
process.stdout.write(`${section}\n`)
writeSection('benchmarks.md', 'Ferry benchmarks', 'Controller planning (issue 4)', 'npm run bench:planning', section)
