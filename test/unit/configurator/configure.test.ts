/**
 * `ferry configure`: definitions (YAML/JSON) → every group rendered → a diff against the tree
 * on disk → only changes written. Real files in a temporary directory; no server.
 */
import { mkdtemp, readFile, rm, stat, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { runConfigureCli } from '../../../cli/configure.js'
import { MANIFEST, parseDefinitions, planChanges, renderAll } from '../../../configurator/index.js'

const DEFINITIONS = `
deployment: test
render: { installDir: /etc/ferry, workers: 2 }
clusters:
  - { name: src, bootstrapServers: ["src-1:9093"], securityProtocol: SASL_SSL, sasl: { mechanism: scram-sha-512, username: ferry, password: "hunter2-inline-secret" } }
  - { name: dst, bootstrapServers: ["dst-1:9092"] }
groups:
  - { name: orders, sourceCluster: src, targetCluster: dst, topics: [orders], workers: 3 }
  - { name: clicks, sourceCluster: src, targetCluster: dst, topicPattern: "clicks\\\\..*" }
`

function io() {
  const out = { stdout: '', stderr: '' }
  return { out, io: { stdout: { write: (t: string) => (out.stdout += t) }, stderr: { write: (t: string) => (out.stderr += t) } } }
}

describe('configurator ferry configure', () => {
  let dir: string
  let defsFile: string
  let outDir: string

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-configure-'))
    defsFile = join(dir, 'ferry.yaml')
    outDir = join(dir, 'etc')
    await writeFile(defsFile, DEFINITIONS)
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('renders every group into one tree, showing each new file as a diff, and records what it owns', async () => {
    const { out, io: cliIo } = io()
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir], cliIo)).to.equal(0)
    expect(out.stdout).to.include('create orders/consumer.properties (mode 644)').and.to.include('+++ b/systemd/ferry-worker-clicks@.service')
    expect(out.stdout).to.include('18 to create, 0 to update, 0 unchanged, 0 stale').and.to.include('wrote 18 files')
    const manifest = JSON.parse(await readFile(join(outDir, MANIFEST), 'utf8')) as { files: string[] }
    expect(manifest.files).to.have.length(18)
    expect(manifest.files).to.include('clicks/worker.env').and.to.include('supervisor/ferry-worker-orders.conf')
    // Per-group worker count from the file.
    expect(await readFile(join(outDir, 'bin/start-orders.sh'), 'utf8')).to.include('count="${1:-3}"')
    expect(await readFile(join(outDir, 'bin/start-clicks.sh'), 'utf8')).to.include('count="${1:-2}"')
    expect((await stat(join(outDir, 'bin/start-orders.sh'))).mode & 0o777).to.equal(0o755)
  })

  it('is idempotent: a second run changes nothing and touches no file', async () => {
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir], io().io)).to.equal(0)
    const before = (await stat(join(outDir, 'orders/producer.properties'))).mtimeMs
    await new Promise((resolve) => setTimeout(resolve, 20))
    const { out, io: cliIo } = io()
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir], cliIo)).to.equal(0)
    expect(out.stdout).to.equal('0 to create, 0 to update, 18 unchanged, 0 stale\nferry configure: nothing to change in ' + outDir + '\n')
    expect((await stat(join(outDir, 'orders/producer.properties'))).mtimeMs).to.equal(before)
  })

  it('shows a unified diff of what changed before writing, and --dry-run writes nothing', async () => {
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir], io().io)).to.equal(0)
    const dry = io()
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir, '--grace-period-ms', '45000', '--dry-run'], dry.io)).to.equal(0)
    expect(dry.out.stdout).to.include('--- a/orders/worker.env\n+++ b/orders/worker.env').and.to.include('-FERRY_GRACE_PERIOD_MS=30000\n+FERRY_GRACE_PERIOD_MS=45000')
    expect(dry.out.stdout).to.include('-TimeoutStopSec=60s\n+TimeoutStopSec=75s')
    expect(dry.out.stdout).to.include('0 to create, 6 to update, 12 unchanged, 0 stale').and.to.include('dry run, nothing written')
    expect(await readFile(join(outDir, 'orders/worker.env'), 'utf8')).to.include('FERRY_GRACE_PERIOD_MS=30000')

    const real = io()
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir, '--grace-period-ms', '45000', '--quiet'], real.io)).to.equal(0)
    expect(real.out.stdout).to.equal(`0 to create, 6 to update, 12 unchanged, 0 stale\nferry configure: wrote 6 files in ${outDir}\n`)
    expect(await readFile(join(outDir, 'orders/worker.env'), 'utf8')).to.include('FERRY_GRACE_PERIOD_MS=45000')
  })

  it('repairs a file whose mode was changed by hand', async () => {
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir], io().io)).to.equal(0)
    await chmod(join(outDir, 'bin/stop-clicks.sh'), 0o644)
    const plan = await planChanges(renderAll(parseDefinitions(DEFINITIONS, 'defs'), {}), outDir)
    expect(plan.changes.filter((c) => c.kind === 'update').map((c) => [c.path, c.oldMode, c.mode])).to.deep.equal([['bin/stop-clicks.sh', 0o644, 0o755]])
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir], io().io)).to.equal(0)
    expect((await stat(join(outDir, 'bin/stop-clicks.sh'))).mode & 0o777).to.equal(0o755)
  })

  it('reports files of a removed group as stale, and deletes them only with --prune', async () => {
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir], io().io)).to.equal(0)
    await writeFile(defsFile, DEFINITIONS.replace(/ {2}- \{ name: clicks.*\n/, ''))
    const kept = io()
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir], kept.io)).to.equal(0)
    expect(kept.out.stdout).to.include('stale  clicks/worker.env (no longer rendered; --prune deletes it)').and.to.include('0 to create, 0 to update, 9 unchanged, 9 stale')
    expect(await readFile(join(outDir, 'clicks/worker.env'), 'utf8')).to.include('clicks')
    const pruned = io()
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir, '--prune'], pruned.io)).to.equal(0)
    expect(pruned.out.stdout).to.include('wrote 9 files')
    await readFile(join(outDir, 'clicks/worker.env')).then(
      () => expect.fail('clicks/worker.env should be deleted'),
      (error: NodeJS.ErrnoException) => expect(error.code).to.equal('ENOENT'),
    )
    const manifest = JSON.parse(await readFile(join(outDir, MANIFEST), 'utf8')) as { files: string[] }
    expect(manifest.files.some((f) => f.includes('clicks'))).to.equal(false)
  })

  it('never writes or prints an inline password, in the files or in the diff', async () => {
    const { out, io: cliIo } = io()
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir], cliIo)).to.equal(0)
    expect(out.stdout).to.not.include('hunter2')
    expect(out.stdout).to.include('${env:FERRY_SOURCE_SASL_PASSWORD}')
    for (const path of (JSON.parse(await readFile(join(outDir, MANIFEST), 'utf8')) as { files: string[] }).files) {
      expect(await readFile(join(outDir, path), 'utf8'), path).to.not.include('hunter2')
    }
  })

  it('renders only the groups named with --group', async () => {
    const { out, io: cliIo } = io()
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir, '--group', 'clicks'], cliIo)).to.equal(0)
    expect(out.stdout).to.include('9 to create')
    expect(out.stdout).to.not.include('orders/')
    const bad = io()
    expect(await runConfigureCli(['--config', defsFile, '--out', outDir, '--group', 'nope'], bad.io)).to.equal(1)
    expect(bad.out.stderr).to.include('no topic group named nope (defined: orders, clicks)')
  })

  describe('bad input', () => {
    it('names every invalid field by its place in the file', async () => {
      await writeFile(defsFile, `
clusters:
  - { name: src, bootstrapServers: [] }
groups:
  - { name: g, sourceCluster: src, targetCluster: missing, topics: [t], workers: 0 }
`)
      const { out, io: cliIo } = io()
      expect(await runConfigureCli(['--config', defsFile, '--out', outDir], cliIo)).to.equal(1)
      expect(out.stderr).to.include('clusters[0].bootstrapServers').and.to.include('groups[0].workers: must be a whole number from 1 to 1000')
      expect(out.stderr).to.include('deployment: is required')
    })

    it('reports a YAML error by position without echoing the text, which may hold a password', async () => {
      await writeFile(defsFile, 'deployment: x\nclusters:\n  - { name: a, sasl: { password: "s3cret-value }\n')
      const { out, io: cliIo } = io()
      expect(await runConfigureCli(['--config', defsFile, '--out', outDir], cliIo)).to.equal(1)
      expect(out.stderr).to.match(/not valid YAML at line \d+ column \d+/)
      expect(out.stderr).to.not.include('s3cret')
    })

    it('names command-line mistakes with exit code 2', async () => {
      for (const [args, message] of [
        [['--out', outDir], 'exactly one of --config <file> or --controller <url>'],
        [['--config', defsFile], 'missing required flag: --out'],
        [['--controller', 'http://x', '--out', outDir], '--controller needs --deployment'],
        [['--config', defsFile, '--out', outDir, '--workers', 'two'], '--workers must be a whole number'],
        [['--config', defsFile, '--out', outDir, '--compression', 'brotli'], '--compression must be one of'],
        [['--config', defsFile, '--out', outDir, '--bogus'], "Unknown option '--bogus'"],
      ] as const) {
        const { out, io: cliIo } = io()
        expect(await runConfigureCli([...args], cliIo), args.join(' ')).to.equal(2)
        expect(out.stderr, args.join(' ')).to.include(message)
      }
    })
  })
})
