/**
 * Decoders of binlog events (format v4): type codes, header fields, the format description, and
 * the parts of QUERY, TABLE_MAP, ROWS, GTID and TRANSACTION_PAYLOAD events that grouping and
 * hashing need. Pure functions over byte arrays; a malformed event throws an EventError, which
 * the parser reports at the event's offset.
 *
 * @module
 */

import { EventError } from "./binlog_error.ts";

/** Type code of QUERY_EVENT. */
export const T_QUERY = 2;
/** Type code of INTVAR_EVENT. */
export const T_INTVAR = 5;
/** Type code of LOAD_EVENT (old LOAD DATA). */
export const T_LOAD = 6;
/** Type code of CREATE_FILE_EVENT. */
export const T_CREATE_FILE = 8;
/** Type code of APPEND_BLOCK_EVENT. */
export const T_APPEND_BLOCK = 9;
/** Type code of EXEC_LOAD_EVENT. */
export const T_EXEC_LOAD = 10;
/** Type code of DELETE_FILE_EVENT. */
export const T_DELETE_FILE = 11;
/** Type code of NEW_LOAD_EVENT. */
export const T_NEW_LOAD = 12;
/** Type code of RAND_EVENT. */
export const T_RAND = 13;
/** Type code of USER_VAR_EVENT. */
export const T_USER_VAR = 14;
/** Type code of FORMAT_DESCRIPTION_EVENT. */
export const T_FDE = 15;
/** Type code of XID_EVENT. */
export const T_XID = 16;
/** Type code of BEGIN_LOAD_QUERY_EVENT. */
export const T_BEGIN_LOAD_QUERY = 17;
/** Type code of EXECUTE_LOAD_QUERY_EVENT. */
export const T_EXECUTE_LOAD_QUERY = 18;
/** Type code of TABLE_MAP_EVENT. */
export const T_TABLE_MAP = 19;
/** Type code of MySQL GTID_LOG_EVENT. */
export const T_GTID = 33;
/** Type code of MySQL ANONYMOUS_GTID_LOG_EVENT. */
export const T_ANONYMOUS_GTID = 34;
/** Type code of XA_PREPARE_LOG_EVENT. */
export const T_XA_PREPARE = 38;
/** Type code of MySQL PARTIAL_UPDATE_ROWS_EVENT. */
export const T_PARTIAL_UPDATE_ROWS = 39;
/** Type code of MySQL TRANSACTION_PAYLOAD_EVENT (zstd). */
export const T_TRANSACTION_PAYLOAD = 40;
/** Type code of MySQL 8.4 GTID_TAGGED_LOG_EVENT. */
export const T_GTID_TAGGED = 42;
/** Type code of MariaDB GTID_EVENT. */
export const T_MARIA_GTID = 162;
/** Type code of MariaDB START_ENCRYPTION_EVENT. */
export const T_START_ENCRYPTION = 164;
/** Type code of MariaDB QUERY_COMPRESSED_EVENT. */
export const T_QUERY_COMPRESSED = 165;

/** Header flag of events the server made up (e.g. the ROTATE at the top of a relay log). */
const FLAG_ARTIFICIAL = 0x20;
/** Header flag of a relay log's own events (its own FORMAT_DESCRIPTION). */
export const FLAG_RELAY_LOG = 0x40;
/** Bytes of an event header. */
export const HEADER_LEN = 19;
/** The first four bytes of every binlog and relay log. */
export const MAGIC: readonly number[] = [0xfe, 0x62, 0x69, 0x6e];

/** Little-endian unsigned 16-bit integer at b[o]. */
export function u16(b: Uint8Array, o: number): number {
  return b[o] | (b[o + 1] << 8);
}

