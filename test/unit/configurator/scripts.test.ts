import { execFile } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { parseCluster, parseTopicGroup } from '../../../common/config.js'
import { render, writeRendered } from '../../../configurator/index.js'

const run = promisify(execFile)

/**
 * The rendered start/stop scripts run for real under /bin/sh, against a stand-in systemctl
 * that logs its arguments (and, like the real one, fails `cat` for a unit it does not know).
 */
describe('configurator start/stop scripts', () => {
  let root: string
  let log: string
  let env: NodeJS.ProcessEnv

  async function commands(): Promise<string[]> {
    return (await readFile(log, 'utf8').catch(() => '')).split('\n').filter((line) => line !== '')
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'ferry-scripts-'))
    log = join(root, 'systemctl.log')
    const fake = join(root, 'fake-systemctl')
    await writeFile(fake, `#!/bin/sh\necho "$*" >> '${log}'\nif [ "$1" = cat ] && [ -n "\${UNIT_KNOWN:-}" ]; then exit 0; fi\n[ "$1" != cat ]\n`)
    await chmod(fake, 0o755)
    const files = render({
      group: parseTopicGroup({ name: 'orders', sourceCluster: 'a', targetCluster: 'b', topics: ['orders'] }),
      source: parseCluster({ name: 'a', bootstrapServers: ['a:9092'] }),
      target: parseCluster({ name: 'b', bootstrapServers: ['b:9092'] }),
      deployment: 'test',
      workers: 3,
      installDir: '/opt/ferry/etc',
    })
    await writeRendered(files, join(root, 'out'))
    env = { PATH: process.env['PATH'], SYSTEMCTL: fake, SYSTEMD_UNIT_DIR: join(root, 'units') }
  })

  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  it('start links an unknown unit, reloads, and enables the default number of instances', async () => {
    const { stdout } = await run(join(root, 'out/bin/start-orders.sh'), [], { env })
    expect(await commands()).to.deep.equal([
      'cat ferry-worker-orders@.service',
      'link /opt/ferry/etc/systemd/ferry-worker-orders@.service',
      'daemon-reload',
      'enable --now ferry-worker-orders@1.service ferry-worker-orders@2.service ferry-worker-orders@3.service',
    ])
    expect(stdout).to.include('started ferry-worker-orders@1.service')
  })

  it('start takes a count, and does not link a unit systemd already knows', async () => {
    await run(join(root, 'out/bin/start-orders.sh'), ['1'], { env: { ...env, UNIT_KNOWN: '1' } })
    expect(await commands()).to.deep.equal([
      'cat ferry-worker-orders@.service',
      'daemon-reload',
      'enable --now ferry-worker-orders@1.service',
    ])
  })

  for (const bad of ['0', '-1', 'two', '3x', '']) {
    it(`start refuses the count ${JSON.stringify(bad)} with exit code 2 and calls nothing`, async () => {
      const error = await run(join(root, 'out/bin/start-orders.sh'), [bad], { env }).then(
        () => undefined,
        (e: unknown) => e as { code: number; stderr: string },
      )
      if (bad === '') {
        // An empty argument falls back to the default count, like no argument.
        expect(error).to.equal(undefined)
        return
      }
      expect(error?.code).to.equal(2)
      expect(error?.stderr).to.include('COUNT must be a whole number')
      expect(await commands()).to.deep.equal([])
    })
  }

  it('stop stops every loaded instance and disables the enabled ones, whatever their number', async () => {
    const wants = join(root, 'units', 'multi-user.target.wants')
    await mkdir(wants, { recursive: true })
    for (const instance of ['1', '7']) {
      await symlink('/opt/ferry/etc/systemd/ferry-worker-orders@.service', join(wants, `ferry-worker-orders@${instance}.service`))
    }
    await symlink('/elsewhere', join(wants, 'ferry-worker-other@1.service'))
    await run(join(root, 'out/bin/stop-orders.sh'), [], { env })
    expect(await commands()).to.deep.equal([
      "stop ferry-worker-orders@*.service",
      'disable ferry-worker-orders@1.service ferry-worker-orders@7.service',
    ])
  })

  it('stop with nothing enabled only stops', async () => {
    await run(join(root, 'out/bin/stop-orders.sh'), [], { env })
    expect(await commands()).to.deep.equal(['stop ferry-worker-orders@*.service'])
  })
})
