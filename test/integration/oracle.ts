/**
 * The record oracle: Kafka's own Java producer and consumer (test/oracle/RecordOracle.java,
 * compiled on first use against the stack's Kafka jars) write the records Ferry mirrors and read
 * both sides back. kafkajs is the client under test, so it cannot be the judge: it hides null
 * header values and header order. The comparison is per partition, in order, byte for byte:
 * key, value, the ordered header list (null values included) and the timestamp.
 *
 * ```ts
 * const summary = await oracleProduce(stack.source.plaintext, topic, { profile: 'shapes', seed: 7, count: 400 })
 * const source = await oracleDump(stack.source.plaintext, topic)
 * const result = compareMirror(source, await oracleDump(stack.target.plaintext, topic), 'exact')
 * expect(result.problems, describeComparison(result)).to.deep.equal([])
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureKafkaJars, kafkaClasspath } from '../../deploy/local-stack.js'

const SOURCE_FILE = fileURLToPath(new URL('../../../test/oracle/RecordOracle.java', import.meta.url))
const RUN_TIMEOUT_MS = 150_000

/** One record as Kafka's Java consumer saw it. Bytes are base64; null stays null. */
export interface OracleRecord {
  p: number
  o: number
  /** CreateTime or LogAppendTime. */
  tt: string
  ts: number
  k: string | null
  v: string | null
  /** Ordered [key (base64 of its UTF-8), value base64 | null] pairs. */
  h: Array<[string, string | null]>
}

export interface ProduceOptions {
  profile: 'shapes' | 'steady' | 'compact' | 'refused'
  /** Printed in the summary; random when unset. */
  seed?: number
  count?: number
  /** Records per second (steady). */
  rate?: number
  /** Size of the big records (shapes: just under max.message.bytes; refused: over the target's). */
  bigBytes?: number
  /** Compact: how long to keep writing rounds until the cleaner has removed records. */
  deadlineMs?: number
  keys?: number
}

export interface ProduceSummary {
  seed: number
  profile: string
  /** Records written and committed (aborted transactions not counted). */
  committed: number
  aborted?: number
  big?: number
  rounds?: number
  present?: number
  offsets?: number[]
  perPartition?: Record<string, number>
}

let compiled: Promise<string> | undefined

/** The classpath with the compiled oracle first; compiles once per source version into the cache. */
export function oracleClasspath(): Promise<string> {
  compiled ??= (async () => {
    const libDir = await ensureKafkaJars(() => undefined)
    const kafka = await kafkaClasspath(libDir)
    const source = readFileSync(SOURCE_FILE)
    const hash = createHash('sha256').update(source).digest('hex').slice(0, 16)
    const cacheRoot = process.env.FERRY_CACHE_DIR || path.join(os.homedir(), '.cache', 'ferry')
    const classes = path.join(cacheRoot, `record-oracle-${hash}`)
    if (!existsSync(path.join(classes, 'RecordOracle.class'))) {
      // Compiled next to the final directory and renamed: a concurrent run never sees half a build.
      const building = `${classes}.${randomBytes(4).toString('hex')}`
      mkdirSync(building, { recursive: true })
      try {
        await promisify(execFile)('javac', ['-nowarn', '-encoding', 'UTF-8', '-cp', kafka, '-d', building, SOURCE_FILE], { maxBuffer: 16 * 1024 * 1024 })
      } catch (error) {
        rmSync(building, { recursive: true, force: true })
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('javac is not on PATH; the record oracle needs a JDK 17+ (Debian: apt-get install openjdk-17-jdk-headless)')
        throw new Error(`compiling ${SOURCE_FILE} failed: ${(error as { stderr?: string }).stderr ?? String(error)}`)
      }
      try {
        renameSync(building, classes)
      } catch {
        // Another run renamed its build first: the same source, so the same classes.
        rmSync(building, { recursive: true, force: true })
      }
    }
    return `${classes}${path.delimiter}${kafka}`
  })()
  return compiled
}

/** A running oracle: its stdout when it ends, and each stderr line as it comes. */
export interface OracleRun {
  child: ChildProcess
  done: Promise<string>
}

export async function startOracle(args: readonly string[], onLine: (line: string) => void = () => undefined): Promise<OracleRun> {
  const classpath = await oracleClasspath()
  const child = spawn('java', ['-Xmx384m', '-XX:TieredStopAtLevel=1', `-Dlog4j.configuration=file:${quietLog4j()}`, '-cp', classpath, 'RecordOracle', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  let partial = ''
  child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')))
  child.stderr?.on('data', (chunk: Buffer) => {
    const text = partial + chunk.toString('utf8')
    const lines = text.split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) {
      if (line.startsWith('progress ')) onLine(line)
      else stderr += `${line}\n`
    }
  })
  const done = new Promise<string>((resolve, reject) => {
    // Never left behind: a client that cannot reach its broker retries for minutes.
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS)
    child.once('error', reject)
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(stdout)
      else reject(new Error(`RecordOracle ${args.join(' ')} exited ${code}:\n${stderr.slice(-3000)}`))
    })
  })
  return { child, done }
}

