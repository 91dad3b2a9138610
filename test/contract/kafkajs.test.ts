/** The Kafka port's contract (contract.ts) held against the client Ferry runs on: the kafkajs fork. */
import { kafkajsClients } from '../../worker/kafka-clients.js'
import { createTargetProducer } from '../../worker/target-producer.js'
import { AnswerDropper } from '../integration/answer-dropper.js'
import { describeKafkaContract } from './contract.js'
import { kafkajsFixtures } from './fixtures.js'

describeKafkaContract({
  clients: kafkajsClients,
  fixtures: kafkajsFixtures,
  async producerWithLostAnswers(cluster, options) {
    const network = new AnswerDropper()
    const producer = await createTargetProducer(cluster, { ...options, lanes: 1, retries: 1, socketFactory: network.factory })
    return { producer, drop: () => network.drop(), heal: () => network.heal() }
  },
})
