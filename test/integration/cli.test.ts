/**
 * The `ferry` API commands against a real controller and worker (under bootstrap) on the real
 * stack, run as the real CLI process: human tables, `--json`, `wait` with its progress display,
 * the exit codes, and error messages that name the problem.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect } from 'chai'
import { Redis } from 'ioredis'
import type { LocalStack } from '../../deploy/local-stack.js'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import { FerryProcess, http, sharedStack, uniqueName, waitFor } from './harness.js'
import { createSampleProducer, createTopic } from './kafka-helpers.js'

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url))

interface Run {
  code: number
  stdout: string
  stderr: string
}

/** Runs `ferry ...args` to completion (no terminal: progress prints plain lines). */
function ferry(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, FERRY_TOKEN: '', ...env }, timeout: 180000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof (error as { code?: unknown }).code === 'number' ? ((error as { code: number }).code) : -1
      resolve({ code, stdout, stderr })
    })
  })
}

/** The rows of a human table as arrays of cells (columns are separated by 2+ spaces). */
function rows(table: string): string[][] {
  return table
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s{2,}/))
}

describe('ferry CLI against a real controller (tables, --json, wait)', function () {
  this.timeout(300000)
  let stack: LocalStack
  let redis: Redis
  const deployment = uniqueName('cli')
  const procs: FerryProcess[] = []
  let controllerUrl = ''
  const topic = uniqueName('orders')
  const group = uniqueName('g-cli')
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ferry-cli-test-'))
  let api: (...args: string[]) => Promise<Run>

  before(async function () {
    this.timeout(600000)
    stack = await sharedStack()
    redis = new Redis(stack.redis.url)
    const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '4000', '--rebalance-debounce-ms', '1000']
    procs.push(new FerryProcess('cli-controller', ['bootstrap', '--role', 'controller', '--id', 'c1', '--port', '0', ...common]))
    procs.push(new FerryProcess('cli-worker-w1', ['bootstrap', '--role', 'worker', '--id', 'w1', '--zone', 'zone-a', ...common]))
    const keys = createKeys(deployment)
    const controller = await waitFor('controller and w1 registered in Redis', async () => {
      const instances = await listInstances(redis, keys)
      const c = instances.find((i) => i.role === 'controller' && i.url)
      return c && instances.some((i) => i.id === 'w1') ? c : undefined
    }, 90000)
    controllerUrl = controller.url as string
    api = (...args: string[]) => ferry([...args, '--controller', controllerUrl])
    await waitFor('the leader elected', async () => (await http('GET', `${controllerUrl}/readyz`)).body?.leader === 'c1')
    await createTopic(stack.source.plaintext, topic, 3)
    const producer = createSampleProducer(stack.source.plaintext, topic, 3)
    await producer.send(3000)
    await producer.close()
  })

  after(async function () {
    this.timeout(60000)
    await Promise.all(procs.map((p) => p.stop(20000)))
    redis?.disconnect()
  })

  it('registers and lists clusters', async () => {
    const file = path.join(dir, 'src.json')
    writeFileSync(file, JSON.stringify({ bootstrapServers: [stack.source.plaintext], dc: 'dc1', zone: 'zone-a' }))
    const created = await api('cluster', 'src', 'create', '--file', file)
    expect(created.code, created.stderr).to.equal(0)
    expect(created.stdout).to.equal('cluster "src" registered\n')
    writeFileSync(file, JSON.stringify({ bootstrapServers: [stack.target.plaintext], dc: 'dc2' }))
    expect((await api('cluster', 'dst', 'create', '--file', file)).code).to.equal(0)

    const listed = await api('clusters')
    expect(listed.code, listed.stderr).to.equal(0)
    const table = rows(listed.stdout)
    expect(table[0]).to.deep.equal(['NAME', 'PROTOCOL', 'BOOTSTRAP SERVERS', 'DC', 'ZONE'])
    expect(table.slice(1)).to.deep.include(['src', 'PLAINTEXT', stack.source.plaintext, 'dc1', 'zone-a'])
    expect(table.slice(1)).to.deep.include(['dst', 'PLAINTEXT', stack.target.plaintext, 'dc2', '-'])
    const json = JSON.parse((await api('clusters', '--json')).stdout) as { clusters: Array<{ name: string }> }
    expect(json.clusters.map((c) => c.name).sort()).to.deep.equal(['dst', 'src'])
  })

  it('rejects a bad group file naming the field, and an unknown group, with exit code 1', async () => {
    const file = path.join(dir, 'bad.json')
    writeFileSync(file, JSON.stringify({ sourceCluster: 'src', targetCluster: 'dst' }))
    const bad = await api('group', 'bad', 'create', '--file', file)
    expect(bad.code).to.equal(1)
    expect(bad.stderr).to.include('INVALID_INPUT (400)').and.to.include('topics: exactly one of topics or topicPattern is required')
    const missing = await api('group', 'nope')
    expect(missing.code).to.equal(1)
    expect(missing.stderr).to.include('GROUP_NOT_FOUND (404)').and.to.include('"nope"')
    const usage = await api('group')
    expect(usage.code).to.equal(2)
    expect(usage.stderr).to.include('needs a NAME')
    const unreachable = await ferry(['groups', '--controller', 'http://127.0.0.1:9'])
    expect(unreachable.code).to.equal(1)
    expect(unreachable.stderr).to.include('cannot reach the controller at http://127.0.0.1:9')
  })

  it('creates a group from a file, waits for it to catch up with progress, and shows it', async () => {
    const file = path.join(dir, 'group.json')
    writeFileSync(file, JSON.stringify({ sourceCluster: 'src', targetCluster: 'dst', topics: [topic], rename: { prefix: 'cli.' } }))
    const created = await api('group', group, 'create', '--file', file)
    expect(created.code, created.stderr).to.equal(0)
    expect(created.stdout).to.equal(`topic group "${group}" created (running)\n`)

    const groups = await api('groups')
    expect(rows(groups.stdout)[0]).to.deep.equal(['NAME', 'STATE', 'SOURCE', 'TARGET', 'TOPICS', 'DELIVERY', 'STRATEGY'])
    expect(rows(groups.stdout)).to.deep.include([group, 'running', 'src', 'dst', topic, 'at-least-once', 'balanced'])

    const waited = await api('wait', group, '--timeout-s', '120', '--interval-ms', '500')
    expect(waited.code, waited.stderr).to.equal(0)
    expect(waited.stdout).to.equal(`topic group "${group}" caught up: lag 0 on 3 partitions\n`)
    // Without a terminal the progress bar prints plain lines on stderr; the last one is complete.
    const progress = waited.stderr.trim().split('\n')
    expect(progress.at(-1)).to.match(new RegExp(`^${group} \\[#+\\] 100% \\| position 3,000/3,000 \\| lag 0 \\| 3 partitions \\| running$`))

    const shown = await api('group', group)
    expect(shown.code, shown.stderr).to.equal(0)
    expect(shown.stdout).to.include(`group        ${group}`).and.to.include('partitions   3    lag 0    healthy')
    const table = rows(shown.stdout.slice(shown.stdout.indexOf('TOPIC')))
    expect(table[0]).to.deep.equal(['TOPIC', 'PARTITION', 'TARGET TOPIC', 'WORKER', 'STATE', 'SERVED', 'POSITION', 'HIGH WATERMARK', 'LAG', 'ERROR'])
    expect(table.slice(1).map((r) => r.slice(0, 4))).to.deep.equal([0, 1, 2].map((p) => [topic, String(p), `cli.${topic}`, 'w1']))
    expect(table.slice(1).map((r) => [r[5], r[6], r[7], r[8]])).to.deep.equal([0, 1, 2].map(() => ['serving', '1,000', '1,000', '0']))

    const json = JSON.parse((await api('group', group, '--json')).stdout) as { status: { lag: number }; partitions: unknown[] }
    expect(json.status.lag).to.equal(0)
    expect(json.partitions).to.have.length(3)
  })

  it('lists workers, assignments, the rebalance plan and events', async () => {
    const workers = await api('workers')
    expect(workers.code, workers.stderr).to.equal(0)
    const [workerTable = '', controllerTable = ''] = workers.stdout.split('\n\n')
    expect(rows(workerTable)[0]).to.deep.equal(['WORKER', 'ZONE', 'DC', 'HOST', 'PARTITIONS', 'RECORDS/S', 'BYTES/S', 'HEARTBEAT AGE'])
    const w1 = rows(workerTable).find((r) => r[0] === 'w1')
    expect(w1?.[1]).to.equal('zone-a')
    expect(w1?.[4]).to.equal('3')
    expect(w1?.[7]).to.match(/^\d+\.\ds$/)
    expect(rows(controllerTable)).to.deep.include.members([['CONTROLLER', 'ROLE', 'URL', 'HEARTBEAT AGE']])
    expect(rows(controllerTable)[1]?.slice(0, 3)).to.deep.equal(['c1', 'leader', controllerUrl])
    const workersJson = JSON.parse((await api('workers', '--json')).stdout) as { workers: Array<{ id: string }>; leader: string }
    expect(workersJson.workers.map((w) => w.id)).to.deep.equal(['w1'])
    expect(workersJson.leader).to.equal('c1')

    const assignments = await api('assignments')
    expect(rows(assignments.stdout)).to.deep.include(['w1', group, topic, '0,1,2'])
    const assignmentsJson = JSON.parse((await api('assignments', '--json')).stdout) as { assignments: Record<string, { partitions: unknown[] }> }
    expect(assignmentsJson.assignments.w1?.partitions).to.have.length(3)

    const plan = await api('rebalance')
    expect(plan.code, plan.stderr).to.equal(0)
    expect(plan.stdout).to.include('dry run over 1 live workers: 0 moves')
    expect(JSON.parse((await api('rebalance', '--json')).stdout)).to.include({ dryRun: true })

    const events = JSON.parse((await api('events', '--json', '--limit', '100')).stdout) as { events: Array<{ type: string; group?: string; moves?: number }> }
    expect(events.events.some((e) => e.type === 'group_created' && e.group === group)).to.equal(true)
    expect(events.events.some((e) => e.type === 'rebalance' && (e.moves ?? 0) >= 3)).to.equal(true)
    const eventTable = await api('events')
    expect(rows(eventTable.stdout)[0]).to.deep.equal(['TIME', 'TYPE', 'GROUP', 'WORKER', 'MESSAGE'])
    expect(eventTable.stdout).to.match(new RegExp(`group_created\\s+${group}\\s+-\\s+topic group created \\(running\\)`))
    const badLimit = await api('events', '--limit', 'lots')
    expect(badLimit.code).to.equal(2)
    expect(badLimit.stderr).to.include('--limit must be a positive whole number')
  })

  it('stops, refuses to wait for a stopped group, starts and deletes it', async () => {
    const stopped = await api('group', group, 'stop')
    expect(stopped.stdout).to.equal(`topic group "${group}" stopped\n`)
    const wait = await api('wait', group, '--timeout-s', '5')
    expect(wait.code).to.equal(1)
    expect(wait.stderr).to.include(`topic group "${group}" is stopped`)
    expect(JSON.parse((await api('group', group, 'start', '--json')).stdout)).to.deep.equal({ name: group, state: 'running' })
    expect((await api('group', group, 'delete')).stdout).to.equal(`topic group "${group}" deleted\n`)
    expect((await http('GET', `${controllerUrl}/v1/groups/${group}`)).status).to.equal(404)
    const events = JSON.parse((await api('events', '--json')).stdout) as { events: Array<{ type: string; group?: string }> }
    expect(events.events.filter((e) => e.group === group).map((e) => e.type).slice(0, 3)).to.deep.equal(['group_deleted', 'group_started', 'group_stopped'])
  })

  it('shows a group error in the status and as an event, and a worker leaving as an event', async () => {
    const broken = uniqueName('g-broken')
    const file = path.join(dir, 'broken.json')
    writeFileSync(file, JSON.stringify({ sourceCluster: 'src', targetCluster: 'dst', topics: ['no-such-topic-here'] }))
    expect((await api('group', broken, 'create', '--file', file)).code).to.equal(0)
    const event = await waitFor('a group_error event for the missing topic', async () => {
      const { events } = JSON.parse((await api('events', '--json')).stdout) as { events: Array<{ type: string; group?: string; code?: string; message: string }> }
      return events.find((e) => e.type === 'group_error' && e.group === broken)
    }, 60000)
    expect(event.message).to.include('no-such-topic-here')
    const shown = await api('group', broken)
    expect(shown.stdout).to.include('unhealthy').and.to.include(`error        ${event.code ?? ''}: `)
    expect((await api('group', broken, 'delete')).code).to.equal(0)

    const worker = procs[1] as FerryProcess
    await worker.stop(30000)
    await waitFor('a worker_left event for w1', async () => {
      const listed = await api('events')
      return rows(listed.stdout).some((r) => r[1] === 'worker_left' && r[3] === 'w1' && r[4] === 'worker w1 left')
    }, 60000)
  })
})