/** Little-endian unsigned 32-bit integer at b[o]. */
export function u32(b: Uint8Array, o: number): number {
  return (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
}

/** Little-endian unsigned 64-bit integer at b[o]. */
function u64(b: Uint8Array, o: number): bigint {
  return BigInt(u32(b, o)) | (BigInt(u32(b, o + 4)) << 32n);
}

/**
 * Whether the event at b[o] is part of no transaction whatever its type: flagged artificial
 * (0x20) or as the relay log's own (0x40). Such events are neither grouped nor hashed.
 */
export function outsideTransactions(b: Uint8Array, o: number): boolean {
  return (u16(b, o + 17) & (FLAG_ARTIFICIAL | FLAG_RELAY_LOG)) !== 0;
}

/** Normalised row event codes: v0/v1/v2/compressed write/update/delete -> 30/31/32. */
export function rowsKind(type: number): number {
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

/** Whether a ROWS event type has the v2 extra-data block (v2, partial update, MariaDB v2 compressed). */
export function isRowsV2(type: number): boolean {
  return (type >= 30 && type <= 32) || type === 39 || (type >= 169 && type <= 171);
}

/** Checksum and post-header lengths in force, from the latest FORMAT_DESCRIPTION event. */
export interface Format {
  /** Whether the events that follow end in a CRC32. */
  checksum: boolean;
  /** Post-header length of each event type (at index type - 1). */
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

/** The post-header length of events of `type`: from the format description, else the default. */
export function postHeaderLen(fmt: Format, type: number): number {
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

/**
 * Decodes the FORMAT_DESCRIPTION event b[o, o + size): checksum setting and post-header lengths.
 * The event's own CRC32 (present when `checksum` is set) is the caller's to verify.
 */
export function decodeFormatDescription(b: Uint8Array, o: number, size: number): Format {
  const body = o + HEADER_LEN;
  const bodyLen = size - HEADER_LEN;
  if (bodyLen < 57) throw new EventError("corrupt", "FORMAT_DESCRIPTION event too short");
  const binlogVersion = u16(b, body);
  if (binlogVersion !== 4) {
    throw new EventError("unsupported", `binlog version ${binlogVersion} is not read (only v4)`);
  }
  let vEnd = body + 2;
  while (vEnd < body + 52 && b[vEnd] !== 0) vEnd++;
  const version = String.fromCharCode(...b.subarray(body + 2, vEnd));
  const headerLen = b[body + 56];
  if (headerLen !== HEADER_LEN) {
    throw new EventError("unsupported", `event header length ${headerLen} is not 19`);
  }
  let checksum = false;
  let phEnd = o + size;
  if (fdeHasChecksumTrailer(version)) {
    if (bodyLen < 57 + 5) throw new EventError("corrupt", "FORMAT_DESCRIPTION event too short");
    const alg = b[o + size - 5];
    if (alg === 1) checksum = true;
    else if (alg !== 0 && alg !== 0xff) {
      throw new EventError("unsupported", `unknown checksum algorithm ${alg}`);
    }
    phEnd = o + size - 5;
  }
  return { checksum, postHeader: b.slice(body + 57, phEnd) };
}

/** Query kind: Any other statement: hashed; ends a transaction outside BEGIN. */
export const QK_OTHER = 0;
/** Query kind: `BEGIN`: opens a transaction, not hashed. */
export const QK_BEGIN = 1;
/** Query kind: `COMMIT` or `ROLLBACK`: ends a transaction, not hashed. */
export const QK_END = 2;
/** Query kind: `XA START`/`XA BEGIN`: opens a transaction, hashed. */
export const QK_XA_START = 3;
/** Query kind: `XA COMMIT`/`XA ROLLBACK`: ends a transaction, hashed. */
export const QK_XA_END_TRX = 4;
/** Query kind: `XA END`, `XA PREPARE` statements: hashed. */
export const QK_XA_OTHER = 5;
/** Query kind: A statement ending in `START TRANSACTION` (MySQL 8.0.21+ CREATE TABLE ... SELECT): opens a transaction, hashed. */
export const QK_START_TRX = 6;

/** Classifies a statement; `complete` is false when only its beginning is available. */
export function queryKind(b: Uint8Array, from: number, to: number, complete = true): number {
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

/** Kind of the `XA ...` statement b[i, j). */
function xaKind(b: Uint8Array, i: number, j: number): number {
  const s = String.fromCharCode(...b.subarray(i, Math.min(j, i + 12))).toUpperCase();
  if (s.startsWith("XA START") || s.startsWith("XA BEGIN")) return QK_XA_START;
  if (s.startsWith("XA COMMIT") || s.startsWith("XA ROLLBACK")) return QK_XA_END_TRX;
  return QK_XA_OTHER;
}

/**
 * TABLE_MAP: end of the part hashed (flags, names, column types and metadata, null bitmap),
 * leaving out the optional metadata block that binlog_row_metadata adds on some servers only.
 * Returns `end` when the layout does not parse.
 */
export function tableMapEnd(b: Uint8Array, from: number, end: number): number {
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

/** MySQL length-encoded integer; returns [value, bytes used] or null if malformed. */
export function packedInt(b: Uint8Array, o: number, end: number): [number, number] | null {
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

/** The 16 bytes of a UUID in its usual text form. */
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

/** What a GTID event says about its transaction. */
export interface GtidInfo {
  /** MariaDB `domain-server-seq`, MySQL `uuid:gno` or `uuid:tag:gno`; none for anonymous ones. */
  gtid: string | undefined;
  /** MariaDB standalone (flags2 bit 0): the group is the GTID and the one query after it. */
  standalone: boolean;
  /** MariaDB transactional GTID: the group is inside a transaction from the start (no BEGIN). */
  inTransaction: boolean;
}

/** Decodes the GTID event (MariaDB 162, MySQL 33/34/42) whose content is b[o, o + end). */
export function decodeGtid(b: Uint8Array, o: number, end: number): GtidInfo {
  const type = b[o + 4];
  const body = o + HEADER_LEN;
  if (type === T_MARIA_GTID) {
    if (body + 13 > o + end) throw new EventError("corrupt", "malformed GTID event");
    const hi = u32(b, body + 4);
    // Avoid BigInt for the usual sequence numbers (below 2^53).
    const seq = hi < 0x200000 ? hi * 2 ** 32 + u32(b, body) : u64(b, body);
    const domain = u32(b, body + 8);
    const standalone = (b[body + 12] & 1) !== 0;
    return {
      gtid: `${domain}-${u32(b, o + 5)}-${seq}`,
      standalone,
      inTransaction: !standalone,
    };
  }
  if (type === T_GTID_TAGGED) {
    return { gtid: taggedGtid(b, body, o + end), standalone: false, inTransaction: false };
  }
  if (body + 25 > o + end) throw new EventError("corrupt", "malformed GTID event");
  const sid: number[] = Array.from(b.subarray(body + 1, body + 17));
  const gno = u64(b, body + 17);
  const named = type === T_GTID || gno !== 0n || sid.some((x) => x !== 0);
  return {
    gtid: named ? `${uuidString(sid)}:${gno}` : undefined,
    standalone: false,
    inTransaction: false,
  };
}

/** The header fields of a MySQL TRANSACTION_PAYLOAD event. */
export interface PayloadHeader {
  /** Compression type: 0 zstd, 255 none. */
  compression: number;
  /** Size of the decompressed inner events as the header gives it, -1 when absent. */
  uncompressed: number;
  /** The (compressed) inner events are b[from, to). */
  from: number;
  to: number;
}

/** Decodes the header fields of the TRANSACTION_PAYLOAD event whose content is b[o, o + end). */
export function decodePayloadHeader(b: Uint8Array, o: number, end: number): PayloadHeader {
  const malformed = () => new EventError("corrupt", "malformed TRANSACTION_PAYLOAD header");
  let p = o + HEADER_LEN;
  const stop = o + end;
  let compression = -1;
  let payloadSize = -1;
  let uncompressed = -1;
  while (p < stop) {
    const t = packedInt(b, p, stop);
    if (!t) throw malformed();
    p += t[1];
    if (t[0] === 0) break;
    const l = packedInt(b, p, stop);
    if (!l) throw malformed();
    p += l[1];
    const v = packedInt(b, p, Math.min(stop, p + l[0]));
    if (!v) throw malformed();
    if (t[0] === 1) payloadSize = v[0];
    else if (t[0] === 2) compression = v[0];
    else if (t[0] === 3) uncompressed = v[0];
    p += l[0];
  }
  if (payloadSize < 0 || p + payloadSize > stop) throw malformed();
  return { compression, uncompressed, from: p, to: p + payloadSize };
}
