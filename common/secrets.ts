/**
 * Where a cluster's secrets may come from, decided by the operator at process start and never
 * by whoever registers the cluster:
 *  - files (`tls.caFile`, `tls.certFile`, `tls.keyFile`, `sasl.passwordFile`) only under one of
 *    the secrets directories (`--secrets-dir`, a comma-separated list); none without one;
 *  - variables (`sasl.passwordEnv`) only with one of the secret prefixes (`--secret-env-prefix`,
 *    a comma-separated list; a name equal to an entry counts), and never one of Ferry's own
 *    settings; none without a prefix;
 *  - inline passwords only when a key is configured (`--secrets-key-file`): they are stored in
 *    ZooKeeper sealed with AES-256-GCM, tagged with the key id, bound to the cluster name.
 *
 * The rules are checked twice: when a cluster is registered (a 400 naming the field, decided
 * from the text of the path alone, so the answer is the same whether the path exists or not)
 * and by every process that connects, with its own settings, before anything is read.
 *
 * @example
 *   const policy = loadSecretPolicy({ secretsDir: '/etc/ferry/tls,/etc/ferry/secrets', secretEnvPrefix: 'FERRY_SECRET_,EAST_KAFKA_PASSWORD' })
 *   installSecretPolicy(policy)                  // at start; kafkaClientConfig() consults it
 *   checkClusterSecrets(cluster, policy)         // FieldProblem[] for the API
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { readFileSync, realpathSync } from 'node:fs'
import path from 'node:path'
import type { ClusterSpec, FieldProblem, SealedSecret } from './config.js'
import { FerryError } from './errors.js'
import { PROCESS_ENV_NAMES } from './process-config.js'
import { SECRET_FILES_ENV } from './secret-files.js'

/** A key that seals inline secrets; `id` is stored next to each sealed value. */
export interface SecretKey {
  readonly id: string
  readonly key: Buffer
}

export interface SecretKeyring {
  /** Seals new secrets. */
  readonly current: SecretKey
  /** Opens secrets sealed with any listed key (the current one included). */
  readonly byId: ReadonlyMap<string, Buffer>
}

/** A directory secret files may be under. */
export interface SecretDir {
  /** As configured, made absolute (may be a link to `real`). */
  readonly given: string
  /** Its real path: a file's real path must be under it when read. */
  readonly real: string
}

export interface SecretPolicy {
  /** Directories secret files must be under; empty: no files by reference. */
  readonly secretsDirs: readonly SecretDir[]
  /**
   * Every passwordEnv must start with one of these (a name equal to an entry is allowed too);
   * empty: no variables by reference.
   */
  readonly envPrefixes: readonly string[]
  /** Key(s) for inline secrets; null: inline secrets are refused. */
  readonly keyring: SecretKeyring | null
}

/** What a process allows when the operator configured nothing: no host files, no variables, no inline secrets. */
export const NO_SECRET_SOURCES: SecretPolicy = Object.freeze({ secretsDirs: Object.freeze([]), envPrefixes: Object.freeze([]), keyring: null })

export interface SecretPolicySettings {
  /** One absolute directory, or several separated by commas. */
  secretsDir?: string | undefined
  /** One prefix (or exact variable name), or several separated by commas. */
  secretEnvPrefix?: string | undefined
  secretsKeyFile?: string | undefined
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/
const KEY_BYTES = 32

/** Variables Ferry reads as its own settings or credentials: never a cluster password. */
const RESERVED_ENV: ReadonlySet<string> = new Set<string>([
  ...PROCESS_ENV_NAMES,
  SECRET_FILES_ENV,
  'FERRY_API_TOKENS',
  'FERRY_TOKEN',
  'FERRY_LOG_LEVEL',
  'FERRY_SUPERVISED',
  'FERRY_CONTROLLER',
])

/** Whether `name` is one of Ferry's own settings, which no cluster may name as its passwordEnv. */
export function isReservedEnvName(name: string): boolean {
  return RESERVED_ENV.has(name)
}

/** The entries of a comma-separated setting: trimmed, empty ones dropped. */
function listEntries(value: string): string[] {
  return value
    .split(',')
    .map((entry) => entry.trim())
    .filter((entry) => entry !== '')
}

/**
 * The key file: one key a line, `<id> <base64 of 32 bytes>`; the first seals, all open (list
 * the new key first and keep the old one below it while rotating). `#` lines are comments.
 */
export function parseSecretKeys(text: string, file: string): SecretKeyring {
  const keys: SecretKey[] = []
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) continue
    const [id, encoded, ...rest] = line.split(/\s+/)
    const key = encoded === undefined ? Buffer.alloc(0) : Buffer.from(encoded, 'base64')
    // Never quote the line: it is key material.
    if (id === undefined || !KEY_ID.test(id) || rest.length > 0 || key.length !== KEY_BYTES) {
      throw new FerryError('INVALID_CONFIG', `secrets key file ${file}, line ${index + 1}: must be "<id> <base64 of ${KEY_BYTES} random bytes>" (e.g. echo "k1 $(openssl rand -base64 32)")`, {
        details: [{ field: 'secretsKeyFile', message: `line ${index + 1} is not "<id> <base64 key>"` }],
      })
    }
    if (keys.some((k) => k.id === id)) {
      throw new FerryError('INVALID_CONFIG', `secrets key file ${file}: key id "${id}" is listed twice`, { details: [{ field: 'secretsKeyFile', message: `duplicate key id ${id}` }] })
    }
    keys.push({ id, key })
  }
  const current = keys[0]
  if (current === undefined) {
    throw new FerryError('INVALID_CONFIG', `secrets key file ${file} holds no key`, { details: [{ field: 'secretsKeyFile', message: 'holds no key' }] })
  }
  return { current, byId: new Map(keys.map((k) => [k.id, k.key])) }
}

