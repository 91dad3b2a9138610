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

/** Longest a refused connection is drained before it is dropped. */
const CLIENT_ERROR_DRAIN_MS = 5000

/**
 * Answer requests Node's parser refuses with a JSON error instead of a reset: 431 for headers
 * over `maxHeaderSize` (16 KiB), 400 for anything else malformed. The rest of what the client
 * sends is read and discarded until it is done (or for 5 s): closing with unread data makes
 * the kernel send a reset, and the client would never see the answer.
 */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (error: Error & { code?: string }, socket) => {
    if (!socket.writable) {
      socket.destroy()
      return
    }
    const tooLarge = error.code === 'HPE_HEADER_OVERFLOW'
    const body = JSON.stringify({
      error: tooLarge
        ? { code: 'REQUEST_HEADER_FIELDS_TOO_LARGE', message: 'request headers are larger than 16 KiB', details: [{ field: '(headers)', message: 'are larger than 16 KiB' }] }
        : { code: 'INVALID_INPUT', message: 'malformed HTTP request', details: [{ field: '(request)', message: 'is not valid HTTP/1.1' }] },
    })
    const status = tooLarge ? '431 Request Header Fields Too Large' : '400 Bad Request'
    socket.end(`HTTP/1.1 ${status}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
    socket.on('data', () => undefined)
    socket.resume()
    setTimeout(() => socket.destroy(), CLIENT_ERROR_DRAIN_MS).unref()
  })
}
