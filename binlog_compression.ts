/**
 * Decompression of compressed events, within the memory limit (binlog_limits.ts): MariaDB's
 * compressed QUERY and ROWS events (log_bin_compress, zlib) and MySQL's TRANSACTION_PAYLOAD
 * (binlog_transaction_compression, zstd).
 *
 * @module
 */

import { EventError } from "./binlog_error.ts";
import { MAX_WHOLE_EVENT } from "./binlog_limits.ts";
import type { Native } from "./binlog_native.ts";

/**
 * Decompresses the MariaDB compressed block at b[o, end): a header byte (0x80 | algorithm << 4 |
 * bytes of the length), the decompressed length big-endian, then zlib data.
 */
export function inflateMariadbBlock(
  native: Native,
  block: { b: Uint8Array; from: number; to: number },
): Uint8Array {
  const { b, from: o, to: end } = block;
  if (o >= end) throw new EventError("corrupt", "compressed event has no compressed data");
  const h = b[o];
  const lenLen = h & 7;
  const alg = (h >> 4) & 7;
  if ((h & 0x80) === 0 || lenLen < 1 || lenLen > 4) {
    throw new EventError("corrupt", `bad compression header byte 0x${h.toString(16)}`);
  }
  if (alg !== 0) {
    throw new EventError("unsupported", `unknown MariaDB event compression algorithm ${alg}`);
  }
  if (o + 1 + lenLen > end) throw new EventError("corrupt", "compressed event header truncated");
  let len = 0;
  for (let k = 0; k < lenLen; k++) len = len * 256 + b[o + 1 + k];
  if (len > MAX_WHOLE_EVENT) {
    throw new EventError(
      "unsupported",
      `compressed event of ${len} bytes exceeds the ${MAX_WHOLE_EVENT} limit`,
    );
  }
  let out: Uint8Array;
  try {
    // Stops at the announced size: a zlib bomb cannot make it hold more.
    out = native.inflate(b.subarray(o + 1 + lenLen, end), Math.max(len, 1));
  } catch (e) {
    if (e instanceof RangeError) {
      throw new EventError("corrupt", `zlib data inflates to more than the ${len} bytes announced`);
    }
    throw new EventError("corrupt", `cannot decompress zlib data (${(e as Error).message})`);
  }
  if (out.length !== len) {
    throw new EventError("corrupt", `decompressed ${out.length} bytes, header says ${len}`);
  }
  return out;
}

/**
 * Decompresses the inner events of a TRANSACTION_PAYLOAD (compression 0 zstd, 255 none), whose
 * header announced `uncompressed` bytes.
 */
export function payloadEvents(
  native: Native,
  payload: { data: Uint8Array; compression: number; uncompressed: number },
): Uint8Array {
  const { data, compression, uncompressed } = payload;
  if (compression === 255) return data;
  if (compression !== 0) {
    throw new EventError(
      "unsupported",
      `unknown TRANSACTION_PAYLOAD compression type ${compression}`,
    );
  }
  if (uncompressed < 0) {
    throw new EventError("corrupt", "compressed TRANSACTION_PAYLOAD without its uncompressed size");
  }
  if (uncompressed > MAX_WHOLE_EVENT) {
    throw new EventError(
      "unsupported",
      `compressed transaction of ${uncompressed} bytes is too large`,
    );
  }
  try {
    // Stops at the announced size: a zstd bomb cannot make it hold more.
    return native.zstd(data, Math.max(uncompressed, 1));
  } catch (e) {
    if (e instanceof RangeError) {
      throw new EventError(
        "corrupt",
        `zstd payload decompresses to more than the ${uncompressed} bytes announced`,
      );
    }
    throw new EventError("corrupt", `cannot decompress zstd payload (${(e as Error).message})`);
  }
}
