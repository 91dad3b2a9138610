/**
 * What a group's workers must be allowed to read (common/secrets.ts), derived from the group's
 * two clusters and rendered into worker.env, so a host set up by `ferry configure` accepts its
 * own clusters' secrets and nothing more:
 *
 * - FERRY_SECRETS_DIR: the directories holding the clusters' secret files (`tls.caFile`,
 *   `tls.certFile`, `tls.keyFile`, `sasl.passwordFile`), each inside a subdirectory of the install
 *   dir (`/etc/ferry/tls`, `/etc/ferry/secrets`). Never the install dir itself: it also holds
 *   ferry.env, the group env files and, in the documented layout, the secrets key and the
 *   ZooKeeper credentials, which no cluster may name.
 * - FERRY_SECRET_ENV_PREFIX: the `sasl.passwordEnv` names, each as an entry of its own (an entry
 *   allows the name equal to it).
 *
 * @example
 *   const allowed = workerSecretSettings([source, target])
 *   // { secretsDirs: ['/etc/ferry/secrets', '/etc/ferry/tls'], envNames: ['EAST_KAFKA_PASSWORD'] }
 */
import { posix } from 'node:path'
import type { ClusterSpec, FieldProblem } from '../common/config.js'
import { isReservedEnvName } from '../common/secrets.js'
import { compareCodeUnits } from './properties.js'

export interface WorkerSecretSettings {
  /** FERRY_SECRETS_DIR entries, sorted; none nested in another. Empty: the setting is not rendered. */
  secretsDirs: string[]
  /** FERRY_SECRET_ENV_PREFIX entries (exact names), sorted. Empty: the setting is not rendered. */
  envNames: string[]
}

/** Safe unquoted in an env file that systemd reads and /bin/sh sources (supervisord). */
const ENV_SAFE_DIR = /^(\/[A-Za-z0-9._-]+)+$/

type SecretFileField = 'tls.caFile' | 'tls.certFile' | 'tls.keyFile' | 'sasl.passwordFile'

function secretFiles(cluster: ClusterSpec): [SecretFileField, string][] {
  const files: [SecretFileField, string | undefined][] = [
    ['tls.caFile', cluster.tls?.caFile],
    ['tls.certFile', cluster.tls?.certFile],
    ['tls.keyFile', cluster.tls?.keyFile],
    ['sasl.passwordFile', cluster.sasl?.passwordFile],
  ]
  return files.filter((entry): entry is [SecretFileField, string] => entry[1] !== undefined)
}

/**
 * Problems with where a cluster keeps its secrets, named `<role>.<field>`: a file must be in a
 * subdirectory of `installDir` (the only place the rendered FERRY_SECRETS_DIR allows), named by a
 * plain absolute path; a passwordEnv may not be one of Ferry's own settings. Paths that are not
 * absolute are reported by render() already.
 */
export function checkSecretLocations(cluster: ClusterSpec, role: string, installDir: string): FieldProblem[] {
  const problems: FieldProblem[] = []
  for (const [field, file] of secretFiles(cluster)) {
    if (!file.startsWith('/')) continue
    const dir = posix.dirname(file)
    if (posix.normalize(file) !== file || file.endsWith('/')) {
      problems.push({ field: `${role}.${field}`, message: `must be a plain absolute path to a file, without "." or ".." segments or doubled "/", got ${JSON.stringify(file)}` })
    } else if (!dir.startsWith(`${installDir}/`)) {
      problems.push({
        field: `${role}.${field}`,
        message: `must be in a subdirectory of the install dir ${installDir} (such as ${installDir}/tls/ or ${installDir}/secrets/): only there does the rendered FERRY_SECRETS_DIR let the workers read it, got ${JSON.stringify(file)}`,
      })
    } else if (!ENV_SAFE_DIR.test(dir)) {
      problems.push({
        field: `${role}.${field}`,
        message: `must be in a directory named with letters, digits, ".", "_", "-" and "/" only (it goes into FERRY_SECRETS_DIR in worker.env), got ${JSON.stringify(dir)}`,
      })
    }
  }
  const env = cluster.sasl?.passwordEnv
  if (env !== undefined && isReservedEnvName(env)) {
    problems.push({ field: `${role}.sasl.passwordEnv`, message: `${env} is one of Ferry's own settings, which a Ferry process never reads as a cluster password` })
  }
  return problems
}

/** The settings that allow exactly the secrets `clusters` name (checked by checkSecretLocations). */
export function workerSecretSettings(clusters: readonly ClusterSpec[]): WorkerSecretSettings {
  const dirs = [...new Set(clusters.flatMap((cluster) => secretFiles(cluster).map(([, file]) => posix.dirname(file))))].sort(compareCodeUnits)
  // A directory under another listed one adds nothing (/etc/ferry/tls covers /etc/ferry/tls/private).
  const secretsDirs = dirs.filter((dir) => !dirs.some((other) => other !== dir && dir.startsWith(`${other}/`)))
  const envNames = [...new Set(clusters.flatMap((cluster) => (cluster.sasl?.passwordEnv === undefined ? [] : [cluster.sasl.passwordEnv])))].sort(compareCodeUnits)
  return { secretsDirs, envNames }
}
