/**
 * kafkajs is CommonJS: Node's ESM loader cannot see all of its named exports, so its runtime
 * values are taken from the default export here, once. Types come from 'kafkajs' directly.
 */
import kafkajs from 'kafkajs'
// Registers snappy, lz4 and zstd with kafkajs before any client exists.
import './codecs.js'

export const { Kafka, logLevel, AssignerProtocol, ConfigResourceTypes, Partitioners } = kafkajs

/**
 * kafkajs keeps per-topic state in plain objects (`obj[topic] || []`, `{ [topic]: ... }` in its
 * cluster metadata, consumer offsets, subscriptions, producer sequences), so a topic named like a
 * member of Object.prototype (`constructor`, `toString`, `hasOwnProperty`, `__proto__`, ...)
 * breaks every client that touches it, and with it every other topic of that client. Ferry keeps
 * such topics out of its consumers and producers (the topic is reported failed, the others go
 * on) until the client is replaced or patched throughout.
 */
export function unsupportedTopicName(topic: string): boolean {
  return topic in Object.prototype
}
