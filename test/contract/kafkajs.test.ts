/** The Kafka port's contract (contract.ts) held against the client Ferry runs on: the kafkajs fork. */
import { kafkajsClients } from '../../worker/kafka-clients.js'
import { createTargetProducer } from '../../worker/target-producer.js'
import { AnswerDropper } from '../integration/answer-dropper.js'
import { describeKafkaContract } from './contract.js'
import { kafkajsFixtures } from './fixtures.js'

describeKafkaContract({
  clients: kafkajsClients,
  fixtures: kafkajsFixtures,
  knownViolations: new Map([
    [
      'G-ATOMIC-AFTER-FAILURE',
      // packages/kafkajs/src/producer/sendMessages.js: when the broker answers a produce request with an error for one
      // partition, the sequences of every partition of the request are rolled back, those the broker wrote included.
      // The transactional producer (unlike the target producer's lanes) is kept after a failed transaction, so its
      // next records to such a partition are refused (OUT_OF_ORDER_SEQUENCE_NUMBER) or, as many as the aborted ones,
      // acknowledged as duplicates and never written while the transaction commits.
      'kafkajs rolls back the sequences of partitions the broker wrote when another partition of the request is refused',
    ],
  ]),
  async producerWithLostAnswers(cluster, options) {
    const network = new AnswerDropper()
    const producer = await createTargetProducer(cluster, { ...options, lanes: 1, retries: 1, socketFactory: network.factory })
    return { producer, drop: () => network.drop(), heal: () => network.heal() }
  },
})
