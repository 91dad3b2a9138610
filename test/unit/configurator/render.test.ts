import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect } from 'chai'
import { parseCluster, parseTopicGroup } from '../../../common/config.js'
import type { ClusterSpec } from '../../../common/config.js'
import { FerryError } from '../../../common/errors.js'
import { render } from '../../../configurator/index.js'
import type { RenderInput, RenderedFile } from '../../../configurator/index.js'
import { GOLDEN_ROOT, expectGolden, goldenCases, listTree, readGoldenInput } from './golden-helpers.js'

const REQUIRED_CASES = ['plaintext-to-plaintext', 'sasl-ssl-inline-password', 'sasl-ssl-password-file', 'ssl-mtls-to-plaintext']

function fileNamed(files: RenderedFile[], path: string): string {
  const file = files.find((f) => f.path === path)
  if (file === undefined) throw new Error(`no rendered file ${path}; got ${files.map((f) => f.path).join(', ')}`)
  return file.content
}

/** key → value of the live lines of a rendered properties file (values here need no unescaping). */
function properties(content: string): Map<string, string> {
  const entries = content
    .split('\n')
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const at = line.indexOf('=')
      return [line.slice(0, at), line.slice(at + 1)] as [string, string]
    })
  return new Map(entries)
}

function baseInput(overrides: Partial<RenderInput> = {}): RenderInput {
  return {
    group: parseTopicGroup({ name: 'orders', sourceCluster: 'src', targetCluster: 'dst', topics: ['orders'] }),
    source: parseCluster({ name: 'src', bootstrapServers: ['src-1:9092'] }),
    target: parseCluster({ name: 'dst', bootstrapServers: ['dst-1:9092'] }),
    deployment: 'test',
    ...overrides,
  }
}

function renderError(input: RenderInput): FerryError {
  try {
    render(input)
  } catch (error) {
    expect(error).to.be.instanceOf(FerryError)
    return error as FerryError
  }
  throw new Error('render() did not throw')
}

