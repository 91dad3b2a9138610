/**
 * The `ferry` command.
 *
 *   ferry controller --zookeeper H:P --redis redis://H:P [--port 8080] [--id c1]
 *   ferry worker     --zookeeper H:P --redis redis://H:P [--id w1] [--zone z]
 *   ferry bootstrap  --role worker|controller [same flags]   (supervised, registered in Redis)
 *   ferry render     --group g.json --source s.json --target t.json --deployment d --out DIR
 *
 * Every flag also reads from FERRY_<NAME> (FERRY_ZOOKEEPER, FERRY_REDIS, FERRY_ID, ...).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { startBootstrap, type ChildRole } from '../bootstrap/bootstrap.js'
import { FerryError, errorMessage } from '../common/errors.js'
import { createLogger, type Logger } from '../common/logger.js'
import { loadProcessConfig, type ProcessConfig } from '../common/process-config.js'
import { loadSecretFiles } from '../common/secret-files.js'
import { installSecretPolicy, loadSecretPolicy } from '../common/secrets.js'
import type { AuditView, ErrorBody } from '../common/api-schemas.js'
import { startController } from '../controller/controller.js'
import { startWorker } from '../worker/worker.js'
import { API_USAGE, isApiCommand, runApiCommand } from './api-commands.js'

const USAGE = `usage: ferry <controller|worker|bootstrap|render|configure|instances|audit> [flags]
  common flags: --zookeeper host:port  --redis redis://host:port  --deployment name  --id name
                --zone z  --dc d  --lease-ttl-ms n  --zk-session-timeout-ms n
  controller:   --port n (0 = any free port)  --host addr  --rebalance-debounce-ms n  --heal-after-ms n (0 = off)  --max-moves-per-pass n
                --api-tokens-file path (lines "<name> <admin|read> <token>"; or env FERRY_API_TOKENS)
                --api-open (no tokens: anyone who can reach the API may change anything; without
                tokens and without it the API refuses every request but the probes)
                --api-tls-cert pem  --api-tls-key pem (HTTPS)  --ureplicator-source c  --ureplicator-target c
  worker:       --metrics-port n (Prometheus /metrics of the worker; bootstrap's own are on --health-port)
  secrets:      --secrets-dir dir[,dir...] (cluster files must be under one of them)
                --secret-env-prefix P[,P...] (passwordEnv must start with, or equal, one of them)
                --secrets-key-file path (seals inline passwords in ZooKeeper)  --zookeeper-auth-file path ("user:password", znode ACLs)
                (controller and worker; default none of them: no host files, no variables, no inline secrets over the API)
  bootstrap:    --role worker|controller  (then the flags of that role)
                --grace-period-ms n (drain on SIGTERM, default 30000)  --max-restarts n (crash loop, default 5)
                --health-port n (/healthz, /readyz on --host)
                --child-liveness-timeout-ms n (child silent on IPC this long: lease dropped, child
                killed and restarted; default 5000, 0 = off)
  render:       see "ferry render --help"
  configure:    see "ferry configure --help" (render every group, show the diff, write what changed)
  instances:    --redis URL [--deployment d] | --controller URL  [--json]  (registry with heartbeat age)
  audit:        --controller URL --group NAME [--from T] [--to T] [--bucket-ms N] [--json] [--token T]
${API_USAGE}`

const PROCESS_FLAGS = {
  zookeeper: { type: 'string' },
  redis: { type: 'string' },
  deployment: { type: 'string' },
  id: { type: 'string' },
  zone: { type: 'string' },
  dc: { type: 'string' },
  port: { type: 'string' },
  host: { type: 'string' },
  'lease-ttl-ms': { type: 'string' },
  'zk-session-timeout-ms': { type: 'string' },
  'rebalance-debounce-ms': { type: 'string' },
  'heal-after-ms': { type: 'string' },
  'max-moves-per-pass': { type: 'string' },
  'grace-period-ms': { type: 'string' },
  'max-restarts': { type: 'string' },
  'health-port': { type: 'string' },
  'api-tokens-file': { type: 'string' },
  'api-open': { type: 'boolean' },
  'child-liveness-timeout-ms': { type: 'string' },
  'api-tls-cert': { type: 'string' },
  'api-tls-key': { type: 'string' },
  'ureplicator-source': { type: 'string' },
  'ureplicator-target': { type: 'string' },
  'metrics-port': { type: 'string' },
  'secrets-dir': { type: 'string' },
  'secret-env-prefix': { type: 'string' },
  'secrets-key-file': { type: 'string' },
  'zookeeper-auth-file': { type: 'string' },
  role: { type: 'string' },
  help: { type: 'boolean' },
} as const

function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }
    return pkg.version ?? '0.0.0'
  } catch {
    return '0.0.0'
  }
}

function parseProcessFlags(args: string[]): { config: ProcessConfig; role?: string } {
  // Secret references (FERRY_SECRET_FILES) become variables before any cluster reads them.
  loadSecretFiles(process.env)
  let values
  try {
    values = parseArgs({ args, options: PROCESS_FLAGS, strict: true, allowPositionals: false }).values
  } catch (error) {
    throw new FerryError('INVALID_INPUT', `${errorMessage(error)}\n${USAGE}`)
  }
  if (values.help) throw new FerryError('INVALID_INPUT', USAGE)
  const config = loadProcessConfig({
    zookeeper: values.zookeeper,
    redis: values.redis,
    deployment: values.deployment,
    id: values.id,
    zone: values.zone,
    dc: values.dc,
    port: values.port,
    host: values.host,
    leaseTtlMs: values['lease-ttl-ms'],
    zkSessionTimeoutMs: values['zk-session-timeout-ms'],
    rebalanceDebounceMs: values['rebalance-debounce-ms'],
    healAfterMs: values['heal-after-ms'],
    maxMovesPerPass: values['max-moves-per-pass'],
    gracePeriodMs: values['grace-period-ms'],
    maxRestarts: values['max-restarts'],
    healthPort: values['health-port'],
    apiTokensFile: values['api-tokens-file'],
    apiOpen: values['api-open'] === true ? 'true' : undefined,
    childLivenessTimeoutMs: values['child-liveness-timeout-ms'],
    apiTlsCert: values['api-tls-cert'],
    apiTlsKey: values['api-tls-key'],
    ureplicatorSource: values['ureplicator-source'],
    ureplicatorTarget: values['ureplicator-target'],
    metricsPort: values['metrics-port'],
    secretsDir: values['secrets-dir'],
    secretEnvPrefix: values['secret-env-prefix'],
    secretsKeyFile: values['secrets-key-file'],
    zookeeperAuthFile: values['zookeeper-auth-file'],
  })
  // Every role resolves it at start, so a bad setting fails bootstrap before it spawns a child;
  // the controller's and worker's Kafka clients then read secrets only as it allows.
  installSecretPolicy(loadSecretPolicy(config))
  return { config, ...(values.role === undefined ? {} : { role: values.role }) }
}

/** Stop on SIGTERM/SIGINT, or when a supervising bootstrap goes away. */
function onShutdown(logger: Logger, stop: () => Promise<void>): void {
  let shutting = false
  const shutdown = (why: string): void => {
    if (shutting) return
    shutting = true
    logger.info({ event: 'process.shutdown', why }, 'shutting down')
    stop()
      .then(() => process.exit(0))
      .catch((error: unknown) => {
        logger.error({ event: 'process.shutdown_failed', err: errorMessage(error) }, 'shutdown failed')
        process.exit(1)
      })
  }
  // on, not once: a second SIGTERM (systemd signals the whole group, then bootstrap forwards its
  // own) must not kill a child that is still draining.
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  // A second Ctrl-C is an operator in a hurry: exit now, without finishing the drain.
  let interrupts = 0
  process.on('SIGINT', () => {
    if (++interrupts > 1) {
      logger.warn({ event: 'process.interrupted' }, 'second interrupt: exiting without finishing the drain')
      process.exit(130)
    }
    shutdown('SIGINT')
  })
  if (process.send) process.once('disconnect', () => shutdown('supervisor gone'))
}

