/**
 * The hash plan: which bytes of an event go into its transaction's MD5. {@link HashPlanner.plan}
 * is the one place that says it, for events read whole, for compressed events (decompressed
 * here) and for events larger than the read buffer (whose hashed range is then streamed).
 *
 * The MD5 is built so that the same transaction hashes equally in the master's binlog, in every
 * replica's relay log and in a replica's own binlog written with log_slave_updates, even when the
 * servers differ in binlog_checksum, table ids, positions, XID values, exec times, event
 * compression (MariaDB log_bin_compress, MySQL binlog_transaction_compression) and ROWS event
 * version (v1/v2). resync.ts finds a replica's transactions in the new master's binlog by this
 * MD5: a change here must keep the plain, compressed and streamed paths equal (they all use this
 * module) and must be made on every server's parser at once.
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
 * @module
 */

import { inflateMariadbBlock } from "./binlog_compression.ts";
import { EventError } from "./binlog_error.ts";
import {
  type Format,
  HEADER_LEN,
  isRowsV2,
  packedInt,
  postHeaderLen,
  QK_BEGIN,
  QK_END,
  QK_XA_END_TRX,
  QK_XA_OTHER,
  QK_XA_START,
  queryKind,
  rowsKind,
  T_ANONYMOUS_GTID,
  T_APPEND_BLOCK,
  T_BEGIN_LOAD_QUERY,
  T_CREATE_FILE,
  T_DELETE_FILE,
  T_EXEC_LOAD,
  T_EXECUTE_LOAD_QUERY,
  T_GTID,
  T_GTID_TAGGED,
  T_INTVAR,
  T_LOAD,
  T_MARIA_GTID,
  T_NEW_LOAD,
  T_QUERY,
  T_QUERY_COMPRESSED,
  T_RAND,
  T_TABLE_MAP,
  T_USER_VAR,
  T_XA_PREPARE,
  T_XID,
  tableMapEnd,
  u16,
} from "./binlog_events.ts";
import type { Native } from "./binlog_native.ts";

/** Role of an event that does nothing to grouping (ANNOTATE_ROWS, ROTATE, ...). */
export const ROLE_OTHER = 0;
/** Role of a GTID event: starts a transaction group. */
export const ROLE_GTID = 1;
/** Role of a QUERY-like event; {@link EventPlan.query} says which statement kind. */
export const ROLE_QUERY = 2;
/** Role of a hashed event that is not a query (TABLE_MAP, ROWS, INTVAR, ...). */
export const ROLE_CONTENT = 3;
/** Role of XID and XA_PREPARE: ends a transaction. */
export const ROLE_COMMIT = 4;

/**
 * What an event is to grouping, and which of its bytes are hashed: the prefix (see
 * {@link writeHashPrefix}), then the event's bytes [from, to) (offsets from the event's first
 * byte), then `inflated` (the decompressed rest of a compressed event).
 */
export interface EventPlan {
  /** ROLE_OTHER, ROLE_GTID, ROLE_QUERY, ROLE_CONTENT or ROLE_COMMIT. */
  role: number;
  /** For ROLE_QUERY: the statement's kind (QK_* of binlog_events.ts); else 0. */
  query: number;
  /** The normalised type byte hashed first; 0 when the event is not hashed. */
  type: number;
  /** ROWS flags, hashed (2 bytes LE) after the length; -1 when there are none. */
  flags: number;
  /** The event's hashed bytes are [from, to), offsets from the event's first byte. */
  from: number;
  to: number;
  /** For a compressed event: the decompressed data hashed after [from, to); else null. */
  inflated: Uint8Array | null;
}

/** The plans of events that are not hashed: shared, never modified. */
const NOT_HASHED = {
  other: plan(ROLE_OTHER, 0),
  gtid: plan(ROLE_GTID, 0),
  commit: plan(ROLE_COMMIT, 0),
  begin: plan(ROLE_QUERY, QK_BEGIN),
  end: plan(ROLE_QUERY, QK_END),
};

