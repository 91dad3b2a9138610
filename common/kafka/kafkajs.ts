/**
 * kafkajs is CommonJS: Node's ESM loader cannot see all of its named exports, so its runtime
 * values are taken from the default export here, once. Types come from 'kafkajs' directly.
 */
import kafkajs from 'kafkajs'

export const { Kafka, logLevel, AssignerProtocol, ConfigResourceTypes, Partitioners } = kafkajs
