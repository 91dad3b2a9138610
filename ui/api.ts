/**
 * The dashboard's REST client: same-origin requests to the controller's /v1 API, with the
 * bearer token (if the operator gave one) kept in sessionStorage for this tab only.
 */

const TOKEN_KEY = 'ferry.token'

export interface FieldProblem {
  field: string
  message: string
}

/** An error response of the API: `{ error: { code, message, details } }`, or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: unknown,
  ) {
    super(message)
    this.name = 'ApiError'
  }

  /** Validation problems by field, when the API listed them. */
  fieldProblems(): FieldProblem[] {
    if (!Array.isArray(this.details)) return []
    return this.details.filter((d): d is FieldProblem => typeof d === 'object' && d !== null && typeof (d as FieldProblem).field === 'string' && typeof (d as FieldProblem).message === 'string')
  }
}

export function getToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY)
  } catch {
    return null
  }
}

export function setToken(token: string | null): void {
  if (token === null || token === '') sessionStorage.removeItem(TOKEN_KEY)
  else sessionStorage.setItem(TOKEN_KEY, token)
}

/**
 * `path` is relative to the controller root ("v1/groups", "readyz"); it is resolved against
 * the page (served at /ui/) so the dashboard also works behind a path prefix.
 */
export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' }
  if (body !== undefined) headers['content-type'] = 'application/json'
  const token = getToken()
  if (token) headers.authorization = `Bearer ${token}`
  let response: Response
  try {
    response = await fetch(new URL(`../${path}`, document.baseURI), { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
  } catch (error) {
    throw new ApiError(0, 'UNREACHABLE', `cannot reach the controller: ${error instanceof Error ? error.message : String(error)}`, undefined)
  }
  const text = await response.text()
  let parsed: unknown
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined
  } catch {
    parsed = undefined
  }
  // /readyz answers 503 with a normal body when the controller is not ready.
  if (!response.ok && !(path === 'readyz' && response.status === 503 && parsed !== undefined)) {
    const error = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error
    throw new ApiError(response.status, error?.code ?? `HTTP_${response.status}`, error?.message ?? (text || response.statusText), error?.details)
  }
  return parsed as T
}

// Shapes of the API responses the dashboard reads (see controller/api.ts).

export interface Ready {
  ready: boolean
  leader: string | null
  isLeader: boolean
  epoch?: number
  checks: Record<string, string>
}

export interface GroupSpec {
  name: string
  sourceCluster: string
  targetCluster: string
  topics?: string[]
  topicPattern?: string
  rename?: { prefix?: string; map?: Record<string, string> }
  delivery: string
  startPosition: string
  strategy: string
  maxBytesPerSec?: number
  zone?: string
  dc?: string
}

export interface GroupSummary {
  name: string
  state: string
  spec: GroupSpec
}

export interface PartitionRow {
  topic: string
  partition: number
  targetTopic: string
  worker: string
  state: string
  position: number | null
  highWatermark?: number | null
  lag?: number | null
  deadLettered: number
  /** Figures for this partition: records mirrored by every owner so far, rates of the current one. */
  recordsMirrored?: number
  recordsPerSec?: number
  bytesPerSec?: number
  error?: { code: string; message: string }
  /** Whether the assigned worker serves it (absent from a controller that predates it). */
  served?: 'serving' | 'not_reported' | 'reported_by_other' | 'no_progress'
  /** How long it has not been served, as the controller watched it. */
  sinceMs?: number
}

export interface GroupDetail extends GroupSummary {
  status: {
    healthy: boolean
    error?: { code: string; message: string }
    lagError?: { code: string; message: string }
    assignedPartitions: number
    lag: number | null
    droppedTopics?: string[]
    /** Partitions per kind of drift (assignment vs what workers serve). */
    drift?: Record<string, number>
    /** Partitions not served for longer than the controller's grace (makes the group unhealthy). */
    unservedPastGrace?: number
    /** Workers kept away from the group for holding its partitions without progress. */
    quarantined?: Array<{ worker: string; reason: string; since: string; until: string }>
  }
  partitions: PartitionRow[]
}

export interface ReportedPartition {
  group: string
  topic: string
  partition: number
  state?: string
  recordsMirrored?: number
  recordsPerSec?: number
  bytesPerSec?: number
}

export interface Instance {
  id: string
  role: string
  host: string
  pid: number
  version: string
  zone?: string
  dc?: string
  url?: string
  startedAt: string
  lastHeartbeatAt: string
  metrics: { partitions?: ReportedPartition[] } | null
  load?: { partitions: number; bytesPerSec: number; recordsPerSec: number }
}

export interface Workers {
  workers: Instance[]
  controllers: Instance[]
}

export interface AssignedPartition {
  group: string
  topic: string
  partition: number
}

export interface Assignments {
  assignments: Record<string, { partitions: AssignedPartition[] }>
}

export interface FerryEvent {
  at: string
  type: string
  message: string
  controller: string
  group?: string
  worker?: string
  moves?: number
  code?: string
}

export interface Cluster {
  name: string
  securityProtocol?: string
  dc?: string
  zone?: string
}