/** Resolve the operator's settings once at start; throws INVALID_CONFIG naming the setting. */
export function loadSecretPolicy(settings: SecretPolicySettings): SecretPolicy {
  const secretsDirs: SecretDir[] = []
  if (settings.secretsDir !== undefined) {
    const entries = listEntries(settings.secretsDir)
    if (entries.length === 0) throw new FerryError('INVALID_CONFIG', '--secrets-dir (FERRY_SECRETS_DIR) names no directory')
    for (const dir of entries) {
      if (!path.isAbsolute(dir)) {
        throw new FerryError('INVALID_CONFIG', `--secrets-dir (FERRY_SECRETS_DIR) entries must be absolute paths, got ${JSON.stringify(dir)}`)
      }
      let real: string
      try {
        real = realpathSync(dir)
      } catch (error) {
        throw new FerryError('INVALID_CONFIG', `--secrets-dir (FERRY_SECRETS_DIR) ${dir} cannot be resolved: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
      }
      if (real === path.parse(real).root) {
        throw new FerryError('INVALID_CONFIG', '--secrets-dir (FERRY_SECRETS_DIR) may not be the root directory: it would let callers name any file on the host')
      }
      secretsDirs.push(Object.freeze({ given: path.resolve(dir), real }))
    }
  }
  const envPrefixes: string[] = []
  if (settings.secretEnvPrefix !== undefined) {
    const entries = listEntries(settings.secretEnvPrefix)
    if (entries.length === 0) throw new FerryError('INVALID_CONFIG', '--secret-env-prefix (FERRY_SECRET_ENV_PREFIX) names no prefix')
    for (const prefix of entries) {
      if (!ENV_NAME.test(prefix)) {
        throw new FerryError('INVALID_CONFIG', `--secret-env-prefix (FERRY_SECRET_ENV_PREFIX) entries must each be the start of a variable name (letters, digits, "_"; not a digit first), got ${JSON.stringify(prefix)}`)
      }
      // A prefix such as FERRY_ is fine (the reserved names stay refused one by one), but an
      // entry that is itself one of Ferry's settings can only be a mistake.
      if (RESERVED_ENV.has(prefix)) {
        throw new FerryError('INVALID_CONFIG', `--secret-env-prefix (FERRY_SECRET_ENV_PREFIX) entry ${prefix} is one of Ferry's own settings, which is never a cluster password`)
      }
      if (!envPrefixes.includes(prefix)) envPrefixes.push(prefix)
    }
  }
  let keyring: SecretKeyring | null = null
  if (settings.secretsKeyFile !== undefined) {
    let text: string
    try {
      text = readFileSync(settings.secretsKeyFile, 'utf8')
    } catch (error) {
      throw new FerryError('INVALID_CONFIG', `--secrets-key-file (FERRY_SECRETS_KEY_FILE) ${settings.secretsKeyFile} cannot be read: ${(error as NodeJS.ErrnoException).code ?? 'error'}`)
    }
    keyring = parseSecretKeys(text, settings.secretsKeyFile)
  }
  return Object.freeze({ secretsDirs: Object.freeze(secretsDirs), envPrefixes: Object.freeze(envPrefixes), keyring })
}

let installed: SecretPolicy = NO_SECRET_SOURCES

/**
 * Make `policy` the one this process's Kafka clients resolve secrets with. Called once at start
 * (cli/main.ts), like process.env it is process-wide: the operator's setting for this host.
 */
export function installSecretPolicy(policy: SecretPolicy): void {
  installed = policy
}

export function installedSecretPolicy(): SecretPolicy {
  return installed
}

type FileField = 'tls.caFile' | 'tls.certFile' | 'tls.keyFile' | 'sasl.passwordFile'

function isUnder(dir: string, candidate: string): boolean {
  return candidate.startsWith(dir.endsWith(path.sep) ? dir : `${dir}${path.sep}`)
}

/** The configured directories, for messages: `/etc/ferry/tls`, or `/a (/real/a)` for a link. */
function describeDirs(policy: SecretPolicy): string {
  return policy.secretsDirs.map((dir) => (dir.given === dir.real ? dir.given : `${dir.given} (${dir.real})`)).join(', ')
}

/**
 * Why a file path is refused, from its text alone (never the file system), so a refused path
 * that exists and one that does not get the same answer; null when it is acceptable.
 */
export function fileRefusal(policy: SecretPolicy, field: string, file: string): string | null {
  if (policy.secretsDirs.length === 0) {
    return `${field}: files on Ferry's hosts cannot be named unless Ferry is started with --secrets-dir (FERRY_SECRETS_DIR); none is configured`
  }
  const plural = policy.secretsDirs.length > 1
  const outside = `${field}: must be a file under the secrets ${plural ? 'directories' : 'directory'} ${describeDirs(policy)}, named by an absolute path without ".."`
  if (!path.isAbsolute(file) || file.includes('\0') || file.split(/[\\/]/).includes('..')) return outside
  const resolved = path.resolve(file)
  if (!policy.secretsDirs.some((dir) => isUnder(dir.real, resolved) || isUnder(dir.given, resolved))) return outside
  return null
}

/** Whether `name` is allowed by one of the prefixes: it starts with one, or equals one. */
function matchesPrefix(policy: SecretPolicy, name: string): boolean {
  return policy.envPrefixes.some((prefix) => name.startsWith(prefix))
}

/** Why a variable name is refused; null when it is acceptable. */
export function envRefusal(policy: SecretPolicy, field: string, name: string): string | null {
  if (policy.envPrefixes.length === 0) {
    return `${field}: environment variables cannot be named unless Ferry is started with --secret-env-prefix (FERRY_SECRET_ENV_PREFIX); none is configured`
  }
  if (!matchesPrefix(policy, name) || RESERVED_ENV.has(name)) {
    return `${field}: must name a variable that starts with ${policy.envPrefixes.length > 1 ? `one of ${policy.envPrefixes.join(', ')}` : policy.envPrefixes[0]} (and is not one of Ferry's own settings)`
  }
  return null
}

const INLINE_REFUSAL = (field: string): string =>
  `${field}: inline secrets are stored only encrypted, and this controller has no key: start it with --secrets-key-file (FERRY_SECRETS_KEY_FILE), or give the secret as a file under the secrets directory`

/** Every secret reference of a cluster the policy refuses, by field (for a 400). */
export function checkClusterSecrets(cluster: ClusterSpec, policy: SecretPolicy): FieldProblem[] {
  const problems: FieldProblem[] = []
  const add = (message: string | null): void => {
    if (message === null) return
    const colon = message.indexOf(': ')
    problems.push({ field: message.slice(0, colon), message: message.slice(colon + 2) })
  }
  const files: [FileField, string | undefined][] = [
    ['tls.caFile', cluster.tls?.caFile],
    ['tls.certFile', cluster.tls?.certFile],
    ['tls.keyFile', cluster.tls?.keyFile],
    ['sasl.passwordFile', cluster.sasl?.passwordFile],
  ]
  for (const [field, file] of files) if (file !== undefined) add(fileRefusal(policy, field, file))
  if (cluster.sasl?.passwordEnv !== undefined) add(envRefusal(policy, 'sasl.passwordEnv', cluster.sasl.passwordEnv))
  if (cluster.sasl?.password !== undefined && policy.keyring === null) add(INLINE_REFUSAL('sasl.password'))
  return problems
}

/** Throws INVALID_INPUT (400) listing every refused secret reference of `cluster`. */
export function assertClusterSecretsAllowed(cluster: ClusterSpec, policy: SecretPolicy): void {
  const problems = checkClusterSecrets(cluster, policy)
  if (problems.length === 0) return
  throw new FerryError('INVALID_INPUT', `invalid cluster: ${problems.map((p) => `${p.field}: ${p.message}`).join('; ')}`, {
    details: problems,
    context: { cluster: cluster.name },
  })
}

function refused(cluster: string, field: string, message: string): FerryError {
  return new FerryError('SECRET_UNREADABLE', `cluster "${cluster}": refused by this process's secret settings: ${message}`, { context: { cluster, field } })
}

/**
 * Read a secret file the policy allows: checked by its text, then by its real path (a link may
 * not lead out of the directory). Any failure inside the directory gets one message, whatever
 * the reason (missing, unreadable, a link out), so nothing more is learnt about the host.
 */
export function readSecretFile(policy: SecretPolicy, cluster: string, field: string, file: string): Buffer {
  const refusal = fileRefusal(policy, field, file)
  if (refusal !== null) throw refused(cluster, field, refusal)
  const unreadable = (): FerryError =>
    new FerryError('SECRET_UNREADABLE', `cluster "${cluster}": cannot read ${field} "${file}" (missing, unreadable, or a link that leaves the secrets directory)`, { context: { cluster, field } })
  let real: string
  try {
    real = realpathSync(file)
  } catch {
    throw unreadable()
  }
  if (!policy.secretsDirs.some((dir) => isUnder(dir.real, real))) throw unreadable()
  try {
    return readFileSync(real)
  } catch {
    throw unreadable()
  }
}

/** Read a password variable the policy allows. */
export function readSecretEnv(policy: SecretPolicy, cluster: string, field: string, name: string, env: NodeJS.ProcessEnv): string {
  const refusal = envRefusal(policy, field, name)
  if (refusal !== null) throw refused(cluster, field, refusal)
  const value = env[name]
  if (value === undefined || value === '') {
    throw new FerryError('SECRET_UNREADABLE', `cluster "${cluster}": environment variable ${name} named by ${field} is not set`, { context: { cluster, field } })
  }
  return value
}

/** Binds a sealed value to its place: copied to another cluster or field, it does not open. */
function associatedData(cluster: string, field: string): Buffer {
  return Buffer.from(`ferry:cluster:${cluster}:${field}`, 'utf8')
}

export function sealSecret(keyring: SecretKeyring, plaintext: string, cluster: string, field: string): SealedSecret {
  const iv = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', keyring.current.key, iv)
  cipher.setAAD(associatedData(cluster, field))
  const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
  return { alg: 'aes-256-gcm', keyId: keyring.current.id, iv: iv.toString('base64'), data: data.toString('base64'), tag: cipher.getAuthTag().toString('base64') }
}

export function openSecret(policy: SecretPolicy, sealed: SealedSecret, cluster: string, field: string): string {
  const key = policy.keyring?.byId.get(sealed.keyId)
  if (key === undefined) {
    throw new FerryError('SECRET_UNREADABLE', `cluster "${cluster}": ${field} is stored encrypted with key "${sealed.keyId}", which this process does not have (--secrets-key-file)`, { context: { cluster, field } })
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64'))
    decipher.setAAD(associatedData(cluster, field))
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64'))
    return Buffer.concat([decipher.update(Buffer.from(sealed.data, 'base64')), decipher.final()]).toString('utf8')
  } catch {
    throw new FerryError('SECRET_UNREADABLE', `cluster "${cluster}": ${field} does not decrypt with key "${sealed.keyId}" (a different key under that id, or an altered record)`, { context: { cluster, field } })
  }
}

/** The cluster with its inline password sealed; throws INVALID_INPUT when there is no key. */
export function sealCluster(cluster: ClusterSpec, policy: SecretPolicy): ClusterSpec {
  const sasl = cluster.sasl
  if (sasl?.password === undefined) return cluster
  if (policy.keyring === null) throw new FerryError('INVALID_INPUT', `invalid cluster: ${INLINE_REFUSAL('sasl.password')}`, { details: [{ field: 'sasl.password', message: INLINE_REFUSAL('sasl.password').slice('sasl.password: '.length) }] })
  const { password, ...rest } = sasl
  return { ...cluster, sasl: { ...rest, sealedPassword: sealSecret(policy.keyring, password, cluster.name, 'sasl.password') } }
}
