import { expect } from 'chai'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { parseCluster, redactCluster, type ClusterSpec } from '../../common/config.js'
import { FerryError } from '../../common/errors.js'
import { kafkaClientConfig, resolveSaslPassword } from '../../common/kafka/client-config.js'
import { silentLogger } from '../../common/logger.js'
import { checkClusterSecrets, loadSecretPolicy, NO_SECRET_SOURCES, openSecret, parseSecretKeys, readSecretFile, sealCluster, type SecretPolicy } from '../../common/secrets.js'

function thrown(fn: () => unknown): FerryError {
  try {
    fn()
  } catch (error) {
    expect(error).to.be.instanceOf(FerryError)
    return error as FerryError
  }
  throw new Error('expected an error')
}

describe('secret policy (where cluster secrets may come from)', () => {
  const root = realpathSync(mkdtempSync(path.join(os.tmpdir(), 'ferry-secrets-unit-')))
  const allowed = path.join(root, 'allowed')
  const outside = path.join(root, 'outside')
  mkdirSync(allowed)
  mkdirSync(outside)
  writeFileSync(path.join(allowed, 'pw'), 'inside-secret\n')
  writeFileSync(path.join(outside, 'canary'), 'outside-canary')
  symlinkSync(path.join(outside, 'canary'), path.join(allowed, 'link-out'))
  symlinkSync(path.join(allowed, 'pw'), path.join(allowed, 'link-in'))
  const keyFile = path.join(root, 'keys')
  const oldKey = randomBytes(32).toString('base64')
  const newKey = randomBytes(32).toString('base64')
  writeFileSync(keyFile, `# rotation: new first\nk2 ${newKey}\nk1 ${oldKey}\n`)
  const policy: SecretPolicy = loadSecretPolicy({ secretsDir: allowed, secretEnvPrefix: 'FERRY_SECRET_', secretsKeyFile: keyFile })
  const sasl = (extra: Record<string, string>): ClusterSpec =>
    parseCluster({ name: 'c', bootstrapServers: ['h:1'], securityProtocol: 'SASL_PLAINTEXT', sasl: { mechanism: 'plain', username: 'u', ...extra } })

  it('allows by default nothing: no host files, no variables, no inline secrets', () => {
    const fields = (c: ClusterSpec) => checkClusterSecrets(c, NO_SECRET_SOURCES).map((p) => p.field)
    expect(fields(sasl({ passwordFile: path.join(allowed, 'pw') }))).to.deep.equal(['sasl.passwordFile'])
    expect(fields(sasl({ passwordEnv: 'FERRY_SECRET_X' }))).to.deep.equal(['sasl.passwordEnv'])
    expect(fields(sasl({ password: 'p' }))).to.deep.equal(['sasl.password'])
    // And a process with no policy installed reads none of them at use.
    expect(thrown(() => kafkaClientConfig(sasl({ passwordFile: path.join(allowed, 'pw') }), { clientId: 't', logger: silentLogger() })).message).to.include('--secrets-dir')
  })

  it('refuses paths outside the directory by their text, with one message whether they exist or not', () => {
    const message = (file: string) => checkClusterSecrets(sasl({ passwordFile: file }), policy)[0]?.message
    const refusals = [path.join(outside, 'canary'), path.join(outside, 'missing'), '/etc/shadow', '/etc/no-such', `${allowed}/../outside/canary`, 'pw', allowed, `${allowed}-sibling/pw`].map(message)
    expect(new Set(refusals).size).to.equal(1)
    expect(refusals[0]).to.include(allowed)
    expect(message(path.join(allowed, 'pw'))).to.equal(undefined)
    expect(message(path.join(allowed, 'not-yet-there'))).to.equal(undefined)
  })

  it('reads inside the directory only; a link out reads as unreadable, like a missing file', () => {
    expect(readSecretFile(policy, 'c', 'sasl.passwordFile', path.join(allowed, 'link-in')).toString()).to.equal('inside-secret\n')
    const linkOut = thrown(() => readSecretFile(policy, 'c', 'sasl.passwordFile', path.join(allowed, 'link-out'))).message
    const missing = thrown(() => readSecretFile(policy, 'c', 'sasl.passwordFile', path.join(allowed, 'missing'))).message
    expect(linkOut.replace('link-out', 'X')).to.equal(missing.replace('missing', 'X'))
    expect(linkOut).not.to.include('outside-canary').and.not.to.include(outside)
    expect(thrown(() => readSecretFile(policy, 'c', 'sasl.passwordFile', path.join(outside, 'canary'))).message).to.include('refused')
    expect(resolveSaslPassword(sasl({ passwordFile: path.join(allowed, 'pw') }), {}, policy)).to.equal('inside-secret')
  })

  it('takes variables with the prefix only, never Ferry\'s own settings', () => {
    const env = { FERRY_SECRET_SRC: 'v', HOME: '/root', FERRY_API_TOKENS: 'a admin t' }
    expect(resolveSaslPassword(sasl({ passwordEnv: 'FERRY_SECRET_SRC' }), env, policy)).to.equal('v')
    for (const name of ['HOME', 'FERRY_SECRET', 'FERRY_API_TOKENS']) {
      expect(checkClusterSecrets(sasl({ passwordEnv: name }), policy)[0]?.message, name).to.include('FERRY_SECRET_')
      expect(thrown(() => resolveSaslPassword(sasl({ passwordEnv: name }), env, policy)).message).to.include('refused')
    }
    // A name equal to the prefix is what the operator wrote: allowed (a list of exact names relies on it).
    expect(checkClusterSecrets(sasl({ passwordEnv: 'FERRY_SECRET_' }), policy)).to.deep.equal([])
    const reserved = loadSecretPolicy({ secretEnvPrefix: 'FERRY_' })
    for (const name of ['FERRY_API_TOKENS', 'FERRY_SECRET_FILES', 'FERRY_REDIS', 'FERRY_SECRETS_KEY_FILE']) expect(checkClusterSecrets(sasl({ passwordEnv: name }), reserved), name).to.have.length(1)
  })

  it('takes a comma-separated list of prefixes and exact names, each a start of a variable name, none of Ferry\'s settings', () => {
    const listed = loadSecretPolicy({ secretEnvPrefix: 'EAST_SECURE_KAFKA_PASSWORD, WEST_,,FERRY_' })
    expect(listed.envPrefixes).to.deep.equal(['EAST_SECURE_KAFKA_PASSWORD', 'WEST_', 'FERRY_'])
    const env = { EAST_SECURE_KAFKA_PASSWORD: 'e', WEST_PW: 'w' }
    expect(resolveSaslPassword(sasl({ passwordEnv: 'EAST_SECURE_KAFKA_PASSWORD' }), env, listed)).to.equal('e')
    expect(resolveSaslPassword(sasl({ passwordEnv: 'WEST_PW' }), env, listed)).to.equal('w')
    for (const name of ['EAST_SECURE_KAFKA', 'EAST_OTHER', 'HOME', 'WEST', 'FERRY_REDIS', 'FERRY_SECRET_FILES', 'FERRY_API_TOKENS']) {
      const problems = checkClusterSecrets(sasl({ passwordEnv: name }), listed)
      expect(problems, name).to.have.length(1)
      expect(problems[0]?.message, name).to.include('one of EAST_SECURE_KAFKA_PASSWORD, WEST_, FERRY_')
    }
    // Each entry is checked at start, naming the setting and the entry.
    for (const [value, said] of [
      ['EAST_,BAD-', '"BAD-"'],
      ['EAST_,1X', '"1X"'],
      ['EAST_,FERRY_SECRET_FILES', 'FERRY_SECRET_FILES is one of Ferry\'s own settings'],
      ['FERRY_REDIS', 'FERRY_REDIS is one of Ferry\'s own settings'],
      [' , ', 'names no prefix'],
    ] as const) {
      const error = thrown(() => loadSecretPolicy({ secretEnvPrefix: value }))
      expect(error.code, value).to.equal('INVALID_CONFIG')
      expect(error.message, value).to.include('--secret-env-prefix (FERRY_SECRET_ENV_PREFIX)').and.to.include(said)
    }
  })

  it('takes a comma-separated list of secrets directories: a file under any of them, none elsewhere', () => {
    const second = path.join(root, 'second')
    mkdirSync(second)
    writeFileSync(path.join(second, 'ca.pem'), 'second-ca')
    const both = loadSecretPolicy({ secretsDir: `${allowed}, ${second}` })
    expect(both.secretsDirs.map((dir) => dir.real)).to.deep.equal([allowed, second])
    const problems = (file: string) => checkClusterSecrets(parseCluster({ name: 'c', bootstrapServers: ['h:1'], securityProtocol: 'SSL', tls: { caFile: file } }), both)
    expect(problems(path.join(allowed, 'pw'))).to.deep.equal([])
    expect(problems(path.join(second, 'ca.pem'))).to.deep.equal([])
    const refusal = problems(path.join(outside, 'canary'))
    expect(refusal.map((p) => p.field)).to.deep.equal(['tls.caFile'])
    expect(refusal[0]?.message).to.include(`directories ${allowed}, ${second}`)
    expect(problems(root)).to.have.length(1)
    expect(readSecretFile(both, 'c', 'tls.caFile', path.join(second, 'ca.pem')).toString()).to.equal('second-ca')
    expect(readSecretFile(both, 'c', 'sasl.passwordFile', path.join(allowed, 'pw')).toString()).to.equal('inside-secret\n')
    // Any bad entry stops the start, naming the setting: the root, a relative path, a missing directory, an empty list.
    for (const [value, said] of [
      [`${allowed},/`, 'root'],
      [`${allowed},relative`, 'absolute'],
      [`${allowed},${path.join(root, 'missing')}`, 'cannot be resolved'],
      [',', 'names no directory'],
    ] as const) {
      const error = thrown(() => loadSecretPolicy({ secretsDir: value }))
      expect(error.message, value).to.include('--secrets-dir (FERRY_SECRETS_DIR)').and.to.include(said)
    }
  })

  it('seals an inline password with the current key, bound to the cluster; old keys still open', () => {
    const stored = sealCluster(sasl({ password: 'hunter2-inline' }), policy)
    const text = JSON.stringify(stored)
    expect(text).not.to.include('hunter2-inline').and.not.to.include(Buffer.from('hunter2-inline').toString('base64'))
    expect(stored.sasl?.sealedPassword?.keyId).to.equal('k2')
    expect(resolveSaslPassword(stored, {}, policy)).to.equal('hunter2-inline')
    expect(redactCluster(stored)).to.deep.include({ sasl: { mechanism: 'plain', username: 'u', password: '(set, hidden)' } })
    // Sealed by the old key (before rotation): still opens.
    const before = loadSecretPolicy({ secretsKeyFile: (() => { const f = path.join(root, 'old'); writeFileSync(f, `k1 ${oldKey}\n`); return f })() })
    expect(resolveSaslPassword(sealCluster(sasl({ password: 'old' }), before), {}, policy)).to.equal('old')
    // Moved to another cluster, it does not open; nor without the key.
    const moved = { ...stored, name: 'other' }
    expect(thrown(() => resolveSaslPassword(moved, {}, policy)).message).to.include('does not decrypt')
    expect(thrown(() => resolveSaslPassword(stored, {}, NO_SECRET_SOURCES)).message).to.include('"k2"').and.to.include('--secrets-key-file')
    expect(thrown(() => sealCluster(sasl({ password: 'p' }), NO_SECRET_SOURCES)).code).to.equal('INVALID_INPUT')
  })

  it('rejects bad settings at start without quoting key material', () => {
    const bad = path.join(root, 'bad-key')
    writeFileSync(bad, 'k1 c2hvcnQ=\n')
    const error = thrown(() => parseSecretKeys('k1 c2hvcnQ=\n', bad))
    expect(error.message).to.include('line 1').and.not.to.include('c2hvcnQ=')
    expect(thrown(() => loadSecretPolicy({ secretsDir: 'relative' })).message).to.include('absolute')
    expect(thrown(() => loadSecretPolicy({ secretsDir: '/' })).message).to.include('root')
    expect(thrown(() => loadSecretPolicy({ secretEnvPrefix: 'BAD-' })).message).to.include('--secret-env-prefix')
    expect(() => openSecret(policy, { alg: 'aes-256-gcm', keyId: 'k9', iv: '', data: '', tag: '' }, 'c', 'sasl.password')).to.throw(/"k9"/)
  })
})
