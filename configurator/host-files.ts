/**
 * The rest of what a host needs for a topic group, beside the systemd unit: the workers'
 * environment file (settings and secret references, never secret values), a supervisord
 * program entry for hosts without systemd, and the directory layout as a systemd-tmpfiles
 * entry. Values were checked by render() (names and paths need no quoting).
 */
import type { RequiredEnv } from './client-security.js'
import { environmentFiles, renderedEnvFile, secretFilePath, workerDataDir, type SystemdParams } from './systemd.js'

const GENERATED = 'Rendered by "ferry render" / "ferry configure": change the topic group or cluster definitions and render again.'

/** Log directory of supervisord-run workers (systemd ones log to the journal). */
export const LOG_DIR = '/var/log/ferry'

export function renderEnvFile(params: SystemdParams): string {
  const { group, deployment, installDir } = params
  const [sharedEnv, groupEnv] = environmentFiles(params)
  const workerSecrets = params.clusterEnv.filter((env) => env.workerReads)
  const javaOnly = params.clusterEnv.filter((env) => !env.workerReads)
  const describe = (env: RequiredEnv): string => `#   ${env.name}: ${env.purpose}, from ${secretFilePath(installDir, env.name)}`
  const { secretsDirs, envNames } = params.secretSettings
  const settings: Record<string, string> = {
    FERRY_GRACE_PERIOD_MS: String(params.gracePeriodMs),
    ...(params.zone === undefined ? {} : { FERRY_ZONE: params.zone }),
    ...(params.dc === undefined ? {} : { FERRY_DC: params.dc }),
    ...(workerSecrets.length === 0 ? {} : { FERRY_SECRET_FILES: workerSecrets.map((env) => `${env.name}=${secretFilePath(installDir, env.name)}`).join(',') }),
    ...(secretsDirs.length === 0 ? {} : { FERRY_SECRETS_DIR: secretsDirs.join(',') }),
    ...(envNames.length === 0 ? {} : { FERRY_SECRET_ENV_PREFIX: envNames.join(',') }),
  }
  const policyComment = [
    ...(secretsDirs.length === 0 ? [] : ['# FERRY_SECRETS_DIR: the directories of the clusters\' secret files; the workers read no file elsewhere.']),
    ...(envNames.length === 0 ? [] : ['# FERRY_SECRET_ENV_PREFIX: the clusters\' passwordEnv names; the workers read no other variable as a password.']),
  ]
  return [
    `# Environment of the Ferry workers of topic group ${group} (deployment ${deployment}).`,
    `# ${GENERATED}`,
    '# No secret values: FERRY_SECRET_FILES names the files each variable is read from when Ferry',
    '# starts (keep them root:ferry 0640, without a trailing newline). A variable already set wins.',
    `# Loaded first; ${sharedEnv} (ZooKeeper, Redis) and ${groupEnv} override it.`,
    ...(workerSecrets.length === 0 ? [] : ['# Secrets the worker reads:', ...workerSecrets.map(describe)]),
    ...(javaOnly.length === 0 ? [] : ['# Only for Java clients using the .properties files (set them in their environment):', ...javaOnly.map((env) => `#   ${env.name}: ${env.purpose}`)]),
    ...policyComment,
    ...Object.keys(settings)
      .sort()
      .map((key) => `${key}=${settings[key] ?? ''}`),
    '',
  ].join('\n')
}

/**
 * A supervisord `[program:]` with `numprocs` workers. supervisord has no env files, so the
 * command sources the three of them (rendered, shared, group) in a shell that then `exec`s
 * ferry, which therefore receives supervisord's stop signal itself.
 */
export function renderSupervisorEntry(params: SystemdParams): string {
  const { group, deployment, ferryBin, workers } = params
  const [sharedEnv, groupEnv] = environmentFiles(params)
  const program = `ferry-worker-${group}`
  const sources = [renderedEnvFile(params), sharedEnv, groupEnv].map((file) => `if [ -r ${file} ]; then . ${file}; fi`).join('; ')
  const stopWaitSecs = Math.ceil(params.gracePeriodMs / 1000) + 30
  return [
    `; Ferry mirror workers of topic group ${group} (deployment ${deployment}) under supervisord.`,
    `; ${GENERATED}`,
    `; Install: include this file from supervisord.conf ([include] files = ${params.installDir}/supervisor/*.conf),`,
    '; then: supervisorctl reread && supervisorctl update. Instance ids are <host>-<group>-<n>, as with systemd.',
    '; The env files are sourced by /bin/sh here: quote values that hold spaces or shell characters.',
    `[program:${program}]`,
    `command=/bin/sh -c 'set -a; ${sources}; set +a; exec ${ferryBin} bootstrap --role worker --deployment ${deployment} --id %(host_node_name)s-${group}-%(process_num)d'`,
    'process_name=%(program_name)s-%(process_num)d',
    `numprocs=${workers}`,
    'numprocs_start=1',
    `directory=${workerDataDir(group)}`,
    'user=ferry',
    'autostart=true',
    // bootstrap restarts its child itself; it exits non-zero only after a crash loop.
    'autorestart=unexpected',
    'exitcodes=0',
    'startsecs=10',
    'startretries=5',
    'stopsignal=TERM',
    // The drain (grace period) plus a margin before supervisord sends SIGKILL.
    `stopwaitsecs=${stopWaitSecs}`,
    'killasgroup=true',
    'redirect_stderr=true',
    `stdout_logfile=${LOG_DIR}/%(program_name)s-%(process_num)d.log`,
    'stdout_logfile_maxbytes=50MB',
    'stdout_logfile_backups=5',
    '',
  ].join('\n')
}

/** systemd-tmpfiles entry: the directories the group's workers and their secrets need. */
export function renderTmpfiles(params: SystemdParams): string {
  const { group, deployment, installDir } = params
  return [
    `# Directory layout of the Ferry workers of topic group ${group} (deployment ${deployment}).`,
    `# ${GENERATED}`,
    `# Install: ln -s ${installDir}/tmpfiles.d/ferry-${group}.conf /etc/tmpfiles.d/ && systemd-tmpfiles --create`,
    '# Type Path Mode User Group Age',
    `d ${installDir} 0755 root root -`,
    `d ${installDir}/${group} 0755 root root -`,
    `d ${installDir}/secrets 0750 root ferry -`,
    `d ${workerDataDir(group)} 0750 ferry ferry -`,
    `d ${LOG_DIR} 0750 ferry ferry -`,
    '',
  ].join('\n')
}
