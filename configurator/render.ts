/**
 * render(): a topic group and its two clusters → the files an operator deploys for it. Pure:
 * no I/O, no clock, the same input always gives the same bytes (golden-file tested).
 */
import type { ClusterSpec, FieldProblem, TopicGroupSpec } from '../common/config.js'
import { FerryError } from '../common/errors.js'
import { CONFIG_PROVIDER_CLASSES, clientSecurity } from './client-security.js'
import type { ClientSecurity, ClusterRole, RequiredEnv } from './client-security.js'
import { compareCodeUnits, formatProperties } from './properties.js'
import { renderEnvFile, renderSupervisorEntry, renderTmpfiles } from './host-files.js'
import { renderStartScript, renderStopScript, renderWorkerUnit, workerUnitTemplate } from './systemd.js'
import type { SystemdParams } from './systemd.js'
import { checkSecretLocations, workerSecretSettings } from './worker-secrets.js'

export interface RenderedFile {
  /** Relative to the output directory, `/`-separated. */
  path: string
  content: string
  /** File mode, e.g. 0o644. */
  mode: number
}

export const compressionTypes = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const
export type CompressionType = (typeof compressionTypes)[number]

export interface RenderInput {
  group: TopicGroupSpec
  /** The cluster named by `group.sourceCluster`. */
  source: ClusterSpec
  /** The cluster named by `group.targetCluster`. */
  target: ClusterSpec
  /** Deployment name (the ZooKeeper/Redis namespace); part of the consumer group.id. */
  deployment: string
  /** Where the rendered tree is installed on the host. Default `/etc/ferry`. */
  installDir?: string
  /** Worker instances the start script starts by default, 1-1000. Default 2, so one can take over from the other. */
  workers?: number
  /**
   * Producer compression. Default `gzip`: the one codec both kafkajs (Ferry's worker) and every
   * Java client have built in.
   */
  compressionType?: CompressionType
  /** Absolute path of the `ferry` executable on the host. Default `/usr/local/bin/ferry` (npm's global prefix). */
  ferryBin?: string
  /** Drain time on stop (FERRY_GRACE_PERIOD_MS; systemd/supervisord wait 30 s longer). Default 30000 ms. */
  gracePeriodMs?: number
}

export const RENDER_DEFAULTS: Readonly<Required<Pick<RenderInput, 'installDir' | 'workers' | 'compressionType' | 'ferryBin' | 'gracePeriodMs'>>> =
  Object.freeze({
    installDir: '/etc/ferry',
    workers: 2,
    compressionType: 'gzip',
    ferryBin: '/usr/local/bin/ferry',
    gracePeriodMs: 30000,
  })

const MAX_WORKERS = 1000
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/
/** Safe unquoted in systemd units and shell scripts. */
const HOST_PATH = /^(\/[A-Za-z0-9._-]+)+$/

/**
 * The files for one topic group, sorted by path:
 * `<group>/consumer.properties`, `<group>/producer.properties`, `<group>/group.json`,
 * `<group>/worker.env`, `systemd/ferry-worker-<group>@.service`, `bin/start-<group>.sh`,
 * `bin/stop-<group>.sh`, `supervisor/ferry-worker-<group>.conf`, `tmpfiles.d/ferry-<group>.conf`.
 *
 * No secret is ever written: passwords and keys appear as file paths or `${env:...}` /
 * `${dir:...}` references (see client-security.ts).
 *
 * @throws FerryError INVALID_INPUT listing every problem by field (`deployment`,
 *   `group.sourceCluster`, `source.tls.keyFile`, ...).
 */
