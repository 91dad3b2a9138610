/**
 * The secret policy a rendered worker.env gives the workers (FERRY_SECRETS_DIR,
 * FERRY_SECRET_ENV_PREFIX): it must allow exactly what the group's clusters name, or a host set
 * up by `ferry configure` refuses its own TLS files and passwords.
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { expect } from 'chai'
import { parseCluster, parseTopicGroup, type ClusterSpec } from '../../../common/config.js'
import { FerryError } from '../../../common/errors.js'
import { checkClusterSecrets, loadSecretPolicy, readSecretFile } from '../../../common/secrets.js'
import { parseDefinitions, render, renderAll, type RenderedFile } from '../../../configurator/index.js'

const EXAMPLE = join(process.cwd(), 'deploy', 'examples', 'two-dc-two-zone.yaml')

/** KEY=value lines of a rendered env file (values there are never quoted). */
function envSettings(content: string): Map<string, string> {
  return new Map(
    content
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)] as [string, string]),
  )
}

function workerEnv(files: readonly RenderedFile[], group: string): Map<string, string> {
  const file = files.find((f) => f.path === `${group}/worker.env`)
  if (file === undefined) throw new Error(`no ${group}/worker.env`)
  return envSettings(file.content)
}

function renderProblems(fn: () => unknown): { field: string; message: string }[] {
  try {
    fn()
  } catch (error) {
    expect(error).to.be.instanceOf(FerryError)
    return (error as FerryError).details as { field: string; message: string }[]
  }
  throw new Error('expected render to refuse')
}

