/**
 * Bootstrap in production (issue 8) on real Redis and ZooKeeper: probes on /healthz and
 * /readyz, instance metadata and live metrics in the heartbeat, self-fencing after its lease
 * lapsed (the bootstrap process frozen longer than the TTL), and giving up after a crash loop.
 */
import { mkdtemp, writeFile } from 'node:fs/promises'
import { hostname, tmpdir } from 'node:os'
import path from 'node:path'
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { startBootstrap } from '../../bootstrap/bootstrap.js'
import { createKeys } from '../../common/keys.js'
import { silentLogger } from '../../common/logger.js'
import { loadProcessConfig } from '../../common/process-config.js'
import { listInstances } from '../../common/registry.js'
import { manifestFerryArgs } from './deploy-commands.js'
import { FerryProcess, freeze, http, sharedStack, uniqueName, waitFor } from './harness.js'

describe('bootstrap in production (real Redis and ZooKeeper)', function () {
  this.timeout(180000)
  let redis: Redis

  before(async function () {
    this.timeout(300000)
    const stack = await sharedStack()
    redis = new Redis(stack.redis.url)
  })

  after(() => redis?.disconnect())

  it('serves /healthz and /readyz, and heartbeats its metadata and live metrics', async () => {
    const stack = await sharedStack()
    const deployment = uniqueName('probe')
    const keys = createKeys(deployment)
    const boot = new FerryProcess('bootstrap-probe', [...manifestFerryArgs('worker'), '--id', 'p1', '--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '3000', '--health-port', '0', '--zone', 'secure', '--dc', 'dc-east'])
    try {
      const url = await waitFor('the probe listener', () => /"event":"bootstrap.health_listening"[^\n]*"url":"([^"]+)"/.exec(boot.log())?.[1], 60000)
      expect((await http('GET', `${url}/healthz`)).status).to.equal(200)
      const ready = await waitFor('readyz 200', async () => {
        const result = await http('GET', `${url}/readyz`)
        return result.status === 200 ? result.body : undefined
      }, 60000)
      expect(ready).to.include({ status: 'ok', registered: true, childReady: true, id: 'p1' })
      expect((await http('GET', `${url}/nope`)).status).to.equal(404)

      const instance = await waitFor('a heartbeat with the child status', async () => {
        const found = (await listInstances(redis, keys)).find((i) => i.id === 'p1')
        return (found?.metrics as { partitions?: unknown } | null)?.partitions !== undefined ? found : undefined
      }, 30000)
      expect(instance).to.include({ role: 'worker', host: hostname(), pid: boot.child.pid, zone: 'secure', dc: 'dc-east' })
      expect(instance?.version).to.match(/^\d+\.\d+\.\d+/)
      expect(Date.now() - Date.parse(instance?.startedAt ?? '')).to.be.within(0, 120000)
      const metrics = instance?.metrics as Record<string, unknown>
      expect(metrics.childPid).to.be.a('number')
      expect(metrics.restarts).to.equal(0)
      expect(metrics.bootstrapRssBytes).to.be.a('number').and.to.be.above(0)
      expect(metrics.state).to.equal('running')
    } finally {
      expect(await boot.stop()).to.equal(0)
    }
    expect(await redis.exists(keys.instance('p1'))).to.equal(0)
  })

  it('drains on one Ctrl-C (SIGINT to the process group) and exits at once on a second', async () => {
    const stack = await sharedStack()
    const deployment = uniqueName('sigint')
    const keys = createKeys(deployment)
    const start = (id: string): FerryProcess => new FerryProcess(`bootstrap-${id}`, [...manifestFerryArgs('worker'), '--id', id, '--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '30000'])
    const registered = (id: string) => waitFor(`${id} registered`, async () => (await redis.exists(keys.instance(id))) === 1, 60000)

    const once = start('i1')
    await registered('i1')
    once.kill('SIGINT')
    expect(await once.exited).to.equal(0)
    expect(await redis.exists(keys.instance('i1')), 'deregistered after the drain').to.equal(0)
    expect(once.log()).to.include('bootstrap.drained')

    // An idle worker drains in milliseconds: freeze its child so the drain is still going on
    // when the second Ctrl-C arrives.
    const twice = start('i2')
    await registered('i2')
    const child = await waitFor('i2 child pid', async () => ((await listInstances(redis, keys)).find((i) => i.id === 'i2')?.metrics as { childPid?: number } | null)?.childPid ?? undefined)
    try {
      await freeze(child)
      twice.kill('SIGINT')
      await waitFor('bootstrap to start draining', () => twice.log().includes('"event":"process.shutdown"'), 10000, 20)
      twice.kill('SIGINT')
      expect(await twice.exited).to.equal(130)
      expect(twice.log()).to.include('second interrupt')
    } finally {
      process.kill(child, 'SIGKILL')
    }
  })

  it('fences its child when the lease lapsed while bootstrap was frozen, then registers again', async () => {
    const stack = await sharedStack()
    const deployment = uniqueName('fence')
    const keys = createKeys(deployment)
    const boot = new FerryProcess('bootstrap-fence', [...manifestFerryArgs('worker'), '--id', 'f1', '--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '2000'])
    const childPid = async (): Promise<number | undefined> => ((await listInstances(redis, keys)).find((i) => i.id === 'f1')?.metrics as { childPid?: number } | null)?.childPid ?? undefined
    try {
      const first = await waitFor('f1 registered with a child pid', childPid, 60000)
      const bootPid = boot.child.pid as number
      try {
        await freeze(bootPid)
        await waitFor('the lease to expire while bootstrap is frozen', async () => (await redis.exists(keys.instance('f1'))) === 0, 10000, 100)
      } finally {
        process.kill(bootPid, 'SIGCONT')
      }
      const second = await waitFor('a new child registered after fencing', async () => {
        const pid = await childPid()
        return pid !== undefined && pid !== first ? pid : undefined
      }, 60000)
      expect(second).to.not.equal(first)
      expect(() => process.kill(first, 0), 'the fenced child is gone').to.throw()
      expect(boot.log()).to.include('"event":"bootstrap.fenced"').and.to.include('"reason":"expired"')
      const metrics = (await listInstances(redis, keys)).find((i) => i.id === 'f1')?.metrics as { fences?: number; restarts?: number }
      expect(metrics.fences).to.equal(1)
    } finally {
      await boot.stop()
    }
  })

  it('gives up after a crash loop: deregistered, state failed, onFailed called', async () => {
    const stack = await sharedStack()
    const dir = await mkdtemp(path.join(tmpdir(), 'ferry-crash-'))
    const childModule = path.join(dir, 'crash.mjs')
    await writeFile(childModule, "process.send?.({ type: 'ready' })\nsetTimeout(() => process.exit(3), 300)\n")
    const deployment = uniqueName('crash')
    const config = loadProcessConfig({ zookeeper: stack.zookeeper.connect, redis: stack.redis.url, deployment, id: 'c1', maxRestarts: '2' }, {})
    let resolveFailed: (reason: string) => void = () => undefined
    const failed = new Promise<string>((resolve) => {
      resolveFailed = resolve
    })
    const boot = await startBootstrap({ role: 'worker', config, childModule, childArgs: [], logger: silentLogger(), version: 'test', minRestartDelayMs: 20, maxRestartDelayMs: 100, onFailed: (why) => resolveFailed(why) })
    const reason = await Promise.race([failed, new Promise<string>((_resolve, reject) => setTimeout(() => reject(new Error('bootstrap never gave up')), 20000))])
    expect(boot.state()).to.equal('failed')
    expect(boot.childPid()).to.equal(undefined)
    expect(reason).to.match(/failed 3 times in a row/).and.to.include('last exit code 3')
    expect(await listInstances(redis, createKeys(deployment))).to.deep.equal([])
  })

  it('fails fast, naming the variable and the file, when a referenced secret file is missing', async () => {
    const stack = await sharedStack()
    const boot = new FerryProcess('bootstrap-secret', [...manifestFerryArgs('worker'), '--id', 'x1', '--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', uniqueName('secret')], { FERRY_SECRET_FILES: 'X_PASSWORD=/nonexistent/ferry/X_PASSWORD' })
    const code = await Promise.race([boot.exited, new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), 30000))])
    expect(code).to.equal(1)
    expect(boot.log()).to.include('X_PASSWORD').and.to.include('/nonexistent/ferry/X_PASSWORD')
  })
})