export function render(input: RenderInput): RenderedFile[] {
  const installDir = input.installDir ?? RENDER_DEFAULTS.installDir
  const workers = input.workers ?? RENDER_DEFAULTS.workers
  const compressionType = input.compressionType ?? RENDER_DEFAULTS.compressionType
  const ferryBin = input.ferryBin ?? RENDER_DEFAULTS.ferryBin
  const gracePeriodMs = input.gracePeriodMs ?? RENDER_DEFAULTS.gracePeriodMs
  const { group, source, target, deployment } = input

  const pathProblems = [...checkClusterPaths(source, 'source'), ...checkClusterPaths(target, 'target')]
  const problems = [
    ...checkOptions({ deployment, installDir, workers, compressionType, ferryBin }),
    ...(Number.isInteger(gracePeriodMs) && gracePeriodMs >= 0 && gracePeriodMs <= 3600000
      ? []
      : [{ field: 'gracePeriodMs', message: `must be a whole number of milliseconds from 0 to 3600000, got ${gracePeriodMs}` }]),
    ...checkGroup(group),
    ...checkClusterNames(group, source, target),
    ...pathProblems,
    // One problem a field: a path already refused above is not refused again for its place.
    ...[...checkSecretLocations(source, 'source', installDir), ...checkSecretLocations(target, 'target', installDir)].filter(
      (problem) => !pathProblems.some((p) => p.field === problem.field),
    ),
  ]
  if (problems.length > 0) {
    const summary = problems.map((p) => `${p.field}: ${p.message}`).join('; ')
    throw new FerryError('INVALID_INPUT', `cannot render topic group ${group.name}: ${summary}`, {
      details: problems,
      context: { group: group.name },
    })
  }

  const name = group.name
  const clientBase = `ferry.${deployment}.${name}`
  const sourceSecurity = clientSecurity(source, 'source')
  const targetSecurity = clientSecurity(target, 'target')

  const consumer = formatProperties(
    {
      ...clientProperties(source, sourceSecurity),
      'client.id': `${clientBase}.consumer`,
      'group.id': clientBase,
      // Ferry checkpoints to the target cluster; committed source offsets would be a second truth.
      'enable.auto.commit': 'false',
      'isolation.level': 'read_committed',
      'auto.offset.reset': group.startPosition,
      'key.deserializer': 'org.apache.kafka.common.serialization.ByteArrayDeserializer',
      'value.deserializer': 'org.apache.kafka.common.serialization.ByteArrayDeserializer',
    },
    header('consumer', 'reads source', source, input, sourceSecurity),
  )
  const producer = formatProperties(
    {
      ...clientProperties(target, targetSecurity),
      'client.id': `${clientBase}.producer`,
      acks: 'all',
      'enable.idempotence': 'true',
      // The most idempotence allows while keeping per-partition order across retries.
      'max.in.flight.requests.per.connection': '5',
      'compression.type': compressionType,
      'key.serializer': 'org.apache.kafka.common.serialization.ByteArraySerializer',
      'value.serializer': 'org.apache.kafka.common.serialization.ByteArraySerializer',
    },
    header('producer', 'writes target', target, input, targetSecurity),
  )

  const systemd: SystemdParams = {
    group: name,
    deployment,
    installDir,
    ferryBin,
    workers,
    ...(group.zone === undefined ? {} : { zone: group.zone }),
    ...(group.dc === undefined ? {} : { dc: group.dc }),
    gracePeriodMs,
    clusterEnv: mergeRequiredEnv(sourceSecurity.requiredEnv, targetSecurity.requiredEnv),
    secretSettings: workerSecretSettings([source, target]),
  }

  const files: RenderedFile[] = [
    { path: `${name}/consumer.properties`, content: consumer, mode: 0o644 },
    { path: `${name}/producer.properties`, content: producer, mode: 0o644 },
    { path: `${name}/group.json`, content: `${stableJson(group)}\n`, mode: 0o644 },
    { path: `systemd/${workerUnitTemplate(name)}`, content: renderWorkerUnit(systemd), mode: 0o644 },
    { path: `bin/start-${name}.sh`, content: renderStartScript(systemd), mode: 0o755 },
    { path: `bin/stop-${name}.sh`, content: renderStopScript(systemd), mode: 0o755 },
    { path: `${name}/worker.env`, content: renderEnvFile(systemd), mode: 0o644 },
    { path: `supervisor/ferry-worker-${name}.conf`, content: renderSupervisorEntry(systemd), mode: 0o644 },
    { path: `tmpfiles.d/ferry-${name}.conf`, content: renderTmpfiles(systemd), mode: 0o644 },
  ]
  return files.sort((a, b) => compareCodeUnits(a.path, b.path))
}

function clientProperties(cluster: ClusterSpec, security: ClientSecurity): Record<string, string> {
  const properties: Record<string, string> = {
    'bootstrap.servers': cluster.bootstrapServers.join(','),
    ...security.properties,
  }
  if (security.providers.length > 0) {
    properties['config.providers'] = security.providers.join(',')
    for (const alias of security.providers) {
      properties[`config.providers.${alias}.class`] = CONFIG_PROVIDER_CLASSES[alias]
    }
  }
  return properties
}

function header(client: string, verb: string, cluster: ClusterSpec, input: RenderInput, security: ClientSecurity): string[] {
  const lines = [
    `Kafka ${client} of Ferry topic group ${input.group.name} (deployment ${input.deployment}): ${verb} cluster ${cluster.name}.`,
    'Rendered by "ferry render": change the topic group or cluster definitions and render again.',
  ]
  if (security.providers.length > 0) {
    lines.push('Secrets are references the Kafka client resolves when it starts:')
    if (security.providers.includes('dir')) lines.push('  ${dir:DIR:FILE} is the content of the file DIR/FILE (DirectoryConfigProvider, Kafka 2.7+).')
    if (security.providers.includes('env')) lines.push('  ${env:NAME} is the environment variable NAME (EnvVarConfigProvider, Kafka 3.5+).')
  }
  for (const env of security.requiredEnv) lines.push(`Requires ${env.name}: ${env.purpose}.`)
  lines.push(...security.notes)
  return lines
}

