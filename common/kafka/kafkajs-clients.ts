/**
 * The read half of the Kafka client Ferry runs on (the kafkajs fork, packages/kafkajs) behind the
 * port (common/kafka/port.ts): admin and source consumer, which the controller uses. The whole
 * factory, with the producers, is `kafkajsClients` in worker/kafka-clients.ts.
 *
 * @example
 *   const admins = createClusterAdmins(`ferry-controller-${id}`, logger, kafkajsReadClients)
 */
import { createRequire } from 'node:module'
import { createKafkaAdmin } from './admin.js'
import type { KafkaReadClients } from './port.js'
import { createSourceConsumer } from './source-consumer.js'

const kafkajsVersion = (createRequire(import.meta.url)('kafkajs/package.json') as { version: string }).version

export const kafkajsReadClients: KafkaReadClients = {
  name: `kafkajs ${kafkajsVersion}`,
  admin: createKafkaAdmin,
  sourceConsumer: createSourceConsumer,
}
