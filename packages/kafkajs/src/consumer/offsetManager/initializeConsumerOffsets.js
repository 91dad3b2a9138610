const isInvalidOffset = require('./isInvalidOffset')
const { keys, assign } = Object

const indexPartitions = (obj, { partition, offset }) => assign(obj, { [partition]: offset })
const indexTopics = (obj, { topic, partitions }) =>
  assign(obj, { [topic]: partitions.reduce(indexPartitions, {}) })

module.exports = (consumerOffsets, topicOffsets) => {
  // Ferry patch: keyed by topic, so no prototype (a topic may be named `constructor` or `__proto__`).
  const indexedConsumerOffsets = consumerOffsets.reduce(indexTopics, Object.create(null))
  const indexedTopicOffsets = topicOffsets.reduce(indexTopics, Object.create(null))

  return keys(indexedConsumerOffsets).map(topic => {
    const partitions = indexedConsumerOffsets[topic]
    return {
      topic,
      partitions: keys(partitions).map(partition => {
        const offset = partitions[partition]
        const resolvedOffset = isInvalidOffset(offset)
          ? indexedTopicOffsets[topic][partition]
          : offset

        return { partition: Number(partition), offset: resolvedOffset }
      }),
    }
  })
}
