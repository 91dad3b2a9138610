/** A kafkajs socket factory that loses the broker's answers on demand (fault injection for producer tests). */
import net from 'node:net'
import tls from 'node:tls'
import type { ISocketFactory } from 'kafkajs'

/**
 * Opens real connections, and can stop delivering what the broker sends back on them: requests
 * still reach the broker and are written, their answers never come (until healed).
 */
export class AnswerDropper {
  private readonly sockets = new Set<net.Socket>()
  private dropping = false

  readonly factory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
    const socket = ssl ? tls.connect({ host, port, ...ssl }, onConnect) : net.connect({ host, port }, onConnect)
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
    // Explicitly paused, a socket stays paused when the client then listens for data.
    if (this.dropping) socket.pause()
    return socket
  }

  drop(): void {
    this.dropping = true
    for (const socket of this.sockets) socket.pause()
  }

  heal(): void {
    this.dropping = false
    for (const socket of this.sockets) socket.resume()
  }

  /** Connections not yet closed. */
  get open(): number {
    return [...this.sockets].filter((s) => !s.destroyed).length
  }
}
