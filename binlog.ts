/**
 * prm_binlog_parser: groups the events of MySQL/MariaDB binlogs and relay logs (format v4) into
 * transactions and prints, per transaction, its end position and an MD5 of its payload.
 *
 * The MD5 is built so that the same transaction hashes equally in the master's binlog, in every
 * replica's relay log and in a replica's own binlog written with log_slave_updates, even when the
 * servers differ in binlog_checksum, table ids, positions, XID values, exec times, event
 * compression (MariaDB log_bin_compress, MySQL binlog_transaction_compression) and ROWS event
 * version (v1/v2).
 *
 * ## What is hashed
 * One MD5 per transaction over, for each hashed event of the transaction in order:
 *
 *     type (1 byte, normalised) | header timestamp (4 bytes LE) | L (4 bytes LE) | L body bytes
 *
 * Normalised type and body bytes per event type:
 * - QUERY (2) and MariaDB QUERY_COMPRESSED (165 -> 2): the database name, its NUL terminator and
 *   the statement text (decompressed). Not thread id, exec_time, error code, status variables.
 *   For `XA ...` statements only the NUL and the text: replicas log them without a database.
 * - EXECUTE_LOAD_QUERY (18): same as QUERY (database name, NUL, statement text).
 * - TABLE_MAP (19): the body after the table id (flags, database, table, column types and
 *   metadata, null bitmap), without the optional metadata block (binlog_row_metadata=FULL).
 * - ROWS: WRITE v0/v1/v2 and MariaDB compressed -> 30, UPDATE -> 31, DELETE -> 32,
 *   PARTIAL_UPDATE_ROWS stays 39: the 2-byte flags then the body after the flags, skipping the v2
 *   extra-data block (so v1 and v2 copies hash equally), rows decompressed.
 * - INTVAR (5), RAND (13), USER_VAR (14): the whole body.
 * - LOAD DATA events LOAD (6), CREATE_FILE (8), APPEND_BLOCK (9), EXEC_LOAD (10), DELETE_FILE (11),
 *   NEW_LOAD (12), BEGIN_LOAD_QUERY (17): the body after the post-header (which holds file ids and
 *   thread ids that differ between servers).
 * - Inner events of a MySQL TRANSACTION_PAYLOAD (40) are decompressed and hashed exactly like the
 *   same events written uncompressed.
 *
 * Never hashed: CRC32 checksums, header fields other than type and timestamp (server id, log_pos,
 * event size, flags), GTID events (33/34/42/162), XID (16), XA_PREPARE (38), the `BEGIN`,
 * `COMMIT` and `ROLLBACK` queries, ANNOTATE_ROWS (160), ROWS_QUERY (29), and every event that is
 * part of no transaction (FORMAT_DESCRIPTION, ROTATE, STOP, PREVIOUS_GTIDS, GTID_LIST,
 * BINLOG_CHECKPOINT, HEARTBEAT, INCIDENT, ignorable events, events flagged artificial 0x20 or
 * relay-log 0x40). A transaction with no hashed event (for example an empty transaction) is still
 * printed, with the MD5 of the empty input, d41d8cd98f00b204e9800998ecf8427e.
 *
 * ## Transaction groups
 * Start: a GTID event (MariaDB 162, MySQL 33/34/42), a `BEGIN` query, or any hashed event outside
 * a transaction. End (the transaction's `end` is the terminating event's header log_pos): XID,
 * QUERY `COMMIT` or `ROLLBACK`, XA_PREPARE, a query `XA COMMIT ...`/`XA ROLLBACK ...`, a query
 * outside `BEGIN` (DDL, or autocommit statements of old servers), the query after a MariaDB
 * standalone GTID. `XA START`, and a statement ending in `START TRANSACTION` (MySQL 8.0.21+
 * CREATE TABLE ... SELECT), count as `BEGIN` (and are hashed). A group still open when a new
 * GTID (or BEGIN) arrives, or at the end of the last file, is left out with a warning. A
 * transaction open at the end of a file continues in the next file given only if that file is a
 * relay log (first FDE flagged 0x40), since relay logs can rotate inside a transaction.
 *
 * ## Speed
 * Hashing (MD5 of the hashed bytes) and CRC32 verification cost more than reading and grouping.
 * The parser therefore records, per transaction, the ranges of the read buffer to hash (no
 * copy) and the events to checksum, in batches that worker threads process while it reads on
 * (HashPool): one worker per CPU beyond the first, at most 3, for inputs of 32 MiB or more. The
 * main thread processes batches itself when it has no worker or would otherwise wait. Output is
 * in file order and identical whatever the number of threads. The MD5 kernel hashes whole
 * blocks in the shared buffers where they are (copies out of shared memory are slow). The
 * CRC32s of a run of adjacent events are checked with one node:zlib call and a table look-up
 * per event (see batchKernel): a call per event cost more than its bytes. Reads are of 1 MiB
 * (READ_BUFFER_SIZE), small enough that the workers find the bytes in the CPU caches, and the
 * workers start while the native modules load.
 *
 * ## Exit codes (see EXIT_CODES)
 * 0 ok (warnings possible), 1 internal error, 2 usage, 3 cannot open or read a file, 4 not a
 * binlog, 5 corrupt event, 6 unsupported content.
 *
 * @module
 */

import type { Hash } from "node:crypto";
import { parseArgs } from "node:util";

/** Name used in messages. */
export const PROGRAM = "prm_binlog_parser";

/** Error classes and their process exit codes. */
export const EXIT_CODES = {
  ok: 0,
  internal: 1,
  usage: 2,
  io: 3,
  not_binlog: 4,
  corrupt: 5,
  unsupported: 6,
} as const;

/** The kind of a BinlogError; selects the exit code. */
export type BinlogErrorKind = Exclude<keyof typeof EXIT_CODES, "ok">;

/** A clean, user-facing failure: names the file and the offset, carries an exit code. */
export class BinlogError extends Error {
  /** File (or stream) name. */
  file: string;
  /** Byte offset in the file the problem was found at, or -1 when not applicable. */
  offset: number;
  /** Error class. */
  kind: BinlogErrorKind;
  /** Process exit code for the kind. */
  exitCode: number;
  /** The message without the file and offset. */
  detail: string;

  /** Builds the error; the message is `FILE: offset N: detail`. */
  constructor(kind: BinlogErrorKind, file: string, offset: number, detail: string) {
    super(offset >= 0 ? `${file}: offset ${offset}: ${detail}` : `${file}: ${detail}`);
    this.name = "BinlogError";
    this.kind = kind;
    this.file = file;
    this.offset = offset;
    this.detail = detail;
    this.exitCode = EXIT_CODES[kind];
  }
}

/** One transaction found in a binlog or relay log. */
export interface BinlogTransaction {
  /** File (or stream) name. */
  file: string;
  /** Offset in the file of the transaction's first event. */
  start: number;
  /**
   * The end position of the transaction's last event as its header records it (log_pos). For a
   * relay log this is in the master's coordinates: the resume position in the master's binlog.
   */
  end: number;
  /** Byte offset in this file just after the transaction's last event. */
  endOffset: number;
  /**
   * Set when the transaction began in an earlier file (a relay log rotated inside it): the file
   * `start` refers to.
   */
  startFile?: string;
  /** MD5 of the hashed payload, 32 lowercase hex digits. */
  md5: string;
  /** MariaDB `domain-server-seq`, MySQL `uuid:gno` or `uuid:tag:gno`, when the group has one. */
  gtid?: string;
  /** Header timestamp of the transaction's first event (seconds since the epoch). */
  timestamp: number;
  /** Originating server id (header of the first event). */
  serverId: number;
}

/** A binlog delivered as raw bytes, for example streamed over the replication protocol. */
export interface BinlogStream {
  /** Name used in messages and in BinlogTransaction.file. */
  name: string;
  /** The bytes of the binlog, starting with the 4-byte magic. */
  chunks: AsyncIterable<Uint8Array>;
}

/** Files read in order as one stream, or one raw byte stream. */
export type BinlogSource = string[] | BinlogStream;

/** Options of readTransactions and tailTransactions. */
export interface ReadOptions {
  /** Offset in the first file to start at; must be an event boundary (default 4). */
  startPosition?: number;
  /** Receives warnings (partial events or transactions left out). */
  onWarning?: (message: string) => void;
  /** Verify CRC32 checksums (default true). */
  verifyChecksums?: boolean;
  /** Read buffer size in bytes (default 1 MiB). */
  bufferSize?: number;
  /**
   * Worker threads computing MD5s beside the reading thread (default: one per CPU beyond the
   * first, at most 3, when the files add up to 32 MiB or more; else none).
   */
  workers?: number;
}

// Event type codes.
const T_QUERY = 2;
const T_INTVAR = 5;
const T_LOAD = 6;
const T_CREATE_FILE = 8;
const T_APPEND_BLOCK = 9;
const T_EXEC_LOAD = 10;
const T_DELETE_FILE = 11;
const T_NEW_LOAD = 12;
const T_RAND = 13;
const T_USER_VAR = 14;
const T_FDE = 15;
const T_XID = 16;
const T_BEGIN_LOAD_QUERY = 17;
const T_EXECUTE_LOAD_QUERY = 18;
const T_TABLE_MAP = 19;
const T_GTID = 33;
const T_ANONYMOUS_GTID = 34;
const T_XA_PREPARE = 38;
const T_PARTIAL_UPDATE_ROWS = 39;
const T_TRANSACTION_PAYLOAD = 40;
const T_GTID_TAGGED = 42;
const T_MARIA_GTID = 162;
const T_START_ENCRYPTION = 164;
const T_QUERY_COMPRESSED = 165;

const FLAG_ARTIFICIAL = 0x20;
const FLAG_RELAY_LOG = 0x40;
const HEADER_LEN = 19;
const MAGIC = [0xfe, 0x62, 0x69, 0x6e];
/** Largest event accepted at all (MySQL/MariaDB cap events at 1 GiB). */
const MAX_EVENT_SIZE = 0x40000000 + 0x10000;
/** Largest compressed or decompressed event held in memory at once. */
const MAX_WHOLE_EVENT = 96 * 1024 * 1024;
/** Bytes of an event needed to locate its hashed part (post-header, status vars, db name). */
const PREFIX_MAX = 70 * 1024;

/** Normalised row event codes: v0/v1/v2/compressed write/update/delete -> 30/31/32. */
function rowsKind(type: number): number {
  switch (type) {
    case 20:
    case 23:
    case 30:
    case 166:
    case 169:
      return 30;
    case 21:
    case 24:
    case 31:
    case 167:
    case 170:
      return 31;
    case 22:
    case 25:
    case 32:
    case 168:
    case 171:
      return 32;
    case T_PARTIAL_UPDATE_ROWS:
      return 39;
    default:
      return 0;
  }
}

function isRowsV2(type: number): boolean {
  return (type >= 30 && type <= 32) || type === 39 || (type >= 169 && type <= 171);
}

function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

function u64(b: Uint8Array, o: number): bigint {
  return BigInt(u32(b, o)) | (BigInt(u32(b, o + 4)) << 32n);
}

/**
 * Builds the CRC-32 (zlib) of a byte range: a slicing-by-8 table in JS for short ranges, where a
 * call of `native` (node:zlib crc32) costs more, else `native`. Refers to nothing outside its
 * own text: the hashing workers run that text (see workerSource).
 */