/** One entry per variable name, in first-seen order (source before target). */
function mergeRequiredEnv(...lists: RequiredEnv[][]): RequiredEnv[] {
  const byName = new Map<string, RequiredEnv>()
  for (const env of lists.flat()) {
    const seen = byName.get(env.name)
    byName.set(
      env.name,
      seen === undefined ? env : { name: env.name, purpose: `${seen.purpose}; ${env.purpose}`, workerReads: seen.workerReads || env.workerReads },
    )
  }
  return [...byName.values()]
}

/** JSON with object keys sorted at every level, two-space indent. Array order is kept. */
export function stableJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2)
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (value !== null && typeof value === 'object') {
    // fromEntries defines own properties: a key `__proto__` (a rename map's source topic) stays a key.
    return Object.fromEntries(Object.keys(value).sort(compareCodeUnits).map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]))
  }
  return value
}

function checkOptions(options: {
  deployment: string
  installDir: string
  workers: number
  compressionType: string
  ferryBin: string
}): FieldProblem[] {
  const problems: FieldProblem[] = []
  if (!NAME.test(options.deployment)) {
    problems.push({
      field: 'deployment',
      message: 'must be 1-100 characters of letters, digits, ".", "_" or "-", starting with a letter or digit',
    })
  }
  for (const field of ['installDir', 'ferryBin'] as const) {
    if (!HOST_PATH.test(options[field])) {
      problems.push({
        field,
        message: `must be an absolute path of letters, digits, ".", "_", "-" and "/" (it goes into systemd units and shell scripts), got ${JSON.stringify(options[field])}`,
      })
    }
  }
  if (!Number.isInteger(options.workers) || options.workers < 1 || options.workers > MAX_WORKERS) {
    problems.push({ field: 'workers', message: `must be a whole number from 1 to ${MAX_WORKERS}, got ${options.workers}` })
  }
  if (!(compressionTypes as readonly string[]).includes(options.compressionType)) {
    problems.push({ field: 'compressionType', message: `must be one of ${compressionTypes.join(', ')}, got ${JSON.stringify(options.compressionType)}` })
  }
  return problems
}

function checkGroup(group: TopicGroupSpec): FieldProblem[] {
  const problems: FieldProblem[] = []
  for (const field of ['zone', 'dc'] as const) {
    const value = group[field]
    if (value !== undefined && !/^[A-Za-z0-9._-]{1,100}$/.test(value)) {
      problems.push({ field: `group.${field}`, message: 'must be letters, digits, ".", "_" or "-" to be rendered into an env file and units' })
    }
  }
  return problems
}

function checkClusterNames(group: TopicGroupSpec, source: ClusterSpec, target: ClusterSpec): FieldProblem[] {
  const problems: FieldProblem[] = []
  if (group.sourceCluster !== source.name) {
    problems.push({ field: 'group.sourceCluster', message: `is ${group.sourceCluster}, but the source cluster given is ${source.name}` })
  }
  if (group.targetCluster !== target.name) {
    problems.push({ field: 'group.targetCluster', message: `is ${group.targetCluster}, but the target cluster given is ${target.name}` })
  }
  return problems
}

/**
 * Paths end up on other hosts' file systems, read by processes whose working directory is not
 * the operator's: only absolute paths mean the same thing there. Paths inside `${dir:...}`
 * references also may not hold `:` or `}`, which would end the reference early.
 */
function checkClusterPaths(cluster: ClusterSpec, role: ClusterRole): FieldProblem[] {
  const problems: FieldProblem[] = []
  const check = (field: string, path: string | undefined, inReference: boolean): void => {
    if (path === undefined) return
    if (!path.startsWith('/')) {
      problems.push({ field: `${role}.${field}`, message: `must be an absolute path, got ${JSON.stringify(path)}` })
    } else if (inReference && (/[:}]/.test(path) || path.endsWith('/'))) {
      problems.push({ field: `${role}.${field}`, message: 'must name a file, without ":" or "}" (it is written as a ${dir:...} reference)' })
    }
  }
  // Only the TLS material the protocol uses is rendered; schema allows tls only with SSL/SASL_SSL.
  check('tls.caFile', cluster.tls?.caFile, false)
  check('tls.certFile', cluster.tls?.certFile, true)
  check('tls.keyFile', cluster.tls?.keyFile, true)
  check('sasl.passwordFile', cluster.sasl?.passwordFile, true)
  return problems
}
