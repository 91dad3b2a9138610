/**
 * The systemd side of a rendered topic group: one templated worker unit (an instance per
 * worker, `ferry-worker-<group>@<n>.service`) and the scripts that start and stop the instances.
 *
 * Every value interpolated here was checked by render(): names match the cluster/group name
 * rule and paths hold only letters, digits, `.`, `_`, `-` and `/`, so nothing needs quoting for
 * systemd (no `%` specifiers, no `$` expansion) or for the shell.
 */
import type { RequiredEnv } from './client-security.js'
import type { WorkerSecretSettings } from './worker-secrets.js'

export interface SystemdParams {
  group: string
  deployment: string
  /** Where the rendered tree lives on the host, e.g. /etc/ferry. */
  installDir: string
  /** Absolute path of the `ferry` executable. */
  ferryBin: string
  /** Instances the start script starts when given no count. */
  workers: number
  /** The group's zone constraint: the workers declare it as theirs unless the env files say otherwise. */
  zone?: string
  /** The group's dc constraint, declared the same way. */
  dc?: string
  /** How long bootstrap lets a worker drain on stop (FERRY_GRACE_PERIOD_MS). */
  gracePeriodMs: number
  /** Variables the cluster settings reference (passwordEnv, inline-password stand-ins). */
  clusterEnv: readonly RequiredEnv[]
  /** What the workers' secret policy must allow for the group's clusters (FERRY_SECRETS_DIR, FERRY_SECRET_ENV_PREFIX). */
  secretSettings: WorkerSecretSettings
}

const GENERATED = 'Rendered by "ferry render": change the topic group or cluster definitions and render again.'

/** What every Ferry process needs and has no default for (common/process-config.ts). */
const PROCESS_ENV: readonly RequiredEnv[] = [
  { name: 'FERRY_ZOOKEEPER', purpose: 'ZooKeeper connect string, host:port[,host:port][/chroot]', workerReads: true },
  { name: 'FERRY_REDIS', purpose: 'Redis URL, redis://host:port[/db]', workerReads: true },
]

/** Template unit file name, e.g. `ferry-worker-orders@.service`. */
export function workerUnitTemplate(group: string): string {
  return `ferry-worker-${group}@.service`
}

/** Data directory of a group's workers (the unit's StateDirectory). */
export function workerDataDir(group: string): string {
  return `/var/lib/ferry/${group}`
}

/** Where the secret a variable references lives on the host: `<installDir>/secrets/<NAME>`. */
export function secretFilePath(installDir: string, name: string): string {
  return `${installDir}/secrets/${name}`
}

/** The rendered (non-secret) env file of a group's workers, loaded before the operator's two. */
export function renderedEnvFile(params: Pick<SystemdParams, 'group' | 'installDir'>): string {
  return `${params.installDir}/${params.group}/worker.env`
}

/** Settings shared by every group of the host (ZooKeeper, Redis), then the group's own. */
export function environmentFiles(params: Pick<SystemdParams, 'group' | 'installDir'>): [shared: string, group: string] {
  return [`${params.installDir}/ferry.env`, `${params.installDir}/${params.group}.env`]
}

/**
 * The worker runs `ferry bootstrap --role worker` (cli/main.ts), which reads its settings from
 * flags and FERRY_* variables. The deployment is a flag, so an env file cannot point the
 * workers at another deployment than the one the properties were rendered for.
 */
