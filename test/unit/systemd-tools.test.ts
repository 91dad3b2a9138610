/**
 * The systemd files checked by systemd's own tools (no running systemd needed):
 * `systemd-analyze verify` on deploy/systemd units and on every rendered worker unit (no
 * warning allowed), and `systemd-tmpfiles --create --root` building each rendered directory
 * layout in a scratch root, with the modes and owners it declares. The tools come from Debian's
 * `systemd` package, installed with apt-get when missing and running as root (.ci/run does too).
 */
import { execFile } from 'node:child_process'
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { expect } from 'chai'
import { render } from '../../configurator/index.js'
import { goldenCases, readGoldenInput } from './configurator/golden-helpers.js'
import { DEPLOY_DIR } from '../integration/deploy-commands.js'
import { ensureDebianTool } from '../../deploy/local-stack.js'

const run = promisify(execFile)

async function ensureSystemdTools(): Promise<void> {
  const hint = 'systemd-analyze/systemd-tmpfiles missing: install Debian\'s "systemd" package'
  await ensureDebianTool('systemd-analyze', 'systemd', hint)
  await ensureDebianTool('systemd-tmpfiles', 'systemd', hint)
}

/** `systemd-analyze verify` of `unitFile` (instance `instance` of a template), with ExecStart's binary stubbed. */
async function verify(dir: string, unitName: string, content: string, ferryBin: string, instance?: string): Promise<string> {
  const stub = join(dir, 'ferry-stub')
  await writeFile(stub, '#!/bin/sh\nexit 0\n')
  await chmod(stub, 0o755)
  await writeFile(join(dir, unitName), content.split(ferryBin).join(stub))
  const target = instance === undefined ? unitName : unitName.replace('@.', `@${instance}.`)
  const { stderr } = await run('systemd-analyze', ['verify', '--man=no', join(dir, target)], { env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' } })
  return stderr
}

describe('systemd files checked by systemd tools', function () {
  this.timeout(300000)
  let dir: string

  before(async function () {
    this.timeout(600000)
    await ensureSystemdTools()
  })

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-systemd-'))
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  for (const [file, instance] of [['ferry-controller.service', undefined], ['ferry-worker@.service', '1']] as const) {
    it(`systemd-analyze verify accepts deploy/systemd/${file} without a warning`, async () => {
      const content = await readFile(join(DEPLOY_DIR, 'systemd', file), 'utf8')
      expect(await verify(dir, file, content, '/usr/local/bin/ferry', instance)).to.equal('')
    })
  }

  it('systemd-analyze verify rejects what it should (the check is live)', async () => {
    const stderr = await verify(dir, 'broken.service', '[Service]\nExecStart=/usr/local/bin/ferry bootstrap\nTimeoutStopSec=soon\nRestartSecs=5\n', '/usr/local/bin/ferry').catch((error: { stderr?: string }) => error.stderr ?? '')
    expect(stderr).to.match(/broken\.service:3: Failed to parse time value/)
    expect(stderr).to.include("Unknown key 'RestartSecs'")
  })

  it('systemd-analyze verify accepts every rendered worker unit without a warning', async () => {
    for (const name of await goldenCases()) {
      const { input } = await readGoldenInput(name)
      const unit = render(input).find((f) => f.path.startsWith('systemd/'))
      expect(unit, name).to.not.equal(undefined)
      const unitName = unit?.path.slice('systemd/'.length) ?? ''
      expect(await verify(dir, unitName, unit?.content ?? '', input.ferryBin ?? '/usr/local/bin/ferry', '1'), name).to.equal('')
    }
  })

  it('systemd-tmpfiles creates every rendered directory layout with its modes and owners', async function () {
    if (process.getuid?.() !== 0) this.skip() // chown needs root; CI runs as root
    for (const name of await goldenCases()) {
      const { input } = await readGoldenInput(name)
      const conf = render(input).find((f) => f.path.startsWith('tmpfiles.d/'))
      const root = join(dir, name)
      await mkdir(join(root, 'etc'), { recursive: true })
      // The scratch root's own user database: tmpfiles resolves "ferry" there.
      await writeFile(join(root, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\nferry:x:991:991::/nonexistent:/usr/sbin/nologin\n')
      await writeFile(join(root, 'etc', 'group'), 'root:x:0:\nferry:x:991:\n')
      const confFile = join(dir, `${name}.conf`)
      await writeFile(confFile, conf?.content ?? '')
      await run('systemd-tmpfiles', ['--create', `--root=${root}`, confFile])
      const lines = (conf?.content ?? '').split('\n').filter((l) => l.startsWith('d '))
      expect(lines.length, name).to.be.at.least(4)
      for (const line of lines) {
        const [, path, mode, user, group] = line.split(/\s+/)
        const info = await stat(join(root, path ?? ''))
        expect(info.isDirectory(), `${name}: ${path}`).to.equal(true)
        expect((info.mode & 0o7777).toString(8), `${name}: ${path} mode`).to.equal(mode?.replace(/^0/, ''))
        expect(info.uid, `${name}: ${path} owner`).to.equal(user === 'ferry' ? 991 : 0)
        expect(info.gid, `${name}: ${path} group`).to.equal(group === 'ferry' ? 991 : 0)
      }
    }
  })
})
