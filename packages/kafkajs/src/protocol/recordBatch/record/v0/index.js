const Encoder = require('../../../encoder')

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

/**
 * @param [offsetDelta=0] {Integer}
 * @param [timestampDelta=0] {Long}
 * @param key {Buffer}
 * @param value {Buffer}
 * @param [headers={}] {Object}
 */
/**
 * Ferry patch: a record's fields with its headers as a list and its sizes, so that a record batch
 * can be sized for its records and each record written straight into it (`writeRecord`), with no
 * encoder and buffer per record and per header, and no copy from them into the batch.
 */
const prepareRecord = ({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }) => {
  // Ferry patch: headers may also be an ordered list of { key, value } (value null allowed), so
  // repeated keys keep their order and null values are written as null.
  const headersArray = Array.isArray(headers)
    ? headers
    : Object.keys(headers).flatMap(headerKey =>
        !Array.isArray(headers[headerKey])
          ? [{ key: headerKey, value: headers[headerKey] }]
          : headers[headerKey].map(headerValue => ({ key: headerKey, value: headerValue }))
      )

  const sizeOfBody =
    1 + // always one byte for attributes
    Encoder.sizeOfVarLong(timestampDelta) +
    Encoder.sizeOfVarInt(offsetDelta) +
    Encoder.sizeOfVarIntBytes(key) +
    Encoder.sizeOfVarIntBytes(value) +
    sizeOfHeaders(headersArray)

  return {
    offsetDelta,
    timestampDelta,
    key,
    value,
    headersArray,
    sizeOfBody,
    size: Encoder.sizeOfVarInt(sizeOfBody) + sizeOfBody,
  }
}

/** Ferry patch: writes a prepared record into `encoder` (see prepareRecord). */
const writeRecord = (encoder, record) => {
  encoder
    .writeVarInt(record.sizeOfBody)
    .writeInt8(0) // no used record attributes at the moment
    .writeVarLong(record.timestampDelta)
    .writeVarInt(record.offsetDelta)
    .writeVarIntBytes(record.key)
    .writeVarIntBytes(record.value)
    .writeVarInt(record.headersArray.length)
  // Each header as Header (header/v0) encodes it, written in place.
  for (const header of record.headersArray) encoder.writeVarIntString(header.key).writeVarIntBytes(header.value)
  return encoder
}

module.exports = fields => {
  const record = prepareRecord(fields)
  // Ferry patch: size the buffer for the whole record, instead of 512 bytes grown and copied for
  // every record larger than that.
  return writeRecord(new Encoder(record.size), record)
}
module.exports.prepareRecord = prepareRecord
module.exports.writeRecord = writeRecord

const sizeOfHeaders = headersArray => {
  let size = Encoder.sizeOfVarInt(headersArray.length)

  for (const header of headersArray) {
    const keySize = Buffer.byteLength(header.key)

    size += Encoder.sizeOfVarInt(keySize) + keySize
    // Ferry patch: a null (or undefined) value is written as length -1; measuring it threw.
    size += Encoder.sizeOfVarIntBytes(header.value)
  }

  return size
}
