/**
 * Turns a cluster definition into a connected-client configuration: reads TLS files and the
 * SASL secret (from a file, an env variable or inline), and classifies Kafka failures into
 * Ferry errors whose messages say what to fix and never carry a secret.
 */
import type { ISocketFactory, KafkaConfig, logCreator, SASLOptions } from 'kafkajs'
import { logLevel } from './kafkajs.js'
import type { ClusterSpec } from '../config.js'
import { FerryError, errorMessage } from '../errors.js'
import type { Logger } from '../logger.js'
import { installedSecretPolicy, openSecret, readSecretEnv, readSecretFile, type SecretPolicy } from '../secrets.js'

/**
 * The SASL password of a cluster, wherever it is kept, as far as this process's secret policy
 * allows (common/secrets.ts). Errors name the source, never the value.
 */
export function resolveSaslPassword(cluster: ClusterSpec, env: NodeJS.ProcessEnv = process.env, policy: SecretPolicy = installedSecretPolicy()): string {
  const sasl = cluster.sasl
  if (sasl === undefined) throw new FerryError('INVALID_CONFIG', `cluster "${cluster.name}" has no sasl section`)
  if (sasl.password !== undefined) return sasl.password
  if (sasl.sealedPassword !== undefined) return openSecret(policy, sasl.sealedPassword, cluster.name, 'sasl.password')
  if (sasl.passwordFile !== undefined) return readSecretFile(policy, cluster.name, 'sasl.passwordFile', sasl.passwordFile).toString('utf8').replace(/\r?\n$/, '')
  if (sasl.passwordEnv !== undefined) return readSecretEnv(policy, cluster.name, 'sasl.passwordEnv', sasl.passwordEnv, env)
  throw new FerryError('SECRET_UNREADABLE', `cluster "${cluster.name}": sasl has no password, passwordFile or passwordEnv`, { context: { cluster: cluster.name, field: 'sasl.password' } })
}

const KAFKAJS_TO_PINO: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
}

/** kafkajs logs through pino, at WARN and above: its INFO is chatty and its DEBUG costly. */
export function pinoLogCreator(logger: Logger): logCreator {
  return () => ({ namespace, level, log }) => {
    const { message, ...extra } = log
    // kafkajs puts request payloads in some debug lines; keep only scalar context fields.
    const fields: Record<string, unknown> = { kafkajs: namespace }
    for (const [key, value] of Object.entries(extra)) {
      if (key !== 'timestamp' && key !== 'logger' && (typeof value !== 'object' || value === null)) fields[key] = value
    }
    logger[KAFKAJS_TO_PINO[level] ?? 'info'](fields, message)
  }
}

export interface ClientConfigOptions {
  clientId: string
  logger: Logger
  /** Default 10000. */
  connectionTimeoutMs?: number
  /** Default 30000. */
  requestTimeoutMs?: number
  /** kafkajs retries per call; default 5. */
  retries?: number
  /** How connections are opened; default plain TCP or TLS. Tests use it to inject network faults. */
  socketFactory?: ISocketFactory
  /** Where secrets may be read from; default the one installed at process start (none allowed). */
  secrets?: SecretPolicy
}

/**
 * Every secret is resolved before the config is returned, so a refused or unreadable one fails
 * here and the cluster is never contacted with it.
 */
