/**
 * Limits on what prm_binlog_parser holds in memory for untrusted input: every binlog byte is
 * untrusted, and a corrupt or hostile file must meet a clear error, not exhaust memory. Each limit
 * is tested in tests/binlog_test.ts ("limits: ...").
 *
 * What is held, and its bound:
 * - the read buffers (READ_BUFFER_SIZE each, binlog_pool.ts) and the batches (BATCH_LIMITS);
 * - an event larger than a read buffer is streamed through it, never held whole, up to
 *   {@link MAX_EVENT_SIZE}; only its first {@link PREFIX_MAX} bytes need to be in the buffer;
 * - compressed events (MariaDB 165-171, MySQL TRANSACTION_PAYLOAD) and format descriptions are
 *   held whole, up to {@link MAX_WHOLE_EVENT}, and so is what they decompress to: the size the
 *   event announces must be within the limit, and decompression stops at that size (a zlib or
 *   zstd bomb that announces less than it inflates to is refused as corrupt after that many
 *   bytes);
 * - a transaction is hashed as it is read (never held), whatever its size.
 *
 * @module
 */

/** Largest event accepted at all (MySQL and MariaDB cap events at 1 GiB): larger is corrupt. */
export const MAX_EVENT_SIZE = 0x40000000 + 0x10000;

/**
 * Largest compressed event, and largest decompressed content, held in memory at once: larger is
 * refused as unsupported (exit 6).
 */
export const MAX_WHOLE_EVENT = 96 * 1024 * 1024;

/** Bytes of an event needed to locate its hashed part (post-header, status vars, db name). */
export const PREFIX_MAX = 70 * 1024;
