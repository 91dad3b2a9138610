/**
 * The security half of a Kafka client's properties for one cluster: protocol, TLS trust and
 * client certificate, SASL. Secrets appear only as references the Java client resolves at
 * start through its config providers (KIP-297), never as values:
 *
 * - `${dir:<directory>:<file>}`: DirectoryConfigProvider (Kafka >= 2.7) reads the whole file.
 *   Used for the client certificate, its private key and a SASL passwordFile. FileConfigProvider
 *   (`${file:<path>:<key>}`) would need a properties file, and Ferry's passwordFile is the bare
 *   password.
 * - `${env:<NAME>}`: EnvVarConfigProvider (Kafka >= 3.5) reads an environment variable. Used for
 *   passwordEnv, and for an inline password, which is never rendered: the operator provides it
 *   as FERRY_<ROLE>_SASL_PASSWORD instead.
 */
import type { ClusterSpec } from '../common/config.js'

/** Which side of the mirror a cluster is on. */
export type ClusterRole = 'source' | 'target'

export type ConfigProviderAlias = 'dir' | 'env'

/** An environment variable the rendered configuration references. */
export interface RequiredEnv {
  name: string
  /** What it holds, for comments. */
  purpose: string
  /**
   * Whether the Ferry worker itself reads it (a passwordEnv), so the unit checks it before
   * starting. An inline password's variable is only for Java clients using the properties:
   * the worker takes the password from the cluster definition.
   */
  workerReads: boolean
}

export interface ClientSecurity {
  /** Properties to merge into the client's own. */
  properties: Record<string, string>
  /** Config providers the properties reference. */
  providers: ConfigProviderAlias[]
  /** Environment variables the properties reference. */
  requiredEnv: RequiredEnv[]
  /** Caveats for the operator, written as comments. */
  notes: string[]
}

export const CONFIG_PROVIDER_CLASSES: Readonly<Record<ConfigProviderAlias, string>> = {
  dir: 'org.apache.kafka.common.config.provider.DirectoryConfigProvider',
  env: 'org.apache.kafka.common.config.provider.EnvVarConfigProvider',
}

const LOGIN_MODULES = {
  'scram-sha-512': 'org.apache.kafka.common.security.scram.ScramLoginModule',
  'scram-sha-256': 'org.apache.kafka.common.security.scram.ScramLoginModule',
  plain: 'org.apache.kafka.common.security.plain.PlainLoginModule',
} as const

/** Environment variable that carries an inline SASL password, which is never rendered. */
export function inlinePasswordEnv(role: ClusterRole): string {
  return `FERRY_${role.toUpperCase()}_SASL_PASSWORD`
}

/**
 * `${dir:<directory>:<file>}` for an absolute file path. The caller has checked the path
 * (absolute, no `:` or `}`, which would end the reference early).
 */
export function directoryReference(path: string): string {
  const slash = path.lastIndexOf('/')
  const directory = slash === 0 ? '/' : path.slice(0, slash)
  return `\${dir:${directory}:${path.slice(slash + 1)}}`
}

/** A JAAS option value in double quotes (JAAS reads it with java.io.StreamTokenizer). */
function jaasQuote(text: string): string {
  return `"${text.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}

export function clientSecurity(cluster: ClusterSpec, role: ClusterRole): ClientSecurity {
  const properties: Record<string, string> = { 'security.protocol': cluster.securityProtocol }
  const providers = new Set<ConfigProviderAlias>()
  const requiredEnv: RequiredEnv[] = []
  const notes: string[] = []
  const usesTls = cluster.securityProtocol === 'SSL' || cluster.securityProtocol === 'SASL_SSL'

  if (usesTls) {
    const tls = cluster.tls
    if (tls?.caFile !== undefined) {
      properties['ssl.truststore.type'] = 'PEM'
      properties['ssl.truststore.location'] = tls.caFile
    } else {
      notes.push('No tls.caFile: the broker certificates are checked against the JVM default trust store.')
    }
    if (tls?.certFile !== undefined && tls.keyFile !== undefined) {
      // Two files, so not ssl.keystore.location (one PEM file holding key and chain together):
      // the PEM keystore's own fields, each a reference to its file.
      properties['ssl.keystore.type'] = 'PEM'
      properties['ssl.keystore.certificate.chain'] = directoryReference(tls.certFile)
      properties['ssl.keystore.key'] = directoryReference(tls.keyFile)
      providers.add('dir')
      notes.push('The client key must be PKCS#8 PEM ("BEGIN PRIVATE KEY"); Java clients reject PKCS#1 ("BEGIN RSA PRIVATE KEY").')
    }
    if (tls?.rejectUnauthorized === false) {
      properties['ssl.endpoint.identification.algorithm'] = ''
      notes.push('tls.rejectUnauthorized is false: Java clients skip the host name check only; the chain is still verified against the trust store.')
    } else {
      properties['ssl.endpoint.identification.algorithm'] = 'https'
    }
    if (tls?.servername !== undefined) {
      notes.push(`tls.servername "${tls.servername}" has no Java client setting: the broker certificates must match the advertised host names.`)
    }
  }

  const sasl = cluster.sasl
  if (sasl !== undefined) {
    let passwordRef: string
    if (sasl.passwordEnv !== undefined) {
      passwordRef = `\${env:${sasl.passwordEnv}}`
      providers.add('env')
      requiredEnv.push({ name: sasl.passwordEnv, purpose: `SASL password of ${role} cluster ${cluster.name}`, workerReads: true })
    } else if (sasl.passwordFile !== undefined) {
      passwordRef = directoryReference(sasl.passwordFile)
      providers.add('dir')
      notes.push('The password file is read whole by Java clients: write it without a trailing newline (printf %s, not echo).')
    } else {
      // An inline password is never rendered; only the name of the variable that must carry it.
      const name = inlinePasswordEnv(role)
      passwordRef = `\${env:${name}}`
      providers.add('env')
      requiredEnv.push({
        name,
        purpose: `SASL password of ${role} cluster ${cluster.name} (given inline in its definition, so never rendered)`,
        workerReads: false,
      })
    }
    properties['sasl.mechanism'] = sasl.mechanism.toUpperCase()
    properties['sasl.jaas.config'] =
      `${LOGIN_MODULES[sasl.mechanism]} required username=${jaasQuote(sasl.username)} password="${passwordRef}";`
    notes.push('The password is substituted inside the JAAS quotes: it may not contain a double quote or a backslash.')
    if (cluster.securityProtocol === 'SASL_PLAINTEXT') {
      notes.push(
        sasl.mechanism === 'plain'
          ? 'SASL_PLAINTEXT with PLAIN: the password and the data cross the network unencrypted.'
          : 'SASL_PLAINTEXT: the data crosses the network unencrypted.',
      )
    }
  }

  return { properties, providers: [...providers].sort(), requiredEnv, notes }
}