export function kafkaClientConfig(cluster: ClusterSpec, options: ClientConfigOptions): KafkaConfig {
  const policy = options.secrets ?? installedSecretPolicy()
  const readFileFor = (field: string, file: string): Buffer => readSecretFile(policy, cluster.name, field, file)
  const protocol = cluster.securityProtocol
  const usesTls = protocol === 'SSL' || protocol === 'SASL_SSL'
  let ssl: KafkaConfig['ssl'] = undefined
  if (usesTls) {
    const tls = cluster.tls
    ssl = {
      rejectUnauthorized: tls?.rejectUnauthorized ?? true,
      ...(tls?.caFile ? { ca: [readFileFor('tls.caFile', tls.caFile)] } : {}),
      ...(tls?.certFile ? { cert: readFileFor('tls.certFile', tls.certFile) } : {}),
      ...(tls?.keyFile ? { key: readFileFor('tls.keyFile', tls.keyFile) } : {}),
      ...(tls?.servername ? { servername: tls.servername } : {}),
    }
  }
  let sasl: SASLOptions | undefined
  if (cluster.sasl !== undefined) {
    sasl = { mechanism: cluster.sasl.mechanism, username: cluster.sasl.username, password: resolveSaslPassword(cluster, process.env, policy) } as SASLOptions
  }
  return {
    clientId: options.clientId,
    brokers: cluster.bootstrapServers,
    ...(ssl === undefined ? {} : { ssl }),
    ...(sasl === undefined ? {} : { sasl }),
    connectionTimeout: options.connectionTimeoutMs ?? 10000,
    requestTimeout: options.requestTimeoutMs ?? 30000,
    retry: { retries: options.retries ?? 5, initialRetryTime: 300, maxRetryTime: 10000 },
    logLevel: logLevel.WARN,
    logCreator: pinoLogCreator(options.logger),
    ...(options.socketFactory === undefined ? {} : { socketFactory: options.socketFactory }),
  }
}

/** Node TLS error codes that mean "the certificate could not be trusted or does not match". */
const TLS_ERROR_CODES = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_SIGNATURE_FAILURE',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED',
])

const TLS_MESSAGE = /certificate|self[- ]signed|ssl|tls|handshake|alert/i
const UNREACHABLE_MESSAGE = /ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ETIMEDOUT|Connection timeout|connect ECONN/i

function causes(error: unknown): unknown[] {
  const chain: unknown[] = []
  let current: unknown = error
  for (let depth = 0; current !== undefined && current !== null && depth < 8; depth++) {
    chain.push(current)
    const e = current as { cause?: unknown; originalError?: unknown }
    current = e.originalError ?? e.cause
  }
  return chain
}

/**
 * A Kafka failure as a FerryError that says what went wrong on which cluster. The
 * classification is a table walk over the error and its causes, not a set of ad-hoc ifs.
 */
export function classifyKafkaError(error: unknown, cluster: string, action: string): FerryError {
  if (error instanceof FerryError) return error
  const chain = causes(error)
  const names = chain.map((e) => (e as Error)?.name ?? '')
  const codes = chain.map((e) => String((e as NodeJS.ErrnoException)?.code ?? ''))
  const messages = chain.map((e) => errorMessage(e))
  const last = messages[messages.length - 1] ?? errorMessage(error)
  const context = { cluster }
  if (names.includes('KafkaJSSASLAuthenticationError') || messages.some((m) => /SASL .*authentication failed|invalid credentials/i.test(m))) {
    return new FerryError('KAFKA_AUTH_FAILED', `cluster "${cluster}": ${action}: SASL authentication failed (check sasl.username and the password): ${last}`, { cause: error, context })
  }
  if (codes.some((c) => TLS_ERROR_CODES.has(c)) || messages.some((m) => TLS_MESSAGE.test(m) && !UNREACHABLE_MESSAGE.test(m))) {
    return new FerryError('KAFKA_TLS_FAILED', `cluster "${cluster}": ${action}: TLS handshake failed (check tls.caFile, tls.certFile/keyFile and the broker address): ${last}`, { cause: error, context, retriable: true })
  }
  if (messages.some((m) => UNREACHABLE_MESSAGE.test(m)) || names.includes('KafkaJSConnectionError') || names.includes('KafkaJSNoBrokerAvailableError')) {
    return new FerryError('KAFKA_UNREACHABLE', `cluster "${cluster}": ${action}: brokers unreachable (check bootstrapServers and securityProtocol): ${last}`, { cause: error, context, retriable: true })
  }
  const retriable = (error as { retriable?: boolean })?.retriable !== false
  return new FerryError('KAFKA_ERROR', `cluster "${cluster}": ${action}: ${last}`, { cause: error, context, retriable })
}
