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
import { kafkajsReadClients } from '../common/kafka/kafkajs-clients.js'
import type { KafkaClientFactory } from '../common/kafka/port.js'
import { createTargetProducer } from './target-producer.js'
import { createTransactionalProducer } from './transactional-producer.js'

export const kafkajsClients: KafkaClientFactory = {
  ...kafkajsReadClients,
  targetProducer: createTargetProducer,
  transactionalProducer: createTransactionalProducer,
}
