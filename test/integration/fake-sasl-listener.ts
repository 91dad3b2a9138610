/**
 * A TCP listener that speaks just enough of the Kafka protocol to make a client authenticate
 * with SASL: it answers ApiVersions and SaslHandshake, never SaslAuthenticate, and records every
 * byte it receives. An attacker's listener in miniature: tests look for secrets in `received()`.
 */
import net from 'node:net'

const API_VERSIONS = 18
const SASL_HANDSHAKE = 17
const SASL_AUTHENTICATE = 36

export interface FakeSaslListener {
  /** host:port to register as bootstrapServers. */
  readonly address: string
  /** Every byte received so far, all connections concatenated. */
  received(): Buffer
  connections(): number
  close(): Promise<void>
}

function response(correlationId: number, body: Buffer): Buffer {
  const header = Buffer.alloc(8)
  header.writeInt32BE(4 + body.length, 0)
  header.writeInt32BE(correlationId, 4)
  return Buffer.concat([header, body])
}

function apiVersionsBody(version: number): Buffer {
  const apis: [number, number, number][] = [
    [API_VERSIONS, 0, 2],
    [SASL_HANDSHAKE, 0, 1],
    [SASL_AUTHENTICATE, 0, 1],
    [3, 0, 5], // Metadata, so the client thinks it talks to a broker
  ]
  const body = Buffer.alloc(2 + 4 + apis.length * 6 + (version >= 1 ? 4 : 0))
  let at = body.writeInt16BE(0, 0)
  at = body.writeInt32BE(apis.length, at)
  for (const [key, min, max] of apis) {
    at = body.writeInt16BE(key, at)
    at = body.writeInt16BE(min, at)
    at = body.writeInt16BE(max, at)
  }
  if (version >= 1) body.writeInt32BE(0, at)
  return body
}

function handshakeBody(): Buffer {
  const mechanisms = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512']
  const parts = [Buffer.from([0, 0]), Buffer.alloc(4)]
  parts[1]?.writeInt32BE(mechanisms.length, 0)
  for (const mechanism of mechanisms) {
    const length = Buffer.alloc(2)
    length.writeInt16BE(mechanism.length, 0)
    parts.push(length, Buffer.from(mechanism, 'utf8'))
  }
  return Buffer.concat(parts)
}

export async function startFakeSaslListener(): Promise<FakeSaslListener> {
  const chunks: Buffer[] = []
  const sockets = new Set<net.Socket>()
  let connections = 0
  const server = net.createServer((socket) => {
    connections++
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
    socket.on('error', () => undefined)
    let pending = Buffer.alloc(0)
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      pending = Buffer.concat([pending, chunk])
      while (pending.length >= 4) {
        const size = pending.readInt32BE(0)
        if (size < 8 || pending.length < 4 + size) break
        const frame = pending.subarray(4, 4 + size)
        pending = pending.subarray(4 + size)
        const apiKey = frame.readInt16BE(0)
        const apiVersion = frame.readInt16BE(2)
        const correlationId = frame.readInt32BE(4)
        if (apiKey === API_VERSIONS) socket.write(response(correlationId, apiVersionsBody(apiVersion)))
        else if (apiKey === SASL_HANDSHAKE) socket.write(response(correlationId, handshakeBody()))
        // SaslAuthenticate and anything else: recorded, never answered.
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as net.AddressInfo).port
  return {
    address: `127.0.0.1:${port}`,
    received: () => Buffer.concat(chunks),
    connections: () => connections,
    async close() {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    },
  }
}
