/**
 * Transaction groups: which events start, continue and end a transaction (the rule is
 * {@link groupStep}; the parser applies what it returns).
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
 * @module
 */

import { QK_BEGIN, QK_END, QK_START_TRX, QK_XA_END_TRX, QK_XA_START } from "./binlog_events.ts";
import { ROLE_COMMIT, ROLE_CONTENT, ROLE_GTID, ROLE_QUERY } from "./binlog_hash_plan.ts";

/** An open transaction group. */
export interface Group {
  /** File holding the first event, and its index in the list of files read. */
  file: string;
  fileIndex: number;
  /** Offset of the first event in `file`. */
  start: number;
  /** The group's GTID, when its GTID event has one. */
  gtid?: string;
  /** Header timestamp and server id of the first event. */
  timestamp: number;
  serverId: number;
  /** Inside BEGIN ... COMMIT (or XA START, or a MariaDB transactional GTID). */
  inTrx: boolean;
  /** After a MariaDB standalone GTID: the next query ends the group. */
  standalone: boolean;
}

/** A transaction open at the end of one file, offered to the next file if it is a relay log. */
export interface Carry {
  /** The open group. */
  group: Group;
  /** Bytes of the transaction up to the end of that file, earlier files included. */
  bytes: number;
}

/** Action: leave out the open group, a BEGIN query started before its commit. */
export const DROP_BEFORE_BEGIN = 1;
/** Action: leave out the open group, a new GTID event started before its commit. */
export const DROP_BEFORE_GTID = 2;
/** Action: open a new group at this event. */
export const OPEN = 4;
/** Action: the (open or opened) group is inside a transaction from now on. */
export const IN_TRANSACTION = 8;
/** Action: this event ends the group; the transaction is complete. */
export const END = 16;
/** Action: a commit event with no group open: ignored, with a warning. */
export const ORPHAN_COMMIT = 32;

/**
 * What an event does to the open group `g` (null when none is open): a sum of the actions above,
 * applied in that order. `role` and `query` come from the event's plan (binlog_hash_plan.ts).
 *
 * @example
 * ```ts
 * groupStep(null, ROLE_QUERY, QK_OTHER); // OPEN | END: a DDL statement is a transaction
 * ```
 */
export function groupStep(
  g: Pick<Group, "inTrx" | "standalone"> | null,
  role: number,
  query: number,
): number {
  switch (role) {
    case ROLE_GTID:
      return (g !== null ? DROP_BEFORE_GTID : 0) | OPEN;
    case ROLE_CONTENT:
      return g !== null ? 0 : OPEN;
    case ROLE_COMMIT:
      return g !== null ? END : ORPHAN_COMMIT;
    case ROLE_QUERY: {
      if (query === QK_BEGIN) {
        // BEGIN inside a transaction: the previous one never committed (crashed server).
        if (g !== null && g.inTrx) return DROP_BEFORE_BEGIN | OPEN | IN_TRANSACTION;
        if (g === null) return OPEN | IN_TRANSACTION;
        return IN_TRANSACTION | (g.standalone ? END : 0);
      }
      if (query === QK_END) return g !== null ? END : 0;
      const opens = query === QK_XA_START || query === QK_START_TRX;
      const inTrx = (g !== null && g.inTrx) || opens;
      const ends = query === QK_XA_END_TRX || (!inTrx && query !== QK_XA_START) ||
        (g !== null && g.standalone);
      return (g !== null ? 0 : OPEN) | (opens ? IN_TRANSACTION : 0) | (ends ? END : 0);
    }
    default:
      return 0;
  }
}
