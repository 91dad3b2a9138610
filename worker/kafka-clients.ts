/**
 * The Kafka client Ferry runs on: the kafkajs fork (packages/kafkajs) behind the port
 * (common/kafka/port.ts). This is where the implementations are chosen; the worker takes its
 * clients from here, and test/contract/ holds this factory (and any other) to the port's
 * guarantees. To try another client, build a `KafkaClientFactory` for it and run the contract
 * suite against it (test/contract/contract.ts).
 *
 * @example
 *   const producer = await kafkajsClients.targetProducer(cluster, { clientId, logger })
 */
import { createRequire } from 'node:module'
import { createKafkaAdmin } from '../common/kafka/admin.js'
import type { KafkaClientFactory } from '../common/kafka/port.js'
import { createSourceConsumer } from '../common/kafka/source-consumer.js'
import { createTargetProducer } from './target-producer.js'
import { createTransactionalProducer } from './transactional-producer.js'

const kafkajsVersion = (createRequire(import.meta.url)('kafkajs/package.json') as { version: string }).version

export const kafkajsClients: KafkaClientFactory = {
  name: `kafkajs ${kafkajsVersion}`,
  admin: createKafkaAdmin,
  sourceConsumer: createSourceConsumer,
  targetProducer: createTargetProducer,
  transactionalProducer: createTransactionalProducer,
}
