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
