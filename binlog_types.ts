/**
 * The public types of prm_binlog_parser's library API (re-exported by binlog.ts).
 *
 * @module
 */

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

/** Options of readTransactions, tailTransactions and tailWithEnd. */
export interface ReadOptions {
  /** Offset in the first file to start at; must be an event boundary (default 4). */
  startPosition?: number;
  /**
   * Receives warnings (partial events or transactions left out). What was left out at the end
   * is also returned as a value: see ReadEnd.
   */
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

/**
 * Where a read ended, for a caller that checks it against the server's own view (the SQL
 * thread's relay-log position, or the size of a binlog at rest): what the complete part covers
 * and what was left out after it. A live or crashed log can end in a torn event (the file stops
 * inside it) or in a transaction without its commit; both are left out, with a warning, and
 * said here.
 */
export interface ReadEnd {
  /** The last file read (or the stream's name). */
  file: string;
  /** Bytes read from `file` (its size when it was read). */
  size: number;
  /**
   * The end of the complete part: every transaction before it was reported, and what lies
   * between the last one and it belongs to no transaction. It is `eventsEnd` in `file`, or,
   * when a transaction was left out, where that transaction began (`openTransaction`).
   */
  complete: { file: string; offset: number };
  /** Offset in `file` after its last complete event (`size` unless a torn event follows). */
  eventsEnd: number;
  /** Offset in `file` after the last complete transaction that ends in it; -1 when none does. */
  lastTransactionEnd: number;
  /** Bytes of the torn event at the end of `file` (0: the file ends at an event boundary). */
  tornBytes: number;
  /** The transaction without its commit left out at the end, or null. */
  openTransaction: { file: string; start: number } | null;
  /** Bytes after the complete part, all files counted: what was left out (0: nothing). */
  leftOutBytes: number;
}

/** The last transactions of files, and where the read ended (see tailWithEnd). */
export interface TailResult {
  /** The last transactions, oldest first. */
  transactions: BinlogTransaction[];
  /** Where the read ended. */
  end: ReadEnd;
}
