/**
 * Compression codecs for kafkajs, which has only gzip built in: a mirror must read every codec
 * its sources use (a batch in a missing codec crashes the consumer), and may write the target
 * in any codec it can encode. Registered once, on import of the client boundary.
 *
 *   codec   read                       write
 *   gzip    kafkajs (zlib)             kafkajs (zlib)
 *   snappy  `snappy` (native), raw or xerial-framed (Java producers frame)   raw block
 *   lz4     `lz4-napi` (native), LZ4 frame format                            LZ4 frame
 *   zstd    `fzstd` (pure JS)          not available: no encoder for Node 20 from the registry
 */
import kafkajs from 'kafkajs'
import { decompressFrameSync, compressFrameSync } from 'lz4-napi'
import snappy from 'snappy'
import { decompress as zstdDecompress } from 'fzstd'
import type { TargetCompression } from '../config.js'


interface Encoder {
  buffer: Buffer
}

interface Codec {
  compress(encoder: Encoder): Promise<Buffer>
  decompress(buffer: Buffer): Promise<Buffer>
}

/** xerial snappy-java stream header: 0x82 "SNAPPY" 0x00, then version and compatible version. */
const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])
const XERIAL_HEADER_BYTES = 16

/** Decodes raw snappy, or the xerial framing Java producers write: header, then (int32 length, block)*. */
export function snappyDecode(buffer: Buffer): Buffer {
  if (buffer.length < XERIAL_HEADER_BYTES || !buffer.subarray(0, XERIAL_MAGIC.length).equals(XERIAL_MAGIC)) {
    return snappy.uncompressSync(buffer) as Buffer
  }
  const blocks: Buffer[] = []
  let offset = XERIAL_HEADER_BYTES
  while (offset < buffer.length) {
    if (offset + 4 > buffer.length) throw new Error('snappy: truncated xerial block length')
    const length = buffer.readInt32BE(offset)
    offset += 4
    if (length < 0 || offset + length > buffer.length) throw new Error('snappy: truncated xerial block')
    blocks.push(snappy.uncompressSync(buffer.subarray(offset, offset + length)) as Buffer)
    offset += length
  }
  return Buffer.concat(blocks)
}

const codecs: Record<'snappy' | 'lz4' | 'zstd', Codec> = {
  snappy: {
    compress: async (encoder) => snappy.compressSync(encoder.buffer),
    decompress: async (buffer) => snappyDecode(buffer),
  },
  lz4: {
    compress: async (encoder) => compressFrameSync(encoder.buffer),
    decompress: async (buffer) => decompressFrameSync(buffer),
  },
  zstd: {
    compress: async () => {
      throw new Error('zstd: Ferry can read zstd batches but not write them; choose gzip, snappy or lz4 for the target')
    },
    decompress: async (buffer) => Buffer.from(zstdDecompress(buffer)),
  },
}

const { CompressionCodecs, CompressionTypes } = kafkajs
CompressionCodecs[CompressionTypes.Snappy] = () => codecs.snappy
CompressionCodecs[CompressionTypes.LZ4] = () => codecs.lz4
CompressionCodecs[CompressionTypes.ZSTD] = () => codecs.zstd

/** kafkajs' numeric type for a target codec. */
export function compressionType(codec: TargetCompression): number {
  switch (codec) {
    case 'none':
      return CompressionTypes.None
    case 'gzip':
      return CompressionTypes.GZIP
    case 'snappy':
      return CompressionTypes.Snappy
    case 'lz4':
      return CompressionTypes.LZ4
  }
}