function fatal(logger: Logger) {
  return (reason: string): void => {
    logger.fatal({ event: 'process.fatal', reason }, reason)
    process.exit(1)
  }
}

/**
 * Answer bootstrap's liveness pings from the event loop (bootstrap/bootstrap.ts): a child whose
 * loop is blocked or frozen stops answering, and bootstrap kills and restarts it.
 */
function answerLivenessPings(): void {
  if (!process.send) return
  process.on('message', (message: { type?: unknown; seq?: unknown } | null) => {
    if (message?.type === 'ping' && process.connected) process.send?.({ type: 'pong', seq: message.seq })
  })
}

async function runController(args: string[]): Promise<void> {
  answerLivenessPings()
  const { config } = parseProcessFlags(args)
  const logger = createLogger({ name: 'controller', base: { instance: config.id } })
  const controller = await startController(config, logger)
  onShutdown(logger, () => controller.stop())
  process.send?.({ type: 'ready', url: controller.url })
  if (!process.send) process.stdout.write(`${JSON.stringify({ event: 'controller.listening', url: controller.url, api: controller.api })}\n`)
}

async function runWorker(args: string[]): Promise<void> {
  answerLivenessPings()
  const { config } = parseProcessFlags(args)
  const logger = createLogger({ name: 'worker', base: { instance: config.id } })
  const worker = await startWorker(config, logger, { onFatal: fatal(logger) })
  onShutdown(logger, () => worker.stop())
  if (process.send) {
    process.send({ type: 'ready' })
    const timer = setInterval(() => process.send?.({ type: 'status', status: worker.status() }), 1000)
    timer.unref()
  }
}

