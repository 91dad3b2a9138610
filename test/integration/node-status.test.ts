/**
 * Node status on the real stack: a controller and two workers, each under bootstrap with a health
 * listener. All three report ok; then one worker is frozen (SIGSTOP of its process group) and the
 * other killed (SIGKILL), and GET /v1/nodes and `ferry nodes` say which check fails and why: the
 * frozen one still accepts connections (the kernel does) but its probe times out and its process
 * is stopped; the killed one refuses the connection, its process is gone, and once its lease
 * lapses it is reported as expired rather than dropped.
 */
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { Redis } from 'ioredis'
import type { NodesView, NodeStatusView } from '../../common/api-schemas.js'
import { createKeys } from '../../common/keys.js'
import { listInstances } from '../../common/registry.js'
import { FerryProcess, freeze, http, sharedStack, stackSecretFlags, uniqueName, waitFor } from './harness.js'

const CLI = fileURLToPath(new URL('../../cli/main.js', import.meta.url))
const LEASE_TTL_MS = 3000

describe('node status (GET /v1/nodes, ferry nodes) on a real deployment', function () {
  this.timeout(120000)
  const deployment = uniqueName('nodes')
  const keys = createKeys(deployment)
  const procs = new Map<string, FerryProcess>()
  let redis: Redis
  let controllerUrl = ''

  const nodes = async (fresh = true): Promise<NodesView> => {
    const answer = await http('GET', `${controllerUrl}/v1/nodes${fresh ? '?fresh=true' : ''}`)
    expect(answer.status, answer.text).to.equal(200)
    return answer.body as NodesView
  }
  const byId = (view: NodesView): Map<string, NodeStatusView> => new Map(view.nodes.map((n) => [n.id, n]))
  const reason = (node: NodeStatusView | undefined, check: string): string => node?.checks.find((c) => c.check === check)?.reason ?? '(no such check)'
  const ok = (node: NodeStatusView | undefined, check: string): boolean | null | undefined => node?.checks.find((c) => c.check === check)?.ok

  before(async function () {
    this.timeout(300000)
    const stack = await sharedStack()
    redis = new Redis(stack.redis.url)
    const common = ['--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', String(LEASE_TTL_MS), '--health-port', '0', ...stackSecretFlags(stack)]
    procs.set('c1', new FerryProcess('nodes-c1', ['bootstrap', '--role', 'controller', '--id', 'c1', '--port', '0', ...common]))
    for (const id of ['w1', 'w2']) procs.set(id, new FerryProcess(`nodes-${id}`, ['bootstrap', '--role', 'worker', '--id', id, ...common]))
    controllerUrl = await waitFor('the controller registered with its URL', async () => (await listInstances(redis, keys)).find((i) => i.id === 'c1')?.url, 60000)
  })

  after(async () => {
    // SIGKILL ends a stopped process too.
    for (const p of procs.values()) p.kill('SIGKILL')
    await Promise.all([...procs.values()].map((p) => p.exited))
    redis?.disconnect()
  })

  it('reports every node ok, then the frozen worker and the killed one with the reason of each failing check', async () => {
    const started = Date.now()
    const all = await waitFor('the controller and both workers reported ok', async () => {
      const view = await nodes()
      return view.nodes.length === 3 && view.nodes.every((n) => n.status === 'ok') ? view : undefined
    }, 60000)
    expect(all.nodes.map((n) => [n.id, n.role])).to.deep.equal([['c1', 'controller'], ['w1', 'worker'], ['w2', 'worker']])
    for (const n of all.nodes) expect(n.healthUrl, `${n.id} registered its health listener`).to.match(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(reason(all.nodes[1], 'probe')).to.match(/^probe \/readyz answered 200 in \d+ ms$/)
    expect(reason(all.nodes[1], 'process')).to.match(/^lease renewed .* ago; worker process \d+ running, checked on this host$/)
    const readyAt = Date.now()

    const w1 = procs.get('w1') as FerryProcess
    const w2 = procs.get('w2') as FerryProcess
    const w1Pid = all.nodes[1]?.pid as number
    const w2Port = new URL(all.nodes[2]?.healthUrl as string).port
    // The whole process group: bootstrap (which answers the probe and renews the lease) and its worker.
    w1.kill('SIGSTOP')
    await freeze(w1Pid)
    w2.kill('SIGKILL')
    await w2.exited

    const failing = byId(await nodes())
    const frozen = failing.get('w1')
    expect(frozen?.status).to.equal('failing')
    expect(ok(frozen, 'reachable'), `the kernel still accepts connections: ${reason(frozen, 'reachable')}`).to.equal(true)
    expect(reason(frozen, 'probe')).to.equal('probe /readyz timed out after 2 s')
    expect(reason(frozen, 'process')).to.match(new RegExp(`^(bootstrap process ${w1Pid} is stopped \\(SIGSTOP or a debugger\\)|lease expired .*)$`))
    const killed = failing.get('w2')
    expect(killed?.status).to.equal('failing')
    expect(reason(killed, 'reachable')).to.equal(`health port 127.0.0.1:${w2Port} refused the connection`)
    expect(reason(killed, 'process')).to.match(/^(bootstrap process \d+ is not running on this host \(lease still held until it lapses\)|lease expired .*)$/)
    expect(reason(killed, 'probe')).to.equal('not sent: the node is not reachable')
    expect(failing.get('c1')?.status, 'the controller itself').to.equal('ok')

    // Once the lease lapses the node is still reported, from the previous round.
    const expired = await waitFor('w2 reported with its lease expired', async () => {
      const node = byId(await nodes()).get('w2')
      return node?.registered === false ? node : undefined
    }, 15000, 200)
    expect(reason(expired, 'process')).to.match(/^lease expired \d+(\.\d)? s ago \(last heartbeat \d+(\.\d)? s ago; not renewed by its bootstrap\)$/)

    // The CLI prints the same reasons and exits 1 while a node fails.
    const cli = await promisify(execFile)(process.execPath, [CLI, 'nodes', '--controller', controllerUrl]).then(
      () => ({ code: 0, stdout: '' }),
      (error: { code: number; stdout: string }) => ({ code: error.code, stdout: error.stdout }),
    )
    expect(cli.code).to.equal(1)
    expect(cli.stdout).to.match(/^w1\s+worker\s.*failing\s+ok\s+FAIL\s+FAIL\s.*probe \/readyz timed out after 2 s/m)
    expect(cli.stdout).to.match(/^w2\s+worker\s.*failing\s+FAIL\s+FAIL\s+FAIL\s+health port 127\.0\.0\.1:\d+ refused the connection; lease expired/m)
    process.stderr.write(`      [nodes] all ok after ${readyAt - started} ms; failures reported and the lease expiry seen ${Date.now() - readyAt} ms later\n`)
  })
})
