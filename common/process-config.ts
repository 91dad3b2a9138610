/**
 * Settings every Ferry process reads: env (FERRY_*) overridden by CLI flags, validated with
 * every problem listed, defaults applied, frozen.
 *
 * @example
 *   const config = loadProcessConfig({ zookeeper: '127.0.0.1:2181' }, process.env)
 */
import { hostname } from 'node:os'
import { z } from 'zod'
import { parseOrThrow } from './config.js'

const idSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'must be letters, digits, ".", "_" or "-"')

export const processConfigSchema = z
  .object({
    /** Deployment name: namespaces ZooKeeper paths, Redis keys and the checkpoint topic. */
    deployment: idSchema.default('default'),
    /** ZooKeeper connect string, host:port[,host:port][/chroot]. */
    zookeeper: z.string({ required_error: 'is required (flag --zookeeper or FERRY_ZOOKEEPER)' }).min(1),
    /** Redis URL, redis://host:port[/db]. */
    redis: z.string({ required_error: 'is required (flag --redis or FERRY_REDIS)' }).regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
    /** Instance id; default <hostname>-<pid>. */
    id: idSchema.optional(),
    zone: z.string().min(1).optional(),
    dc: z.string().min(1).optional(),
    /** Controller HTTP port (0 picks a free one). */
    port: z.coerce.number().int().min(0).max(65535).default(8080),
    host: z.string().default('127.0.0.1'),
    /**
     * Registry lease (renewed every TTL/3): a worker that dies with its bootstrap is known gone
     * this long after its last heartbeat. Default 3000 ms (see docs/design-notes.md, "Takeover").
     */
    leaseTtlMs: z.coerce.number().int().min(1000).default(3000),
    /**
     * ZooKeeper session: a controller host that dies loses leadership this long (plus up to a
     * ZooKeeper tick) after its last contact. Workers keep mirroring without a session. Default
     * 4000 ms (ZooKeeper's smallest with its default tickTime of 2000).
     */
    zkSessionTimeoutMs: z.coerce.number().int().min(2000).default(4000),
    /** Controller: how long live workers must be stable before partitions move. */
    rebalanceDebounceMs: z.coerce.number().int().min(0).default(3000),
    /**
     * Controller: how long a live worker may hold a group's partitions without progress, while
     * other workers move data between the same clusters, before the leader moves them away
     * (controller/healer.ts). 0 turns healing off.
     */
    healAfterMs: z.coerce.number().int().refine((v) => v === 0 || v >= 1000, 'must be 0 (off) or at least 1000').default(5000),
    /** Controller: partitions moved between live workers per reconcile pass. */
    maxMovesPerPass: z.coerce.number().int().min(1).default(100),
    /** Bootstrap: how long a SIGTERM'd child may drain (finish batches, checkpoint) before SIGKILL. */
    gracePeriodMs: z.coerce.number().int().min(0).default(30000),
    /** Bootstrap: restarts in a row (each run shorter than 60 s) before it gives up and exits 1. */
    maxRestarts: z.coerce.number().int().min(0).default(5),
    /** Bootstrap: port of its /healthz and /readyz listener (on --host); none when unset. */
    healthPort: z.coerce.number().int().min(0).max(65535).optional(),
    /**
     * Controller: serve the API without tokens to anyone who can reach it (local stacks, the
     * demo). Without tokens and without this the API is closed: every request but the probes
     * and the dashboard's files is refused with 401.
     */
    apiOpen: z.enum(['true', 'false'], { errorMap: () => ({ message: 'must be true or false' }) }).default('false').transform((v) => v === 'true'),
    /**
     * Bootstrap: a child that has not answered a liveness ping over IPC for this long (blocked
     * event loop, SIGSTOP, swapped out) loses its lease renewal and is killed and restarted.
     * 0 turns the check off. Default 5000 ms.
     */
    childLivenessTimeoutMs: z.coerce.number().int().refine((v) => v === 0 || v >= 500, 'must be 0 (off) or at least 500').default(5000),
    /** Controller: file of API tokens, one `<name> <role> <token>` a line (see controller/auth.ts). */
    apiTokensFile: z.string().min(1).optional(),
    /** Controller: PEM certificate (chain) and key for an HTTPS REST listener; both or neither. */
    apiTlsCert: z.string().min(1).optional(),
    apiTlsKey: z.string().min(1).optional(),
    /** Controller: default source and target cluster of the uReplicator-compatible /topics API. */
    ureplicatorSource: idSchema.optional(),
    ureplicatorTarget: idSchema.optional(),
    /** Worker: port of the Prometheus /metrics listener (under bootstrap, the worker child serves it). */
    metricsPort: z.coerce.number().int().min(0).max(65535).optional(),
    /** Directories (comma-separated) cluster secret files (tls.*File, sasl.passwordFile) must be under; none: no files (common/secrets.ts). */
    secretsDir: z.string().min(1).optional(),
    /** Prefixes (comma-separated) every sasl.passwordEnv must start with or equal; none: no variables. */
    secretEnvPrefix: z.string().min(1).optional(),
    /** File of keys (`<id> <base64 32 bytes>` a line) sealing inline secrets in ZooKeeper; none: inline secrets refused. */
    secretsKeyFile: z.string().min(1).optional(),
    /** File holding ZooKeeper digest credentials `user:password`; with it Ferry's znodes get CREATOR_ALL_ACL. */
    zookeeperAuthFile: z.string().min(1).optional(),
  })
  .strict()
  .refine((c) => (c.apiTlsCert === undefined) === (c.apiTlsKey === undefined), { message: 'apiTlsCert and apiTlsKey must be given together', path: ['apiTlsCert'] })