export function renderWorkerUnit(params: SystemdParams): string {
  const { group, deployment, ferryBin } = params
  const [sharedEnv, groupEnv] = environmentFiles(params)
  const secrets = params.clusterEnv.filter((env) => env.workerReads)
  const checked = [...PROCESS_ENV, ...secrets]
  const javaOnly = params.clusterEnv.filter((env) => !env.workerReads)
  const describe = (env: RequiredEnv): string => `#   ${env.name}: ${env.purpose}`
  // "$$" is a literal "$" for the shell: systemd expands $NAME in Exec lines itself.
  const checks = [
    ...PROCESS_ENV.map(
      (env) =>
        `ExecStartPre=/bin/sh -c 'if [ -z "$\${${env.name}:-}" ]; then echo "ferry: ${env.name} is not set: add it to ${groupEnv} or ${sharedEnv}" >&2; exit 1; fi'`,
    ),
    // A secret is either set, or read by Ferry from the file worker.env references.
    ...secrets.map((env) => {
      const file = secretFilePath(params.installDir, env.name)
      return `ExecStartPre=/bin/sh -c 'if [ -z "$\${${env.name}:-}" ] && [ ! -r ${file} ]; then echo "ferry: ${env.name} is not set and ${file} is not readable by user ferry" >&2; exit 1; fi'`
    }),
  ]
  const stopTimeoutSec = Math.ceil(params.gracePeriodMs / 1000) + 30
  return [
    `# Ferry mirror worker for topic group ${group} (deployment ${deployment}), one instance per %i.`,
    `# ${GENERATED}`,
    `# Install: systemctl link ${params.installDir}/systemd/${workerUnitTemplate(group)} (bin/start-${group}.sh does it).`,
    `# Environment: ${renderedEnvFile(params)} (rendered: settings, secret references), then KEY=value lines`,
    `# in ${sharedEnv} (every group) and ${groupEnv} (this group, wins); keep those two mode 0600.`,
    '# Checked before every start:',
    ...checked.map(describe),
    ...(javaOnly.length === 0
      ? []
      : [
          `# For Java clients using ${group}/*.properties (the worker takes these passwords from the cluster definitions):`,
          ...javaOnly.map(describe),
        ]),
    '',
    '[Unit]',
    `Description=Ferry worker %i of topic group ${group} (deployment ${deployment})`,
    'After=network-online.target',
    'Wants=network-online.target',
    // A worker that keeps failing (bad credentials, unreachable ZooKeeper) stops being restarted
    // after 5 failures in 10 minutes and shows as failed, instead of looping for ever.
    'StartLimitIntervalSec=600',
    'StartLimitBurst=5',
    '',
    '[Service]',
    'Type=simple',
    'User=ferry',
    'Group=ferry',
    `EnvironmentFile=${renderedEnvFile(params)}`,
    // "-": a missing file is reported by the checks below, by variable, rather than by systemd.
    `EnvironmentFile=-${sharedEnv}`,
    `EnvironmentFile=-${groupEnv}`,
    ...checks,
    // %H-<group>-%i: stable across restarts (so the balanced strategy keeps this instance's
    // partitions), unique across hosts and groups.
    `ExecStart=${ferryBin} bootstrap --role worker --deployment ${deployment} --id %H-${group}-%i`,
    'Restart=on-failure',
    'RestartSec=5s',
    // bootstrap drains on SIGTERM (its child stops its tasks after their last checkpoint, within
    // FERRY_GRACE_PERIOD_MS) and deregisters; the margin keeps systemd from killing it half-way.
    'KillSignal=SIGTERM',
    `TimeoutStopSec=${stopTimeoutSec}s`,
    `StateDirectory=ferry/${group}`,
    `ReadWritePaths=${workerDataDir(group)}`,
    `WorkingDirectory=${workerDataDir(group)}`,
    'UMask=0077',
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    'ProtectHome=yes',
    'PrivateTmp=yes',
    'PrivateDevices=yes',
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    'ProtectProc=invisible',
    'RemoveIPC=yes',
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
    'SystemCallArchitectures=native',
    'CapabilityBoundingSet=',
    // No MemoryDenyWriteExecute: V8's JIT needs memory that is writable and executable.
    // No SystemCallFilter: a syscall outside the list kills the process, and libuv probes
    // newer ones (io_uring) depending on the Node version.
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n')
}

export function renderStartScript(params: SystemdParams): string {
  const { group, deployment, installDir, workers } = params
  const template = workerUnitTemplate(group)
  const name = `start-${group}.sh`
  return [
    '#!/bin/sh',
    `# Start the Ferry workers of topic group ${group} (deployment ${deployment}) and enable them at boot.`,
    `# ${GENERATED}`,
    `# Usage: ${name} [COUNT]   instances ferry-worker-${group}@1 .. @COUNT (default ${workers})`,
    '# SYSTEMCTL overrides the systemctl command.',
    'set -eu',
    '',
    `count="\${1:-${workers}}"`,
    'case "$count" in',
    `  ''|*[!0-9]*|0*) echo "${name}: COUNT must be a whole number from 1 up, got '$count'" >&2; exit 2 ;;`,
    'esac',
    'systemctl="${SYSTEMCTL:-systemctl}"',
    '',
    '# Link the unit when systemd does not know it yet; reload either way, since a new render may have changed it.',
    `if ! $systemctl cat '${template}' >/dev/null 2>&1; then`,
    `  $systemctl link '${installDir}/systemd/${template}'`,
    'fi',
    '$systemctl daemon-reload',
    '',
    "units=''",
    'i=1',
    'while [ "$i" -le "$count" ]; do',
    `  units="$units ferry-worker-${group}@$i.service"`,
    '  i=$((i + 1))',
    'done',
    '# enable --now: start them now and again after a reboot.',
    '$systemctl enable --now $units',
    `echo "${name}: started$units"`,
    '',
  ].join('\n')
}

export function renderStopScript(params: SystemdParams): string {
  const { group, deployment } = params
  const name = `stop-${group}.sh`
  return [
    '#!/bin/sh',
    `# Stop every Ferry worker of topic group ${group} (deployment ${deployment}) and disable them at boot.`,
    `# ${GENERATED}`,
    `# Usage: ${name}`,
    '# Stops all instances, not only 1..COUNT of the last start: instances started by hand or by an',
    '# earlier, larger start would otherwise keep mirroring.',
    '# SYSTEMCTL overrides the systemctl command, SYSTEMD_UNIT_DIR the directory of enablement links.',
    'set -eu',
    '',
    'systemctl="${SYSTEMCTL:-systemctl}"',
    'unit_dir="${SYSTEMD_UNIT_DIR:-/etc/systemd/system}"',
    '',
    '# systemctl expands the pattern over loaded units, so this reaches every running instance.',
    `$systemctl stop 'ferry-worker-${group}@*.service'`,
    '',
    '# Enabled instances are the links in the *.wants directories; disabling them keeps a reboot from restarting them.',
    "enabled=''",
    `for link in "$unit_dir"/*.wants/ferry-worker-${group}@*.service; do`,
    '  [ -L "$link" ] || continue # the pattern stays as is when nothing matches',
    '  enabled="$enabled ${link##*/}"',
    'done',
    'if [ -n "$enabled" ]; then',
    '  $systemctl disable $enabled',
    'fi',
    `echo "${name}: stopped every ferry-worker-${group}@ instance"`,
    '',
  ].join('\n')
}