let log4jFile: string | undefined
/** The Java clients log at WARN to stderr; INFO would bury the oracle's own errors. */
function quietLog4j(): string {
  if (log4jFile === undefined) {
    log4jFile = path.join(os.tmpdir(), `ferry-oracle-log4j-${process.pid}.properties`)
    writeFileSync(log4jFile, 'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n\n')
  }
  return log4jFile
}

function produceArgs(brokers: string, topic: string, options: ProduceOptions): string[] {
  const args = ['produce', '--bootstrap', brokers, '--topic', topic, '--profile', options.profile, '--seed', String(options.seed ?? Math.floor(Math.random() * 2 ** 31))]
  if (options.count !== undefined) args.push('--count', String(options.count))
  if (options.rate !== undefined) args.push('--rate', String(options.rate))
  if (options.bigBytes !== undefined) args.push('--big-bytes', String(options.bigBytes))
  if (options.deadlineMs !== undefined) args.push('--deadline-ms', String(options.deadlineMs))
  if (options.keys !== undefined) args.push('--keys', String(options.keys))
  return args
}

/** Writes records with Kafka's Java producer; resolves with its summary (seed included). */
export async function oracleProduce(brokers: string, topic: string, options: ProduceOptions, onProgress?: (records: number) => void): Promise<ProduceSummary> {
  const run = await startOracle(produceArgs(brokers, topic, options), (line) => onProgress?.(Number(line.split(' ')[1])))
  const out = await run.done
  const summary = JSON.parse(out.trim().split('\n').pop() ?? '{}') as ProduceSummary
  process.stderr.write(`      [oracle] produced ${topic}: ${JSON.stringify(summary)}\n`)
  return summary
}

/** Every record of a topic, per partition in offset order, read with Kafka's Java consumer. */
export async function oracleDump(brokers: string, topic: string, isolation: 'read_committed' | 'read_uncommitted' = 'read_committed'): Promise<Map<number, OracleRecord[]>> {
  const file = path.join(os.tmpdir(), `ferry-oracle-${process.pid}-${randomBytes(6).toString('hex')}.ndjson`)
  try {
    const run = await startOracle(['dump', '--bootstrap', brokers, '--topic', topic, '--isolation', isolation, '--out', file])
    await run.done
    const result = new Map<number, OracleRecord[]>()
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line.length === 0) continue
      const record = JSON.parse(line) as OracleRecord
      const list = result.get(record.p) ?? []
      list.push(record)
      result.set(record.p, list)
    }
    return result
  } finally {
    rmSync(file, { force: true })
  }
}

/** The producer epoch of each transactional id the coordinator knows, read with Kafka's Java Admin. */
export async function oracleEpochs(brokers: string, ids: readonly string[]): Promise<Map<string, number>> {
  const run = await startOracle(['epochs', '--bootstrap', brokers, '--ids', ids.join(',')])
  const out = await run.done
  return new Map(Object.entries(JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, number>))
}

export function countRecords(records: Map<number, OracleRecord[]>): number {
  let total = 0
  for (const list of records.values()) total += list.length
  return total
}

// ---------------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------------

/** What must match: everything but the offset (compaction gaps and transaction markers differ) and the timestamp type. */
function identity(r: OracleRecord): string {
  return `${r.ts}|${r.k === null ? '-' : `"${r.k}"`}|${r.v === null ? '-' : `"${r.v}"`}|${JSON.stringify(r.h)}`
}

export interface PartitionComparison {
  partition: number
  source: number
  target: number
  /** Source records never found on the target (in order). */
  missing: number
  /** Target records that re-send earlier ones (at-least-once only). */
  duplicates: number
}

export interface Comparison {
  partitions: PartitionComparison[]
  missing: number
  duplicates: number
  /** Human-readable problems, first ones first. */
  problems: string[]
}

const short = (b64: string | null, max = 24): string => {
  if (b64 === null) return 'null'
  const bytes = Buffer.from(b64, 'base64')
  return bytes.length <= max ? `0x${bytes.toString('hex')}` : `${bytes.length} bytes 0x${bytes.subarray(0, max).toString('hex')}...`
}

export function describeRecord(r: OracleRecord): string {
  const headers = r.h.map(([k, v]) => `${Buffer.from(k, 'base64').toString('utf8')}=${short(v, 8)}`).join(', ')
  return `p${r.p}@${r.o} ${r.tt}=${r.ts} key=${short(r.k)} value=${short(r.v)} headers=[${headers}]`
}

