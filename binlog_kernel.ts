/**
 * The hashing kernels of prm_binlog_parser: CRC-32 checks and MD5s of the batches that the hash
 * pool (binlog_pool.ts) records, run by the reading thread and by the hashing workers.
 *
 * This module imports nothing, and everything that runs is inside {@link hashKernels}: a hashing
 * worker runs that function's source text (see `workerSource` in binlog_pool.ts), so nothing in
 * it may refer to a name outside it. tests/binlog_kernel_test.ts evaluates the text alone and
 * checks every kernel against node:crypto and node:zlib.
 *
 * @module
 */

/** Shapes of the buffers shared with the hashing workers (see HashPool). */
export interface PoolLayout {
  /** Number of batch slots. */
  slots: number;
  /** Most transactions (records), spans and checksummed events per batch. */
  recs: number;
  spans: number;
  crcs: number;
  /** Bytes of inline data (bytes that are not in a read buffer) per batch. */
  inline: number;
  /** Most bytes a batched transaction hashes (larger ones stream into node:crypto). */
  txMax: number;
  /** Int32 words of metadata per slot. */
  stride: number;
  /**
   * Offsets in a slot's metadata: counts of records, spans and checksummed events; the first
   * failed checksum (index, stored, computed); then the records (first span, span count), their
   * digests (4 words each), the spans (source, length), the checksummed events (offset, size).
   * A span's source is an offset in the read buffers, or -1 - offset in the inline area.
   */
  at: {
    recs: number;
    spans: number;
    crcs: number;
    crcFail: number;
    crcStored: number;
    crcComputed: number;
    rec: number;
    digest: number;
    span: number;
    crc: number;
  };
}

/** node:zlib's crc32: the CRC-32 of `data`, continuing from `value`. */
export type NativeCrc32 = (data: Uint8Array, value?: number) => number;

/** The CRC-32 (zlib) of b[from, to), continuing from `seed` (a previous result, default 0). */
export type CrcRange = (b: Uint8Array, from: number, to: number, seed?: number) => number;

/** The kernels {@link hashKernels} builds. */
export interface HashKernels {
  /** The CRC-32 of a byte range: a table in JS for short ranges, where a call costs more, else `native`. */
  crcKernel(native: NativeCrc32): CrcRange;
  /**
   * The function that processes one batch slot: checks the CRC-32s of its events, then computes
   * the MD5 of each of its transactions.
   */
  batchKernel(
    read: ArrayBufferLike,
    inline: ArrayBufferLike,
    meta: Int32Array,
    layout: PoolLayout,
    crcRange: CrcRange,
  ): (slot: number) => void;
  /** The body of a hashing worker: processes published batches until told to stop. */
  workerMain(native: NativeCrc32): void;
}

/**
 * Defines the kernels. Refers to nothing outside its own text: the hashing workers run that text.
 *
 * @example
 * ```ts
 * import { crc32 } from "node:zlib";
 * const crcRange = hashKernels().crcKernel(crc32);
 * crcRange(new TextEncoder().encode("123456789"), 0, 9); // 0xcbf43926
 * ```
 */
