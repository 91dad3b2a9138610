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
