/**
 * Starts a plain `node:http` server on host:port (0 = any free port) and gives back its base URL
 * and an idempotent close that also drops keep-alive connections. Shared by the small listeners
 * (worker metrics, bootstrap probes) that need no express.
 *
 * @example
 *   const listener = await listen(createServer(handler), '127.0.0.1', 0)
 *   await listener.close()
 */
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface HttpListener {
  /** `http://host:port`, without a path. */
  readonly baseUrl: string
  close(): Promise<void>
}

export async function listen(server: Server, host: string, port: number): Promise<HttpListener> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address
  let closing: Promise<void> | undefined
  return {
    baseUrl: `http://${shownHost}:${address.port}`,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      return closing
    },
  }
}