/** Which fields differ between what the target holds and what the source record says. */
function fieldDiff(got: OracleRecord, want: OracleRecord): string {
  const diffs: string[] = []
  if (got.ts !== want.ts) diffs.push(`timestamp ${got.ts} (${got.tt}) != ${want.ts} (${want.tt})`)
  if (got.k !== want.k) diffs.push(`key ${short(got.k)} != ${short(want.k)}`)
  if (got.v !== want.v) diffs.push(`value ${short(got.v)} != ${short(want.v)}`)
  if (JSON.stringify(got.h) !== JSON.stringify(want.h)) diffs.push(`headers [${got.h.map(([k, v]) => `${Buffer.from(k, 'base64').toString()}=${short(v, 8)}`).join(', ')}] != [${want.h.map(([k, v]) => `${Buffer.from(k, 'base64').toString()}=${short(v, 8)}`).join(', ')}]`)
  return diffs.join('; ')
}

/**
 * Compares a mirror with its source, partition by partition.
 * - `exact` (exactly-once, read_committed): the target partition equals the source's.
 * - `at-least-once`: the target may re-send a contiguous run of records it already holds (a
 *   replay from a checkpoint), which counts as duplicates; any record missing, reordered or
 *   changed is a problem.
 * `partitionCount` covers partitions with no records on either side.
 */
export function compareMirror(source: Map<number, OracleRecord[]>, target: Map<number, OracleRecord[]>, mode: 'exact' | 'at-least-once', maxProblems = 12): Comparison {
  const problems: string[] = []
  const note = (text: string): void => {
    if (problems.length < maxProblems) problems.push(text)
    else if (problems.length === maxProblems) problems.push('... (more problems not shown)')
  }
  const partitions = [...new Set([...source.keys(), ...target.keys()])].sort((a, b) => a - b)
  const result: PartitionComparison[] = []
  for (const partition of partitions) {
    const want = source.get(partition) ?? []
    const got = target.get(partition) ?? []
    const wantIds = want.map(identity)
    let next = 0
    let replay = -1
    let duplicates = 0
    let missing = 0
    for (const record of got) {
      const id = identity(record)
      if (replay >= 0 && replay < next) {
        if (id === wantIds[replay]) {
          replay++
          duplicates++
          // The run has caught up: what follows must be new records.
          if (replay >= next) replay = -1
          continue
        }
        note(`partition ${partition}: a re-sent run broke off at source record ${want[replay]?.o}: target ${describeRecord(record)}; expected ${fieldDiff(record, want[replay] as OracleRecord)}`)
        replay = -1
      }
      if (next < want.length && id === wantIds[next]) {
        next++
        replay = -1
        continue
      }
      // An earlier record again: the start of a replay.
      const earlier = wantIds.lastIndexOf(id, next - 1)
      if (next > 0 && earlier >= 0) {
        duplicates++
        replay = earlier + 1
        continue
      }
      // A later record: the ones in between are missing.
      const later = wantIds.indexOf(id, next)
      if (later > next) {
        note(`partition ${partition}: ${later - next} source records missing before target offset ${record.o}: source offsets ${want[next]?.o}..${want[later - 1]?.o} (first: ${describeRecord(want[next] as OracleRecord)})`)
        missing += later - next
        next = later + 1
        continue
      }
      const expected = want[next]
      note(`partition ${partition}: target ${describeRecord(record)} matches no source record${expected ? `; the next source record is ${describeRecord(expected)}: ${fieldDiff(record, expected)}` : ' (the source has no more)'}`)
    }
    if (next < want.length) {
      note(`partition ${partition}: the last ${want.length - next} source records are missing on the target: source offsets ${want[next]?.o}..${want[want.length - 1]?.o} (first: ${describeRecord(want[next] as OracleRecord)})`)
      missing += want.length - next
    }
    if (mode === 'exact' && duplicates > 0) note(`partition ${partition}: ${duplicates} duplicates in an exactly-once mirror`)
    result.push({ partition, source: want.length, target: got.length, missing, duplicates })
  }
  return { partitions: result, missing: result.reduce((s, p) => s + p.missing, 0), duplicates: result.reduce((s, p) => s + p.duplicates, 0), problems }
}

export function describeComparison(c: Comparison): string {
  const table = c.partitions.map((p) => `  p${p.partition}: source ${p.source}, target ${p.target}, missing ${p.missing}, duplicates ${p.duplicates}`).join('\n')
  return `missing ${c.missing}, duplicates ${c.duplicates}\n${table}\n${c.problems.join('\n')}`
}
