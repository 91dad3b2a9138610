/**
 * The CLI's REST client for a controller: `--controller URL` (or FERRY_CONTROLLER, default
 * http://127.0.0.1:8080) and `--token T` (or FERRY_TOKEN), sent as `Authorization: Bearer`.
 * Every failure becomes a {@link CliError} whose message says what to do about it.
 *
 * @example
 *   const api = createApiClient({ controller: 'http://127.0.0.1:8080', token: process.env.FERRY_TOKEN })
 *   const { groups } = await api.get<{ groups: unknown[] }>('/v1/groups')
 */
import { describeFetchError } from '../common/errors.js'

export const DEFAULT_CONTROLLER = 'http://127.0.0.1:8080'

/** A failure the CLI reports on one line and exits with `exitCode` (1 unless a usage error: 2). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = 1,
    /** The API's error code, when the controller answered with one. */
    readonly code?: string,
  ) {
    super(message)
    this.name = 'CliError'
  }
}

export interface ApiClient {
  readonly controller: string
  get<T>(path: string): Promise<T>
  send<T>(method: 'POST' | 'DELETE' | 'PUT', path: string, body?: unknown): Promise<T>
}

export interface ApiClientOptions {
  controller?: string | undefined
  token?: string | undefined
  /** Per request; default 30000 ms. */
  timeoutMs?: number
}

export function createApiClient(options: ApiClientOptions): ApiClient {
  const controller = (options.controller ?? process.env.FERRY_CONTROLLER ?? DEFAULT_CONTROLLER).replace(/\/+$/, '')
  try {
    const url = new URL(controller)
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http')
  } catch {
    throw new CliError(`--controller must be an http(s) URL such as ${DEFAULT_CONTROLLER}, got "${controller}"`, 2)
  }
  const token = options.token ?? process.env.FERRY_TOKEN
  const timeoutMs = options.timeoutMs ?? 30000

  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (body !== undefined) headers['content-type'] = 'application/json'
    if (token) headers.authorization = `Bearer ${token}`
    let response: Response
    try {
      response = await fetch(`${controller}${path}`, { method, headers, signal: AbortSignal.timeout(timeoutMs), ...(body === undefined ? {} : { body: JSON.stringify(body) }) })
    } catch (error) {
      throw new CliError(`cannot reach the controller at ${controller} (${describeFetchError(error)}); pass --controller URL or set FERRY_CONTROLLER`)
    }
    const text = await response.text()
    let parsed: unknown
    try {
      parsed = text.length > 0 ? JSON.parse(text) : undefined
    } catch {
      parsed = undefined
    }
    if (response.ok) return parsed as T
    const error = (parsed as { error?: { code?: string; message?: string; details?: unknown } } | undefined)?.error
    const code = error?.code ?? `HTTP_${response.status}`
    const message = error?.message ?? (text.trim() || response.statusText)
    if (response.status === 401) {
      throw new CliError(`${code}: the controller requires a valid token (${message}); pass --token T or set FERRY_TOKEN`, 1, code)
    }
    if (response.status === 403) {
      throw new CliError(`${code}: this token may not ${method} ${path} (${message}); a read-only token cannot change anything`, 1, code)
    }
    // Validation messages already name every field; details add nothing for a person.
    throw new CliError(`${code} (${response.status}): ${message}`, 1, code)
  }

  return {
    controller,
    get: (path) => call('GET', path),
    send: (method, path, body) => call(method, path, body),
  }
}
