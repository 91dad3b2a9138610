import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { runConfiguratorCli } from '../../../configurator/index.js'
import type { RenderedFile } from '../../../configurator/index.js'
import { expectGolden, listTree, readGoldenInput } from './golden-helpers.js'

interface Run {
  code: number
  stdout: string
  stderr: string
}

async function cli(argv: string[]): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await runConfiguratorCli(argv, {
    stdout: { write: (text: string) => (stdout += text) },
    stderr: { write: (text: string) => (stderr += text) },
  })
  return { code, stdout, stderr }
}

describe('configurator CLI (ferry render)', () => {
  let root: string
  let groupFile: string
  let sourceFile: string
  let targetFile: string
  let out: string
  let secrets: string[]

  /** A complete, valid command line; tests override one flag at a time. */
  function argv(overrides: Record<string, string | undefined> = {}, extra: string[] = []): string[] {
    const flags: Record<string, string | undefined> = {
      '--group': groupFile,
      '--source': sourceFile,
      '--target': targetFile,
      '--deployment': 'staging',
      '--out': out,
      ...overrides,
    }
    return [
      'render',
      ...Object.entries(flags).flatMap(([flag, value]) => (value === undefined ? [] : [flag, value])),
      ...extra,
    ]
  }

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'ferry-cli-'))
    // The inline-password golden case: the CLI must reproduce it byte for byte, and never echo its secrets.
    const { raw } = await readGoldenInput('sasl-ssl-inline-password')
    groupFile = join(root, 'group.json')
    sourceFile = join(root, 'source.json')
    targetFile = join(root, 'target.json')
    out = join(root, 'out')
    await writeFile(groupFile, JSON.stringify(raw.group, null, 2))
    await writeFile(sourceFile, JSON.stringify(raw.source, null, 2))
    await writeFile(targetFile, JSON.stringify(raw.target, null, 2))
    secrets = [(raw.source as { sasl: { password: string } }).sasl.password, (raw.target as { sasl: { password: string } }).sasl.password]
  })

  afterEach(async () => {
    await rm(root, { recursive: true, force: true })
  })

  function expectNoSecrets(run: Run): void {
    for (const secret of secrets) {
      expect(run.stdout).not.to.include(secret)
      expect(run.stderr).not.to.include(secret)
    }
  }

  it('renders, writes the golden tree and lists the written files', async () => {
    const run = await cli(argv({ '--deployment': 'staging' }, ['--compression', 'zstd', '--ferry-bin', '/opt/ferry/bin/ferry']))
    expect(run.stderr).to.equal('')
    expect(run.code).to.equal(0)
    const paths = await listTree(out)
    expect(run.stdout).to.include('wrote 9 files for topic group audit')
    for (const path of paths) expect(run.stdout).to.include(join(out, path))
    const files: RenderedFile[] = []
    const modes = new Map((await readFile(join(process.cwd(), 'test/unit/configurator/golden/sasl-ssl-inline-password/modes.txt'), 'utf8'))
      .trim().split('\n').map((line) => [line.slice(5), Number.parseInt(line.slice(0, 4), 8)] as const))
    for (const path of paths) files.push({ path, content: await readFile(join(out, path), 'utf8'), mode: modes.get(path) ?? -1 })
    await expectGolden('sasl-ssl-inline-password', files)
    expectNoSecrets(run)
  })

  it('accepts the arguments without the leading "render" too', async () => {
    const run = await cli(argv().slice(1))
    expect(run.code, run.stderr).to.equal(0)
  })

  it('prints the usage for --help', async () => {
    const run = await cli(['render', '--help'])
    expect(run.code).to.equal(0)
    expect(run.stdout).to.include('Usage: ferry render --group <group.json>')
  })

  describe('command-line mistakes (exit code 2)', () => {
    it('names a missing --group', async () => {
      const run = await cli(argv({ '--group': undefined }))
      expect(run.code).to.equal(2)
      expect(run.stderr).to.include('missing required flag: --group')
      expect(run.stderr).to.include('ferry render --help')
      expect(await readdir(root)).not.to.include('out')
    })

    it('names every missing flag at once', async () => {
      const run = await cli(['render', '--group', groupFile])
      expect(run.code).to.equal(2)
      expect(run.stderr).to.include('missing required flags: --source, --target, --deployment, --out')
    })

    it('names an unknown flag', async () => {
      const run = await cli(argv({}, ['--wrokers', '3']))
      expect(run.code).to.equal(2)
      expect(run.stderr).to.include("'--wrokers'")
    })

    it('names a flag that lacks its value', async () => {
      const run = await cli([...argv({ '--out': undefined }), '--out'])
      expect(run.code).to.equal(2)
      expect(run.stderr).to.include('--out')
    })

    it('refuses a flag given twice', async () => {
      const run = await cli(argv({}, ['--deployment', 'other']))
      expect(run.code).to.equal(2)
      expect(run.stderr).to.include('given more than once: --deployment')
    })

    it('refuses stray positional arguments', async () => {
      const run = await cli(argv({}, ['extra']))
      expect(run.code).to.equal(2)
      expect(run.stderr).to.include('extra')
    })

    for (const workers of ['0', 'three', '2.5', '07']) {
      it(`names --workers for ${JSON.stringify(workers)}`, async () => {
        const run = await cli(argv({ '--workers': workers }))
        expect(run.code).to.equal(2)
        expect(run.stderr).to.include('--workers must be a whole number')
      })
    }

    it('names --workers for a negative number, however it is written', async () => {
      const attached = await cli(argv({}, ['--workers=-1']))
      expect(attached.code).to.equal(2)
      expect(attached.stderr).to.include('--workers must be a whole number from 1 up, got "-1"')
      // node:util reads a separate "-1" as a missing value; still a usage error that names the flag.
      const separate = await cli(argv({ '--workers': '-1' }))
      expect(separate.code).to.equal(2)
      expect(separate.stderr).to.include("'--workers")
    })

    it('names --workers above the limit', async () => {
      const run = await cli(argv({ '--workers': '5000' }))
      expect(run.code).to.equal(2)
      expect(run.stderr).to.include('--workers workers: must be a whole number from 1 to 1000')
    })

    it('names --compression', async () => {
      const run = await cli(argv({ '--compression': 'brotli' }))
      expect(run.code).to.equal(2)
      expect(run.stderr).to.include('--compression must be one of none, gzip, snappy, lz4, zstd')
    })

    it('names --deployment when it is not a valid name', async () => {
      const run = await cli(argv({ '--deployment': 'prod/eu' }))
      expect(run.code).to.equal(2)
      expect(run.stderr).to.include('--deployment deployment: must be 1-100 characters')
    })
  })

  describe('bad input files (exit code 1)', () => {
    it('names the flag and the file that cannot be read', async () => {
      const missing = join(root, 'nope.json')
      const run = await cli(argv({ '--source': missing }))
      expect(run.code).to.equal(1)
      expect(run.stderr).to.include(`--source ${missing}: cannot read it: no such file (ENOENT)`)
    })

    it('names the flag, the file and the position of bad JSON', async () => {
      await writeFile(groupFile, '{\n  "name": "audit",\n}\n')
      const run = await cli(argv())
      expect(run.code).to.equal(1)
      expect(run.stderr).to.include(`--group ${groupFile}: not valid JSON: Expected double-quoted property name at line 3 column 1`)
    })

    it('never echoes the text around a JSON error, which may be a password', async () => {
      await writeFile(sourceFile, `{"name": "legacy", "sasl": {"password": ${secrets[0] ?? ''}}}`)
      const run = await cli(argv())
      expect(run.code).to.equal(1)
      expect(run.stderr).to.include(`--source ${sourceFile}: not valid JSON`)
      expectNoSecrets(run)
    })

    it('names every invalid cluster field', async () => {
      await writeFile(
        targetFile,
        JSON.stringify({ name: 'central', bootstrapServers: ['no-port'], securityProtocol: 'SASL_SSL', sasl: { mechanism: 'gssapi', username: 'u', password: secrets[1] } }),
      )
      const run = await cli(argv())
      expect(run.code).to.equal(1)
      expect(run.stderr).to.include(`--target ${targetFile}: invalid cluster:`)
      expect(run.stderr).to.include('bootstrapServers.0: must be host:port')
      expect(run.stderr).to.include('sasl.mechanism:')
      expectNoSecrets(run)
    })

    it('names a cluster field that render() refuses', async () => {
      const { raw } = await readGoldenInput('sasl-ssl-inline-password')
      const source = raw.source as { tls: Record<string, unknown> }
      await writeFile(sourceFile, JSON.stringify({ ...source, tls: { ...source.tls, caFile: 'relative/ca.pem' } }))
      const run = await cli(argv())
      expect(run.code).to.equal(1)
      expect(run.stderr).to.include('--source source.tls.caFile: must be an absolute path')
    })

    it('names the invalid topic group field', async () => {
      await writeFile(groupFile, JSON.stringify({ name: 'audit', sourceCluster: 'legacy', targetCluster: 'central' }))
      const run = await cli(argv())
      expect(run.code).to.equal(1)
      expect(run.stderr).to.include(`--group ${groupFile}: invalid topic group:`)
      expect(run.stderr).to.include('topics: exactly one of topics or topicPattern is required')
    })

    it('names group.sourceCluster when --source is another cluster', async () => {
      await writeFile(sourceFile, JSON.stringify({ name: 'elsewhere', bootstrapServers: ['x:9092'] }))
      const run = await cli(argv())
      expect(run.code).to.equal(1)
      expect(run.stderr).to.include('--group group.sourceCluster: is legacy, but the source cluster given is elsewhere')
    })

    it('refuses a non-empty --out without --force, and replaces it with --force', async () => {
      await mkdir(out)
      await writeFile(join(out, 'old.txt'), 'old')
      const refused = await cli(argv())
      expect(refused.code).to.equal(1)
      expect(refused.stderr).to.include('is not empty; pass --force')
      expect(await readdir(out)).to.deep.equal(['old.txt'])

      const forced = await cli(argv({}, ['--force']))
      expect(forced.code, forced.stderr).to.equal(0)
      expect(await readdir(out)).to.have.members(['audit', 'bin', 'supervisor', 'systemd', 'tmpfiles.d'])
    })
  })
})