export function hashKernels(): HashKernels {
  /** The CRC-32 table of the (bit-reflected) zlib polynomial: entry n is the CRC of byte n. */
  function crcTable(): Int32Array {
    const t = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c;
    }
    return t;
  }

  /**
   * Builds the CRC-32 (zlib) of a byte range: a slicing-by-8 table in JS for short ranges, where a
   * call of `native` (node:zlib crc32) costs more, else `native`.
   */
  function crcKernel(native: NativeCrc32): CrcRange {
    const t = new Int32Array(8 * 256);
    t.set(crcTable());
    for (let n = 0; n < 256; n++) {
      for (let k = 1; k < 8; k++) {
        t[k * 256 + n] = t[(k - 1) * 256 + n] >>> 8 ^ t[t[(k - 1) * 256 + n] & 255];
      }
    }
    // Up to this many bytes the JS CRC beats a node:zlib crc32 call (0.06 us per call, measured).
    const jsMax = 64;
    return function crcRange(b: Uint8Array, from: number, to: number, seed = 0): number {
      if (to - from > jsMax) return native(b.subarray(from, to), seed) >>> 0;
      let c = seed ^ -1;
      let i = from;
      for (; i + 8 <= to; i += 8) {
        const lo = c ^ (b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24));
        c = t[1792 + (lo & 255)] ^ t[1536 + ((lo >>> 8) & 255)] ^ t[1280 + ((lo >>> 16) & 255)] ^
          t[1024 + (lo >>> 24)] ^ t[768 + b[i + 4]] ^ t[512 + b[i + 5]] ^ t[256 + b[i + 6]] ^
          t[b[i + 7]];
      }
      for (; i < to; i++) c = t[(c ^ b[i]) & 255] ^ (c >>> 8);
      return (c ^ -1) >>> 0;
    };
  }

  /**
   * Builds the function that processes one batch slot: verifies the checksums of its events, then
   * computes the MD5 of each of its transactions over the concatenation of the transaction's spans
   * (ranges of the read buffers or of the inline area).
   */
  function batchKernel(
    read: ArrayBufferLike,
    inline: ArrayBufferLike,
    meta: Int32Array,
    layout: PoolLayout,
    crcRange: CrcRange,
  ): (slot: number) => void {
    const rb = new Uint8Array(read);
    const ib = new Uint8Array(inline);
    // Whole blocks are hashed where they are, as little-endian words read through DataViews
    // (any alignment, any host): copying out of shared memory costs more (relaxed-atomic copies,
    // 10-15% of the kernel, measured). Only the bytes of blocks that straddle spans, and the
    // padding, go through `pending`.
    const rdv = new DataView(read);
    const idv = new DataView(inline);
    const pending = new Uint8Array(128);
    const pdv = new DataView(pending.buffer);
    const st = new Int32Array(4);
    const at = layout.at;

    // Checks of runs of adjacent events with one CRC-32 over the run. An event followed by its
    // own CRC-32 (little-endian) has the CRC-32 RESIDUE. By linearity (as in zlib's
    // crc32_combine), CRC-32 of e1..ek, each such an event, is RESIDUE times the sum of x^(8 S_j)
    // modulo the CRC polynomial, S_j the bytes after e_j in the run: one native call per run and
    // one table look-up per event, where a call per event would cost far more than its bytes.
    const RESIDUE = 0x2144df1c;
    const RUN_MAX = 256 * 1024;
    /** x^(8 n) modulo the polynomial (bit-reflected, as CRC-32 registers are), n <= RUN_MAX. */
    const xPow = new Int32Array(RUN_MAX + 1);
    {
      const t = crcTable();
      xPow[0] = 0x80000000 | 0;
      for (let n = 1; n <= RUN_MAX; n++) {
        const p = xPow[n - 1];
        xPow[n] = t[p & 255] ^ (p >>> 8);
      }
    }
    /** a times b modulo the polynomial (bit-reflected; zlib's multmodp). */
    function mulMod(a: number, b: number): number {
      if (a === 0) return 0;
      let m = 0x80000000;
      let p = 0;
      for (;;) {
        if ((a & m) !== 0) {
          p ^= b;
          if ((a & (m - 1)) === 0) break;
        }
        m >>>= 1;
        b = b & 1 ? (b >>> 1) ^ 0xedb88320 : b >>> 1;
      }
      return p >>> 0;
    }
    /** Whether the events [i, j) of the checksum list at c0, bytes [from, to), are all valid. */
    function runCrc(c0: number, i: number, j: number, from: number, to: number): boolean {
      let sum = 0;
      let after = to - from;
      for (let k = i; k < j; k++) {
        after -= meta[c0 + 2 * k + 1];
        sum ^= xPow[after];
      }
      return crcRange(rb, from, to) === mulMod(sum >>> 0, RESIDUE);
    }

    /**
     * MD5 blocks (64 bytes, 16 little-endian words, each) at bytes [q, qEnd) of m into st,
     * unrolled per RFC 1321, the state in locals from block to block. Each step adds the
     * message word and constant first and the round function last, in a form with few operations
     * on the value the previous step produced (round 1 and 2 functions as a sum of disjoint
     * terms): MD5 is a chain of dependent steps, and this shortens it (1.4x faster, measured).
     */
    function md5Block(m: DataView, q: number, qEnd: number): void {
      let a0 = st[0], b0 = st[1], c0 = st[2], d0 = st[3];
      for (; q < qEnd; q += 64) {
        const w0 = m.getInt32(q + 0, true);
        const w1 = m.getInt32(q + 4, true);
        const w2 = m.getInt32(q + 8, true);
        const w3 = m.getInt32(q + 12, true);
        const w4 = m.getInt32(q + 16, true);
        const w5 = m.getInt32(q + 20, true);
        const w6 = m.getInt32(q + 24, true);
        const w7 = m.getInt32(q + 28, true);
        const w8 = m.getInt32(q + 32, true);
        const w9 = m.getInt32(q + 36, true);
        const w10 = m.getInt32(q + 40, true);
        const w11 = m.getInt32(q + 44, true);
        const w12 = m.getInt32(q + 48, true);
        const w13 = m.getInt32(q + 52, true);
        const w14 = m.getInt32(q + 56, true);
        const w15 = m.getInt32(q + 60, true);
        let a = a0, b = b0, c = c0, d = d0;
        a = (a + w0 + -680876936 + (~b & d) + (b & c)) | 0;
        a = ((a << 7) | (a >>> 25)) + b | 0;
        d = (d + w1 + -389564586 + (~a & c) + (a & b)) | 0;
        d = ((d << 12) | (d >>> 20)) + a | 0;
        c = (c + w2 + 606105819 + (~d & b) + (d & a)) | 0;
        c = ((c << 17) | (c >>> 15)) + d | 0;
        b = (b + w3 + -1044525330 + (~c & a) + (c & d)) | 0;
        b = ((b << 22) | (b >>> 10)) + c | 0;
        a = (a + w4 + -176418897 + (~b & d) + (b & c)) | 0;
        a = ((a << 7) | (a >>> 25)) + b | 0;
        d = (d + w5 + 1200080426 + (~a & c) + (a & b)) | 0;
        d = ((d << 12) | (d >>> 20)) + a | 0;
        c = (c + w6 + -1473231341 + (~d & b) + (d & a)) | 0;
        c = ((c << 17) | (c >>> 15)) + d | 0;
        b = (b + w7 + -45705983 + (~c & a) + (c & d)) | 0;
        b = ((b << 22) | (b >>> 10)) + c | 0;
        a = (a + w8 + 1770035416 + (~b & d) + (b & c)) | 0;
        a = ((a << 7) | (a >>> 25)) + b | 0;
        d = (d + w9 + -1958414417 + (~a & c) + (a & b)) | 0;
        d = ((d << 12) | (d >>> 20)) + a | 0;
        c = (c + w10 + -42063 + (~d & b) + (d & a)) | 0;
        c = ((c << 17) | (c >>> 15)) + d | 0;
        b = (b + w11 + -1990404162 + (~c & a) + (c & d)) | 0;
        b = ((b << 22) | (b >>> 10)) + c | 0;
        a = (a + w12 + 1804603682 + (~b & d) + (b & c)) | 0;
        a = ((a << 7) | (a >>> 25)) + b | 0;
        d = (d + w13 + -40341101 + (~a & c) + (a & b)) | 0;
        d = ((d << 12) | (d >>> 20)) + a | 0;
        c = (c + w14 + -1502002290 + (~d & b) + (d & a)) | 0;
        c = ((c << 17) | (c >>> 15)) + d | 0;
        b = (b + w15 + 1236535329 + (~c & a) + (c & d)) | 0;
        b = ((b << 22) | (b >>> 10)) + c | 0;
        a = (a + w1 + -165796510 + (~d & c) + (d & b)) | 0;
        a = ((a << 5) | (a >>> 27)) + b | 0;
        d = (d + w6 + -1069501632 + (~c & b) + (c & a)) | 0;
        d = ((d << 9) | (d >>> 23)) + a | 0;
        c = (c + w11 + 643717713 + (~b & a) + (b & d)) | 0;
        c = ((c << 14) | (c >>> 18)) + d | 0;
        b = (b + w0 + -373897302 + (~a & d) + (a & c)) | 0;
        b = ((b << 20) | (b >>> 12)) + c | 0;
        a = (a + w5 + -701558691 + (~d & c) + (d & b)) | 0;
        a = ((a << 5) | (a >>> 27)) + b | 0;
        d = (d + w10 + 38016083 + (~c & b) + (c & a)) | 0;
        d = ((d << 9) | (d >>> 23)) + a | 0;
        c = (c + w15 + -660478335 + (~b & a) + (b & d)) | 0;
        c = ((c << 14) | (c >>> 18)) + d | 0;
        b = (b + w4 + -405537848 + (~a & d) + (a & c)) | 0;
        b = ((b << 20) | (b >>> 12)) + c | 0;
        a = (a + w9 + 568446438 + (~d & c) + (d & b)) | 0;
        a = ((a << 5) | (a >>> 27)) + b | 0;
        d = (d + w14 + -1019803690 + (~c & b) + (c & a)) | 0;
        d = ((d << 9) | (d >>> 23)) + a | 0;
        c = (c + w3 + -187363961 + (~b & a) + (b & d)) | 0;
        c = ((c << 14) | (c >>> 18)) + d | 0;
        b = (b + w8 + 1163531501 + (~a & d) + (a & c)) | 0;
        b = ((b << 20) | (b >>> 12)) + c | 0;
        a = (a + w13 + -1444681467 + (~d & c) + (d & b)) | 0;
        a = ((a << 5) | (a >>> 27)) + b | 0;
        d = (d + w2 + -51403784 + (~c & b) + (c & a)) | 0;
        d = ((d << 9) | (d >>> 23)) + a | 0;
        c = (c + w7 + 1735328473 + (~b & a) + (b & d)) | 0;
        c = ((c << 14) | (c >>> 18)) + d | 0;
        b = (b + w12 + -1926607734 + (~a & d) + (a & c)) | 0;
        b = ((b << 20) | (b >>> 12)) + c | 0;
        a = (a + w5 + -378558 + (c ^ d ^ b)) | 0;
        a = ((a << 4) | (a >>> 28)) + b | 0;
        d = (d + w8 + -2022574463 + (b ^ c ^ a)) | 0;
        d = ((d << 11) | (d >>> 21)) + a | 0;
        c = (c + w11 + 1839030562 + (a ^ b ^ d)) | 0;
        c = ((c << 16) | (c >>> 16)) + d | 0;
        b = (b + w14 + -35309556 + (d ^ a ^ c)) | 0;
        b = ((b << 23) | (b >>> 9)) + c | 0;
        a = (a + w1 + -1530992060 + (c ^ d ^ b)) | 0;
        a = ((a << 4) | (a >>> 28)) + b | 0;
        d = (d + w4 + 1272893353 + (b ^ c ^ a)) | 0;
        d = ((d << 11) | (d >>> 21)) + a | 0;
        c = (c + w7 + -155497632 + (a ^ b ^ d)) | 0;
        c = ((c << 16) | (c >>> 16)) + d | 0;
        b = (b + w10 + -1094730640 + (d ^ a ^ c)) | 0;
        b = ((b << 23) | (b >>> 9)) + c | 0;
        a = (a + w13 + 681279174 + (c ^ d ^ b)) | 0;
        a = ((a << 4) | (a >>> 28)) + b | 0;
        d = (d + w0 + -358537222 + (b ^ c ^ a)) | 0;
        d = ((d << 11) | (d >>> 21)) + a | 0;
        c = (c + w3 + -722521979 + (a ^ b ^ d)) | 0;
        c = ((c << 16) | (c >>> 16)) + d | 0;
        b = (b + w6 + 76029189 + (d ^ a ^ c)) | 0;
        b = ((b << 23) | (b >>> 9)) + c | 0;
        a = (a + w9 + -640364487 + (c ^ d ^ b)) | 0;
        a = ((a << 4) | (a >>> 28)) + b | 0;
        d = (d + w12 + -421815835 + (b ^ c ^ a)) | 0;
        d = ((d << 11) | (d >>> 21)) + a | 0;
        c = (c + w15 + 530742520 + (a ^ b ^ d)) | 0;
        c = ((c << 16) | (c >>> 16)) + d | 0;
        b = (b + w2 + -995338651 + (d ^ a ^ c)) | 0;
        b = ((b << 23) | (b >>> 9)) + c | 0;
        a = (a + w0 + -198630844 + (c ^ (b | ~d))) | 0;
        a = ((a << 6) | (a >>> 26)) + b | 0;
        d = (d + w7 + 1126891415 + (b ^ (a | ~c))) | 0;
        d = ((d << 10) | (d >>> 22)) + a | 0;
        c = (c + w14 + -1416354905 + (a ^ (d | ~b))) | 0;
        c = ((c << 15) | (c >>> 17)) + d | 0;
        b = (b + w5 + -57434055 + (d ^ (c | ~a))) | 0;
        b = ((b << 21) | (b >>> 11)) + c | 0;
        a = (a + w12 + 1700485571 + (c ^ (b | ~d))) | 0;
        a = ((a << 6) | (a >>> 26)) + b | 0;
        d = (d + w3 + -1894986606 + (b ^ (a | ~c))) | 0;
        d = ((d << 10) | (d >>> 22)) + a | 0;
        c = (c + w10 + -1051523 + (a ^ (d | ~b))) | 0;
        c = ((c << 15) | (c >>> 17)) + d | 0;
        b = (b + w1 + -2054922799 + (d ^ (c | ~a))) | 0;
        b = ((b << 21) | (b >>> 11)) + c | 0;
        a = (a + w8 + 1873313359 + (c ^ (b | ~d))) | 0;
        a = ((a << 6) | (a >>> 26)) + b | 0;
        d = (d + w15 + -30611744 + (b ^ (a | ~c))) | 0;
        d = ((d << 10) | (d >>> 22)) + a | 0;
        c = (c + w6 + -1560198380 + (a ^ (d | ~b))) | 0;
        c = ((c << 15) | (c >>> 17)) + d | 0;
        b = (b + w13 + 1309151649 + (d ^ (c | ~a))) | 0;
        b = ((b << 21) | (b >>> 11)) + c | 0;
        a = (a + w4 + -145523070 + (c ^ (b | ~d))) | 0;
        a = ((a << 6) | (a >>> 26)) + b | 0;
        d = (d + w11 + -1120210379 + (b ^ (a | ~c))) | 0;
        d = ((d << 10) | (d >>> 22)) + a | 0;
        c = (c + w2 + 718787259 + (a ^ (d | ~b))) | 0;
        c = ((c << 15) | (c >>> 17)) + d | 0;
        b = (b + w9 + -343485551 + (d ^ (c | ~a))) | 0;
        b = ((b << 21) | (b >>> 11)) + c | 0;
        a0 = (a0 + a) | 0;
        b0 = (b0 + b) | 0;
        c0 = (c0 + c) | 0;
        d0 = (d0 + d) | 0;
      }
      st[0] = a0;
      st[1] = b0;
      st[2] = c0;
      st[3] = d0;
    }

    function md5Start(): void {
      st[0] = 0x67452301;
      st[1] = 0xefcdab89 | 0;
      st[2] = 0x98badcfe | 0;
      st[3] = 0x10325476;
    }

    /** Ends the MD5 in st of a message of `size` bytes whose last `len` (< 64) are in pending. */
    function md5End(len: number, size: number): void {
      // Padding: 0x80, zeros, the length in bits (little-endian, 64 bits).
      const total = len < 56 ? 64 : 128;
      pending[len] = 0x80;
      pending.fill(0, len + 1, total - 8);
      const bitsLo = ((size % 2 ** 29) * 8) >>> 0;
      const bitsHi = Math.floor(size / 2 ** 29) >>> 0;
      for (let k = 0; k < 4; k++) {
        pending[total - 8 + k] = (bitsLo >>> (8 * k)) & 255;
        pending[total - 4 + k] = (bitsHi >>> (8 * k)) & 255;
      }
      md5Block(pdv, 0, total);
    }

    return function processSlot(slot: number): void {
      const m = slot * layout.stride;
      meta[m + at.crcFail] = -1;
      const ncrc = meta[m + at.crcs];
      const c0 = m + at.crc;
      for (let i = 0; i < ncrc;) {
        // A run of adjacent events, checked at once (see runCrc); one by one if it fails.
        const from = meta[c0 + 2 * i];
        let to = from;
        let j = i;
        while (j < ncrc && meta[c0 + 2 * j] === to && to + meta[c0 + 2 * j + 1] - from <= RUN_MAX) {
          to += meta[c0 + 2 * j + 1];
          j++;
        }
        if (j - i >= 2 && runCrc(c0, i, j, from, to)) {
          i = j;
          continue;
        }
        const last = Math.max(j, i + 1);
        for (; i < last; i++) {
          const o = meta[c0 + 2 * i];
          const end = o + meta[c0 + 2 * i + 1] - 4;
          const stored = rb[end] | (rb[end + 1] << 8) | (rb[end + 2] << 16) | (rb[end + 3] << 24);
          const computed = crcRange(rb, o, end) | 0;
          if (computed !== stored) {
            meta[m + at.crcFail] = i;
            meta[m + at.crcStored] = stored;
            meta[m + at.crcComputed] = computed;
            // The transactions that end before the bad event are still reported.
            i = ncrc;
            break;
          }
        }
      }
      const nrec = meta[m + at.recs];
      for (let r = 0; r < nrec; r++) {
        const first = meta[m + at.rec + 2 * r];
        const count = meta[m + at.rec + 2 * r + 1];
        md5Start();
        // Bytes in pending (the start of a block), bytes of the message so far.
        let pend = 0;
        let size = 0;
        for (let k = 0, s = m + at.span + 2 * first; k < count; k++, s += 2) {
          const src = meta[s];
          let n = meta[s + 1];
          let from = src >= 0 ? src : -1 - src;
          const b = src >= 0 ? rb : ib;
          size += n;
          if (pend > 0 || n < 64) {
            const take = Math.min(64 - pend, n);
            for (let i = 0; i < take; i++) pending[pend + i] = b[from + i];
            pend += take;
            from += take;
            n -= take;
            if (pend < 64) continue;
            md5Block(pdv, 0, 64);
            pend = 0;
          }
          const full = n - (n & 63);
          if (full > 0) md5Block(src >= 0 ? rdv : idv, from, from + full);
          for (let i = full; i < n; i++) pending[i - full] = b[from + i];
          pend = n - full;
        }
        md5End(pend, size);
        const d = m + at.digest + 4 * r;
        meta[d] = st[0];
        meta[d + 1] = st[1];
        meta[d + 2] = st[2];
        meta[d + 3] = st[3];
      }
    };
  }

  /**
   * Body of a hashing worker: claims published batches in turn and processes them, until told to
   * stop.
   */
  function workerMain(native: NativeCrc32): void {
    const scope = globalThis as unknown as {
      onmessage: ((e: MessageEvent) => void) | null;
      close(): void;
    };
    scope.onmessage = (e: MessageEvent) => {
      const { read, inline, meta, ctl, layout, idx } = e.data as {
        read: SharedArrayBuffer;
        inline: SharedArrayBuffer;
        meta: Int32Array;
        ctl: Int32Array;
        layout: PoolLayout;
        idx: {
          published: number;
          claimed: number;
          stop: number;
          done: number;
          sleeping: number;
          queue: number;
        };
      };
      const process = batchKernel(read, inline, meta, layout, crcKernel(native));
      while (Atomics.load(ctl, idx.stop) === 0) {
        const published = Atomics.load(ctl, idx.published);
        const claimed = Atomics.load(ctl, idx.claimed);
        if (claimed >= published) {
          // Announce the sleep, then look again: the main thread notifies only sleepers.
          Atomics.add(ctl, idx.sleeping, 1);
          if (Atomics.load(ctl, idx.published) === published) {
            Atomics.wait(ctl, idx.published, published);
          }
          Atomics.sub(ctl, idx.sleeping, 1);
          continue;
        }
        if (Atomics.compareExchange(ctl, idx.claimed, claimed, claimed + 1) !== claimed) continue;
        const slot = Atomics.load(ctl, idx.queue + (claimed % layout.slots));
        process(slot);
        Atomics.store(ctl, idx.queue + layout.slots + slot, 1);
        Atomics.add(ctl, idx.done, 1);
        Atomics.notify(ctl, idx.done);
      }
      scope.close();
    };
  }

  return { crcKernel, batchKernel, workerMain };
}
