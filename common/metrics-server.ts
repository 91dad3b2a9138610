/**
 * A bare Prometheus listener (`GET /metrics`) for processes without an HTTP API of their own:
 * workers (`--metrics-port`). The controller serves /metrics on its REST port instead.
 *
 * @example
 *   const server = await startMetricsServer({ host: '0.0.0.0', port: 9400, registry, logger })
 *   await server.close()
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'
import { errorMessage } from './errors.js'
import type { Logger } from './logger.js'

export interface MetricsServer {
  readonly url: string
  close(): Promise<void>
}

export async function startMetricsServer(options: { host: string; port: number; registry: Registry; logger: Logger; event?: string }): Promise<MetricsServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if ((req.method !== 'GET' && req.method !== 'HEAD') || path !== '/metrics') {
      res.writeHead(404, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ error: { code: 'NOT_FOUND', message: 'only GET /metrics is served here' } }))
      return
    }
    options.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': options.registry.contentType })
        res.end(text)
      },
      (error: unknown) => {
        options.logger.error({ event: 'metrics.collect_failed', err: errorMessage(error) }, 'collecting metrics failed')
        res.writeHead(500, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ error: { code: 'INTERNAL', message: 'collecting metrics failed' } }))
      },
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  const url = `http://${host}:${address.port}/metrics`
  options.logger.info({ event: options.event ?? 'metrics.listening', url }, 'Prometheus metrics listener')
  let closing: Promise<void> | undefined
  return {
    url,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    },
  }
}
