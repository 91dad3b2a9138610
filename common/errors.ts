/**
 * One root error for Ferry. Every error carries a stable `code`, whether a retry may help
 * (`retriable`), the `cause`, and context (group, topic, partition, worker, cluster).
 *
 * @example
 *   throw new FerryError('GROUP_EXISTS', `topic group "${name}" already exists`, { context: { group: name } })
 */
export type ErrorCode =
  | 'INVALID_INPUT'
  | 'INVALID_CONFIG'
  | 'UNAUTHORIZED'
  | 'FORBIDDEN'
  | 'PAYLOAD_TOO_LARGE'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'NOT_FOUND'
  | 'CLUSTER_NOT_FOUND'
  | 'GROUP_NOT_FOUND'
  | 'GROUP_EXISTS'
  | 'CLUSTER_EXISTS'
  | 'CLUSTER_IN_USE'
  | 'CONFLICT'
  | 'NOT_LEADER'
  | 'UNAVAILABLE'
  | 'ZOOKEEPER_ERROR'
  | 'REDIS_ERROR'
  | 'KAFKA_ERROR'
  | 'KAFKA_AUTH_FAILED'
  | 'KAFKA_TLS_FAILED'
  | 'KAFKA_UNREACHABLE'
  | 'TOPIC_NOT_FOUND'
  | 'TARGET_REJECTED'
  | 'NOT_ACKNOWLEDGED'
  | 'SECRET_UNREADABLE'
  | 'LEASE_LOST'
  | 'FENCED'
  | 'INTERNAL'

export interface ErrorContext {
  group?: string
  cluster?: string
  topic?: string
  partition?: number
  worker?: string
  field?: string
  [key: string]: unknown
}

export interface FerryErrorOptions {
  retriable?: boolean
  cause?: unknown
  context?: ErrorContext
  /** Structured details for API clients, e.g. the list of validation problems. */
  details?: unknown
}

export class FerryError extends Error {
  readonly code: ErrorCode
  readonly retriable: boolean
  readonly context: ErrorContext
  readonly details: unknown

  constructor(code: ErrorCode, message: string, options: FerryErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'FerryError'
    this.code = code
    this.retriable = options.retriable ?? false
    this.context = options.context ?? {}
    this.details = options.details
  }
}

/** HTTP status for each error code; anything unlisted is a 500. */
export const HTTP_STATUS_BY_CODE: Readonly<Partial<Record<ErrorCode, number>>> = Object.freeze({
  INVALID_INPUT: 400,
  INVALID_CONFIG: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  NOT_FOUND: 404,
  CLUSTER_NOT_FOUND: 404,
  GROUP_NOT_FOUND: 404,
  GROUP_EXISTS: 409,
  CLUSTER_EXISTS: 409,
  CLUSTER_IN_USE: 409,
  CONFLICT: 409,
  NOT_LEADER: 503,
  UNAVAILABLE: 503,
  ZOOKEEPER_ERROR: 503,
  REDIS_ERROR: 503,
})

/** Bugs in our own code: never retried (kafkajs does the same in its retrier). */
export function isProgrammerError(error: unknown): boolean {
  return (
    error instanceof TypeError ||
    error instanceof RangeError ||
    error instanceof ReferenceError ||
    error instanceof SyntaxError
  )
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}

/** fetch() says only "fetch failed"; its cause says why (ECONNREFUSED, ENOTFOUND, ...). */
export function describeFetchError(error: unknown): string {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? errorMessage(error)
}
