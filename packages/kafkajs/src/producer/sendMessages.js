const { KafkaJSMetadataNotLoaded, KafkaJSNonRetriableError } = require('../errors')
const { staleMetadata } = require('../protocol/error')
const groupMessagesPerPartition = require('./groupMessagesPerPartition')
const createTopicData = require('./createTopicData')
const responseSerializer = require('./responseSerializer')

const { keys } = Object

/**
 * Ferry patch: what the broker did with a partition's records in a produce request that failed:
 * 'written' (answered without an error for this partition while another partition failed),
 * 'refused' (answered with an error for it) or 'unknown' (no answer).
 *
 * @param {Error & { partitionResponses?: Array<{ topicName: string, partitions: Array<{ partition: number, errorCode: number }> }> }} error
 * @param {string} topic
 * @param {number} partition
 */
const outcomeOf = (error, topic, partition) => {
  const topicResponse = (error.partitionResponses || []).find(t => t.topicName === topic)
  const answer = topicResponse && topicResponse.partitions.find(p => p.partition === partition)
  if (!answer) return 'unknown'
  return answer.errorCode === 0 ? 'written' : 'refused'
}

/**
 * @param {Object} options
 * @param {import("../../types").Logger} options.logger
 * @param {import("../../types").Cluster} options.cluster
 * @param {ReturnType<import("../../types").ICustomPartitioner>} options.partitioner
 * @param {import("./eosManager").EosManager} options.eosManager
 * @param {import("../retry").Retrier} options.retrier
 */