describe('configurator render()', () => {
  describe('golden files', () => {
    it('has every required case', async () => {
      expect(await goldenCases()).to.include.members(REQUIRED_CASES)
    })

    for (const name of REQUIRED_CASES) {
      it(`matches golden/${name}`, async () => {
        const { input } = await readGoldenInput(name)
        await expectGolden(name, render(input))
      })
    }
  })

  describe('secrets', () => {
    it('writes no inline password into any rendered file, only env references', async () => {
      const { input } = await readGoldenInput('sasl-ssl-inline-password')
      const sourcePassword = input.source.sasl?.password
      const targetPassword = input.target.sasl?.password
      expect(sourcePassword).to.be.a('string')
      expect(targetPassword).to.be.a('string')
      const files = render(input)
      for (const file of files) {
        for (const secret of [sourcePassword, targetPassword] as string[]) {
          expect(file.content, file.path).not.to.include(secret)
          // Escaped forms too: a \uXXXX or backslashed copy would still be the password.
          expect(file.content, file.path).not.to.include(secret.slice(0, 12))
        }
      }
      expect(properties(fileNamed(files, 'audit/consumer.properties')).get('sasl.jaas.config')).to.include(
        'password="${env:FERRY_SOURCE_SASL_PASSWORD}"',
      )
      expect(properties(fileNamed(files, 'audit/producer.properties')).get('sasl.jaas.config')).to.include(
        'password="${env:FERRY_TARGET_SASL_PASSWORD}"',
      )
    })

    it('keeps the passwords out of the golden files on disk as well', async () => {
      const { input } = await readGoldenInput('sasl-ssl-inline-password')
      const dir = join(GOLDEN_ROOT, 'sasl-ssl-inline-password', 'files')
      for (const path of await listTree(dir)) {
        const content = await readFile(join(dir, path), 'utf8')
        expect(content, path).not.to.include(input.source.sasl?.password)
        expect(content, path).not.to.include(input.target.sasl?.password)
      }
    })

    it('records the variables standing in for inline passwords in the unit, without blocking the worker on them', async () => {
      const { input } = await readGoldenInput('sasl-ssl-inline-password')
      const unit = fileNamed(render(input), 'systemd/ferry-worker-audit@.service')
      const comments = unit.slice(0, unit.indexOf('[Unit]'))
      expect(comments).to.match(/For Java clients using audit\/\*\.properties[^\n]*\n#\s+FERRY_SOURCE_SASL_PASSWORD: SASL password of source cluster legacy/)
      expect(comments).to.match(/^#\s+FERRY_TARGET_SASL_PASSWORD: SASL password of target cluster central/m)
      // The worker reads an inline password from the cluster definition, not from this variable.
      expect(unit).not.to.include('$${FERRY_SOURCE_SASL_PASSWORD')
      expect(unit).not.to.include('$${FERRY_TARGET_SASL_PASSWORD')
    })

    it('checks before every start the variables the worker needs, naming the files to put them in', () => {
      const target = parseCluster({
        name: 'dst',
        bootstrapServers: ['dst-1:9093'],
        securityProtocol: 'SASL_SSL',
        sasl: { mechanism: 'plain', username: 'u', passwordEnv: 'DST_PASSWORD' },
      })
      const unit = fileNamed(render(baseInput({ target })), 'systemd/ferry-worker-orders@.service')
      const checked = [...unit.matchAll(/^ExecStartPre=.*"\$\$\{(\w+):-\}"/gm)].map((match) => match[1])
      expect(checked).to.deep.equal(['FERRY_ZOOKEEPER', 'FERRY_REDIS', 'DST_PASSWORD'])
      expect(unit).to.include('add it to /etc/ferry/orders.env or /etc/ferry/ferry.env')
      expect(unit).to.include('\nEnvironmentFile=-/etc/ferry/ferry.env\nEnvironmentFile=-/etc/ferry/orders.env\n')
    })

    it('runs the worker with flags the ferry CLI accepts, the deployment as a flag and a per-host instance id', () => {
      const unit = fileNamed(render(baseInput({ deployment: 'prod' })), 'systemd/ferry-worker-orders@.service')
      expect(unit).to.include('\nExecStart=/usr/local/bin/ferry bootstrap --role worker --deployment prod --id %H-orders-%i\n')
      expect(unit).to.include('\nRestart=on-failure\n')
      for (const hardening of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/ferry/orders']) {
        expect(unit).to.include(`\n${hardening}\n`)
      }
    })

    it('declares the group zone and dc as the workers\' own, in the rendered env file the unit loads first', () => {
      const group = parseTopicGroup({ name: 'orders', sourceCluster: 'src', targetCluster: 'dst', topics: ['orders'], zone: 'dmz', dc: 'eu-1' })
      const files = render(baseInput({ group }))
      const env = fileNamed(files, 'orders/worker.env')
      expect(env).to.include('\nFERRY_DC=eu-1\n').and.to.include('\nFERRY_ZONE=dmz\n')
      const unit = fileNamed(files, 'systemd/ferry-worker-orders@.service')
      expect(unit).to.include('\nEnvironmentFile=/etc/ferry/orders/worker.env\nEnvironmentFile=-/etc/ferry/ferry.env\nEnvironmentFile=-/etc/ferry/orders.env\n')
      expect(fileNamed(files, 'supervisor/ferry-worker-orders.conf')).to.match(/\. \/etc\/ferry\/orders\/worker\.env; .*\. \/etc\/ferry\/ferry\.env; .*\. \/etc\/ferry\/orders\.env; /)
    })

    it('refuses a dc that cannot go into an env file, naming group.dc', () => {
      const group = parseTopicGroup({ name: 'orders', sourceCluster: 'src', targetCluster: 'dst', topics: ['orders'], dc: 'eu 1; rm' })
      expect(() => render(baseInput({ group }))).to.throw(/group\.dc: must be letters/)
    })

    it('references worker secrets by file in the env file and never holds their values', () => {
      const target = parseCluster({ name: 'dst', bootstrapServers: ['t:9093'], securityProtocol: 'SASL_SSL', sasl: { mechanism: 'plain', username: 'u', passwordEnv: 'DST_PW' } })
      const files = render(baseInput({ target }))
      const env = fileNamed(files, 'orders/worker.env')
      expect(env).to.include('\nFERRY_SECRET_FILES=DST_PW=/etc/ferry/secrets/DST_PW\n')
      expect(env.split('\n').filter((line) => line.startsWith('DST_PW='))).to.deep.equal([])
      const unit = fileNamed(files, 'systemd/ferry-worker-orders@.service')
      expect(unit).to.include('[ -z "$${DST_PW:-}" ] && [ ! -r /etc/ferry/secrets/DST_PW ]')
    })

    it('stops within the grace period plus a margin, in systemd and supervisord alike', () => {
      const files = render({ ...baseInput(), gracePeriodMs: 45000 })
      expect(fileNamed(files, 'orders/worker.env')).to.include('\nFERRY_GRACE_PERIOD_MS=45000\n')
      expect(fileNamed(files, 'systemd/ferry-worker-orders@.service')).to.include('\nTimeoutStopSec=75s\n')
      expect(fileNamed(files, 'supervisor/ferry-worker-orders.conf')).to.include('\nstopwaitsecs=75\n')
      expect(() => render({ ...baseInput(), gracePeriodMs: -1 })).to.throw(/gracePeriodMs: must be a whole number/)
    })

    it('points at key and certificate files, never their contents, and at the passwordFile by reference', () => {
      const source = parseCluster({
        name: 'src',
        bootstrapServers: ['src-1:9093'],
        securityProtocol: 'SASL_SSL',
        tls: { caFile: '/etc/ferry/tls/ca.pem', certFile: '/etc/ferry/tls/client.crt', keyFile: '/etc/ferry/tls/client.key' },
        sasl: { mechanism: 'scram-sha-512', username: 'u', passwordFile: '/etc/ferry/secrets/src.password' },
      })
      const consumer = properties(fileNamed(render(baseInput({ source })), 'orders/consumer.properties'))
      expect(consumer.get('ssl.truststore.location')).to.equal('/etc/ferry/tls/ca.pem')
      expect(consumer.get('ssl.keystore.certificate.chain')).to.equal('${dir:/etc/ferry/tls:client.crt}')
      expect(consumer.get('ssl.keystore.key')).to.equal('${dir:/etc/ferry/tls:client.key}')
      expect(consumer.get('sasl.jaas.config')).to.equal(
        'org.apache.kafka.common.security.scram.ScramLoginModule required username="u" password="${dir:/etc/ferry/secrets:src.password}";',
      )
      expect(consumer.get('config.providers')).to.equal('dir')
      expect(consumer.get('config.providers.dir.class')).to.equal('org.apache.kafka.common.config.provider.DirectoryConfigProvider')
    })

    it('references a passwordEnv by its own name', () => {
      const target = parseCluster({
        name: 'dst',
        bootstrapServers: ['dst-1:9093'],
        securityProtocol: 'SASL_SSL',
        sasl: { mechanism: 'plain', username: 'u', passwordEnv: 'DST_PASSWORD' },
      })
      const files = render(baseInput({ target }))
      const producer = properties(fileNamed(files, 'orders/producer.properties'))
      expect(producer.get('sasl.mechanism')).to.equal('PLAIN')
      expect(producer.get('sasl.jaas.config')).to.include('password="${env:DST_PASSWORD}";')
      expect(fileNamed(files, 'systemd/ferry-worker-orders@.service')).to.match(/^#\s+DST_PASSWORD: SASL password of target cluster dst$/m)
    })
  })

  describe('client properties', () => {
    it('sets the consumer and producer settings mirroring relies on', () => {
      const files = render(baseInput({ deployment: 'prod' }))
      const consumer = properties(fileNamed(files, 'orders/consumer.properties'))
      expect(Object.fromEntries(consumer)).to.include({
        'bootstrap.servers': 'src-1:9092',
        'security.protocol': 'PLAINTEXT',
        'group.id': 'ferry.prod.orders',
        'client.id': 'ferry.prod.orders.consumer',
        'enable.auto.commit': 'false',
        'isolation.level': 'read_committed',
        'auto.offset.reset': 'earliest',
      })
      const producer = properties(fileNamed(files, 'orders/producer.properties'))
      expect(Object.fromEntries(producer)).to.include({
        'bootstrap.servers': 'dst-1:9092',
        acks: 'all',
        'enable.idempotence': 'true',
        'max.in.flight.requests.per.connection': '5',
        'compression.type': 'gzip',
        'client.id': 'ferry.prod.orders.producer',
      })
      expect([...consumer.keys()].some((key) => key.startsWith('ssl.') || key.startsWith('sasl.'))).to.equal(false)
    })

    it('takes auto.offset.reset from startPosition', () => {
      const group = parseTopicGroup({ name: 'orders', sourceCluster: 'src', targetCluster: 'dst', topics: ['orders'], startPosition: 'latest' })
      const consumer = properties(fileNamed(render(baseInput({ group })), 'orders/consumer.properties'))
      expect(consumer.get('auto.offset.reset')).to.equal('latest')
    })

    it('writes the keys of every properties file in sorted order', () => {
      for (const file of render(baseInput()).filter((f) => f.path.endsWith('.properties'))) {
        const keys = [...properties(file.content).keys()]
        expect(keys, file.path).to.deep.equal([...keys].sort())
      }
    })
  })

  describe('determinism', () => {
    it('gives the same bytes for the same input, whatever the key order of the input objects', async () => {
      const { raw } = await readGoldenInput('sasl-ssl-inline-password')
      const reverseKeys = (value: unknown): unknown => {
        if (Array.isArray(value)) return value.map(reverseKeys)
        if (value !== null && typeof value === 'object') {
          return Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reverseKeys(v)]))
        }
        return value
      }
      const build = (r: typeof raw): RenderInput => ({
        ...(r.options as { deployment: string }),
        group: parseTopicGroup(r.group),
        source: parseCluster(r.source),
        target: parseCluster(r.target),
      })
      const first = render(build(raw))
      const second = render(build(reverseKeys(raw) as typeof raw))
      expect(second).to.deep.equal(first)
      expect(JSON.stringify(first)).not.to.match(/20\d\d-\d\d-\d\dT/)
    })

    it('writes group.json with keys sorted at every level and no secrets', async () => {
      const { input } = await readGoldenInput('sasl-ssl-inline-password')
      const json = fileNamed(render(input), 'audit/group.json')
      const parsed = JSON.parse(json) as Record<string, unknown>
      expect(parsed).to.deep.equal(JSON.parse(JSON.stringify(input.group)))
      expect(Object.keys(parsed)).to.deep.equal(Object.keys(parsed).sort())
      expect(Object.keys((parsed['rename'] as { map: object }).map)).to.deep.equal(['audit-alerts', 'audit-log'])
    })

    it('returns the files sorted by path with the scripts executable', () => {
      const files = render(baseInput())
      expect(files.map((f) => f.path)).to.deep.equal([
        'bin/start-orders.sh',
        'bin/stop-orders.sh',
        'orders/consumer.properties',
        'orders/group.json',
        'orders/producer.properties',
        'orders/worker.env',
        'supervisor/ferry-worker-orders.conf',
        'systemd/ferry-worker-orders@.service',
        'tmpfiles.d/ferry-orders.conf',
      ])
      expect(files.filter((f) => f.mode === 0o755).map((f) => f.path)).to.deep.equal(['bin/start-orders.sh', 'bin/stop-orders.sh'])
    })
  })

  describe('bad input', () => {
    it('names the field when the group and the clusters do not match', () => {
      const source = parseCluster({ name: 'other', bootstrapServers: ['x:1'] })
      const error = renderError(baseInput({ source }))
      expect(error.code).to.equal('INVALID_INPUT')
      expect(error.details).to.deep.include({ field: 'group.sourceCluster', message: 'is src, but the source cluster given is other' })
    })

    it('lists every bad option at once, by field', () => {
      const group = parseTopicGroup({ name: 'orders', sourceCluster: 'src', targetCluster: 'dst', topics: ['orders'], zone: 'zone one' })
      const error = renderError(baseInput({ group, deployment: 'prod eu', workers: 0, installDir: 'relative/dir', ferryBin: '/opt/fer ry' }))
      const fields = (error.details as { field: string }[]).map((p) => p.field)
      expect(fields).to.have.members(['deployment', 'workers', 'installDir', 'ferryBin', 'group.zone'])
      expect(error.message).to.include('deployment: must be 1-100 characters')
    })

    it('refuses relative secret paths and paths that would break a ${dir:...} reference', () => {
      const source: ClusterSpec = parseCluster({
        name: 'src',
        bootstrapServers: ['src-1:9093'],
        securityProtocol: 'SASL_SSL',
        tls: { caFile: 'ca.pem', certFile: '/etc/ferry/c:1.crt', keyFile: '/etc/ferry/k}.key' },
        sasl: { mechanism: 'plain', username: 'u', passwordFile: '/etc/ferry/secrets/' },
      })
      const error = renderError(baseInput({ source }))
      expect((error.details as { field: string }[]).map((p) => p.field)).to.have.members([
        'source.tls.caFile',
        'source.tls.certFile',
        'source.tls.keyFile',
        'source.sasl.passwordFile',
      ])
    })
  })
})
