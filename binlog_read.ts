/**
 * Reading a source: files in order as one stream (a transaction open at the end of a file is
 * offered to the next, which continues it if it is a relay log), or one raw byte stream; the
 * hash pool and its workers for the read; and the last n transactions in two passes.
 *
 * @module
 */

import { BinlogError } from "./binlog_error.ts";
import type { Carry } from "./binlog_group.ts";
import { PREFIX_MAX } from "./binlog_limits.ts";
import { loadNative } from "./binlog_native.ts";
import { type FileParseOptions, FileParser } from "./binlog_parser.ts";
import { HashPool, READ_BUFFER_SIZE, startPool, stopWorkers } from "./binlog_pool.ts";
import { openFile, streamSource } from "./binlog_reader.ts";
import type {
  BinlogSource,
  BinlogTransaction,
  ReadEnd,
  ReadOptions,
  TailResult,
} from "./binlog_types.ts";

/**
 * Reads transactions from binlog files (in order, as one stream) or from a raw byte stream.
 * Yields complete transactions in file order, and returns where the read ended (what was left
 * out at the end: see ReadEnd); throws BinlogError on bad input.
 *
 * @example
 * ```ts
 * const read = readTransactions(["/var/lib/mysql/mysql-bin.000007"]);
 * let r = await read.next();
 * for (; !r.done; r = await read.next()) console.log(r.value.end, r.value.md5);
 * if (r.value.leftOutBytes > 0) console.log(`left out after ${r.value.complete.offset}`);
 * ```
 */
export async function* readTransactions(
  source: BinlogSource,
  options: ReadOptions = {},
): AsyncGenerator<BinlogTransaction, ReadEnd> {
  const batches = readBatches(source, options);
  let r = await batches.next();
  for (; !r.done; r = await batches.next()) yield* r.value.transactions;
  return r.value;
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

/** Transactions found together, in file order. */
export interface Batch {
  /** The transactions, each with its md5 (unless the read does not hash). */
  transactions: BinlogTransaction[];
  /** Index in the files read of the file they end in. */
  fileIndex: number;
  /**
   * Index of the file that the transaction continued from an earlier file (the only one with
   * `startFile` set, in a relay log) began in; -1 when none was continued.
   */
  carriedFrom: number;
}

/**
 * The transactions of the source in order, in batches (see FileParser.run), then where the read
 * ended; without `hashing` their md5s are left empty and no checksum is verified.
 */
export async function* readBatches(
  source: BinlogSource,
  options: ReadOptions,
  hashing = true,
): AsyncGenerator<Batch, ReadEnd> {
  // The hashing workers start while node:crypto and node:zlib load (20-30 ms each).
  const loading = loadNative();
  loading.catch(() => {});
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
  // The buffer must hold the prefix of any event (see PREFIX_MAX).
  const bufferSize = Math.max(options.bufferSize ?? READ_BUFFER_SIZE, 2 * PREFIX_MAX);
  const poolStart = hashing ? startPool(workers, bufferSize) : null;
  let pool: HashPool | null = null;
  try {
    const native = await loading;
    if (poolStart !== null) pool = new HashPool(poolStart, native);
    const common = { verify: options.verifyChecksums ?? true, warn, bufferSize, pool, native };
    const files = Array.isArray(source) ? source : [null];
    let carry: Carry | null = null;
    let end: ReadEnd | null = null;
    for (let i = 0; i < files.length; i++) {
      const name = files[i];
      const src = name === null
        ? streamSource(source as Exclude<BinlogSource, string[]>)
        : await openFile(name, i === files.length - 1, native.fs);
      try {
        const opts: FileParseOptions = {
          ...common,
          startPosition: i === 0 ? start : 4,
          fileIndex: i,
          carryIn: carry,
        };
        const carriedFrom = carry?.group.fileIndex ?? -1;
        const parser = new FileParser(src, opts);
        const run = parser.run();
        let r = await run.next();
        for (; !r.done; r = await run.next()) {
          yield { transactions: r.value, fileIndex: i, carriedFrom };
        }
        carry = r.value.carry;
        end = r.value.end;
      } finally {
        src.close();
      }
    }
    return end!;
  } finally {
    if (pool !== null) pool.close();
    else if (poolStart !== null) stopWorkers(poolStart);
  }
}

/**
 * The last `n` transactions of the files (read in order as one stream). First walks the files
 * without hashing or checksum verification to find where the last n transactions start, then
 * reads with hashing (and CRC verification) only from there. See tailWithEnd for where the read
 * ended as well.
 *
 * @example
 * ```ts
 * const trailing = await tailTransactions(relayLogFiles, 64);
 * ```
 */
export async function tailTransactions(
  files: string[],
  n: number,
  options: ReadOptions = {},
): Promise<BinlogTransaction[]> {
  if (n <= 0) return [];
  return (await tailWithEnd(files, n, options)).transactions;
}

/**
 * The last `n` transactions of the files, as tailTransactions, and where the read ended: where
 * the complete part ends, and what was left out after it (a torn event, a transaction without
 * its commit), to check against the server's own view of the log. With n <= 0, only where the
 * read ends (the files are walked, not hashed).
 *
 * @example
 * ```ts
 * const { transactions, end } = await tailWithEnd(relayLogFiles, 64);
 * if (end.leftOutBytes > 0) console.log(`${end.leftOutBytes} bytes left out after ${end.complete.offset}`);
 * ```
 */
export async function tailWithEnd(
  files: string[],
  n: number,
  options: ReadOptions = {},
): Promise<TailResult> {
  if (n <= 0) {
    // No transaction wanted: where the read ends, from a walk that hashes nothing.
    const walk = readBatches(files, options, false);
    let w = await walk.next();
    for (; !w.done; w = await walk.next());
    return { transactions: [], end: w.value };
  }
  await loadNative();
  // Pass 1: positions of complete transactions' starts (file index, offset), kept for the last n.
  const starts: Array<[number, number]> = [];
  const silent = () => {};
  const walkOptions = { ...options, onWarning: silent, verifyChecksums: false };
  const walk = readBatches(files, walkOptions, false);
  let w = await walk.next();
  for (; !w.done; w = await walk.next()) {
    const batch = w.value;
    for (const t of batch.transactions) {
      starts.push([t.startFile !== undefined ? batch.carriedFrom : batch.fileIndex, t.start]);
    }
    if (starts.length > n) starts.splice(0, starts.length - n);
  }
  if (starts.length === 0) {
    // Still report warnings and errors of a full read (there is nothing to hash).
    const read = readTransactions(files, options);
    let r = await read.next();
    for (; !r.done; r = await read.next());
    return { transactions: [], end: r.value };
  }
  const [fi, pos] = starts[0];
  const first = fi === 0 ? Math.max(pos, options.startPosition ?? 4) : pos;
  const out: BinlogTransaction[] = [];
  const rest = readBatches(files.slice(fi), { ...options, startPosition: first });
  let r = await rest.next();
  for (; !r.done; r = await rest.next()) {
    for (const t of r.value.transactions) out.push(t);
    if (out.length > n) out.splice(0, out.length - n);
  }
  return { transactions: out, end: r.value };
}
