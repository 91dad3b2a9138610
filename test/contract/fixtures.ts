/**
 * States the contract needs that the port never creates (an open transaction, a live group
 * member), set up with kafkajs directly. They are test data, not the client under test: a
 * contract run of another client keeps using these.
 */
import { Kafka, logLevel } from '../../common/kafka/kafkajs.js'
import { uniqueName, waitFor } from '../integration/harness.js'
import type { ContractFixtures } from './contract.js'

export const kafkajsFixtures: ContractFixtures = {
  async openTransaction(brokers, records) {
    const producer = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING }).producer({ transactionalId: uniqueName('contract-open-txn'), idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const txn = await producer.transaction()
    for (const r of records) await txn.send({ topic: r.topic, messages: [{ key: r.key, value: r.value, ...(r.partition === undefined ? {} : { partition: r.partition }) }] })
    return {
      async abort() {
        await txn.abort()
        await producer.disconnect()
      },
    }
  },
  async joinGroup(brokers, group, topic) {
    const consumer = new Kafka({ brokers: [brokers], logLevel: logLevel.NOTHING }).consumer({ groupId: group })
    let joined = false
    consumer.on(consumer.events.GROUP_JOIN, () => {
      joined = true
    })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic] })
    await consumer.run({ autoCommit: false, eachMessage: async () => undefined })
    await waitFor(`a member in group ${group}`, () => joined, 30000, 50)
    return { leave: () => consumer.disconnect() }
  },
}