function plan(role: number, query: number): EventPlan {
  return { role, query, type: 0, flags: -1, from: 0, to: 0, inflated: null };
}

/**
 * Plans events under one format description (post-header lengths), decompressing compressed
 * events with `native`.
 *
 * @example
 * ```ts
 * const planner = new HashPlanner(format, await loadNative());
 * const p = planner.plan(buf, o, size - 4, size - 4);
 * if (p.type !== 0) hash(prefix, buf.subarray(o + p.from, o + p.to), p.inflated);
 * ```
 */
export class HashPlanner {
  #format: Format;
  #native: Native;
  /** The plan of the last hashed event (see plan). */
  #hashed: EventPlan = plan(ROLE_CONTENT, 0);

  /** A planner for the events that follow the format description `format`. */
  constructor(format: Format, native: Native) {
    this.#format = format;
    this.#native = native;
  }

  /**
   * The plan of the event at b[o] whose content (without CRC) ends at o + end, of which the
   * bytes up to o + avail are in b (avail < end only for an event larger than the read buffer,
   * never a compressed one; avail covers at least its first PREFIX_MAX bytes). Throws an
   * EventError for a malformed event. Positional arguments: called once per event.
   *
   * The plan of a hashed event is the planner's own object, valid until the next call: a new
   * one per event cost 5% of a one-thread run on the bench binlog (allocation and scavenges,
   * measured). The plans of events that are not hashed are shared constants.
   */
  plan(b: Uint8Array, o: number, end: number, avail: number): EventPlan {
    const type = b[o + 4];
    switch (type) {
      case T_QUERY:
      case T_EXECUTE_LOAD_QUERY:
      case T_QUERY_COMPRESSED:
        return this.#query(b, o, end, avail);
      case T_TABLE_MAP: {
        const tid = postHeaderLen(this.#format, type) === 6 ? 4 : 6;
        if (HEADER_LEN + tid > end) throw new EventError("corrupt", "malformed TABLE_MAP event");
        const from = HEADER_LEN + tid;
        const to = tableMapEnd(b, o + from, o + Math.min(end, avail)) - o;
        return this.#hash(ROLE_CONTENT, 0, type, -1, from, to, null);
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
        const from = HEADER_LEN + postHeaderLen(this.#format, type);
        if (from > end) throw new EventError("corrupt", `malformed event of type ${type}`);
        return this.#hash(ROLE_CONTENT, 0, type, -1, from, end, null);
      }
      case T_XID:
      case T_XA_PREPARE:
        return NOT_HASHED.commit;
      case T_GTID:
      case T_ANONYMOUS_GTID:
      case T_GTID_TAGGED:
      case T_MARIA_GTID:
        return NOT_HASHED.gtid;
      default:
        return rowsKind(type) === 0 ? NOT_HASHED.other : this.#rows(b, o, end, avail);
    }
  }

  /** QUERY, EXECUTE_LOAD_QUERY, QUERY_COMPRESSED: database name, NUL, statement. */
  #query(b: Uint8Array, o: number, end: number, avail: number): EventPlan {
    const type = b[o + 4];
    const compressed = type === T_QUERY_COMPRESSED;
    const malformed = () =>
      new EventError("corrupt", `malformed ${compressed ? "QUERY_COMPRESSED" : "QUERY"} event`);
    const ph = postHeaderLen(this.#format, type);
    if (ph < 11 || HEADER_LEN + ph > avail) throw malformed();
    const dbLen = b[o + HEADER_LEN + 8];
    const statusLen = ph >= 13 ? u16(b, o + HEADER_LEN + 11) : 0;
    const dbAt = HEADER_LEN + ph + statusLen;
    const stmtAt = dbAt + dbLen + 1;
    if (stmtAt > end || stmtAt > avail) throw malformed();
    let inflated: Uint8Array | null = null;
    let kind: number;
    if (compressed) {
      inflated = inflateMariadbBlock(this.#native, { b, from: o + stmtAt, to: o + end });
      kind = queryKind(inflated, 0, inflated.length);
    } else kind = queryKind(b, o + stmtAt, o + Math.min(end, avail), avail >= end);
    if (kind === QK_BEGIN) return NOT_HASHED.begin;
    if (kind === QK_END) return NOT_HASHED.end;
    // XA statements are logged without the current database on replicas: hash NUL + text.
    const xa = kind === QK_XA_START || kind === QK_XA_END_TRX || kind === QK_XA_OTHER;
    const from = xa ? stmtAt - 1 : dbAt;
    const to = compressed ? stmtAt : end;
    return this.#hash(ROLE_QUERY, kind, compressed ? T_QUERY : type, -1, from, to, inflated);
  }

  /** ROWS v0/v1/v2, partial update and MariaDB compressed: flags, then after the extra data. */
  #rows(b: Uint8Array, o: number, end: number, avail: number): EventPlan {
    const type = b[o + 4];
    const compressed = type >= 166 && type <= 171;
    const malformed = () =>
      new EventError("corrupt", `malformed ${compressed ? "compressed ROWS" : "ROWS"} event`);
    const tid = postHeaderLen(this.#format, type) === 6 ? 4 : 6;
    let from = HEADER_LEN + tid + 2;
    if (from > end) throw malformed();
    const flags = u16(b, o + HEADER_LEN + tid);
    if (isRowsV2(type)) {
      if (from + 2 > avail) throw malformed();
      const extra = u16(b, o + from);
      if (extra < 2 || from + extra > end) throw malformed();
      from += extra;
    }
    const kind = rowsKind(type);
    if (!compressed) return this.#hash(ROLE_CONTENT, 0, kind, flags, from, end, null);
    // Compressed: the column count and the column bitmaps stay plain, the rows are zlib data.
    const w = packedInt(b, o + from, o + end);
    if (!w) throw malformed();
    const bitmaps = (kind === 31 ? 2 : 1) * ((w[0] + 7) >> 3);
    const compAt = from + w[1] + bitmaps;
    if (compAt > end) throw malformed();
    const inflated = inflateMariadbBlock(this.#native, { b, from: o + compAt, to: o + end });
    return this.#hash(ROLE_CONTENT, 0, kind, flags, from, compAt, inflated);
  }

  /** The plan of a hashed event, in the planner's own object (see plan). */
  #hash(
    role: number,
    query: number,
    type: number,
    flags: number,
    from: number,
    to: number,
    inflated: Uint8Array | null,
  ): EventPlan {
    const p = this.#hashed;
    p.role = role;
    p.query = query;
    p.type = type;
    p.flags = flags;
    p.from = from;
    p.to = to;
    p.inflated = inflated;
    return p;
  }
}

/** Most bytes {@link writeHashPrefix} writes. */
export const HASH_PREFIX_MAX = 11;

/**
 * Writes the bytes hashed before the event's body into `into` (at least HASH_PREFIX_MAX bytes):
 * normalised type, header timestamp `ts` and body length L (4 bytes LE each), and the ROWS flags
 * when the plan has them (counted in L). Returns how many bytes it wrote.
 */
export function writeHashPrefix(p: EventPlan, ts: number, into: Uint8Array): number {
  const flags = p.flags >= 0 ? 2 : 0;
  const len = p.to - p.from + (p.inflated === null ? 0 : p.inflated.length) + flags;
  into[0] = p.type;
  into[1] = ts & 0xff;
  into[2] = (ts >>> 8) & 0xff;
  into[3] = (ts >>> 16) & 0xff;
  into[4] = (ts >>> 24) & 0xff;
  into[5] = len & 0xff;
  into[6] = (len >>> 8) & 0xff;
  into[7] = (len >>> 16) & 0xff;
  into[8] = (len >>> 24) & 0xff;
  if (flags === 0) return 9;
  into[9] = p.flags & 0xff;
  into[10] = p.flags >>> 8;
  return 11;
}
