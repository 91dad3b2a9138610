/**
 * The source-version lanes (`npm run test:lanes`): the integration tests that talk to the source
 * cluster, run once per older Kafka release of the source, the target staying on the default
 * release (deploy/pom.xml). `npm test` covers the default release on both sides with every suite;
 * a lane starts its own stack with `FERRY_SOURCE_KAFKA_VERSION` (a release before 3.0 runs in
 * ZooKeeper mode, see deploy/local-stack.ts).
 *
 * Lanes: `FERRY_TEST_LANES` (comma-separated releases), default 3.9.1 and 2.8.2. Each lane's
 * mocha output is shown as it runs; the last line sums them: "N passed, N failed".
 */
import { spawn } from 'node:child_process'

/** Integration tests whose subject is reading the source: the data path, its security and its stack. */
export const LANE_TESTS = [
  'local-stack',
  'mirror',
  'record-shapes',
  'compression',
  'delivery',
  'partition-growth',
  'secrets',
  'healing',
  'topic-follow',
] as const

/** The Kafka port's contract (test/contract/): its fetch guarantees are checked against each lane's source. */
export const LANE_CONTRACT_TESTS = ['kafkajs'] as const

export const DEFAULT_LANES = ['3.9.1', '2.8.2'] as const

async function runLane(version: string): Promise<{ passed: number; failed: number }> {
  process.stdout.write(`\n=== lane: source Kafka ${version} -> target on the default release ===\n`)
  const files = [...LANE_CONTRACT_TESTS.map((name) => `dist/test/contract/${name}.test.js`), ...LANE_TESTS.map((name) => `dist/test/integration/${name}.test.js`)]
  const child = spawn(process.execPath, ['node_modules/mocha/bin/mocha.js', '--config', '.mocharc.cjs', ...files], {
    env: { ...process.env, FERRY_SOURCE_KAFKA_VERSION: version },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let last = ''
  child.stdout.on('data', (chunk: Buffer) => {
    process.stdout.write(chunk)
    last = (last + chunk.toString('utf8')).slice(-2000)
  })
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  const summary = [...last.matchAll(/^(\d+) passed, (\d+) failed/gm)].at(-1)
  if (summary === undefined) {
    process.stdout.write(`lane ${version}: mocha ended without a summary (exit ${code})\n`)
    return { passed: 0, failed: 1 }
  }
  const result = { passed: Number(summary[1]), failed: Number(summary[2]) }
  if (code !== 0 && result.failed === 0) result.failed = 1
  return result
}

async function main(): Promise<void> {
  const lanes = (process.env.FERRY_TEST_LANES ?? DEFAULT_LANES.join(',')).split(',').map((v) => v.trim()).filter(Boolean)
  let passed = 0
  let failed = 0
  const lines: string[] = []
  for (const version of lanes) {
    const result = await runLane(version)
    passed += result.passed
    failed += result.failed
    lines.push(`lane ${version}: ${result.passed} passed, ${result.failed} failed`)
  }
  process.stdout.write(`\n${lines.join('\n')}\n${passed} passed, ${failed} failed\n`)
  process.exitCode = failed > 0 ? 1 : 0
}

await main()
