const Encoder = require('../../../encoder')
const Header = require('../../header/v0')

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
module.exports = ({ offsetDelta = 0, timestampDelta = 0, key, value, headers = {} }) => {
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

  // Ferry patch: size the buffer for the whole record (body + at most 5 bytes of length), instead
  // of 512 bytes grown and copied for every record larger than that.
  return new Encoder(sizeOfBody + 5)
    .writeVarInt(sizeOfBody)
    .writeInt8(0) // no used record attributes at the moment
    .writeVarLong(timestampDelta)
    .writeVarInt(offsetDelta)
    .writeVarIntBytes(key)
    .writeVarIntBytes(value)
    .writeVarIntArray(headersArray.map(Header))
}

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