async function runBootstrap(args: string[]): Promise<void> {
  const { config, role } = parseProcessFlags(args)
  if (role !== 'worker' && role !== 'controller') {
    throw new FerryError('INVALID_INPUT', `--role must be "worker" or "controller", got ${role === undefined ? 'nothing' : `"${role}"`}`)
  }
  const childArgs = args.filter((arg, index) => arg !== '--role' && args[index - 1] !== '--role' && !arg.startsWith('--role='))
  const logger = createLogger({ name: 'bootstrap', base: { instance: config.id, role } })
  const bootstrap = await startBootstrap({
    role: role as ChildRole,
    config,
    childModule: fileURLToPath(import.meta.url),
    childArgs: [...childArgs, '--id', config.id],
    logger,
    version: version(),
    onFailed: () => process.exit(1),
  })
  onShutdown(logger, () => bootstrap.stop())
}

/** `ferry audit --controller URL --group NAME [--from T] [--to T] [--bucket-ms N]`: exit 1 when records are missing. */
async function runAudit(args: string[]): Promise<number> {
  let values
  try {
    values = parseArgs({ args, strict: true, options: { controller: { type: 'string' }, group: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, 'bucket-ms': { type: 'string' }, json: { type: 'boolean' }, token: { type: 'string' } } }).values
  } catch (error) {
    throw new FerryError('INVALID_INPUT', `${errorMessage(error)}\nusage: ferry audit --controller URL --group NAME [--from T] [--to T] [--bucket-ms N] [--json]`)
  }
  const controller = values.controller ?? process.env.FERRY_CONTROLLER
  if (!controller || !values.group) throw new FerryError('INVALID_INPUT', 'ferry audit needs --controller URL (or FERRY_CONTROLLER) and --group NAME')
  const query = new URLSearchParams()
  if (values.from) query.set('from', values.from)
  if (values.to) query.set('to', values.to)
  if (values['bucket-ms']) query.set('bucketMs', values['bucket-ms'])
  const token = values.token ?? process.env.FERRY_TOKEN
  const response = await fetch(`${controller.replace(/\/$/, '')}/v1/groups/${encodeURIComponent(values.group)}/audit?${query.toString()}`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
  const body = (await response.json()) as Partial<ErrorBody> & Partial<AuditView>
  if (!response.ok) throw new FerryError('INVALID_INPUT', `audit failed (${response.status}): ${body.error?.message ?? 'unknown error'}`)
  const report = body as AuditView
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`)
  } else {
    process.stdout.write(`audit of "${report.group}" ${new Date(report.fromMs).toISOString()} .. ${new Date(report.toMs).toISOString()}\n`)
    for (const t of report.topics) {
      process.stdout.write(`  ${t.topic} -> ${t.targetTopic}: source ${t.source}, target ${t.target}, missing ${t.missing}, duplicates ${t.duplicates}, dead-lettered ${t.deadLettered}\n`)
      for (const b of t.buckets) if (b.missing > 0 || b.duplicates > 0) process.stdout.write(`    ${new Date(b.start).toISOString()}: source ${b.source}, target ${b.target}, missing ${b.missing}, duplicates ${b.duplicates}\n`)
    }
    process.stdout.write(`total: source ${report.source}, target ${report.target}, missing ${report.missing}, duplicates ${report.duplicates}, dead-lettered ${report.deadLettered}\n`)
  }
  return report.missing > 0 ? 1 : 0
}

async function runRender(args: string[]): Promise<number> {
  const { runConfiguratorCli } = await import('../configurator/index.js')
  return runConfiguratorCli(args)
}

export async function main(argv: string[]): Promise<number | undefined> {
  const [command, ...args] = argv
  if (isApiCommand(command)) return runApiCommand(command, args)
  switch (command) {
    case 'controller':
      await runController(args)
      return undefined
    case 'worker':
      await runWorker(args)
      return undefined
    case 'bootstrap':
      await runBootstrap(args)
      return undefined
    case 'render':
      return runRender(args)
    case 'audit':
      return runAudit(args)
    case 'instances':
      return (await import('./instances.js')).runInstancesCli(args)
    case 'configure':
      return (await import('./configure.js')).runConfigureCli(args)
    default:
      process.stderr.write(`${command === undefined || command === '--help' ? '' : `ferry: unknown command "${command}"\n`}${USAGE}\n`)
      return command === '--help' ? 0 : 2
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code
  },
  (error: unknown) => {
    const usage = error instanceof FerryError && (error.code === 'INVALID_INPUT' || error.code === 'INVALID_CONFIG')
    process.stderr.write(`ferry: ${errorMessage(error)}\n`)
    process.exit(usage ? 2 : 1)
  },
)
