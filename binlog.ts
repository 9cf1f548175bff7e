/**
 * prm_binlog_parser: groups the events of MySQL/MariaDB binlogs and relay logs (format v4) into
 * transactions and prints, per transaction, its end position and an MD5 of its payload.
 *
 * This module is the program (the CLI, `main`) and the library's entry point: the public types
 * and functions below are defined in the modules it re-exports. Where each concept lives:
 *
 * - binlog_types.ts: the public types (BinlogTransaction, BinlogSource, ReadOptions, ReadEnd).
 * - binlog_error.ts: BinlogError and its exit codes; EventError of the decoders.
 * - binlog_read.ts: readTransactions, tailTransactions, tailWithEnd; files read as one stream,
 *   relay-log carry-over between files, the number of hashing workers.
 * - binlog_parser.ts: one file: event walk, CRC32 checks, big events, TRANSACTION_PAYLOAD.
 * - binlog_reader.ts: byte sources (regular files only, streams), the framing buffer, and the
 *   rule that tells a torn tail from a corrupt event size (isTornTail).
 * - binlog_events.ts: event type codes and decoders (format description, query, GTID, ...).
 * - binlog_hash_plan.ts: what is hashed (the specification), one plan for every path.
 * - binlog_group.ts: the transaction grouping rule.
 * - binlog_compression.ts: MariaDB zlib and MySQL zstd decompression within the memory limit.
 * - binlog_limits.ts: the limits on what untrusted input can make the parser hold.
 * - binlog_pool.ts: the hash pool (batches, read buffers, hashing workers).
 * - binlog_kernel.ts: the CRC-32 and MD5 kernels, also run as the workers' source.
 * - binlog_native.ts: node:crypto and node:zlib, loaded on the first read.
 *
 * ## Speed
 * Hashing (MD5 of the hashed bytes) and CRC32 verification cost more than reading and grouping.
 * The parser therefore records, per transaction, the ranges of the read buffer to hash (no
 * copy) and the events to checksum, in batches that worker threads process while it reads on
 * (binlog_pool.ts): one worker per CPU beyond the first, at most 3, for inputs of 32 MiB or
 * more. The main thread processes batches itself when it has no worker or would otherwise wait.
 * Output is in file order and identical whatever the number of threads. The MD5 kernel hashes
 * whole blocks in the shared buffers where they are (copies out of shared memory are slow). The
 * CRC32s of a run of adjacent events are checked with one node:zlib call and a table look-up
 * per event (see binlog_kernel.ts): a call per event cost more than its bytes. Reads are of 1
 * MiB (READ_BUFFER_SIZE), small enough that the workers find the bytes in the CPU caches, and
 * the workers start while the native modules load.
 *
 * ## Exit codes (see EXIT_CODES)
 * 0 ok (warnings possible), 1 internal error, 2 usage, 3 cannot open or read a file, 4 not a
 * binlog, 5 corrupt event, 6 unsupported content.
 *
 * @module
 */

import { parseFlags } from "./cli_args.ts";
import { BinlogError, EXIT_CODES, PROGRAM } from "./binlog_error.ts";
import { MAX_WHOLE_EVENT } from "./binlog_limits.ts";
import { readBatches, tailTransactions } from "./binlog_read.ts";
import type { BinlogTransaction, ReadOptions } from "./binlog_types.ts";

export { BinlogError, type BinlogErrorKind, EXIT_CODES, PROGRAM } from "./binlog_error.ts";
export { readTransactions, tailTransactions, tailWithEnd } from "./binlog_read.ts";
export type {
  BinlogSource,
  BinlogStream,
  BinlogTransaction,
  ReadEnd,
  ReadOptions,
  TailResult,
} from "./binlog_types.ts";

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

A last file that ends inside an event or a transaction (a live or crashed log: a torn tail)
yields its complete transactions and a warning on stderr saying what was left out (exit 0). So
does a transaction cut short by a new GTID event (e.g. a relay log after a reconnection). An
event whose size points past the end of the last file but does not fit its header's log_pos is
not a torn tail but a corrupt size (exit 5), and so is any event cut short in another file.

Exit codes:
  0  success (warnings possible)
  1  internal error
  2  usage error (bad option, --start-position not at an event boundary or past the end)
  3  cannot open or read a file (missing, not a regular file: directory, FIFO, socket or
     device, permission denied, I/O error)
  4  not a binlog (empty file, bad magic number, first event not a format description)
  5  corrupt event (size below 19 or over 1 GiB, an event cut short by the end of a file that
     is not the last one, a size past the end of the last file that its log_pos contradicts,
     bad CRC32 checksum, malformed event body, undecodable compressed data, compressed data
     larger than its event says)
  6  unsupported (encrypted binlog, unknown compression or checksum algorithm, binlog v1-v3,
     compressed event or decompressed content over ${MAX_WHOLE_EVENT / 1024 / 1024} MiB)
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
    const parsed = parseFlags(args, {
      options: {
        json: { type: "boolean" },
        tail: { type: "string" },
        "start-position": { type: "string" },
        "no-verify-checksum": { type: "boolean" },
        workers: { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      allowPositionals: true,
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
      for await (const batch of readBatches(files, options)) {
        const txs = batch.transactions;
        for (let i = 0; i < txs.length; i++) out.add(txs[i]);
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