describe('configurator worker secret policy (FERRY_SECRETS_DIR, FERRY_SECRET_ENV_PREFIX)', () => {
  it('renders the two settings for the two-dc example from each group\'s own clusters', () => {
    const files = renderAll(parseDefinitions(readFileSync(EXAMPLE, 'utf8'), EXAMPLE), {})
    const settings = (group: string) => {
      const env = workerEnv(files, group)
      return { dirs: env.get('FERRY_SECRETS_DIR'), prefixes: env.get('FERRY_SECRET_ENV_PREFIX') }
    }
    // east-secure (TLS files, passwordEnv) → west-secure (CA file, passwordFile).
    expect(settings('orders-east-to-west')).to.deep.equal({ dirs: '/etc/ferry/secrets,/etc/ferry/tls', prefixes: 'EAST_SECURE_KAFKA_PASSWORD' })
    // east-secure → east-dmz (TLS files only).
    expect(settings('payments-to-dmz')).to.deep.equal({ dirs: '/etc/ferry/tls', prefixes: 'EAST_SECURE_KAFKA_PASSWORD' })
    // west-dmz (PLAINTEXT) → east-dmz: no variable is allowed at all.
    expect(settings('clicks-west-to-east')).to.deep.equal({ dirs: '/etc/ferry/tls', prefixes: undefined })
    // The variable the policy allows is the one FERRY_SECRET_FILES loads.
    expect(workerEnv(files, 'orders-east-to-west').get('FERRY_SECRET_FILES')).to.equal('EAST_SECURE_KAFKA_PASSWORD=/etc/ferry/secrets/EAST_SECURE_KAFKA_PASSWORD')
  })

  it('renders neither setting for clusters that name no secret file and no variable', () => {
    const group = parseTopicGroup({ name: 'g', sourceCluster: 'a', targetCluster: 'b', topics: ['t'] })
    const files = render({ group, source: parseCluster({ name: 'a', bootstrapServers: ['a:1'] }), target: parseCluster({ name: 'b', bootstrapServers: ['b:1'] }), deployment: 'd' })
    const env = workerEnv(files, 'g')
    expect(env.has('FERRY_SECRETS_DIR')).to.equal(false)
    expect(env.has('FERRY_SECRET_ENV_PREFIX')).to.equal(false)
  })

  it('refuses a cluster secret file outside a subdirectory of the install dir, naming the field and the allowed place', () => {
    const group = parseTopicGroup({ name: 'g', sourceCluster: 'a', targetCluster: 'b', topics: ['t'] })
    const source = parseCluster({
      name: 'a',
      bootstrapServers: ['a:1'],
      securityProtocol: 'SASL_SSL',
      // Outside; directly in the install dir (beside ferry.env and the secrets key); a way out by "..".
      tls: { caFile: '/etc/ssl/certs/ca.pem', certFile: '/etc/ferry/client.crt', keyFile: '/etc/ferry/tls/../secrets.key' },
      sasl: { mechanism: 'plain', username: 'u', passwordEnv: 'FERRY_REDIS' },
    })
    const target = parseCluster({ name: 'b', bootstrapServers: ['b:1'], securityProtocol: 'SASL_SSL', sasl: { mechanism: 'plain', username: 'u', passwordFile: '/etc/ferry/secrets/b.password' } })
    const problems = renderProblems(() => render({ group, source, target, deployment: 'd' }))
    expect(problems.map((p) => p.field)).to.deep.equal(['source.tls.caFile', 'source.tls.certFile', 'source.tls.keyFile', 'source.sasl.passwordEnv'])
    const byField = new Map(problems.map((p) => [p.field, p.message]))
    expect(byField.get('source.tls.caFile')).to.include('must be in a subdirectory of the install dir /etc/ferry (such as /etc/ferry/tls/').and.to.include('FERRY_SECRETS_DIR')
    expect(byField.get('source.tls.certFile')).to.include('subdirectory of the install dir /etc/ferry')
    expect(byField.get('source.tls.keyFile')).to.include('without "." or ".." segments')
    expect(byField.get('source.sasl.passwordEnv')).to.include("FERRY_REDIS is one of Ferry's own settings")
    // The same file under another install dir is outside it.
    const moved = renderProblems(() => render({ group, source: parseCluster({ name: 'a', bootstrapServers: ['a:1'] }), target, deployment: 'd', installDir: '/opt/ferry' }))
    expect(moved).to.deep.equal([{ field: 'target.sasl.passwordFile', message: moved[0]?.message }])
    expect(moved[0]?.message).to.include('install dir /opt/ferry').and.to.include('"/etc/ferry/secrets/b.password"')
  })

  it('names the definitions file\'s group when `ferry configure` meets such a cluster', () => {
    const text = readFileSync(EXAMPLE, 'utf8').replace('passwordFile: /etc/ferry/secrets/west-secure.password', 'passwordFile: /root/west.password')
    expect(() => renderAll(parseDefinitions(text, EXAMPLE), {})).to.throw(FerryError, /orders-east-to-west: target\.sasl\.passwordFile: must be in a subdirectory of the install dir \/etc\/ferry/)
  })

  describe('a worker started with the rendered values', () => {
    // The example moved to a real install dir, so the policy can resolve its directories.
    const installDir = realpathSync(mkdtempSync(join(tmpdir(), 'ferry-rendered-policy-')))
    const text = readFileSync(EXAMPLE, 'utf8').replaceAll('/etc/ferry', installDir)
    const defs = parseDefinitions(text, EXAMPLE)
    const files = renderAll(defs, {})
    const clusters = new Map(defs.clusters.map((c) => [c.name, c]))
    for (const dir of ['tls', 'secrets']) mkdirSync(join(installDir, dir))
    writeFileSync(join(installDir, 'tls', 'east-ca.pem'), 'east-ca')
    writeFileSync(join(installDir, 'secrets', 'west-secure.password'), 'west-pw')
    // What the documented layout also keeps in the install dir: never a cluster secret.
    writeFileSync(join(installDir, 'ferry.env'), 'FERRY_REDIS=redis://:pw@r:6379\n')
    writeFileSync(join(installDir, 'secrets.key'), 'k1 key\n')

    after(() => rmSync(installDir, { recursive: true, force: true }))

    const policyOf = (group: string) => {
      const env = workerEnv(files, group)
      return loadSecretPolicy({ secretsDir: env.get('FERRY_SECRETS_DIR'), secretEnvPrefix: env.get('FERRY_SECRET_ENV_PREFIX') })
    }
    const withSasl = (sasl: Record<string, string>): ClusterSpec =>
      parseCluster({ name: 'probe', bootstrapServers: ['p:1'], securityProtocol: 'SASL_PLAINTEXT', sasl: { mechanism: 'plain', username: 'u', ...sasl } })

    for (const group of defs.groups) {
      it(`accepts the clusters of ${group.name}, and nothing beside them`, () => {
        const policy = policyOf(group.name)
        for (const name of [group.sourceCluster, group.targetCluster]) {
          expect(checkClusterSecrets(clusters.get(name) as ClusterSpec, policy), `${group.name}: ${name}`).to.deep.equal([])
        }
        for (const probe of [
          withSasl({ passwordFile: join(installDir, 'ferry.env') }),
          withSasl({ passwordFile: join(installDir, 'secrets.key') }),
          withSasl({ passwordFile: '/etc/passwd' }),
          withSasl({ passwordEnv: 'HOME' }),
          withSasl({ passwordEnv: 'WEST_SECURE_KAFKA_PASSWORD' }),
        ]) {
          expect(checkClusterSecrets(probe, policy), `${group.name}: ${JSON.stringify(probe.sasl)}`).to.have.length(1)
        }
      })
    }

    it('reads the files and variables the example names, and refuses the others\' ones', () => {
      const orders = policyOf('orders-east-to-west')
      expect(readSecretFile(orders, 'west-secure', 'sasl.passwordFile', join(installDir, 'secrets', 'west-secure.password')).toString()).to.equal('west-pw')
      expect(readSecretFile(orders, 'east-secure', 'tls.caFile', join(installDir, 'tls', 'east-ca.pem')).toString()).to.equal('east-ca')
      // clicks' clusters use TLS files only: east-secure's variable and west-secure's password file are not its to read.
      const clicks = policyOf('clicks-west-to-east')
      expect(checkClusterSecrets(clusters.get('east-secure') as ClusterSpec, clicks).map((p) => p.field)).to.deep.equal(['sasl.passwordEnv'])
      expect(checkClusterSecrets(clusters.get('west-secure') as ClusterSpec, clicks).map((p) => p.field)).to.deep.equal(['sasl.passwordFile'])
    })
  })
})
