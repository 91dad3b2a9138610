/**
 * A bare Prometheus listener (`GET /metrics`) for processes without an HTTP API of their own:
 * workers (`--metrics-port`). The controller serves /metrics on its REST port instead.
 *
 * @example
 *   const server = await startMetricsServer({ host: '0.0.0.0', port: 9400, registry, logger })
 *   await server.close()
 */
import { createServer, type ServerResponse } from 'node:http'
import { listen } from './http-listener.js'
import type { Registry } from 'prom-client'
import { errorMessage } from './errors.js'
import type { Logger } from './logger.js'

export interface MetricsServer {
  readonly url: string
  close(): Promise<void>
}

/** Answers a GET /metrics with the registry's exposition (500, logged, when collecting fails). */
export function serveMetrics(registry: Registry, logger: Logger, res: ServerResponse): void {
  registry.metrics().then(
    (text) => {
      res.writeHead(200, { 'content-type': registry.contentType })
      res.end(text)
    },
    (error: unknown) => {
      logger.error({ event: 'metrics.collect_failed', err: errorMessage(error) }, 'collecting metrics failed')
      res.writeHead(500, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { code: 'INTERNAL', message: 'collecting metrics failed' } }))
    },
  )
}

export async function startMetricsServer(options: { host: string; port: number; registry: Registry; logger: Logger; event?: string }): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if ((req.method !== 'GET' && req.method !== 'HEAD') || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'only GET /metrics is served here' } }))
      return
    }
    serveMetrics(options.registry, options.logger, res)
  })
  const listener = await listen(server, options.host, options.port)
  const url = `${listener.baseUrl}/metrics`
  options.logger.info({ event: options.event ?? 'metrics.listening', url }, 'Prometheus metrics listener')
  return { url, close: () => listener.close() }
}