export type ProcessConfig = Readonly<z.infer<typeof processConfigSchema>> & { readonly id: string }

const ENV: Record<string, string> = {
  deployment: 'FERRY_DEPLOYMENT',
  zookeeper: 'FERRY_ZOOKEEPER',
  redis: 'FERRY_REDIS',
  id: 'FERRY_ID',
  zone: 'FERRY_ZONE',
  dc: 'FERRY_DC',
  port: 'FERRY_PORT',
  host: 'FERRY_HOST',
  leaseTtlMs: 'FERRY_LEASE_TTL_MS',
  zkSessionTimeoutMs: 'FERRY_ZK_SESSION_TIMEOUT_MS',
  rebalanceDebounceMs: 'FERRY_REBALANCE_DEBOUNCE_MS',
  healAfterMs: 'FERRY_HEAL_AFTER_MS',
  maxMovesPerPass: 'FERRY_MAX_MOVES_PER_PASS',
  gracePeriodMs: 'FERRY_GRACE_PERIOD_MS',
  maxRestarts: 'FERRY_MAX_RESTARTS',
  healthPort: 'FERRY_HEALTH_PORT',
  apiOpen: 'FERRY_API_OPEN',
  childLivenessTimeoutMs: 'FERRY_CHILD_LIVENESS_TIMEOUT_MS',
  apiTokensFile: 'FERRY_API_TOKENS_FILE',
  apiTlsCert: 'FERRY_API_TLS_CERT',
  apiTlsKey: 'FERRY_API_TLS_KEY',
  ureplicatorSource: 'FERRY_UREPLICATOR_SOURCE',
  ureplicatorTarget: 'FERRY_UREPLICATOR_TARGET',
  metricsPort: 'FERRY_METRICS_PORT',
  secretsDir: 'FERRY_SECRETS_DIR',
  secretEnvPrefix: 'FERRY_SECRET_ENV_PREFIX',
  secretsKeyFile: 'FERRY_SECRETS_KEY_FILE',
  zookeeperAuthFile: 'FERRY_ZOOKEEPER_AUTH_FILE',
}

/** Every FERRY_* variable a process reads as a setting (manifests are checked against it). */
export const PROCESS_ENV_NAMES: readonly string[] = Object.freeze(Object.values(ENV))

export function loadProcessConfig(flags: Record<string, string | undefined>, env: NodeJS.ProcessEnv = process.env): ProcessConfig {
  const input: Record<string, string> = {}
  for (const [field, name] of Object.entries(ENV)) {
    const value = flags[field] ?? env[name]
    if (value !== undefined && value !== '') input[field] = value
  }
  for (const [field, value] of Object.entries(flags)) {
    if (!Object.hasOwn(ENV, field) && value !== undefined) input[field] = value
  }
  const parsed = parseOrThrow(processConfigSchema, input, 'process configuration')
  return Object.freeze({ ...parsed, id: parsed.id ?? `${hostname()}-${process.pid}` })
}