module.exports = ({ logger, cluster, partitioner, eosManager, retrier }) => {
  return async ({ acks, timeout, compression, topicMessages }) => {
    /** @type {Map<import("../../types").Broker, any[]>} */
    const responsePerBroker = new Map()

    /**
     * Ferry patch: the partitions of failed produce requests, by what the broker did with them
     * (see `outcomeOf`). A failed request's sequences are rolled back so that a retry sends the
     * same sequence numbers (the broker answers a repeat of what it wrote as a duplicate). When the
     * send gives up, partitions the broker wrote get their sequences back, and partitions it may
     * have written are marked unknown: with the sequences rolled back, the producer's next records
     * to them were taken for duplicates of the written ones (acknowledged, never written, and a
     * transaction holding them committed without them) or refused as out of order.
     *
     * @type {Map<string, { topic: string, partition: number, count: number, outcome: string }>}
     */
    const failedPartitions = new Map()
    const settleFailedPartitions = () => {
      for (const { topic, partition, count, outcome } of failedPartitions.values()) {
        if (outcome === 'written') eosManager.updateSequence(topic, partition, count)
        if (outcome === 'unknown') eosManager.markSequenceUnknown(topic, partition)
      }
      failedPartitions.clear()
    }

    /** @param {Map<import("../../types").Broker, any[]>} responsePerBroker */
    const createProducerRequests = async responsePerBroker => {
      const topicMetadata = new Map()

      await cluster.refreshMetadataIfNecessary()

      for (const { topic, messages } of topicMessages) {
        const partitionMetadata = cluster.findTopicPartitionMetadata(topic)

        if (partitionMetadata.length === 0) {
          logger.debug('Producing to topic without metadata', {
            topic,
            targetTopics: Array.from(cluster.targetTopics),
          })

          throw new KafkaJSMetadataNotLoaded('Producing to topic without metadata')
        }

        const messagesPerPartition = groupMessagesPerPartition({
          topic,
          partitionMetadata,
          messages,
          partitioner,
        })

        const partitions = keys(messagesPerPartition)
        // Ferry patch: a partition missing from our metadata (the topic gained partitions since it
        // was read) had no leader, and its messages were silently left out of the request while
        // the send resolved. Refresh the metadata and retry instead (KafkaJSMetadataNotLoaded is
        // retried below after a refresh); the send fails if it never appears.
        const known = new Set(partitionMetadata.map(p => p.partitionId))
        const unknown = partitions.filter(p => !known.has(parseInt(p, 10)))
        if (unknown.length > 0) {
          throw new KafkaJSMetadataNotLoaded(
            `Producing to partition(s) ${unknown.join(', ')} of topic "${topic}" not in the metadata`
          )
        }
        const partitionsPerLeader = cluster.findLeaderForPartitions(topic, partitions)
        const leaders = keys(partitionsPerLeader)

        topicMetadata.set(topic, {
          partitionsPerLeader,
          messagesPerPartition,
        })

        for (const nodeId of leaders) {
          const broker = await cluster.findBroker({ nodeId })
          if (!responsePerBroker.has(broker)) {
            responsePerBroker.set(broker, null)
          }
        }
      }

      const brokers = Array.from(responsePerBroker.keys())
      const brokersWithoutResponse = brokers.filter(broker => !responsePerBroker.get(broker))

      return brokersWithoutResponse.map(async broker => {
        const entries = Array.from(topicMetadata.entries())
        const topicDataForBroker = entries
          .filter(([_, { partitionsPerLeader }]) => !!partitionsPerLeader[broker.nodeId])
          .map(([topic, { partitionsPerLeader, messagesPerPartition, sequencePerPartition }]) => ({
            topic,
            partitions: partitionsPerLeader[broker.nodeId],
            messagesPerPartition,
          }))

        const topicData = createTopicData(topicDataForBroker)

        await eosManager.acquireBrokerLock(broker)
        try {
          // Ferry patch: see `failedPartitions`.
          for (const { topic, partitions } of topicData) {
            for (const entry of partitions) {
              if (eosManager.isSequenceUnknown(topic, entry.partition)) {
                throw new KafkaJSNonRetriableError(
                  `The broker may have written an earlier request to partition ${entry.partition} of topic "${topic}" that the producer gave up on; its sequence numbers are unknown: initialize a new producer id`
                )
              }
            }
          }

          if (eosManager.isTransactional()) {
            await eosManager.addPartitionsToTransaction(topicData)
          }

          topicData.forEach(({ topic, partitions }) => {
            partitions.forEach(entry => {
              entry['firstSequence'] = eosManager.getSequence(topic, entry.partition)
              eosManager.updateSequence(topic, entry.partition, entry.messages.length)
            })
          })

          let response
          try {
            response = await broker.produce({
              transactionalId: eosManager.isTransactional()
                ? eosManager.getTransactionalId()
                : undefined,
              producerId: eosManager.getProducerId(),
              producerEpoch: eosManager.getProducerEpoch(),
              acks,
              timeout,
              compression,
              topicData,
            })
          } catch (e) {
            topicData.forEach(({ topic, partitions }) => {
              partitions.forEach(entry => {
                eosManager.updateSequence(topic, entry.partition, -entry.messages.length)
                // Ferry patch: see `failedPartitions`.
                failedPartitions.set(`${topic}\u0000${entry.partition}`, {
                  topic,
                  partition: entry.partition,
                  count: entry.messages.length,
                  outcome: outcomeOf(e, topic, entry.partition),
                })
              })
            })
            throw e
          }
          // Ferry patch: a retry the broker answered; its sequences stay where they are.
          topicData.forEach(({ topic, partitions }) => {
            partitions.forEach(entry => failedPartitions.delete(`${topic}\u0000${entry.partition}`))
          })

          const expectResponse = acks !== 0
          const formattedResponse = expectResponse ? responseSerializer(response) : []

          responsePerBroker.set(broker, formattedResponse)
        } catch (e) {
          responsePerBroker.delete(broker)
          throw e
        } finally {
          await eosManager.releaseBrokerLock(broker)
        }
      })
    }

    // Ferry patch: see `failedPartitions`.
    const settled = e => {
      settleFailedPartitions()
      throw e
    }

    return retrier(async (bail, retryCount, retryTime) => {
      const topics = topicMessages.map(({ topic }) => topic)
      await cluster.addMultipleTargetTopics(topics)

      try {
        const requests = await createProducerRequests(responsePerBroker)
        // Ferry patch: wait for every broker's request before retrying or giving up, so that what
        // each did with its partitions is known (see `failedPartitions`).
        const results = await Promise.allSettled(requests)
        const failure = results.find(result => result.status === 'rejected')
        if (failure) throw failure.reason
        return Array.from(responsePerBroker.values()).flat()
      } catch (e) {
        if (e.name === 'KafkaJSConnectionClosedError') {
          cluster.removeBroker({ host: e.host, port: e.port })
        }

        if (!cluster.isConnected()) {
          logger.debug(`Cluster has disconnected, reconnecting: ${e.message}`, {
            retryCount,
            retryTime,
          })
          await cluster.connect()
          await cluster.refreshMetadata()
          throw e
        }

        // This is necessary in case the metadata is stale and the number of partitions
        // for this topic has increased in the meantime
        if (
          staleMetadata(e) ||
          e.name === 'KafkaJSMetadataNotLoaded' ||
          e.name === 'KafkaJSConnectionError' ||
          e.name === 'KafkaJSConnectionClosedError' ||
          (e.name === 'KafkaJSProtocolError' && e.retriable)
        ) {
          logger.error(`Failed to send messages: ${e.message}`, { retryCount, retryTime })
          await cluster.refreshMetadata()
          throw e
        }

        logger.error(`${e.message}`, { retryCount, retryTime })
        if (e.retriable) throw e
        bail(e)
      }
    }).catch(settled)
  }
}
