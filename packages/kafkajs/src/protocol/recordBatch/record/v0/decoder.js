const Long = require('../../../../utils/long')
const HeaderDecoder = require('../../header/v0/decoder')
const TimestampTypes = require('../../../timestampTypes')

/**
 * v0
 * Record =>
 *   Length => Varint
 *   Attributes => Int8
 *   TimestampDelta => Varlong
 *   OffsetDelta => Varint
 *   Key => varInt|Bytes
 *   Value => varInt|Bytes
 *   Headers => [HeaderKey HeaderValue]
 *     HeaderKey => VarInt|String
 *     HeaderValue => VarInt|Bytes
 */

module.exports = (decoder, batchContext = {}) => {
  const {
    firstOffset,
    firstTimestamp,
    magicByte,
    isControlBatch = false,
    timestampType,
    maxTimestamp,
  } = batchContext
  const attributes = decoder.readInt8()

  const timestampDelta = decoder.readVarLong()
  const timestamp =
    timestampType === TimestampTypes.LOG_APPEND_TIME && maxTimestamp
      ? maxTimestamp
      : Long.fromValue(firstTimestamp)
          .add(timestampDelta)
          .toString()

  const offsetDelta = decoder.readVarInt()
  const offset = Long.fromValue(firstOffset)
    .add(offsetDelta)
    .toString()

  const key = decoder.readVarIntBytes()
  const value = decoder.readVarIntBytes()
  // Ferry patch: headers are an ordered list in Kafka, with null values allowed. `headerList`
  // keeps them exactly ({ key, value } in wire order, value null when null); `headers` is
  // kafkajs' object view, built without re-spreading it for every header.
  const headerList = decoder.readVarIntArray(HeaderDecoder)
  const headers = {}
  for (const { key, value } of headerList) {
    const current = Object.prototype.hasOwnProperty.call(headers, key) ? headers[key] : undefined
    const next = current === undefined ? value : Array.isArray(current) ? current.concat([value]) : [current, value]
    if (key === '__proto__') {
      Object.defineProperty(headers, key, { value: next, enumerable: true, writable: true, configurable: true })
    } else {
      headers[key] = next
    }
  }

  return {
    magicByte,
    attributes, // Record level attributes are presently unused
    timestamp,
    offset,
    key,
    value,
    headers,
    headerList,
    isControlRecord: isControlBatch,
    batchContext,
  }
}
