/**
 * The native helpers of prm_binlog_parser (node:crypto's MD5, node:zlib's CRC-32, inflate and
 * zstd, node:fs's non-blocking open), loaded on the first read, not at import: the agent imports the parser for resync, and
 * loading them at start-up would cost every agent action about 30 ms.
 *
 * @module
 */

import type { Hash } from "node:crypto";
import { type CrcRange, hashKernels } from "./binlog_kernel.ts";
import type { NodeFs } from "./binlog_reader.ts";

/** What the parser uses of node:crypto and node:zlib. */
export interface Native {
  /** A new node:crypto MD5 (for transactions too large for a batch). */
  md5(): Hash;
  /** The CRC-32 of a byte range (binlog_kernel.ts: a JS table for short ranges). */
  crcRange: CrcRange;
  /** zlib-inflates `data`; throws past `maxOutputLength` bytes. */
  inflate(data: Uint8Array, maxOutputLength: number): Uint8Array;
  /** zstd-decompresses `data`; throws past `maxOutputLength` bytes. */
  zstd(data: Uint8Array, maxOutputLength: number): Uint8Array;
  /** node:fs, which opens files without waiting on a FIFO (see openFile). */
  fs: NodeFs;
}

let loading: Promise<Native> | undefined;

/**
 * node:crypto and node:zlib, loaded once.
 *
 * @example
 * ```ts
 * const native = await loadNative();
 * native.crcRange(new TextEncoder().encode("123456789"), 0, 9); // 0xcbf43926
 * ```
 */
export function loadNative(): Promise<Native> {
  loading ??= Promise.all([
    import("node:crypto"),
    import("node:zlib"),
    import("node:fs"),
  ]).then(([c, z, fs]): Native => ({
    md5: () => c.createHash("md5"),
    crcRange: hashKernels().crcKernel(z.crc32),
    inflate: (data, maxOutputLength) => z.inflateSync(data, { maxOutputLength }),
    // Deno's node:zlib honours maxOutputLength for zstd too (measured), its types do not say so.
    zstd: (data, maxOutputLength) =>
      new Uint8Array(z.zstdDecompressSync(data, { maxOutputLength } as never)),
    fs,
  })).catch((e) => {
    // Not loaded: the next read tries again.
    loading = undefined;
    throw e;
  });
  return loading;
}
