/**
 * Bootstrap's probe listener: `GET /healthz` (liveness) and `GET /readyz` (readiness), JSON,
 * 200 or 503. Workers have no HTTP API of their own, so this is what Kubernetes probes and
 * load balancers ask.
 *
 * @example
 *   const health = await startHealthServer({ host: '0.0.0.0', port: 9090, logger, live, ready })
 *   await health.close()
 */
import { createServer } from 'node:http'
import type { Registry } from 'prom-client'
import { listen } from '../common/http-listener.js'
import { serveMetrics } from '../common/metrics-server.js'
import type { Logger } from '../common/logger.js'

export interface ProbeResult {
  ok: boolean
  details: Record<string, unknown>
}

export interface HealthServerOptions {
  host: string
  /** 0 picks a free port. */
  port: number
  logger: Logger
  live: () => ProbeResult
  ready: () => ProbeResult
  /** Served on GET /metrics (bootstrap's own metrics); 404 when absent. */
  registry?: Registry
}

export interface HealthServer {
  readonly url: string
  close(): Promise<void>
}

export async function startHealthServer(options: HealthServerOptions): Promise<HealthServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path === '/metrics' && req.method === 'GET' && options.registry) {
      serveMetrics(options.registry, options.logger, res)
      return
    }
    const probe = req.method === 'GET' || req.method === 'HEAD' ? (path === '/healthz' ? options.live : path === '/readyz' ? options.ready : undefined) : undefined
    if (probe === undefined) {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: `no route ${req.method ?? ''} ${path ?? ''}; try GET /healthz or /readyz` } }))
      return
    }
    const result = probe()
    res.writeHead(result.ok ? 200 : 503, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ status: result.ok ? 'ok' : 'unavailable', ...result.details }))
  })
  const listener = await listen(server, options.host, options.port)
  const url = listener.baseUrl
  options.logger.info({ event: 'bootstrap.health_listening', url }, 'probes on /healthz and /readyz')
  return { url, close: () => listener.close() }
}
