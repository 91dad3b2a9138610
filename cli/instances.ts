/**
 * `ferry instances`: the instance registry (every live controller and worker) with its
 * metadata and how long ago each one last heartbeated.
 *
 *   ferry instances --redis redis://H:P --deployment prod [--json]
 *   ferry instances --controller http://C:8080 [--json]       (through GET /v1/workers; token from FERRY_TOKEN)
 *
 * Exit codes: 0 listed (even when empty), 1 the registry cannot be read, 2 bad command line.
 */
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { describeFetchError, errorMessage } from '../common/errors.js'
import { createKeys } from '../common/keys.js'
import { listInstances, type InstanceRecord } from '../common/registry.js'

export const INSTANCES_USAGE = `usage: ferry instances (--redis URL [--deployment NAME] | --controller URL) [--json]
  --redis URL         read the registry from Redis (or FERRY_REDIS)
  --deployment NAME   deployment (or FERRY_DEPLOYMENT; default "default")
  --controller URL    read it through a controller's GET /v1/workers (or FERRY_CONTROLLER);
                      sends FERRY_TOKEN as a bearer token when set
  --json              one JSON document instead of a table`

export interface InstanceRow {
  id: string
  role: string
  host: string
  pid: number
  version: string
  zone: string | null
  dc: string | null
  url: string | null
  startedAt: string
  lastHeartbeatAt: string
  /** Milliseconds since the last heartbeat, at the time of listing. */
  heartbeatAgeMs: number
  partitions: number | null
  restarts: number | null
  childPid: number | null
}

interface Io {
  stdout: { write(text: string): unknown }
  stderr: { write(text: string): unknown }
}

/** Plain rows from registry records; `nowMs` makes the heartbeat age testable. */
export function instanceRows(records: readonly InstanceRecord[], nowMs: number): InstanceRow[] {
  return records
    .map((record) => {
      const metrics = record.metrics ?? {}
      const beat = Date.parse(record.lastHeartbeatAt)
      return {
        id: record.id,
        role: record.role,
        host: record.host,
        pid: record.pid,
        version: record.version,
        zone: record.zone ?? null,
        dc: record.dc ?? null,
        url: record.url ?? null,
        startedAt: record.startedAt,
        lastHeartbeatAt: record.lastHeartbeatAt,
        heartbeatAgeMs: Number.isNaN(beat) ? -1 : Math.max(0, nowMs - beat),
        partitions: metrics.partitions?.length ?? null,
        restarts: metrics.restarts ?? null,
        childPid: metrics.childPid ?? null,
      }
    })
    .sort((a, b) => (a.role === b.role ? a.id.localeCompare(b.id) : a.role.localeCompare(b.role)))
}

function age(ms: number): string {
  if (ms < 0) return '?'
  if (ms < 10000) return `${(ms / 1000).toFixed(1)}s`
  if (ms < 120000) return `${Math.round(ms / 1000)}s`
  if (ms < 7200000) return `${Math.round(ms / 60000)}m`
  return `${Math.round(ms / 3600000)}h`
}

/** A fixed-width table, one instance a line. */
export function formatInstances(rows: readonly InstanceRow[], nowMs: number): string {
  const header = ['ID', 'ROLE', 'HOST', 'PID', 'VERSION', 'ZONE', 'DC', 'UP', 'HEARTBEAT', 'PARTITIONS', 'RESTARTS']
  const lines = rows.map((r) => [
    r.id,
    r.role,
    r.host,
    String(r.pid),
    r.version,
    r.zone ?? '-',
    r.dc ?? '-',
    age(nowMs - Date.parse(r.startedAt)),
    `${age(r.heartbeatAgeMs)} ago`,
    r.partitions === null ? '-' : String(r.partitions),
    r.restarts === null ? '-' : String(r.restarts),
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] ?? '').length)))
  const format = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return `${[format(header), ...lines.map(format)].join('\n')}\n${rows.length} instance${rows.length === 1 ? '' : 's'}\n`
}

async function fromController(url: string): Promise<InstanceRecord[]> {
  const token = process.env.FERRY_TOKEN
  const response = await fetch(`${url.replace(/\/$/, '')}/v1/workers`, { headers: token ? { authorization: `Bearer ${token}` } : {} }).catch((error: unknown) => {
    throw new Error(`cannot reach the controller at ${url}: ${describeFetchError(error)}`)
  })
  const body = (await response.json().catch(() => ({}))) as { workers?: InstanceRecord[]; controllers?: InstanceRecord[]; error?: { message?: string } }
  if (!response.ok) throw new Error(`GET ${url}/v1/workers answered ${response.status}: ${body.error?.message ?? 'no error message'}`)
  return [...(body.controllers ?? []), ...(body.workers ?? [])]
}

async function fromRedis(url: string, deployment: string): Promise<InstanceRecord[]> {
  const redis = new Redis(url, { lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 1, connectTimeout: 5000, retryStrategy: () => null })
  let lastError: unknown
  redis.on('error', (error) => {
    lastError = error
  })
  try {
    try {
      await redis.connect()
    } catch (error) {
      // Only host and port: the URL may carry a password.
      const { hostname, port } = new URL(url)
      throw new Error(`cannot reach Redis at ${hostname}:${port || '6379'}: ${errorMessage(lastError ?? error)}`)
    }
    return await listInstances(redis, createKeys(deployment))
  } finally {
    redis.disconnect()
  }
}

/** Run `ferry instances` with the arguments after the command name. Never throws. */
export async function runInstancesCli(args: readonly string[], io: Io = { stdout: process.stdout, stderr: process.stderr }, env: NodeJS.ProcessEnv = process.env): Promise<number> {
  let values
  try {
    values = parseArgs({
      args: [...args],
      strict: true,
      allowPositionals: false,
      options: { redis: { type: 'string' }, deployment: { type: 'string' }, controller: { type: 'string' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    }).values
  } catch (error) {
    io.stderr.write(`ferry instances: ${errorMessage(error)}\n${INSTANCES_USAGE}\n`)
    return 2
  }
  if (values.help === true) {
    io.stdout.write(`${INSTANCES_USAGE}\n`)
    return 0
  }
  const controller = values.controller ?? (values.redis === undefined ? env.FERRY_CONTROLLER : undefined)
  const redis = values.redis ?? env.FERRY_REDIS
  if (controller === undefined && redis === undefined) {
    io.stderr.write(`ferry instances: needs --redis URL (or FERRY_REDIS) or --controller URL (or FERRY_CONTROLLER)\n${INSTANCES_USAGE}\n`)
    return 2
  }
  if (controller === undefined && redis !== undefined && !/^rediss?:\/\//.test(redis)) {
    io.stderr.write(`ferry instances: --redis must be a redis:// or rediss:// URL\n`)
    return 2
  }
  const deployment = values.deployment ?? env.FERRY_DEPLOYMENT ?? 'default'
  try {
    const records = controller !== undefined ? await fromController(controller) : await fromRedis(redis ?? '', deployment)
    const now = Date.now()
    const rows = instanceRows(records, now)
    io.stdout.write(values.json === true ? `${JSON.stringify({ deployment: controller === undefined ? deployment : null, at: new Date(now).toISOString(), instances: rows }, null, 2)}\n` : formatInstances(rows, now))
    return 0
  } catch (error) {
    io.stderr.write(`ferry instances: cannot read the registry: ${errorMessage(error)}\n`)
    return 1
  }
}