function crcKernel(
  native: (data: Uint8Array, value?: number) => number,
): (b: Uint8Array, from: number, to: number) => number {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 8; k++) {
      t[k * 256 + n] = t[(k - 1) * 256 + n] >>> 8 ^ t[t[(k - 1) * 256 + n] & 255];
    }
  }
  // Up to this many bytes the JS CRC beats a node:zlib crc32 call (0.06 us per call, measured).
  const jsMax = 64;
  return function crcRange(b: Uint8Array, from: number, to: number): number {
    if (to - from > jsMax) return native(b.subarray(from, to)) >>> 0;
    let c = -1;
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

type NodeCrypto = typeof import("node:crypto");
type NodeZlib = typeof import("node:zlib");
let createHash: NodeCrypto["createHash"];
let crc32: NodeZlib["crc32"];
let inflateSync: NodeZlib["inflateSync"];
let zstdDecompressSync: NodeZlib["zstdDecompressSync"];
/** CRC-32 of b[from, to). */
let crcRange: (b: Uint8Array, from: number, to: number) => number;

/**
 * Loads node:crypto and node:zlib on the first read, not at import: the agent imports this module
 * for resync, and loading them at start-up would cost every agent action about 30 ms.
 */
async function loadNative(): Promise<void> {
  if (crcRange !== undefined) return;
  const [c, z] = await Promise.all([import("node:crypto"), import("node:zlib")]);
  createHash = c.createHash;
  crc32 = z.crc32;
  inflateSync = z.inflateSync;
  zstdDecompressSync = z.zstdDecompressSync;
  crcRange = crcKernel(z.crc32);
}

/** Checksum and post-header lengths in force, from the latest FORMAT_DESCRIPTION event. */
interface Format {
  checksum: boolean;
  postHeader: Uint8Array;
}

const DEFAULT_POST_HEADER: Record<number, number> = {
  [T_QUERY]: 13,
  [T_LOAD]: 18,
  [T_CREATE_FILE]: 4,
  [T_APPEND_BLOCK]: 4,
  [T_EXEC_LOAD]: 4,
  [T_DELETE_FILE]: 4,
  [T_NEW_LOAD]: 18,
  [T_BEGIN_LOAD_QUERY]: 4,
  [T_EXECUTE_LOAD_QUERY]: 26,
  [T_TABLE_MAP]: 8,
  23: 8,
  24: 8,
  25: 8,
  30: 10,
  31: 10,
  32: 10,
  39: 10,
  [T_QUERY_COMPRESSED]: 13,
  166: 8,
  167: 8,
  168: 8,
  169: 10,
  170: 10,
  171: 10,
};

function postHeaderLen(fmt: Format, type: number): number {
  const v = type - 1 < fmt.postHeader.length ? fmt.postHeader[type - 1] : 0;
  return v !== 0 ? v : (DEFAULT_POST_HEADER[type] ?? 0);
}

/** Whether a server version writes the checksum-algorithm trailer in its FDE. */
function fdeHasChecksumTrailer(version: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const v = (Number(m[1]) * 256 + Number(m[2])) * 256 + Number(m[3]);
  const split = version.includes("MariaDB") ? (5 * 256 + 3) * 256 : (5 * 256 + 6) * 256 + 1;
  return v >= split;
}

/** Shapes of the buffers shared with the hashing workers (see HashPool). */
interface PoolLayout {
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

/** The layout of `slots` slots. */
function poolLayout(slots: number): PoolLayout {
  const { recs, spans, crcs, inline } = BATCH_LIMITS;
  const rec = 8;
  const digest = rec + 2 * recs;
  const span = digest + 4 * recs;
  const crc = span + 2 * spans;
  return {
    slots,
    recs,
    spans,
    crcs,
    inline,
    txMax: BATCH_TX_MAX,
    stride: crc + 2 * crcs,
    at: {
      recs: 0,
      spans: 1,
      crcs: 2,
      crcFail: 3,
      crcStored: 4,
      crcComputed: 5,
      rec,
      digest,
      span,
      crc,
    },
  };
}

// Indexes in the control array shared with the hashing workers.
const C_PUBLISHED = 0; // batches published so far
const C_CLAIMED = 1; // batches claimed (by a worker or the main thread) so far
const C_STOP = 2; // set to make the workers return
const C_DONE = 3; // batches processed so far (waited on)
const C_SLEEPING = 4; // workers waiting for a batch
const C_QUEUE = 8; // slot of batch number s at C_QUEUE + s % slots
// Then one "processed" flag per slot at C_QUEUE + slots + slot.

/**
 * Builds the function that processes one batch slot: verifies the checksums of its events, then
 * computes the MD5 of each of its transactions over the concatenation of the transaction's spans
 * (ranges of the read buffers or of the inline area). Refers to nothing outside its own text,
 * because the hashing workers run that text (see workerSource).
 */
function batchKernel(
  read: ArrayBufferLike,
  inline: ArrayBufferLike,
  meta: Int32Array,
  layout: PoolLayout,
  crcRange: (b: Uint8Array, from: number, to: number) => number,
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
    const t = new Int32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c;
    }
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
 * stop. Refers to nothing outside its own text (see workerSource).
 */
function hashWorkerMain(
  kernel: typeof batchKernel,
  crc: typeof crcKernel,
  native: (data: Uint8Array, value?: number) => number,
): void {
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
    const process = kernel(read, inline, meta, layout, crc(native));
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

/** Source text of a hashing worker (a module run from a blob: URL, so bundling needs no file). */
function workerSource(): string {
  return [
    `import { crc32 } from "node:zlib";`,
    `const batchKernel = ${batchKernel.toString()};`,
    `const crcKernel = ${crcKernel.toString()};`,
    `(${hashWorkerMain.toString()})(batchKernel, crcKernel, crc32);`,
    "",
  ].join("\n");
}

const HEX_DIGITS = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
const HEX_CODES: number[] = new Array(32).fill(0);

/**
 * The 32 hex digits of the digest words w[at, at + 4) (the MD5 state, little-endian) as one
 * flat string: cheaper to build and to write out than a concatenation.
 */
function digestHex(w: Int32Array, at: number): string {
  const codes = HEX_CODES;
  for (let k = 0; k < 4; k++) {
    const v = w[at + k];
    for (let j = 0; j < 4; j++) {
      const x = (v >>> (8 * j)) & 255;
      codes[8 * k + 2 * j] = HEX_DIGITS[x >> 4];
      codes[8 * k + 2 * j + 1] = HEX_DIGITS[x & 15];
    }
  }
  return String.fromCharCode.apply(null, codes);
}

/**
 * Work per batch (bytes hashed plus a quarter of the bytes checksummed) before it is published:
 * small, so that few transactions wait for their md5 (they survive scavenges meanwhile, which
 * grows the heap).
 */
const BATCH_WORK = 128 * 1024;
/** A transaction hashing more than this streams into node:crypto instead of a batch. */
const BATCH_TX_MAX = 512 * 1024;
const BATCH_LIMITS = { recs: 4096, spans: 16384, crcs: 16384, inline: BATCH_TX_MAX + 256 * 1024 };
/** Read buffers of a pool with workers (they stay in use until their batches are processed). */
const READ_BUFFERS = 4;
/**
 * Bytes per read: reads of 1 MiB cost no more than of 4 MiB, and the workers find more of
 * what they hash still in the CPU caches (measured: 0.1 s less CPU on the bench binlog).
 */
const READ_BUFFER_SIZE = 1024 * 1024;

/**
 * The checksums and MD5s of one read, computed in batches, by worker threads when there are any.
 *
 * The parser reads into read buffers owned by the pool. For each transaction it records spans:
 * ranges of the current read buffer (event bodies, not copied) and of an inline area (the
 * per-event prefixes, and bytes from elsewhere such as decompressed events, copied); for each
 * event with a checksum, where it is. A batch (records, spans, checksums) is published once it
 * holds enough work; the workers claim published batches, verify their checksums and hash
 * their transactions while the parser goes on. The main thread processes batches itself when it
 * has no worker, and helps when it has to wait. Batches are collected in order: each
 * transaction gets its md5 then (until then its md5 is ""), and none does after a checksum error
 * (crcError). A read buffer is reused only once the batches that refer to it are collected.
 * Transactions hashing more than BATCH_TX_MAX bytes stream into node:crypto instead.
 */
class HashPool {
  private layout: PoolLayout;
  private read: Uint8Array;
  private inline: Uint8Array;
  private meta: Int32Array;
  private ctl: Int32Array;
  private workers: Worker[] = [];
  private process: (slot: number) => void;
  private bufferSize: number;
  private readViews: Uint8Array[] = [];
  private readFree: number[] = [];
  /** Read buffers given up by the parser: [id, batches to collect before it is reused]. */
  private readRetired: Array<[number, number]> = [];
  private curRead: Uint8Array | null = null;
  private curReadId = -1;
  private curReadBase = 0;
  /** The batch being filled: slot, counts, inline bytes used, work. */
  private cur = 0;
  private nrec = 0;
  private nspan = 0;
  private ncrc = 0;
  private inlineUsed = 0;
  private work = 0;
  private freeSlots: number[] = [];
  /** Published slots, in publication order. */
  private outstanding: number[] = [];
  private txs: BinlogTransaction[][];
  /** md5s known before their batch is collected (node:crypto), else "". */
  private known: string[][];
  /** File offsets of the checksummed events of each slot (for error messages). */
  private crcPos: Float64Array[];
  private published = 0;
  private collected = 0;
  /** The open transaction: its first span (-1: none open), bytes, inline bytes used before it. */
  private openSpan = -1;
  private openLen = 0;
  private openInline = 0;
  /** The open transaction when it streams into node:crypto. */
  private node: Hash | null = null;
  /** File named in checksum errors. */
  file = "";
  /** The first checksum error (in file order); no transaction gets its md5 after it. */
  crcError: BinlogError | null = null;

  constructor(workers: number, bufferSize: number) {
    const slots = workers > 0 ? 4 + 4 * workers : 1;
    const readBuffers = workers > 0 ? READ_BUFFERS : 1;
    const layout = poolLayout(slots);
    this.layout = layout;
    this.bufferSize = bufferSize;
    const shared = workers > 0;
    const mk = (n: number) => shared ? new SharedArrayBuffer(n) : new ArrayBuffer(n);
    const read = mk(readBuffers * bufferSize);
    const inline = mk(slots * layout.inline);
    this.read = new Uint8Array(read);
    this.inline = new Uint8Array(inline);
    this.meta = new Int32Array(mk(slots * layout.stride * 4));
    this.ctl = new Int32Array(mk((C_QUEUE + 2 * slots) * 4));
    // crcRange is set once node:zlib is loaded, after the pool is made (see readBatches).
    const crc = (b: Uint8Array, from: number, to: number) => crcRange(b, from, to);
    this.process = batchKernel(read, inline, this.meta, layout, crc);
    for (let i = 0; i < readBuffers; i++) {
      this.readViews.push(this.read.subarray(i * bufferSize, (i + 1) * bufferSize));
      this.readFree.push(readBuffers - 1 - i);
    }
    this.txs = Array.from({ length: slots }, () => []);
    this.known = Array.from({ length: slots }, () => []);
    this.crcPos = Array.from({ length: slots }, () => new Float64Array(layout.crcs));
    for (let s = slots - 1; s > 0; s--) this.freeSlots.push(s);
    if (workers > 0) this.startWorkers(workers, read, inline);
  }

  private startWorkers(n: number, read: ArrayBufferLike, inline: ArrayBufferLike): void {
    const url = URL.createObjectURL(new Blob([workerSource()], { type: "text/javascript" }));
    try {
      for (let k = 0; k < n; k++) {
        const wk = new Worker(url, { type: "module" });
        // A worker that fails leaves its batches to the main thread (see progress); its error
        // must not end the process.
        wk.onerror = (e) => e.preventDefault();
        wk.postMessage({
          read,
          inline,
          meta: this.meta,
          ctl: this.ctl,
          layout: this.layout,
          idx: {
            published: C_PUBLISHED,
            claimed: C_CLAIMED,
            stop: C_STOP,
            done: C_DONE,
            sleeping: C_SLEEPING,
            queue: C_QUEUE,
          },
        });
        this.workers.push(wk);
      }
    } catch {
      // No workers here: the main thread processes every batch (see help).
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  /** A read buffer for the parser (of the size given to the constructor). */
  takeReadBuffer(): Uint8Array {
    let id = -1;
    while (id < 0) {
      if (this.readFree.length > 0) id = this.readFree.pop()!;
      else {
        const i = this.readRetired.findIndex(([, need]) => this.collected >= need);
        if (i >= 0) id = this.readRetired.splice(i, 1)[0][0];
        else this.progress();
      }
    }
    this.curRead = this.readViews[id];
    this.curReadId = id;
    this.curReadBase = id * this.bufferSize;
    return this.curRead;
  }

  /** The parser gives up its read buffer: nothing may refer to it once its batches are done. */
  retireReadBuffer(): void {
    if (this.curRead === null) return;
    this.inlineOpenSpans();
    this.rotate();
    this.readRetired.push([this.curReadId, this.published]);
    this.curRead = null;
    this.curReadId = -1;
  }

  /** Starts a transaction, discarding one still open. */
  begin(): void {
    this.abort();
    if (this.nrec === this.layout.recs) this.rotate();
    this.openSpan = this.nspan;
    this.openLen = 0;
    this.openInline = this.inlineUsed;
  }

  /** Discards the open transaction, if any. */
  abort(): void {
    if (this.openSpan >= 0 && this.node === null) {
      this.nspan = this.openSpan;
      this.inlineUsed = this.openInline;
      this.work -= this.openLen;
    }
    this.openSpan = -1;
    this.node = null;
  }

  /** Adds b[from, to) to the open transaction. */
  updateRange(b: Uint8Array, from: number, to: number): void {
    const n = to - from;
    if (n <= 0) return;
    if (this.node === null && this.openLen + n > this.layout.txMax) this.toNode();
    const inRead = b === this.curRead;
    if (this.node === null && !this.fits(inRead, n)) {
      this.rotate();
      if (!this.fits(inRead, n)) this.toNode();
    }
    if (this.node !== null) {
      this.node.update(b.subarray(from, to));
      return;
    }
    let src: number;
    if (inRead) src = this.curReadBase + from;
    else {
      const at = this.cur * this.layout.inline + this.inlineUsed;
      const d = this.inline;
      if (n <= 16) { for (let i = 0; i < n; i++) d[at + i] = b[from + i]; }
      else d.set(b.subarray(from, to), at);
      this.inlineUsed += n;
      src = -1 - at;
    }
    this.openLen += n;
    this.work += n;
    const meta = this.meta;
    const spans = this.cur * this.layout.stride + this.layout.at.span;
    if (this.nspan > this.openSpan) {
      // Contiguous with the previous span of the transaction: extend it.
      const last = spans + 2 * (this.nspan - 1);
      const s = meta[last];
      const l = meta[last + 1];
      if (src >= 0 ? s >= 0 && s + l === src : s < 0 && -1 - s + l === -1 - src) {
        meta[last + 1] = l + n;
        return;
      }
    }
    const at = spans + 2 * this.nspan;
    meta[at] = src;
    meta[at + 1] = n;
    this.nspan++;
  }

  /** Whether the batch has room for a span of n bytes (copied inline unless inRead). */
  private fits(inRead: boolean, n: number): boolean {
    return this.nspan < this.layout.spans &&
      (inRead || this.inlineUsed + n <= this.layout.inline);
  }

  update(b: Uint8Array): void {
    this.updateRange(b, 0, b.length);
  }

  /** Hashes the open transaction with node:crypto from now on (it is large). */
  toNode(): void {
    if (this.node !== null || this.openSpan < 0) return;
    const h = createHash("md5");
    const meta = this.meta;
    const spans = this.cur * this.layout.stride + this.layout.at.span;
    for (let k = this.openSpan; k < this.nspan; k++) {
      const s = meta[spans + 2 * k];
      const l = meta[spans + 2 * k + 1];
      h.update(s >= 0 ? this.read.subarray(s, s + l) : this.inline.subarray(-1 - s, -1 - s + l));
    }
    this.nspan = this.openSpan;
    this.inlineUsed = this.openInline;
    this.work -= this.openLen;
    this.node = h;
  }

  /**
   * Queues the checksum check of the event b[o, o + size) (its last 4 bytes are the stored
   * CRC32) found at file offset pos; false when b is not the current read buffer (the caller
   * checks it then).
   */
  crc(b: Uint8Array, o: number, size: number, pos: number): boolean {
    if (b !== this.curRead) return false;
    if (this.ncrc === this.layout.crcs) this.rotate();
    const at = this.cur * this.layout.stride + this.layout.at.crc + 2 * this.ncrc;
    this.meta[at] = this.curReadBase + o;
    this.meta[at + 1] = size;
    this.crcPos[this.cur][this.ncrc] = pos;
    this.ncrc++;
    this.work += size >> 2;
    if (this.work >= BATCH_WORK && this.openSpan < 0) this.rotate();
    return true;
  }

  /** Ends the open transaction `t`: its md5 is set when its batch is collected. */
  end(t: BinlogTransaction): void {
    const at = this.cur * this.layout.stride + this.layout.at.rec + 2 * this.nrec;
    let known = "";
    if (this.node !== null) {
      known = this.node.digest("hex");
      this.node = null;
      this.meta[at] = 0;
      this.meta[at + 1] = -1;
    } else {
      this.meta[at] = this.openSpan;
      this.meta[at + 1] = this.nspan - this.openSpan;
    }
    this.txs[this.cur].push(t);
    this.known[this.cur].push(known);
    this.nrec++;
    this.openSpan = -1;
    t.md5 = "";
    if (this.work >= BATCH_WORK || this.nrec === this.layout.recs) this.rotate();
  }

  /** The open transaction refers to the current read buffer no more: copies its spans inline. */
  private inlineOpenSpans(): void {
    if (this.openSpan < 0 || this.node !== null) return;
    const meta = this.meta;
    let need = 0;
    const spansOf = () => this.cur * this.layout.stride + this.layout.at.span;
    for (let k = this.openSpan, sp = spansOf(); k < this.nspan; k++) {
      if (meta[sp + 2 * k] >= 0) need += meta[sp + 2 * k + 1];
    }
    if (need === 0) return;
    if (this.inlineUsed + need > this.layout.inline) {
      this.rotate();
      if (this.inlineUsed + need > this.layout.inline) {
        this.toNode();
        return;
      }
    }
    for (let k = this.openSpan, sp = spansOf(); k < this.nspan; k++) {
      const s = meta[sp + 2 * k];
      if (s < 0) continue;
      const l = meta[sp + 2 * k + 1];
      const at = this.cur * this.layout.inline + this.inlineUsed;
      this.inline.set(this.read.subarray(s, s + l), at);
      this.inlineUsed += l;
      meta[sp + 2 * k] = -1 - at;
    }
  }

  /**
   * Publishes the current batch (if it has transactions or checksums) and continues in a free
   * slot, taking the open transaction's spans along.
   */
  private rotate(): void {
    if (this.nrec === 0 && this.ncrc === 0) return;
    const layout = this.layout;
    const meta = this.meta;
    const old = this.cur;
    const m = old * layout.stride;
    meta[m + layout.at.recs] = this.nrec;
    meta[m + layout.at.spans] = this.nspan;
    meta[m + layout.at.crcs] = this.ncrc;
    const open = this.openSpan >= 0 && this.node === null;
    const first = this.openSpan;
    const count = open ? this.nspan - this.openSpan : 0;
    // The open transaction's inline bytes are all of [openInline, inlineUsed): it is the only
    // one writing there since it began.
    const inlineFrom = old * layout.inline + this.openInline;
    const inlineTo = old * layout.inline + this.inlineUsed;
    this.publish(old);
    this.cur = this.acquireSlot();
    this.nrec = 0;
    this.ncrc = 0;
    this.nspan = 0;
    this.inlineUsed = 0;
    this.work = 0;
    if (this.openSpan >= 0) {
      this.openSpan = 0;
      this.openInline = 0;
    }
    if (!open) return;
    // The new slot may be the old one (then already processed): copyWithin moves correctly,
    // and span k goes to index k - first <= k, so ascending order reads each entry first.
    const to = this.cur * layout.inline;
    this.inline.copyWithin(to, inlineFrom, inlineTo);
    this.inlineUsed = inlineTo - inlineFrom;
    const shift = to - inlineFrom;
    const src = m + layout.at.span + 2 * first;
    const dst = this.cur * layout.stride + layout.at.span;
    for (let k = 0; k < count; k++) {
      const s = meta[src + 2 * k];
      meta[dst + 2 * k] = s >= 0 ? s : s - shift;
      meta[dst + 2 * k + 1] = meta[src + 2 * k + 1];
    }
    this.nspan = count;
    this.work = this.openLen;
  }

  private publish(slot: number): void {
    const slots = this.layout.slots;
    const ctl = this.ctl;
    this.outstanding.push(slot);
    this.published++;
    if (this.workers.length === 0) {
      this.process(slot);
      this.collect();
      return;
    }
    Atomics.store(ctl, C_QUEUE + slots + slot, 0);
    Atomics.store(ctl, C_QUEUE + ((this.published - 1) % slots), slot);
    Atomics.store(ctl, C_PUBLISHED, this.published);
    if (Atomics.load(ctl, C_SLEEPING) > 0) Atomics.notify(ctl, C_PUBLISHED, 1);
  }

  /** Collects the oldest published batch (processed): md5s, checksum error, free slot. */
  private collect(): void {
    const slot = this.outstanding.shift()!;
    const layout = this.layout;
    const meta = this.meta;
    const m = slot * layout.stride;
    const fail = meta[m + layout.at.crcFail];
    if (fail >= 0 && this.crcError === null) {
      const stored = meta[m + layout.at.crcStored] >>> 0;
      const computed = meta[m + layout.at.crcComputed] >>> 0;
      this.crcError = new BinlogError(
        "corrupt",
        this.file,
        this.crcPos[slot][fail],
        `bad CRC32 checksum (stored 0x${hex8(stored)}, computed 0x${hex8(computed)})`,
      );
    }
    const txs = this.txs[slot];
    const known = this.known[slot];
    // After a bad checksum, only the transactions that end before that event get their md5.
    const limit = this.crcError === null
      ? Infinity
      : fail >= 0 && this.crcError.offset === this.crcPos[slot][fail]
      ? this.crcError.offset
      : -1;
    let d = m + layout.at.digest;
    for (let r = 0; r < txs.length && txs[r].endOffset <= limit; r++, d += 4) {
      txs[r].md5 = known[r] !== "" ? known[r] : digestHex(meta, d);
    }
    this.txs[slot] = [];
    this.known[slot] = [];
    this.freeSlots.push(slot);
    this.collected++;
  }

  private processed(slot: number): boolean {
    return Atomics.load(this.ctl, C_QUEUE + this.layout.slots + slot) === 1;
  }

  /** Collects the batches processed so far, in order, without waiting. */
  poll(): void {
    while (this.outstanding.length > 0 && this.processed(this.outstanding[0])) this.collect();
  }

  /** Processes one published batch no worker has claimed yet; false when there is none. */
  private help(): boolean {
    const ctl = this.ctl;
    const slots = this.layout.slots;
    while (true) {
      const claimed = Atomics.load(ctl, C_CLAIMED);
      if (claimed >= Atomics.load(ctl, C_PUBLISHED)) return false;
      if (Atomics.compareExchange(ctl, C_CLAIMED, claimed, claimed + 1) !== claimed) continue;
      const slot = Atomics.load(ctl, C_QUEUE + (claimed % slots));
      this.process(slot);
      Atomics.store(ctl, C_QUEUE + slots + slot, 1);
      Atomics.add(ctl, C_DONE, 1);
      return true;
    }
  }

  /** Seconds of waiting without any batch done after which the main thread takes over. */
  private stalled = 0;

  /** Makes progress: collects the oldest batch, else processes one, else waits for one. */
  private progress(): void {
    if (this.outstanding.length === 0) {
      throw new BinlogError("internal", this.file, -1, "hash pool waits for nothing");
    }
    const head = this.outstanding[0];
    if (this.processed(head)) {
      this.collect();
      return;
    }
    if (this.help()) return;
    const done = Atomics.load(this.ctl, C_DONE);
    if (this.processed(head)) return;
    if (Atomics.wait(this.ctl, C_DONE, done, 1000) !== "timed-out") {
      this.stalled = 0;
      return;
    }
    // A worker holds the batch and does not finish it (it died?): process it here. Both
    // write the same results, so a late worker does no harm.
    if (++this.stalled >= 5) {
      this.process(head);
      Atomics.store(this.ctl, C_QUEUE + this.layout.slots + head, 1);
    }
  }

  /** A free slot, collecting, processing or waiting for batches when all are taken. */
  private acquireSlot(): number {
    while (this.freeSlots.length === 0) this.progress();
    return this.freeSlots.pop()!;
  }

  /**
   * End of a file: gives up the read buffer (an open transaction may continue in the next
   * file), publishes the batch and waits until every transaction ended so far is collected.
   */
  endFile(): void {
    this.retireReadBuffer();
    this.rotate();
    while (this.outstanding.length > 0) this.progress();
  }

  /** Stops the workers. */
  close(): void {
    if (this.workers.length === 0) return;
    Atomics.store(this.ctl, C_STOP, 1);
    Atomics.notify(this.ctl, C_PUBLISHED);
    for (const wk of this.workers) wk.terminate();
    this.workers = [];
  }
}

/** An open transaction group. */
interface Group {
  /** File (and its index in the list) holding the first event. */
  file: string;
  fileIndex: number;
  start: number;
  md5: HashPool | null;
  gtid?: string;
  timestamp: number;
  serverId: number;
  inTrx: boolean;
  standalone: boolean;
}

/** A transaction open at the end of one file, offered to the next file if it is a relay log. */
interface Carry {
  group: Group;
  /** Offset of the end of the file it was open at. */
  fileEnd: number;
}

/** Start file index of transactions, for tailTransactions (set only when asked for). */
const START_FILE_INDEX = new WeakMap<BinlogTransaction, number>();

const QK_OTHER = 0;
const QK_BEGIN = 1;
const QK_END = 2; // COMMIT, ROLLBACK: terminator, not hashed
const QK_XA_START = 3;
const QK_XA_END_TRX = 4; // XA COMMIT / XA ROLLBACK: terminator, hashed
const QK_XA_OTHER = 5; // XA END, XA PREPARE queries: hashed
const QK_START_TRX = 6; // a statement that opens a transaction (CREATE ... START TRANSACTION)

/**
 * TABLE_MAP: end of the part hashed (flags, names, column types and metadata, null bitmap),
 * leaving out the optional metadata block that binlog_row_metadata adds on some servers only.
 * Returns `end` when the layout does not parse.
 */
function tableMapEnd(b: Uint8Array, from: number, end: number): number {
  let p = from + 2;
  if (p >= end) return end;
  p += 1 + b[p] + 1;
  if (p >= end) return end;
  p += 1 + b[p] + 1;
  const cols = packedInt(b, p, end);
  if (!cols) return end;
  p += cols[1] + cols[0];
  const meta = packedInt(b, p, end);
  if (!meta) return end;
  p += meta[1] + meta[0] + ((cols[0] + 7) >> 3);
  return p <= end ? p : end;
}

/** Classifies a statement; `complete` is false when only its beginning is available. */
function queryKind(b: Uint8Array, from: number, to: number, complete = true): number {
  let i = from;
  while (i < to && (b[i] === 0x20 || b[i] === 0x0a || b[i] === 0x09 || b[i] === 0x0d)) i++;
  let j = to;
  while (j > i && (b[j - 1] === 0x20 || b[j - 1] === 0x0a || b[j - 1] === 0x3b)) j--;
  const n = j - i;
  if (n > 40 || n < 5) {
    if (n >= 8 && (b[i] | 0x20) === 0x78 && (b[i + 1] | 0x20) === 0x61) return xaKind(b, i, j);
    // MySQL 8.0.21+ logs CREATE TABLE ... SELECT as one transaction whose first query ends in
    // START TRANSACTION; its rows and XID follow.
    if (complete && n > 17) {
      const tail = String.fromCharCode(...b.subarray(j - 17, j)).toUpperCase();
      if (tail === "START TRANSACTION") return QK_START_TRX;
    }
    return QK_OTHER;
  }
  const s = String.fromCharCode(...b.subarray(i, j)).toUpperCase();
  if (s === "BEGIN") return QK_BEGIN;
  if (s === "COMMIT" || s === "ROLLBACK") return QK_END;
  if (s.startsWith("XA ")) return xaKind(b, i, j);
  return QK_OTHER;
}

function xaKind(b: Uint8Array, i: number, j: number): number {
  const s = String.fromCharCode(...b.subarray(i, Math.min(j, i + 12))).toUpperCase();
  if (s.startsWith("XA START") || s.startsWith("XA BEGIN")) return QK_XA_START;
  if (s.startsWith("XA COMMIT") || s.startsWith("XA ROLLBACK")) return QK_XA_END_TRX;
  return QK_XA_OTHER;
}

/** MySQL length-encoded integer; returns [value, bytes used] or null if malformed. */
function packedInt(b: Uint8Array, o: number, end: number): [number, number] | null {
  if (o >= end) return null;
  const f = b[o];
  if (f < 251) return [f, 1];
  if (f === 252 && o + 3 <= end) return [u16(b, o + 1), 3];
  if (f === 253 && o + 4 <= end) return [b[o + 1] | (b[o + 2] << 8) | (b[o + 3] << 16), 4];
  if (f === 254 && o + 9 <= end) return [u32(b, o + 1) + u32(b, o + 5) * 2 ** 32, 9];
  return null;
}

/** Variable-length unsigned integer of the MySQL serialization library (GTID_TAGGED). */
function serialVarUint(b: Uint8Array, o: number, end: number): [bigint, number] | null {
  if (o >= end) return null;
  const first = b[o];
  let n = 1;
  while (n < 9 && (first >> (n - 1)) & 1) n++;
  if (o + n > end) return null;
  if (n === 9) return [u64(b, o + 1), 9];
  let v = 0n;
  for (let k = n - 1; k >= 0; k--) v = (v << 8n) | BigInt(b[o + k]);
  return [v >> BigInt(n), n];
}

function uuidString(bytes: number[]): string {
  const h = bytes.map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Parses a GTID_TAGGED body (serialization format v2) into `uuid:tag:gno`. */
function taggedGtid(b: Uint8Array, o: number, end: number): string | undefined {
  if (o >= end || b[o] !== 2) return undefined;
  let p = o + 1;
  const size = serialVarUint(b, p, end);
  if (!size) return undefined;
  p += size[1];
  const lnif = serialVarUint(b, p, end);
  if (!lnif) return undefined;
  p += lnif[1];
  const fieldsEnd = Math.min(end, o + Number(size[0]));
  let sid: number[] | undefined;
  let gno: bigint | undefined;
  let tag: string | undefined;
  while (p < fieldsEnd) {
    const fid = serialVarUint(b, p, fieldsEnd);
    if (!fid) return undefined;
    p += fid[1];
    const id = Number(fid[0]);
    if (id === 1) {
      sid = [];
      for (let k = 0; k < 16; k++) {
        const v = serialVarUint(b, p, fieldsEnd);
        if (!v) return undefined;
        sid.push(Number(v[0]) & 0xff);
        p += v[1];
      }
    } else if (id === 3) {
      const len = serialVarUint(b, p, fieldsEnd);
      if (!len) return undefined;
      p += len[1];
      tag = new TextDecoder().decode(b.subarray(p, p + Number(len[0])));
      p += Number(len[0]);
    } else if (id <= 11) {
      const v = serialVarUint(b, p, fieldsEnd);
      if (!v) return undefined;
      p += v[1];
      if (id === 2) gno = v[0] >> 1n;
    } else break;
    if (sid && gno !== undefined && tag !== undefined) break;
  }
  if (!sid || gno === undefined) return undefined;
  return tag ? `${uuidString(sid)}:${tag}:${gno}` : `${uuidString(sid)}:${gno}`;
}

/** Decompresses a MariaDB compressed block (header byte, big-endian length, zlib data). */
function mariaUncompress(
  b: Uint8Array,
  o: number,
  end: number,
  fail: (kind: BinlogErrorKind, d: string) => never,
): Uint8Array {
  if (o >= end) fail("corrupt", "compressed event has no compressed data");
  const h = b[o];
  const lenLen = h & 7;
  const alg = (h >> 4) & 7;
  if ((h & 0x80) === 0 || lenLen < 1 || lenLen > 4) {
    fail("corrupt", `bad compression header byte 0x${h.toString(16)}`);
  }
  if (alg !== 0) fail("unsupported", `unknown MariaDB event compression algorithm ${alg}`);
  if (o + 1 + lenLen > end) fail("corrupt", "compressed event header truncated");
  let len = 0;
  for (let k = 0; k < lenLen; k++) len = len * 256 + b[o + 1 + k];
  if (len > MAX_WHOLE_EVENT) {
    fail("unsupported", `compressed event of ${len} bytes exceeds the ${MAX_WHOLE_EVENT} limit`);
  }
  let out: Uint8Array;
  try {
    out = inflateSync(b.subarray(o + 1 + lenLen, end), { maxOutputLength: Math.max(len, 1) });
  } catch (e) {
    fail("corrupt", `cannot decompress zlib data (${(e as Error).message})`);
  }
  if (out.length !== len) {
    fail("corrupt", `decompressed ${out.length} bytes, header says ${len}`);
  }
  return out;
}

/** A byte source: a file or a stream of chunks. */
interface ByteSource {
  name: string;
  final: boolean;
  read(into: Uint8Array): Promise<number | null>;
  /** Advances by n bytes without returning them; false at end of input. */
  skip(n: number): Promise<number>;
  close(): void;
}

async function openFile(path: string, final: boolean): Promise<ByteSource> {
  let file: Deno.FsFile;
  try {
    const st = await Deno.stat(path);
    if (st.isDirectory) throw new BinlogError("io", path, -1, "cannot read: is a directory");
    file = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof BinlogError) throw e;
    throw new BinlogError("io", path, -1, `cannot open: ${ioReason(e)}`);
  }
  return {
    name: path,
    final,
    read(into) {
      try {
        // Synchronous reads: the data is usually in the page cache, and an async round trip
        // per buffer costs more than it saves.
        return Promise.resolve(file.readSync(into));
      } catch (e) {
        return Promise.reject(new BinlogError("io", path, -1, `cannot read: ${ioReason(e)}`));
      }
    },
    async skip(n) {
      try {
        const here = await file.seek(0, Deno.SeekMode.Current);
        const size = (await file.stat()).size;
        const to = Math.min(size, here + n);
        await file.seek(to, Deno.SeekMode.Start);
        return to - here;
      } catch (e) {
        throw new BinlogError("io", path, -1, `cannot seek: ${ioReason(e)}`);
      }
    },
    close() {
      try {
        file.close();
      } catch {
        // already closed
      }
    },
  };
}

function ioReason(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file or directory";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  const m = e instanceof Error ? e.message : String(e);
  return m.split("\n")[0].replace(/^./, (c) => c.toLowerCase());
}

function streamSource(s: BinlogStream): ByteSource {
  const it = s.chunks[Symbol.asyncIterator]();
  let cur: Uint8Array | null = null;
  let curPos = 0;
  let done = false;
  async function next(): Promise<boolean> {
    while (!done && (cur === null || curPos >= cur.length)) {
      const r = await it.next();
      if (r.done) {
        done = true;
        cur = null;
      } else {
        cur = r.value;
        curPos = 0;
      }
    }
    return !done;
  }
  return {
    name: s.name,
    final: true,
    async read(into) {
      if (!(await next()) || cur === null) return null;
      const n = Math.min(into.length, cur.length - curPos);
      into.set(cur.subarray(curPos, curPos + n));
      curPos += n;
      return n;
    },
    async skip(n) {
      let left = n;
      while (left > 0 && (await next()) && cur !== null) {
        const k = Math.min(left, cur.length - curPos);
        curPos += k;
        left -= k;
      }
      return n - left;
    },
    close() {
      it.return?.();
    },
  };
}

interface ParserOptions {
  verify: boolean;
  warn: (m: string) => void;
  bufferSize: number;
  /** Where transactions are hashed; null when not hashing. */
  pool: HashPool | null;
}

/** Parser of one file or stream: framing, checksums, grouping, hashing. */
class StreamParser {
  private src: ByteSource;
  private buf: Uint8Array;
  private lo = 0;
  private hi = 0;
  /** File offset of buf[0]. */
  private base = 0;
  private eof = false;
  private fmt: Format | null = null;
  private group: Group | null = null;
  private out: BinlogTransaction[] = [];
  private verify: boolean;
  private warn: (m: string) => void;
  private startPosition: number;
  private fileIndex: number;
  /** Open transaction left by the previous file, adopted if this file is a relay log. */
  carryIn: Carry | null = null;
  /** Open transaction at the end of this (non-final) file. */
  carryOut: Carry | null = null;
  recordStartFile = false;
  /** Position/log_pos override while processing the inner events of a payload. */
  private outerEnd = -1;
  private outerLogPos = 0;
  private outerPos = 0;
  private prefixScratch = new Uint8Array(11);
  private prefix9 = this.prefixScratch.subarray(0, 9);
  private pool: HashPool | null;
  /** How the current event is hashed (see begin): planPrefix, then bytes [planFrom, planTo). */
  private planPrefix: Uint8Array = this.prefix9;
  private planFrom = 0;
  private planTo = 0;

  constructor(
    src: ByteSource,
    opts: ParserOptions,
    startPosition: number,
    fileIndex = 0,
  ) {
    this.pool = opts.pool;
    this.fileIndex = fileIndex;
    this.src = src;
    if (this.pool !== null) {
      this.pool.file = src.name;
      this.buf = this.pool.takeReadBuffer();
    } else this.buf = new Uint8Array(opts.bufferSize);
    this.verify = opts.verify;
    this.warn = opts.warn;
    this.startPosition = startPosition;
  }

  private fail(kind: BinlogErrorKind, offset: number, detail: string): never {
    throw new BinlogError(kind, this.src.name, offset, detail);
  }

  /** Makes at least `min` bytes available from lo (min <= buffer size); returns bytes available. */
  private async fill(min: number): Promise<number> {
    if (this.hi - this.lo >= min || this.eof) return this.hi - this.lo;
    if (this.lo > 0) this.moveTail();
    while (this.hi < min && !this.eof) {
      const n = await this.src.read(this.buf.subarray(this.hi));
      if (n === null || n === 0) this.eof = true;
      else this.hi += n;
    }
    return this.hi - this.lo;
  }

  /**
   * Moves the unconsumed bytes [lo, hi) to the start of a buffer: the same one, or with a pool
   * a fresh one (the batches may still refer to this one).
   */
  private moveTail(): void {
    const old = this.buf;
    const lo = this.lo;
    const hi = this.hi;
    if (this.pool !== null) {
      this.pool.retireReadBuffer();
      this.buf = this.pool.takeReadBuffer();
    }
    if (this.buf === old) old.copyWithin(0, lo, hi);
    else this.buf.set(old.subarray(lo, hi));
    this.base += lo;
    this.hi = hi - lo;
    this.lo = 0;
  }

  /** Consumes n bytes that may extend past the buffer. */
  private async skipBytes(n: number): Promise<number> {
    const inBuf = Math.min(n, this.hi - this.lo);
    this.lo += inBuf;
    if (inBuf === n) return n;
    // Buffer is empty now; skip the rest in the source.
    this.moveTail();
    const k = await this.src.skip(n - inBuf);
    this.base += k;
    if (k < n - inBuf) this.eof = true;
    return inBuf + k;
  }

  /**
   * The file's transactions in order, in arrays; each once its md5 is known. On an error, the
   * transactions complete before it come first.
   */
  async *run(): AsyncGenerator<BinlogTransaction[]> {
    const pool = this.pool;
    let error: unknown = null;
    try {
      yield* this.walk();
      if (pool !== null) {
        pool.endFile();
        if (pool.crcError !== null) throw pool.crcError;
      }
    } catch (e) {
      error = e;
    }
    if (error !== null && pool !== null) {
      // A bad checksum found by now comes first in the file (the event was read before).
      pool.abort();
      pool.endFile();
      if (pool.crcError !== null) error = pool.crcError;
    }
    const done = this.ready();
    if (done !== null) yield done;
    this.out = [];
    if (error !== null) throw error;
  }

  /** Transactions at the head of `out` whose md5 is known (all of them without hashing). */
  private ready(): BinlogTransaction[] | null {
    const out = this.out;
    if (out.length === 0) return null;
    let n = out.length;
    if (this.pool !== null) {
      this.pool.poll();
      n = 0;
      while (n < out.length && out[n].md5 !== "") n++;
      if (n === 0) return null;
    }
    if (n === out.length) {
      this.out = [];
      return out;
    }
    this.out = out.slice(n);
    return out.slice(0, n);
  }

  private async *walk(): AsyncGenerator<BinlogTransaction[]> {
    const have = await this.fill(4);
    if (have === 0) this.fail("not_binlog", 0, "not a binlog: empty file");
    for (let i = 0; i < 4; i++) {
      if (i >= have || this.buf[i] !== MAGIC[i]) {
        this.fail("not_binlog", 0, "not a binlog: bad magic number (expected fe 62 69 6e)");
      }
    }
    this.lo = 4;
    let first = true;
    while (true) {
      // Synchronous inner loop over whole events present in the buffer.
      const b = this.buf;
      let lo = this.lo;
      const hi = this.hi;
      // Hand transactions over every few so that they die young (cheap for the garbage
      // collector; RSS grows when many survive a scavenge).
      const limit = this.out.length + 64;
      while (hi - lo >= HEADER_LEN && this.out.length < limit) {
        const size = (b[lo + 9] | (b[lo + 10] << 8) | (b[lo + 11] << 16) | (b[lo + 12] << 24)) >>>
          0;
        if (size > hi - lo) break;
        const pos = this.base + lo;
        if (size < HEADER_LEN) {
          this.fail("corrupt", pos, `event size ${size} is below the 19-byte header`);
        }
        if (first) this.checkFirst(b, lo, pos);
        first = false;
        if (pos < this.startPosition) this.preStartEvent(b, lo, size, pos);
        else this.event(b, lo, size, pos);
        lo += size;
      }
      this.lo = lo;
      const done = this.ready();
      if (done !== null) yield done;
      if (this.pool?.crcError) throw this.pool.crcError;
      // Need more input: a header, or an event larger than what is buffered.
      const avail = await this.fill(HEADER_LEN);
      if (avail < HEADER_LEN) {
        this.atEnd(avail);
        break;
      }
      const size = u32(this.buf, this.lo + 9);
      const pos = this.base + this.lo;
      if (size < HEADER_LEN) {
        this.fail("corrupt", pos, `event size ${size} is below the 19-byte header`);
      }
      if (size > MAX_EVENT_SIZE) {
        this.fail("corrupt", pos, `event size ${size} is larger than any server writes`);
      }
      if (size <= this.buf.length) {
        const got = await this.fill(size);
        if (got < size) {
          this.atEnd(got);
          break;
        }
        continue;
      }
      if (first) this.checkFirst(this.buf, this.lo, pos);
      first = false;
      if (!(await this.bigEvent(size, pos))) break;
      const big = this.ready();
      if (big !== null) yield big;
    }
  }

  private checkFirst(b: Uint8Array, o: number, pos: number): void {
    const type = b[o + 4];
    if (type === T_FDE) return;
    if (type === 1) {
      this.fail("unsupported", pos, "binlog format v1/v3 (START_EVENT_V3) is not read");
    }
    this.fail(
      "not_binlog",
      pos,
      `not a binlog: first event has type ${type}, expected FORMAT_DESCRIPTION (15)`,
    );
  }

  /** End of input with `avail` unconsumed bytes (a partial event, or none). */
  private atEnd(avail: number): void {
    const pos = this.base + this.lo;
    if (avail > 0 && this.startPosition > pos) {
      this.fail("usage", this.startPosition, "start position is past the end of the file");
    }
    if (this.startPosition > pos) {
      this.fail("usage", this.startPosition, "start position is past the end of the file");
    }
    if (avail > 0 && !this.src.final) {
      this.fail("corrupt", pos, `event of ${avail} bytes truncated (the file is not the last one)`);
    }
    const end = pos + avail;
    this.dropCarry();
    if (this.group && !this.src.final) {
      // Relay logs can rotate inside a transaction: the next file decides (see dropCarry).
      this.carryOut = { group: this.group, fileEnd: end };
      this.group = null;
    } else if (this.group) {
      this.warnPartial(this.group, end);
      this.group = null;
      this.pool?.abort();
    } else if (avail > 0) {
      this.warn(
        `${this.src.name}: offset ${pos}: partial event of ${avail} bytes at end of file left out`,
      );
    }
  }

  private warnPartial(g: Group, end: number): void {
    this.warn(
      `${g.file}: offset ${g.start}: partial transaction of ${
        end - g.start
      } bytes at end of file left out`,
    );
  }

  /** The previous file's open transaction is not continued here: report it left out. */
  private dropCarry(): void {
    const c = this.carryIn;
    if (c === null) return;
    this.carryIn = null;
    this.warnPartial(c.group, c.fileEnd);
    // The carried transaction is the one open in the pool (this file has opened none).
    if (this.group === null) this.pool?.abort();
  }

  /** Events before --start-position: only format descriptions matter. */
  private preStartEvent(b: Uint8Array, o: number, size: number, pos: number): void {
    if (pos + size > this.startPosition) {
      this.fail(
        "usage",
        this.startPosition,
        `start position is not at an event boundary (an event spans ${pos} to ${pos + size})`,
      );
    }
    const type = b[o + 4];
    if (type === T_FDE) this.formatDescription(b, o, size, pos);
    else if (type === T_START_ENCRYPTION) {
      this.fail("unsupported", pos, "encrypted binlog (START_ENCRYPTION event): cannot read it");
    }
  }

  private formatDescription(b: Uint8Array, o: number, size: number, pos: number): void {
    const body = o + HEADER_LEN;
    const bodyLen = size - HEADER_LEN;
    if (bodyLen < 57) this.fail("corrupt", pos, "FORMAT_DESCRIPTION event too short");
    const binlogVersion = u16(b, body);
    if (binlogVersion !== 4) {
      this.fail("unsupported", pos, `binlog version ${binlogVersion} is not read (only v4)`);
    }
    let vEnd = body + 2;
    while (vEnd < body + 52 && b[vEnd] !== 0) vEnd++;
    const version = String.fromCharCode(...b.subarray(body + 2, vEnd));
    const headerLen = b[body + 56];
    if (headerLen !== HEADER_LEN) {
      this.fail("unsupported", pos, `event header length ${headerLen} is not 19`);
    }
    let checksum = false;
    let phEnd = o + size;
    if (fdeHasChecksumTrailer(version)) {
      if (bodyLen < 57 + 5) this.fail("corrupt", pos, "FORMAT_DESCRIPTION event too short");
      const alg = b[o + size - 5];
      if (alg === 1) checksum = true;
      else if (alg !== 0 && alg !== 0xff) {
        this.fail("unsupported", pos, `unknown checksum algorithm ${alg}`);
      }
      phEnd = o + size - 5;
      if (checksum && this.verify) {
        // The server sets and clears the in-use flag (0x01) without updating the checksum.
        const head = b.slice(o, o + HEADER_LEN);
        head[17] &= 0xfe;
        const computed = crc32(b.subarray(o + HEADER_LEN, o + size - 4), crc32(head)) >>> 0;
        const stored = u32(b, o + size - 4);
        if (stored !== computed) {
          this.fail(
            "corrupt",
            pos,
            `bad CRC32 checksum (stored 0x${hex8(stored)}, computed 0x${hex8(computed)})`,
          );
        }
      }
    }
    this.fmt = { checksum, postHeader: b.slice(body + 57, phEnd) };
    if (this.carryIn !== null) {
      if ((u16(b, o + 17) & FLAG_RELAY_LOG) !== 0 && this.group === null) {
        // A relay log continues the previous one, possibly inside a transaction.
        this.group = this.carryIn.group;
        this.carryIn = null;
      } else this.dropCarry();
    }
  }

  private checkCrc(b: Uint8Array, o: number, size: number, pos: number): void {
    const stored = u32(b, o + size - 4);
    const computed = crcRange(b, o, o + size - 4);
    if (stored !== computed) {
      this.fail(
        "corrupt",
        pos,
        `bad CRC32 checksum (stored 0x${hex8(stored)}, computed 0x${hex8(computed)})`,
      );
    }
  }

  /** One complete event in b[o, o+size). */
  private event(b: Uint8Array, o: number, size: number, pos: number): void {
    const type = b[o + 4];
    if (type === T_FDE) {
      this.formatDescription(b, o, size, pos);
      return;
    }
    const fmt = this.fmt;
    if (fmt === null) this.fail("corrupt", pos, "event before any FORMAT_DESCRIPTION event");
    const crcLen = fmt.checksum ? 4 : 0;
    if (size < HEADER_LEN + crcLen) this.fail("corrupt", pos, `event size ${size} is too small`);
    if (crcLen && this.verify && !this.pool?.crc(b, o, size, pos)) this.checkCrc(b, o, size, pos);
    this.dispatch(b, o, size, size - crcLen, pos);
  }

  /** Routes a complete event whose content (without CRC) is b[o, o+end). */
  private dispatch(b: Uint8Array, o: number, size: number, end: number, pos: number): void {
    const type = b[o + 4];
    const flags = u16(b, o + 17);
    if ((flags & (FLAG_ARTIFICIAL | FLAG_RELAY_LOG)) !== 0 && this.outerEnd < 0) return;
    switch (type) {
      case T_START_ENCRYPTION:
        this.fail("unsupported", pos, "encrypted binlog (START_ENCRYPTION event): cannot read it");
        break;
      case T_TRANSACTION_PAYLOAD:
        this.payload(b, o, end, pos, size);
        return;
      case T_QUERY_COMPRESSED:
      case 166:
      case 167:
      case 168:
      case 169:
      case 170:
      case 171:
        this.mariaCompressed(b, o, size, end, pos);
        return;
    }
    if (this.begin(b, o, end, end, pos) && this.group !== null && this.group.md5 !== null) {
      const md5 = this.group.md5;
      md5.updateRange(this.planPrefix, 0, this.planPrefix.length);
      if (this.planTo > this.planFrom) md5.updateRange(b, o + this.planFrom, o + this.planTo);
    }
    this.finish(b, o, end, pos, size);
  }

  private hashPrefix(normType: number, ts: number, len: number, extra: number): Uint8Array {
    const p = extra >= 0 ? this.prefixScratch : this.prefix9;
    p[0] = normType;
    p[1] = ts & 0xff;
    p[2] = (ts >>> 8) & 0xff;
    p[3] = (ts >>> 16) & 0xff;
    p[4] = (ts >>> 24) & 0xff;
    p[5] = len & 0xff;
    p[6] = (len >>> 8) & 0xff;
    p[7] = (len >>> 16) & 0xff;
    p[8] = (len >>> 24) & 0xff;
    if (extra >= 0) {
      p[9] = extra & 0xff;
      p[10] = extra >>> 8;
    }
    return p;
  }

  private plan(prefix: Uint8Array, from: number, to: number): true {
    this.planPrefix = prefix;
    this.planFrom = from;
    this.planTo = to;
    return true;
  }

  private openGroup(b: Uint8Array, o: number, pos: number): Group {
    this.dropCarry();
    this.pool?.begin();
    const g: Group = {
      file: this.src.name,
      fileIndex: this.fileIndex,
      start: this.outerEnd >= 0 ? this.outerPos : pos,
      md5: this.pool,
      timestamp: u32(b, o),
      serverId: u32(b, o + 5),
      inTrx: false,
      standalone: false,
    };
    this.group = g;
    return g;
  }

  private dropOpenGroup(reason: string): void {
    const g = this.group;
    if (!g) return;
    this.warn(`${g.file}: offset ${g.start}: transaction left out: ${reason}`);
    this.group = null;
    this.pool?.abort();
  }

  /**
   * Group bookkeeping before hashing; returns whether the event is hashed, as
   * planPrefix then its bytes [planFrom, planTo).
   * Needs the event's bytes up to `avail` (relative to o), at least its prefix.
   */
  private begin(
    b: Uint8Array,
    o: number,
    end: number,
    avail: number,
    pos: number,
  ): boolean {
    const type = b[o + 4];
    const fmt = this.fmt!;
    const ts = u32(b, o);
    const body = HEADER_LEN;
    switch (type) {
      case T_QUERY:
      case T_EXECUTE_LOAD_QUERY: {
        const ph = postHeaderLen(fmt, type);
        if (ph < 11 || body + ph > avail) this.fail("corrupt", pos, "malformed QUERY event");
        const dbLen = b[o + body + 8];
        const statusLen = ph >= 13 ? u16(b, o + body + 11) : 0;
        const dbAt = body + ph + statusLen;
        const stmtAt = dbAt + dbLen + 1;
        if (stmtAt > end || stmtAt > avail) this.fail("corrupt", pos, "malformed QUERY event");
        const kind = queryKind(b, o + stmtAt, o + Math.min(end, avail), avail >= end);
        this.lastQueryKind = kind;
        return this.queryBegin(b, o, pos, kind, ts, dbAt, stmtAt, end);
      }
      case T_TABLE_MAP: {
        const tid = postHeaderLen(fmt, type) === 6 ? 4 : 6;
        if (body + tid > end) this.fail("corrupt", pos, "malformed TABLE_MAP event");
        if (!this.group) this.openGroup(b, o, pos);
        const from = body + tid;
        const to = tableMapEnd(b, o + from, o + Math.min(end, avail)) - o;
        return this.plan(this.hashPrefix(type, ts, to - from, -1), from, to);
      }
      case T_INTVAR:
      case T_RAND:
      case T_USER_VAR:
      case T_LOAD:
      case T_CREATE_FILE:
      case T_APPEND_BLOCK:
      case T_EXEC_LOAD:
      case T_DELETE_FILE:
      case T_NEW_LOAD:
      case T_BEGIN_LOAD_QUERY: {
        const from = body + postHeaderLen(fmt, type);
        if (from > end) this.fail("corrupt", pos, `malformed event of type ${type}`);
        if (!this.group) this.openGroup(b, o, pos);
        return this.plan(this.hashPrefix(type, ts, end - from, -1), from, end);
      }
      case T_XID:
      case T_XA_PREPARE:
        return false;
      case T_GTID:
      case T_ANONYMOUS_GTID:
      case T_GTID_TAGGED:
      case T_MARIA_GTID:
        this.gtidEvent(b, o, end, pos, type);
        return false;
      default: {
        const rk = rowsKind(type);
        if (rk === 0) return false;
        const ph = postHeaderLen(fmt, type);
        const tid = ph === 6 ? 4 : 6;
        let from = body + tid + 2;
        if (from > end) this.fail("corrupt", pos, "malformed ROWS event");
        const rowFlags = u16(b, o + body + tid);
        if (isRowsV2(type)) {
          if (from + 2 > avail) this.fail("corrupt", pos, "malformed ROWS event");
          const extra = u16(b, o + from);
          if (extra < 2 || from + extra > end) this.fail("corrupt", pos, "malformed ROWS event");
          from += extra;
        }
        if (!this.group) this.openGroup(b, o, pos);
        return this.plan(this.hashPrefix(rk, ts, end - from + 2, rowFlags), from, end);
      }
    }
  }

  private queryBegin(
    b: Uint8Array,
    o: number,
    pos: number,
    kind: number,
    ts: number,
    dbAt: number,
    stmtAt: number,
    end: number,
  ): boolean {
    const type = b[o + 4] === T_QUERY_COMPRESSED ? T_QUERY : b[o + 4];
    let g = this.group;
    if (kind === QK_BEGIN) {
      if (g?.inTrx) {
        // BEGIN inside a transaction: the previous one never committed (crashed server).
        this.dropOpenGroup("a BEGIN query started before its commit");
        g = null;
      }
      if (!g) g = this.openGroup(b, o, pos);
      g.inTrx = true;
      return false;
    }
    if (kind === QK_END) {
      return false;
    }
    if (!g) g = this.openGroup(b, o, pos);
    if (kind === QK_XA_START || kind === QK_START_TRX) g.inTrx = true;
    // XA statements are logged without the current database on replicas: hash NUL + text.
    const xa = kind === QK_XA_START || kind === QK_XA_END_TRX || kind === QK_XA_OTHER;
    const from = xa ? stmtAt - 1 : dbAt;
    return this.plan(this.hashPrefix(type, ts, end - from, -1), from, end);
  }

  /** Group bookkeeping after hashing: ends the group if this event terminates it. */
  private finish(b: Uint8Array, o: number, _end: number, pos: number, size: number): void {
    const type = b[o + 4];
    const g = this.group;
    if (!g) {
      if (type === T_XID || type === T_XA_PREPARE) {
        this.warn(
          `${this.src.name}: offset ${pos}: commit event without a transaction start ignored`,
        );
      }
      return;
    }
    let terminates = false;
    switch (type) {
      case T_XID:
      case T_XA_PREPARE:
        terminates = true;
        break;
      case T_QUERY:
      case T_EXECUTE_LOAD_QUERY:
      case T_QUERY_COMPRESSED: {
        const k = this.lastQueryKind;
        terminates = k === QK_END || k === QK_XA_END_TRX || (!g.inTrx && k !== QK_BEGIN &&
          k !== QK_XA_START) ||
          g.standalone;
        break;
      }
    }
    if (!terminates) return;
    this.group = null;
    const endOffset = this.outerEnd >= 0 ? this.outerEnd : pos + size;
    const logPos = this.outerEnd >= 0 ? this.outerLogPos : u32(b, o + 13);
    const md5 = "";
    const t: BinlogTransaction = g.gtid !== undefined
      ? {
        file: this.src.name,
        start: g.start,
        end: logPos,
        endOffset,
        md5,
        gtid: g.gtid,
        timestamp: g.timestamp,
        serverId: g.serverId,
      }
      : {
        file: this.src.name,
        start: g.start,
        end: logPos,
        endOffset,
        md5,
        timestamp: g.timestamp,
        serverId: g.serverId,
      };
    if (g.file !== this.src.name || g.fileIndex !== this.fileIndex) t.startFile = g.file;
    if (this.recordStartFile) START_FILE_INDEX.set(t, g.fileIndex);
    // Sets t.md5, now or when its batch is hashed.
    if (g.md5 !== null) g.md5.end(t);
    this.out.push(t);
  }

  private lastQueryKind = QK_OTHER;

  private gtidEvent(b: Uint8Array, o: number, end: number, pos: number, type: number): void {
    if (this.group) this.dropOpenGroup("a new GTID event started before its commit");
    const g = this.openGroup(b, o, pos);
    const body = o + HEADER_LEN;
    if (type === T_MARIA_GTID) {
      if (body + 13 > o + end) this.fail("corrupt", pos, "malformed GTID event");
      const hi = u32(b, body + 4);
      // Avoid BigInt for the usual sequence numbers (below 2^53).
      const seq = hi < 0x200000 ? hi * 2 ** 32 + u32(b, body) : u64(b, body);
      const domain = u32(b, body + 8);
      const flags2 = b[body + 12];
      g.gtid = `${domain}-${g.serverId}-${seq}`;
      g.standalone = (flags2 & 1) !== 0;
      g.inTrx = !g.standalone;
    } else if (type === T_GTID_TAGGED) {
      g.gtid = taggedGtid(b, body, o + end);
    } else {
      if (body + 25 > o + end) this.fail("corrupt", pos, "malformed GTID event");
      const sid: number[] = Array.from(b.subarray(body + 1, body + 17));
      const gno = u64(b, body + 17);
      if (type === T_GTID || gno !== 0n || sid.some((x) => x !== 0)) {
        g.gtid = `${uuidString(sid)}:${gno}`;
      }
    }
  }

  /** MySQL TRANSACTION_PAYLOAD: decompress and process the inner events. */
  private payload(b: Uint8Array, o: number, end: number, pos: number, size: number): void {
    let p = o + HEADER_LEN;
    const stop = o + end;
    let compression = -1;
    let payloadSize = -1;
    let uncompressed = -1;
    while (p < stop) {
      const t = packedInt(b, p, stop);
      if (!t) this.fail("corrupt", pos, "malformed TRANSACTION_PAYLOAD header");
      p += t[1];
      if (t[0] === 0) break;
      const l = packedInt(b, p, stop);
      if (!l) this.fail("corrupt", pos, "malformed TRANSACTION_PAYLOAD header");
      p += l[1];
      const v = packedInt(b, p, Math.min(stop, p + l[0]));
      if (!v) this.fail("corrupt", pos, "malformed TRANSACTION_PAYLOAD header");
      if (t[0] === 1) payloadSize = v[0];
      else if (t[0] === 2) compression = v[0];
      else if (t[0] === 3) uncompressed = v[0];
      p += l[0];
    }
    if (payloadSize < 0 || p + payloadSize > stop) {
      this.fail("corrupt", pos, "malformed TRANSACTION_PAYLOAD header");
    }
    const data = b.subarray(p, p + payloadSize);
    let inner: Uint8Array;
    if (compression === 255) inner = data;
    else if (compression === 0) {
      if (uncompressed > MAX_WHOLE_EVENT) {
        this.fail(
          "unsupported",
          pos,
          `compressed transaction of ${uncompressed} bytes is too large`,
        );
      }
      try {
        inner = new Uint8Array(
          zstdDecompressSync(data, { maxOutputLength: Math.max(uncompressed, 1) } as never),
        );
      } catch (e) {
        this.fail("corrupt", pos, `cannot decompress zstd payload (${(e as Error).message})`);
      }
    } else {
      this.fail("unsupported", pos, `unknown TRANSACTION_PAYLOAD compression type ${compression}`);
    }
    const savedEnd = this.outerEnd;
    this.outerEnd = pos + size;
    this.outerLogPos = u32(b, o + 13);
    this.outerPos = pos;
    try {
      let q = 0;
      while (q < inner.length) {
        if (inner.length - q < HEADER_LEN) {
          this.fail("corrupt", pos, "truncated event inside TRANSACTION_PAYLOAD");
        }
        const s = u32(inner, q + 9);
        if (s < HEADER_LEN || q + s > inner.length) {
          this.fail("corrupt", pos, "bad event size inside TRANSACTION_PAYLOAD");
        }
        const t = inner[q + 4];
        if (t === T_TRANSACTION_PAYLOAD || t === T_FDE) {
          this.fail("corrupt", pos, `unexpected event type ${t} inside TRANSACTION_PAYLOAD`);
        }
        this.dispatch(inner, q, s, s, pos);
        q += s;
      }
    } finally {
      this.outerEnd = savedEnd;
    }
  }

  /** MariaDB compressed QUERY/ROWS: hash as the uncompressed event. */
  private mariaCompressed(b: Uint8Array, o: number, size: number, end: number, pos: number): void {
    const type = b[o + 4];
    const fmt = this.fmt!;
    const ts = u32(b, o);
    const body = HEADER_LEN;
    const fail = (kind: BinlogErrorKind, d: string): never => this.fail(kind, pos, d);
    if (type === T_QUERY_COMPRESSED) {
      const ph = postHeaderLen(fmt, type);
      if (body + ph > end) this.fail("corrupt", pos, "malformed QUERY_COMPRESSED event");
      const dbLen = b[o + body + 8];
      const statusLen = ph >= 13 ? u16(b, o + body + 11) : 0;
      const dbAt = body + ph + statusLen;
      const stmtAt = dbAt + dbLen + 1;
      if (stmtAt > end) this.fail("corrupt", pos, "malformed QUERY_COMPRESSED event");
      const stmt = mariaUncompress(b, o + stmtAt, o + end, fail);
      const kind = queryKind(stmt, 0, stmt.length);
      this.lastQueryKind = kind;
      const hashed = this.queryBegin(b, o, pos, kind, ts, dbAt, stmtAt, end);
      if (hashed && this.group?.md5) {
        const len = stmtAt - this.planFrom + stmt.length;
        this.group.md5.update(this.hashPrefix(T_QUERY, ts, len, -1));
        this.group.md5.update(b.subarray(o + this.planFrom, o + stmtAt));
        this.group.md5.update(stmt);
      }
      this.finish(b, o, end, pos, size);
      return;
    }
    const rk = rowsKind(type);
    const ph = postHeaderLen(fmt, type);
    const tid = ph === 6 ? 4 : 6;
    let from = body + tid + 2;
    if (from > end) this.fail("corrupt", pos, "malformed compressed ROWS event");
    const rowFlags = u16(b, o + body + tid);
    if (isRowsV2(type)) {
      if (from + 2 > end) this.fail("corrupt", pos, "malformed compressed ROWS event");
      const extra = u16(b, o + from);
      if (extra < 2 || from + extra > end) this.fail("corrupt", pos, "malformed ROWS event");
      from += extra;
    }
    const w = packedInt(b, o + from, o + end);
    if (!w) this.fail("corrupt", pos, "malformed compressed ROWS event");
    const bitmaps = (rk === 31 ? 2 : 1) * ((w[0] + 7) >> 3);
    const compAt = from + w[1] + bitmaps;
    if (compAt > end) this.fail("corrupt", pos, "malformed compressed ROWS event");
    const rows = mariaUncompress(b, o + compAt, o + end, fail);
    if (!this.group) this.openGroup(b, o, pos);
    if (this.group?.md5) {
      const len = 2 + (compAt - from) + rows.length;
      this.group.md5.update(this.hashPrefix(rk, ts, len, rowFlags));
      this.group.md5.update(b.subarray(o + from, o + compAt));
      this.group.md5.update(rows);
    }
    this.finish(b, o, end, pos, size);
  }

  /**
   * An event larger than the read buffer: hashed and checksummed while streaming, never held
   * whole, except compressed events (bounded by MAX_WHOLE_EVENT). Returns false at end of input.
   */
  private async bigEvent(size: number, pos: number): Promise<boolean> {
    const type = this.buf[this.lo + 4];
    if (pos < this.startPosition) {
      if (pos + size > this.startPosition) this.preStartEvent(this.buf, this.lo, size, pos);
      const k = await this.skipBytes(size);
      if (k < size) {
        this.lo = this.hi = 0;
        this.atEnd(k);
        return false;
      }
      return true;
    }
    const fmt = this.fmt;
    if (fmt === null) this.fail("corrupt", pos, "event before any FORMAT_DESCRIPTION event");
    const crcLen = fmt.checksum ? 4 : 0;
    const whole = type === T_TRANSACTION_PAYLOAD || (type >= 165 && type <= 171) ||
      type === T_FDE || type === T_START_ENCRYPTION;
    if (whole) {
      if (size > MAX_WHOLE_EVENT) {
        this.fail("unsupported", pos, `compressed event of ${size} bytes exceeds the memory limit`);
      }
      const ev = new Uint8Array(size);
      let got = 0;
      while (got < size) {
        if (this.hi === this.lo && (await this.fill(1)) === 0) {
          this.atEnd(got);
          return false;
        }
        const k = Math.min(this.hi - this.lo, size - got);
        ev.set(this.buf.subarray(this.lo, this.lo + k), got);
        this.lo += k;
        got += k;
      }
      this.event(ev, 0, size, pos);
      return true;
    }
    const flags = u16(this.buf, this.lo + 17);
    const skipIt = (flags & (FLAG_ARTIFICIAL | FLAG_RELAY_LOG)) !== 0;
    const avail = await this.fill(Math.min(size, PREFIX_MAX));
    if (avail < Math.min(size, PREFIX_MAX)) {
      this.atEnd(avail);
      return false;
    }
    const end = size - crcLen;
    const hashed = skipIt ? false : this.begin(this.buf, this.lo, end, avail, pos);
    const md5 = hashed ? this.group?.md5 ?? null : null;
    const planFrom = this.planFrom;
    const planTo = this.planTo;
    if (md5) {
      // Its pieces pass through the read buffer one after the other: no span can refer to them.
      md5.toNode();
      md5.update(this.planPrefix);
    }
    const doCrc = crcLen > 0 && this.verify;
    const head = new Uint8Array(HEADER_LEN);
    head.set(this.buf.subarray(this.lo, this.lo + HEADER_LEN));
    const tail = new Uint8Array(4);
    let crc = 0;
    let done = 0;
    if (!doCrc && !md5) {
      const k = await this.skipBytes(size);
      if (k < size) {
        this.atEnd(k);
        return false;
      }
      done = size;
    }
    while (done < size) {
      if (this.hi === this.lo && (await this.fill(1)) === 0) {
        this.atEnd(done);
        return false;
      }
      const take = Math.min(this.hi - this.lo, size - done);
      const c0 = this.lo;
      if (doCrc) {
        const a = Math.min(take, Math.max(0, size - 4 - done));
        if (a > 0) crc = crc32(this.buf.subarray(c0, c0 + a), crc);
        for (let k = Math.max(0, size - 4 - done); k < take; k++) {
          tail[done + k - (size - 4)] = this.buf[c0 + k];
        }
      }
      if (md5) {
        const a = Math.max(planFrom, done);
        const z = Math.min(planTo, done + take);
        if (z > a) md5.update(this.buf.subarray(c0 + a - done, c0 + z - done));
      }
      this.lo += take;
      done += take;
    }
    if (doCrc) {
      const stored = u32(tail, 0);
      if (stored !== crc >>> 0) {
        this.fail(
          "corrupt",
          pos,
          `bad CRC32 checksum (stored 0x${hex8(stored)}, computed 0x${hex8(crc >>> 0)})`,
        );
      }
    }
    if (!skipIt) this.finish(head, 0, end, pos, size);
    return true;
  }
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/**
 * Reads transactions from binlog files (in order, as one stream) or from a raw byte stream.
 * Yields complete transactions in file order; throws BinlogError on bad input.
 */
export async function* readTransactions(
  source: BinlogSource,
  options: ReadOptions = {},
): AsyncGenerator<BinlogTransaction> {
  for await (const batch of readBatches(source, options, true)) yield* batch;
}

/** Inputs smaller than this are hashed without workers (starting one costs ~20-30 ms). */
const WORKER_MIN_INPUT = 32 * 1024 * 1024;

/** Hashing workers for a read: one per CPU beyond the first (at most 3) on large inputs. */
async function defaultWorkers(source: BinlogSource, start: number): Promise<number> {
  if (!Array.isArray(source)) return 0;
  const cpus = navigator.hardwareConcurrency ?? 1;
  if (cpus < 2) return 0;
  let total = -start;
  for (const f of source) {
    try {
      total += (await Deno.stat(f)).size;
    } catch {
      // Reported when the file is opened.
    }
  }
  return total >= WORKER_MIN_INPUT ? Math.min(cpus - 1, 3) : 0;
}

/** The transactions of the source in order, in arrays (see StreamParser.run). */
async function* readBatches(
  source: BinlogSource,
  options: ReadOptions,
  hashing: boolean,
  recordStartFile = false,
): AsyncGenerator<BinlogTransaction[]> {
  // The hashing workers start while node:crypto and node:zlib load (20-30 ms each).
  const native = loadNative();
  native.catch(() => {});
  const warn = options.onWarning ?? (() => {});
  const start = options.startPosition ?? 4;
  if (!Number.isSafeInteger(start) || start < 4) {
    throw new BinlogError(
      "usage",
      Array.isArray(source) ? source[0] ?? "-" : source.name,
      start,
      "start position must be an integer of at least 4",
    );
  }
  const workers = hashing ? options.workers ?? await defaultWorkers(source, start) : 0;
  const bufferSize = Math.max(options.bufferSize ?? READ_BUFFER_SIZE, 2 * PREFIX_MAX);
  const pool = hashing ? new HashPool(workers, bufferSize) : null;
  try {
    await native;
  } catch (e) {
    pool?.close();
    throw e;
  }
  const opts: ParserOptions = {
    verify: options.verifyChecksums ?? true,
    warn,
    // The buffer must hold the prefix of any event (see PREFIX_MAX).
    bufferSize,
    pool,
  };
  try {
    if (Array.isArray(source)) {
      let carry: Carry | null = null;
      for (let i = 0; i < source.length; i++) {
        const src = await openFile(source[i], i === source.length - 1);
        try {
          const p = new StreamParser(src, opts, i === 0 ? start : 4, i);
          p.carryIn = carry;
          p.recordStartFile = recordStartFile;
          yield* p.run();
          carry = p.carryOut;
        } finally {
          src.close();
        }
      }
    } else {
      const src = streamSource(source);
      try {
        const p = new StreamParser(src, opts, start);
        yield* p.run();
      } finally {
        src.close();
      }
    }
  } finally {
    pool?.close();
  }
}

/**
 * The last `n` transactions of the files (read in order as one stream). First walks the files
 * without hashing or checksum verification to find where the last n transactions start, then
 * reads with hashing (and CRC verification) only from there.
 */
export async function tailTransactions(
  files: string[],
  n: number,
  options: ReadOptions = {},
): Promise<BinlogTransaction[]> {
  if (n <= 0) return [];
  await loadNative();
  // Pass 1: positions of complete transactions' starts, kept for the last n.
  const starts: Array<[number, number]> = [];
  const silent = () => {};
  const walkOptions = { ...options, onWarning: silent, verifyChecksums: false };
  for await (const batch of readBatches(files, walkOptions, false, true)) {
    for (const t of batch) starts.push([START_FILE_INDEX.get(t) ?? 0, t.start]);
    if (starts.length > n) starts.splice(0, starts.length - n);
  }
  if (starts.length === 0) {
    // Still report warnings and errors of a full read (there is nothing to hash).
    const all: BinlogTransaction[] = [];
    for await (const t of readTransactions(files, options)) all.push(t);
    return all.slice(-n);
  }
  const [fi, pos] = starts[0];
  const first = fi === 0 ? Math.max(pos, options.startPosition ?? 4) : pos;
  const out: BinlogTransaction[] = [];
  const rest = readBatches(files.slice(fi), { ...options, startPosition: first }, true);
  for await (const batch of rest) {
    for (const t of batch) out.push(t);
    if (out.length > n) out.splice(0, out.length - n);
  }
  return out;
}

const HELP = `Usage: ${PROGRAM} [options] FILE...

Groups the events of MySQL/MariaDB binary logs or relay logs (format v4, MySQL 5.6 to 9.x,
MariaDB 10.x/11.x) into transactions and prints one line per transaction, in file order:

  END_POS,MD5

END_POS is the end position of the transaction's last event as its header records it (for a
binlog: the resume position in that file; for a relay log: the position in the master's binlog).
MD5 is 32 lowercase hex digits. Several files are read in the order given as one stream. A
transaction continues into the next file only if that file is a relay log (its first format
description event is flagged 0x40): relay logs can rotate inside a transaction, binlogs cannot.

Options:
  --json                one JSON object per line: file, start_file (only when the transaction
                        began in an earlier relay log), start (offset of the first event),
                        end (END_POS), end_offset (offset after the last event), md5,
                        gtid (when the transaction has one), timestamp, server_id
  --tail N              print only the last N transactions: walks the files by event headers
                        first, then hashes (and checks the CRC32s of) only those transactions
  --start-position P    start reading the first file at offset P (an event boundary)
  --no-verify-checksum  do not verify CRC32 checksums
  --workers N           threads that verify checksums and compute MD5s beside the reading
                        thread (default: one per CPU beyond the first, at most 3, when the
                        files add up to 32 MiB or more; 0: the reading thread does it all)
  -h, --help            this text

What is hashed (per transaction, one MD5 over each hashed event in order):
  type (1 byte, normalised) + header timestamp (4 bytes LE) + length L (4 bytes LE) + L bytes:
  - QUERY (and MariaDB compressed QUERY, decompressed), EXECUTE_LOAD_QUERY: database name, NUL,
    statement text (not thread id, exec time, error code, status variables); for XA statements
    only NUL and text (replicas log them without a database)
  - TABLE_MAP: the body after the table id, without the optional metadata block
  - ROWS v1/v2/compressed (types normalised to 30 write, 31 update, 32 delete): the 2 flag bytes
    and the body after the flags, v2 extra data skipped, rows decompressed
  - INTVAR, RAND, USER_VAR: the body; LOAD DATA events: the body after the post-header
  - MySQL TRANSACTION_PAYLOAD: the inner events, decompressed, as if written uncompressed
  Not hashed: CRC32s, header fields other than type and timestamp, GTID, XID, XA_PREPARE,
  BEGIN/COMMIT/ROLLBACK queries, ANNOTATE_ROWS, ROWS_QUERY, and events outside transactions
  (format description, rotate, stop, GTID lists, checkpoints, heartbeats, incidents, events
  flagged artificial 0x20 or relay-log 0x40). So the same transaction hashes equally in a master
  binlog, a relay log and a log_slave_updates binlog whatever their checksum setting, table ids,
  positions, XIDs or compression. A transaction with no hashed event prints the MD5 of the empty
  input (d41d8cd98f00b204e9800998ecf8427e).

Transactions start at a GTID event, a BEGIN query or the first hashed event outside a
transaction, and end at: XID, COMMIT or ROLLBACK query, XA_PREPARE, XA COMMIT/XA ROLLBACK query,
a query outside BEGIN (DDL), the query after a MariaDB standalone GTID. XA START and a statement
ending in START TRANSACTION (MySQL CREATE ... SELECT) open a transaction like BEGIN.

A file ending in a partial event or transaction (live or crashed log) yields its complete
transactions and a warning on stderr saying what was left out (exit 0). So does a transaction
cut short by a new GTID event (e.g. a relay log after a reconnection).

Exit codes:
  0  success (warnings possible)
  1  internal error
  2  usage error (bad option, --start-position not at an event boundary or past the end)
  3  cannot open or read a file (missing, directory, permission denied, I/O error)
  4  not a binlog (empty file, bad magic number, first event not a format description)
  5  corrupt event (size below 19, truncated event in a file that is not the last one,
     bad CRC32 checksum, malformed event body, undecodable compressed data)
  6  unsupported (encrypted binlog, unknown compression or checksum algorithm, binlog v1-v3,
     compressed event over ${MAX_WHOLE_EVENT / 1024 / 1024} MiB)
`;

/** Runs the CLI with `args`; returns the exit code. Never throws. */
export async function main(args: string[]): Promise<number> {
  const err = (m: string) => {
    try {
      Deno.stderr.writeSync(new TextEncoder().encode(`${PROGRAM}: ${m}\n`));
    } catch {
      // stderr closed
    }
  };
  let values: Record<string, string | boolean | undefined>;
  let files: string[];
  try {
    const parsed = parseArgs({
      args,
      options: {
        json: { type: "boolean" },
        tail: { type: "string" },
        "start-position": { type: "string" },
        "no-verify-checksum": { type: "boolean" },
        workers: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
      strict: true,
    });
    values = parsed.values;
    files = parsed.positionals;
  } catch (e) {
    err(`${(e as Error).message.split("\n")[0]} (try --help)`);
    return EXIT_CODES.usage;
  }
  if (values.help) {
    await writeAll(Deno.stdout, new TextEncoder().encode(HELP));
    return 0;
  }
  if (files.length === 0) {
    err("no binlog file given (try --help)");
    return EXIT_CODES.usage;
  }
  const intArg = (name: string, min: number): number | null => {
    const v = values[name];
    if (v === undefined) return null;
    if (
      typeof v !== "string" || !/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)) ||
      Number(v) < min
    ) {
      throw new BinlogError("usage", `--${name}`, -1, `must be an integer >= ${min}, got ${v}`);
    }
    return Number(v);
  };
  const out = new Output(values.json === true);
  try {
    const tail = intArg("tail", 0);
    const start = intArg("start-position", 4);
    const workers = intArg("workers", 0);
    const options: ReadOptions = {
      onWarning: (m) => err(`warning: ${m}`),
      verifyChecksums: values["no-verify-checksum"] !== true,
      ...(start !== null ? { startPosition: start } : {}),
      ...(workers !== null ? { workers: Math.min(workers, 16) } : {}),
    };
    if (tail !== null) {
      for (const t of await tailTransactions(files, tail, options)) out.add(t);
    } else {
      for await (const batch of readBatches(files, options, true)) {
        for (let i = 0; i < batch.length; i++) out.add(batch[i]);
      }
    }
    out.flush();
    return 0;
  } catch (e) {
    if (e instanceof Deno.errors.BrokenPipe) return 0;
    try {
      out.flush();
    } catch {
      // stdout is gone too
    }
    if (e instanceof BinlogError) {
      err(e.message);
      return e.exitCode;
    }
    err(`internal error: ${(e as Error)?.message ?? String(e)}`);
    return EXIT_CODES.internal;
  }
}

async function writeAll(w: { write(p: Uint8Array): Promise<number> }, data: Uint8Array) {
  let off = 0;
  while (off < data.length) off += await w.write(data.subarray(off));
}

const OUTPUT_BUFFER = 1024 * 1024;

/** Buffered stdout writer of transaction lines. */
class Output {
  private buf = new Uint8Array(OUTPUT_BUFFER);
  private n = 0;
  private json: boolean;
  private enc = new TextEncoder();
  constructor(json: boolean) {
    this.json = json;
  }
  /** Queues the line of `t`, writing the buffer out when it is nearly full. */
  add(t: BinlogTransaction): void {
    if (this.n > OUTPUT_BUFFER - 1024) this.flush();
    if (!this.json) {
      // END_POS,MD5: ASCII, written byte by byte (no string per line).
      const b = this.buf;
      let n = this.n;
      // Decimal digits of the end position, written backwards into place.
      let v = t.end;
      let digits = 1;
      for (let x = v; x >= 10; x = Math.floor(x / 10)) digits++;
      n += digits;
      for (let i = n - 1; i >= n - digits; i--) {
        const q = Math.floor(v / 10);
        b[i] = 0x30 + v - 10 * q;
        v = q;
      }
      b[n++] = 0x2c;
      const md5 = t.md5;
      for (let i = 0; i < md5.length; i++) b[n++] = md5.charCodeAt(i);
      b[n++] = 0x0a;
      this.n = n;
      return;
    }
    const line = JSON.stringify({
      file: t.file,
      ...(t.startFile !== undefined ? { start_file: t.startFile } : {}),
      start: t.start,
      end: t.end,
      end_offset: t.endOffset,
      md5: t.md5,
      ...(t.gtid !== undefined ? { gtid: t.gtid } : {}),
      timestamp: t.timestamp,
      server_id: t.serverId,
    }) + "\n";
    const r = this.enc.encodeInto(line, this.buf.subarray(this.n));
    if (r.read === line.length) {
      this.n += r.written;
      return;
    }
    // Longer than the space left (a very long file name): write it on its own.
    this.flush();
    this.write(this.enc.encode(line));
  }
  flush(): void {
    if (this.n === 0) return;
    const n = this.n;
    this.n = 0;
    this.write(this.buf.subarray(0, n));
  }
  private write(data: Uint8Array): void {
    let off = 0;
    while (off < data.length) off += Deno.stdout.writeSync(data.subarray(off));
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
