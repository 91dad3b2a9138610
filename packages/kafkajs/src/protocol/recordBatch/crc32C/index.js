const crc32C = require('./crc32C')
const unsigned = value => Uint32Array.from([value])[0]

// Ferry patch: CRC32C over every record batch produced is a hot spot in pure JS (~2.5 ms per
// MiB); use the native implementation from @node-rs/crc32 when it is installed (~50x faster).
let native
try {
  native = require('@node-rs/crc32').crc32c
} catch (e) {
  native = undefined
}

module.exports = native ? buffer => native(buffer) : buffer => unsigned(crc32C(buffer))
