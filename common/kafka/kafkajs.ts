/**
 * kafkajs is CommonJS: Node's ESM loader cannot see all of its named exports, so its runtime
 * values are taken from the default export here, once. Types come from 'kafkajs' directly.
 */
import kafkajs from 'kafkajs'
// Registers snappy, lz4 and zstd with kafkajs before any client exists.
import './codecs.js'

export const { Kafka, logLevel, AssignerProtocol, ConfigResourceTypes, Partitioners, AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } = kafkajs
