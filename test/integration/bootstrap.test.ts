/**
 * Bootstrap and the Redis registry on real servers: token-checked leases, restart of a crashed
 * child, and deregistration after a graceful drain on SIGTERM.
 */
import { expect } from 'chai'
import { Redis } from 'ioredis'
import { createKeys } from '../../common/keys.js'
import { silentLogger } from '../../common/logger.js'
import { createRegistration, listDeparted, listInstances } from '../../common/registry.js'
import { FerryProcess, freeze, sharedStack, uniqueName, waitFor } from './harness.js'

const info = { role: 'worker' as const, host: 'test', pid: process.pid, version: 'test', startedAt: new Date().toISOString() }

describe('registry and bootstrap (real Redis and ZooKeeper)', function () {
  this.timeout(120000)
  let redis: Redis

  before(async function () {
    this.timeout(300000)
    const stack = await sharedStack()
    redis = new Redis(stack.redis.url)
  })

  after(() => redis?.disconnect())

  it('lets only the lease holder renew or remove a lease', async () => {
    const keys = createKeys(uniqueName('reg'))
    let lost = 0
    const first = createRegistration({ redis, keys, id: 'x', info, ttlMs: 60000, heartbeatIntervalMs: 60000, logger: silentLogger(), onLeaseLost: () => lost++ })
    const second = createRegistration({ redis, keys, id: 'x', info, ttlMs: 60000, heartbeatIntervalMs: 60000, logger: silentLogger(), getMetrics: () => ({ from: 'second' }) })
    await first.start()
    await second.start()
    // The first instance finds its token replaced: it reports the loss and registers again.
    expect(await first.heartbeat()).to.equal(true)
    expect(lost).to.equal(1)
    // Now the second instance's token is gone; its stop() must not delete the first's lease.
    await second.stop()
    const live = await listInstances(redis, keys)
    expect(live.map((i) => i.id)).to.deep.equal(['x'])
    await first.stop()
    expect(await listInstances(redis, keys)).to.deep.equal([])
  })

  it('leaves a departure marker on a graceful deregistration, cleared when the instance registers again', async () => {
    const keys = createKeys(uniqueName('reg'))
    const registration = createRegistration({ redis, keys, id: 'd1', info, ttlMs: 2000, heartbeatIntervalMs: 60000, logger: silentLogger() })
    await registration.start()
    expect(await listDeparted(redis, keys, ['d1'])).to.deep.equal([])
    await registration.stop()
    expect(await listDeparted(redis, keys, ['d1', 'never-registered'])).to.deep.equal(['d1'])
    // A few lease TTLs, long enough to outlast a new leader's hold.
    expect(await redis.pttl(keys.departed('d1'))).to.be.within(4000, 6000)
    const again = createRegistration({ redis, keys, id: 'd1', info, ttlMs: 2000, heartbeatIntervalMs: 60000, logger: silentLogger() })
    await again.start()
    expect(await listDeparted(redis, keys, ['d1'])).to.deep.equal([])
    // A lease that merely expires leaves no marker: that instance may be alive.
    await redis.del(keys.instance('d1'))
    expect(await listDeparted(redis, keys, ['d1'])).to.deep.equal([])
  })

  it('expires a lease that is not renewed and drops it from the index', async () => {
    const keys = createKeys(uniqueName('reg'))
    const registration = createRegistration({ redis, keys, id: 'short', info, ttlMs: 1000, heartbeatIntervalMs: 60000, logger: silentLogger() })
    await registration.start()
    expect((await listInstances(redis, keys)).length).to.equal(1)
    await waitFor('the lease to expire', async () => (await listInstances(redis, keys)).length === 0, 10000)
    expect(await redis.smembers(keys.instances)).to.deep.equal([])
    await registration.stop()
  })

  it('restarts a crashed worker and deregisters it after SIGTERM', async () => {
    const stack = await sharedStack()
    const deployment = uniqueName('boot')
    const keys = createKeys(deployment)
    const boot = new FerryProcess('bootstrap-b1', ['bootstrap', '--role', 'worker', '--id', 'b1', '--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '3000'])
    const childPid = async (): Promise<number | undefined> => {
      const instance = (await listInstances(redis, keys)).find((i) => i.id === 'b1')
      return (instance?.metrics as { childPid?: number } | null)?.childPid ?? undefined
    }
    const first = await waitFor('b1 registered with a child pid', childPid, 60000)
    process.kill(first, 'SIGKILL')
    const second = await waitFor('a new child pid after the crash', async () => {
      const pid = await childPid()
      return pid !== undefined && pid !== first ? pid : undefined
    }, 60000)
    expect(second).to.not.equal(first)
    expect(boot.log()).to.include('bootstrap.child_exited')

    expect(await boot.stop()).to.equal(0)
    expect(await listInstances(redis, keys)).to.deep.equal([])
    expect(() => process.kill(second, 0), 'the child is gone too').to.throw()
  })

  it('stops renewing the lease of a child that stops answering (frozen), then kills and restarts it', async () => {
    const stack = await sharedStack()
    const deployment = uniqueName('live')
    const keys = createKeys(deployment)
    // A lease TTL far longer than the liveness timeout: the lease must not simply lapse first.
    const boot = new FerryProcess('bootstrap-live', ['bootstrap', '--role', 'worker', '--id', 'l1', '--zookeeper', stack.zookeeper.connect, '--redis', stack.redis.url, '--deployment', deployment, '--lease-ttl-ms', '30000', '--child-liveness-timeout-ms', '1500'])
    const childPid = async (): Promise<number | undefined> => ((await listInstances(redis, keys)).find((i) => i.id === 'l1')?.metrics as { childPid?: number } | null)?.childPid ?? undefined
    const alive = (pid: number): boolean => {
      try {
        process.kill(pid, 0)
        return true
      } catch {
        return false
      }
    }
    let first: number | undefined
    try {
      first = await waitFor('l1 registered with a child pid', childPid, 60000)
      const tokenBefore = await redis.hget(keys.instance('l1'), 'token')
      const frozenAt = Date.now()
      await freeze(first)
      const frozen = first
      await waitFor('the frozen child to be killed', () => !alive(frozen), 20000, 50)
      const killedAfterMs = Date.now() - frozenAt
      // Noticed after the 1.5 s timeout (not the 30 s lease TTL), and killed at once (SIGKILL). The
      // silence counts from the child's last answer, up to one ping interval (300 ms) before the freeze.
      expect(killedAfterMs).to.be.within(1500 - 300 - 100, 10000)
      const log = boot.log()
      expect(log).to.include('"event":"bootstrap.child_unresponsive"')
      expect(log).to.include('"event":"registry.renewal_suspended"')
      // Renewal stopped before the kill, and the lease was removed once the child was gone.
      expect(log.indexOf('"event":"registry.renewal_suspended"')).to.be.lessThan(log.indexOf('"event":"registry.deregistered"'))
      const second = await waitFor('a new child registered', async () => {
        const pid = await childPid()
        return pid !== undefined && pid !== frozen ? pid : undefined
      }, 60000)
      expect(alive(second)).to.equal(true)
      expect(await redis.hget(keys.instance('l1'), 'token'), 'registered anew').to.not.equal(tokenBefore)
      expect(await boot.stop()).to.equal(0)
    } finally {
      if (first !== undefined && alive(first)) process.kill(first, 'SIGKILL')
      boot.kill('SIGKILL')
    }
  })
})
