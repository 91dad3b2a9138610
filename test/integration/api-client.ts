/**
 * Test helpers for the REST API tests: a `ferry controller` process and its URL, and a request
 * helper that sends headers and raw bodies (the harness's `http` sends JSON only).
 */
import http from 'node:http'
import { waitFor, FerryProcess } from './harness.js'

export interface ApiResult {
  status: number
  headers: Headers
  body: any // eslint-disable-line @typescript-eslint/no-explicit-any
  text: string
}

export async function request(method: string, url: string, options: { token?: string; json?: unknown; raw?: string | Uint8Array; contentType?: string; headers?: Record<string, string> } = {}): Promise<ApiResult> {
  const headers: Record<string, string> = { ...options.headers }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  let body: string | Uint8Array | undefined
  if (options.json !== undefined) {
    body = JSON.stringify(options.json)
    headers['content-type'] = options.contentType ?? 'application/json'
  } else if (options.raw !== undefined) {
    body = options.raw
    if (options.contentType !== undefined) headers['content-type'] = options.contentType
  }
  const response = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) })
  const text = await response.text()
  let parsed: unknown
  try {
    parsed = text.length > 0 ? JSON.parse(text) : undefined
  } catch {
    parsed = undefined
  }
  return { status: response.status, headers: response.headers, body: parsed, text }
}

/**
 * A bodiless request with the path sent exactly as given: fetch resolves `..` and `%2e%2e`
 * segments before sending, which would hide what a hostile client can send.
 */
export function rawPathRequest(method: string, baseUrl: string, rawPath: string): Promise<ApiResult> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${baseUrl}/`, { method, path: rawPath }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => {
        let body: unknown
        try {
          body = text.length > 0 ? JSON.parse(text) : undefined
        } catch {
          body = undefined
        }
        const headers = new Headers()
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v)
        resolve({ status: res.statusCode ?? 0, headers, body, text })
      })
    })
    req.on('error', reject)
    req.end()
  })
}

/** Starts `ferry controller` on a free port and waits for the URL it prints. */
export async function startController(name: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<{ proc: FerryProcess; url: string }> {
  const proc = new FerryProcess(name, ['controller', '--port', '0', ...args], env)
  const url = await waitFor(`${name} to listen`, () => {
    if (proc.child.exitCode !== null) throw new Error(`${name} exited with ${proc.child.exitCode}: ${proc.log().slice(-2000)}`)
    const line = proc.log().split('\n').find((l) => l.includes('"controller.listening"'))
    return line === undefined ? undefined : (JSON.parse(line) as { url: string }).url
  }, 60000)
  return { proc, url }
}
