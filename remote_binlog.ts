/**
 * Reading a new master's binary log over the replication protocol, to find where a replica
 * resumes (see `resync.ts` for the rule).
 *
 * Only the replication user's privilege (REPLICATION SLAVE) is needed: the files are copied with
 * `mariadb-binlog --read-from-remote-server --raw` (or MySQL's `mysqlbinlog`), which streams them
 * with COM_BINLOG_DUMP, one file per run, into a private temporary directory, and are hashed
 * locally with `binlog.ts`. On MariaDB 10.5+ `SHOW BINARY LOGS` needs BINLOG MONITOR, which a
 * replication user usually lacks, so the file list is not required: the search starts from the
 * newest file (the one the new master published with its position) and walks back by sequence
 * number until the run is settled or the server says the file no longer exists (that is where its
 * history starts).
 *
 * The password never appears on a command line or in a message: it goes to the tool through a
 * mode 0600 option file given as `--defaults-extra-file` (which must be the first option).
 *
 * @module
 */
import { WireConnection } from "./mysql_wire.ts";
import { readTransactions } from "./binlog.ts";
import { Budget, BudgetExpiredError } from "./budget.ts";
import { runChild } from "./child.ts";
import { isBinlogName, isValidHost, previousBinlogName } from "./position.ts";
import { AGENT_DATA_DIR, privateDir, writeExclusive } from "./safe_fs.ts";
import {
  BackwardResumeSearch,
  type MasterTransaction,
  type MatchOptions,
  type ResumeDecision,
  ResumeMatcher,
  type TrailingTransaction,
} from "./resync.ts";

/** How to reach the new master with the replication user. */
export interface RemoteBinlogOptions {
  /** Host name or address of the new master. */
  host: string;
  /** TCP port. Default 3306. */
  port?: number;
  /** Replication user (REPLICATION SLAVE is enough). */
  user: string;
  /** Its password (never logged, never on a command line). */
  password: string;
  /** Binlog dump tool. Default `mariadb-binlog` (MySQL's is `mysqlbinlog`). */
  binlogTool?: string;
  /** The time the whole reading may take (every copy and the walk back share it). */
  budget: Budget;
}

/** Options for {@link fetchBinlogFile}. */
export interface FetchBinlogOptions extends RemoteBinlogOptions {
  /** Private directory (mode 0700) the file is written to, as `dir/<file>`. */
  dir: string;
}

/** Options for {@link walkBackward}. */
export interface WalkOptions extends RemoteBinlogOptions {
  /** The newest binary log (where the walk starts). */
  newestFile: string;
  /** The oldest binary log, when known (`SHOW BINARY LOGS`): the walk ends there. */
  oldestFile?: string;
  /** Parent of the private working folder. Default {@link AGENT_DATA_DIR}`/work`. */
  workDir?: string;
}

/** One binary log copied by {@link walkBackward}. */
export interface CopiedFile {
  /** Its name on the new master. */
  file: string;
  /** Where the copy is (deleted once the visitor returns). */
  path: string;
  /** Its size. */
  bytes: number;
  /** True when it is the new master's first binary log (nothing older exists). */
  oldest: boolean;
}

/** What {@link walkBackward} did. */
export interface WalkSummary {
  /** Files copied, newest first. */
  files: string[];
  /** Bytes copied. */
  bytes: number;
  /** Time spent copying, in ms. */
  fetchMs: number;
  /** True when the walk reached the new master's first binary log. */
  reachedStart: boolean;
}

/** Options for {@link findResumePoint}. */
export interface FindResumePointOptions extends RemoteBinlogOptions, MatchOptions {
  /** The replica's last received transactions, oldest first (from its relay log). */
  trailing: readonly TrailingTransaction[];
  /**
   * The new master's newest binary log (the file of its published `host|file|pos`). When absent,
   * it is read with `SHOW BINARY LOGS`, which needs BINLOG MONITOR (or REPLICATION CLIENT on MySQL).
   */
  newestFile?: string;
  /**
   * Identical runs must have identical origin timestamps, since the MD5 covers them. After the
   * run is found, older files are still read until the oldest transaction read is this many
   * seconds older than the replica's run, so that a second occurrence (which would make the
   * position ambiguous) cannot hide in an unread file. Default 60. Without timestamps in
   * `trailing`, every file is read.
   */
  timestampSlackSeconds?: number;
  /**
   * Stop at the first file where the run is found at exactly one position, without the timestamp
   * guard above (fewest bytes fetched; trusts that no identical run hides in older files).
   * Default false.
   */
  stopWhenFound?: boolean;
  /** Parent of the private temporary directory. Default: the system temp dir. */
  tmpDir?: string;
  /** Receives one line per file fetched (no secrets). */
  onProgress?: (message: string) => void;
}

/** What {@link findResumePoint} did and decided. */
export interface ResumeSearch {
  /** The resume point in the new master's binary log, or a refusal with its reason. */
  decision: ResumeDecision;
  /** Files copied from the new master, newest first. */
  filesFetched: string[];
  /** Bytes copied. */
  bytesFetched: number;
  /** Transactions hashed in total (each fetched file is hashed once). */
  transactionsHashed: number;
  /** Wall time of the whole search in ms. */
  elapsedMs: number;
  /** Of which copying files from the new master, in ms. */
  fetchMs: number;
}

const NOT_IN_INDEX = "Could not find first log file name in binary log index file";

/** Thrown when the new master no longer has (or never had) the requested binary log. */
export class BinlogMissingError extends Error {
  /** The file asked for. */
  readonly file: string;
  /** Makes the error for `file`. */
  constructor(file: string) {
    super(`The new master has no binary log ${file}`);
    this.name = "BinlogMissingError";
    this.file = file;
  }
}

/**
 * Lists the new master's binary logs with `SHOW BINARY LOGS` (needs BINLOG MONITOR on MariaDB
 * 10.5+, REPLICATION CLIENT on MySQL). Every name and size is validated.
 */
export async function listBinaryLogs(
  options: RemoteBinlogOptions,
): Promise<{ name: string; size: number }[]> {
  const conn = await WireConnection.connect({
    host: options.host,
    port: options.port ?? 3306,
    user: options.user,
    password: options.password,
    connectTimeoutMs: Math.max(1, options.budget.cap(10_000)),
  });
  try {
    const rows = await conn.query("SHOW BINARY LOGS", Math.max(1, options.budget.cap(10_000)));
    return rows.map((r) => {
      const name = r.Log_name;
      const size = Number(r.File_size);
      if (!isBinlogName(name) || !Number.isSafeInteger(size) || size < 0) {
        throw new Error(`The server listed an unexpected binary log: ${JSON.stringify(r)}`);
      }
      return { name, size };
    });
  } finally {
    await conn.close();
  }
}

function optionFileText(options: RemoteBinlogOptions): string {
  if (/[\n\r\0]/.test(options.password)) {
    throw new TypeError("The replication password contains a line break or NUL");
  }
  const quoted = options.password.replaceAll("\\", "\\\\").replaceAll('"', '\\"');
  return `[client]\npassword="${quoted}"\n`;
}

/**
 * Copies one binary log of the new master into `options.dir` (as `dir/<file>`), byte for byte as the
 * server streams it, and returns its path and size. Throws {@link BinlogMissingError} when the
 * server does not have that file, an Error with the tool's message otherwise.
 */
export async function fetchBinlogFile(
  file: string,
  options: FetchBinlogOptions,
): Promise<{ path: string; bytes: number }> {
  const dir = options.dir;
  if (!isBinlogName(file)) throw new TypeError(`Not a binary log file name: ${file}`);
  if (!isValidHost(options.host)) {
    throw new TypeError(`Host is not a plain host name or address: ${options.host}`);
  }
  const port = options.port ?? 3306;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new RangeError(`Bad port ${port}`);
  const secret = `${dir}/.client.cnf`;
  writeExclusive(secret, optionFileText(options), { mode: 0o600 });
  const path = `${dir}/${file}`;
  try {
    const r = await runChild([
      options.binlogTool ?? "mariadb-binlog",
      `--defaults-extra-file=${secret}`,
      "--read-from-remote-server",
      "--raw",
      `--host=${options.host}`,
      `--port=${port}`,
      `--user=${options.user}`,
      `--result-file=${dir}/`,
      "--",
      file,
    ], { budget: options.budget, discardStdout: true, maxOutputBytes: 64 * 1024 });
    if (r.timedOut) {
      throw new BudgetExpiredError(`copying binary log ${file} from ${options.host}:${port}`);
    }
    if (r.code !== 0) {
      if (r.stderr.includes(NOT_IN_INDEX)) throw new BinlogMissingError(file);
      const why = r.stderr.split("\n").slice(-3).join(" ") || `exit ${r.code} ${r.signal ?? ""}`;
      throw new Error(`Copying binary log ${file} from ${options.host}:${port} failed: ${why}`);
    }
    const st = await Deno.lstat(path);
    if (!st.isFile) throw new Error(`Copying binary log ${file} left no regular file`);
    return { path, bytes: st.size };
  } finally {
    await Deno.remove(secret).catch(() => {});
  }
}

/**
 * Copies the new master's binary logs one at a time, newest first, into a private working folder
 * and hands each to `visit` (the copy is deleted once `visit` returns, so at most one file is on
 * disk). Walks back while `visit` answers "older", until the first binary log, or until the
 * server says the file before no longer exists (that is where its history starts). The budget is
 * checked before every copy: a slow master cannot stretch the walk past it (BudgetExpiredError).
 * This is the one walk of the new master's history: resync and salvage both use it.
 */
export async function walkBackward(
  options: WalkOptions,
  visit: (copy: CopiedFile) => Promise<"older" | "stop">,
): Promise<WalkSummary> {
  if (!isBinlogName(options.newestFile)) {
    throw new TypeError(`Not a binary log file name: ${JSON.stringify(options.newestFile)}`);
  }
  const parent = options.workDir ?? `${AGENT_DATA_DIR}/work`;
  privateDir(parent);
  const dir = await Deno.makeTempDir({ dir: parent, prefix: "binlogs-" });
  const summary: WalkSummary = { files: [], bytes: 0, fetchMs: 0, reachedStart: false };
  try {
    let file: string | undefined = options.newestFile;
    while (file !== undefined) {
      options.budget.check(`reading the binary logs of ${options.host} (at ${file})`);
      let fetched;
      const f0 = performance.now();
      try {
        fetched = await fetchBinlogFile(file, { ...options, dir });
        summary.fetchMs += performance.now() - f0;
      } catch (e) {
        // A file purged (or never created) before this one: the history starts after it.
        if (e instanceof BinlogMissingError && summary.files.length > 0) {
          summary.reachedStart = true;
          break;
        }
        throw e;
      }
      summary.files.push(file);
      summary.bytes += fetched.bytes;
      const oldest = file === options.oldestFile || previousBinlogName(file) === undefined;
      let next: "older" | "stop";
      try {
        next = await visit({ file, path: fetched.path, bytes: fetched.bytes, oldest });
      } finally {
        await Deno.remove(fetched.path).catch(() => {});
      }
      if (oldest) {
        summary.reachedStart = true;
        break;
      }
      if (next === "stop") break;
      file = previousBinlogName(file);
    }
    return summary;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

async function* transactionsOf(
  path: string,
  first: { timestamp?: number },
): AsyncGenerator<MasterTransaction> {
  const file = path.slice(path.lastIndexOf("/") + 1);
  for await (const tx of readTransactions([path])) {
    first.timestamp ??= tx.timestamp;
    yield { file, end: tx.end, md5: tx.md5, timestamp: tx.timestamp };
  }
}

/**
 * Finds where a replica resumes in the new master's binary log: copies the new master's binlogs
 * one at a time, newest first, hashes each once (then deletes it, so at most one file is on
 * disk), and applies the run rule of `resync.ts` to everything read so far
 * ({@link BackwardResumeSearch}), stopping as soon as the answer cannot change by reading older
 * files:
 *
 * - a unique consistent position, and the oldest transaction read is `timestampSlackSeconds`
 *   older than the replica's run (or the first binary log was reached);
 * - `ambiguous` (older files can only add positions);
 * - `empty` / `too-short` (decided before any copy).
 *
 * `not-found` and `incomplete` read on into older files; once the oldest file is read, they are
 * final. The temporary directory is removed in every case.
 *
 * @example
 * ```ts
 * const trailing = await tailTransactions(relayLogFiles, 64);
 * const { decision } = await findResumePoint({ host, port, user, password, trailing, newestFile });
 * if (decision.ok) changeMasterTo(host, decision.file, decision.pos);
 * ```
 */
export async function findResumePoint(options: FindResumePointOptions): Promise<ResumeSearch> {
  const t0 = performance.now();
  const trailing = options.trailing;
  const matchOptions: MatchOptions = {
    minRun: options.minRun,
    replicaHistoryComplete: options.replicaHistoryComplete,
    keepCandidates: options.keepCandidates,
  };
  const result: ResumeSearch = {
    decision: new ResumeMatcher(trailing, matchOptions).decide({ fromHistoryStart: true }),
    filesFetched: [],
    bytesFetched: 0,
    transactionsHashed: 0,
    elapsedMs: 0,
    fetchMs: 0,
  };
  if (!result.decision.ok && ["empty", "too-short"].includes(result.decision.reason)) {
    result.elapsedMs = performance.now() - t0;
    return result;
  }
  // The oldest file, when known from SHOW BINARY LOGS; otherwise found by walking back.
  let oldestFile: string | undefined;
  let newestFile = options.newestFile;
  if (newestFile === undefined) {
    const logs = await listBinaryLogs(options);
    if (logs.length === 0) throw new Error(`${options.host} has no binary logs`);
    newestFile = logs[logs.length - 1].name;
    oldestFile = logs[0].name;
  }
  const stamps = trailing.map((t) => t.timestamp).filter((t): t is number => t !== undefined);
  const runStart = stamps.length === trailing.length ? Math.min(...stamps) : undefined;
  const slack = options.timestampSlackSeconds ?? 60;
  const search = new BackwardResumeSearch(trailing, matchOptions);
  const walk = await walkBackward(
    { ...options, newestFile, oldestFile, workDir: options.tmpDir },
    async (copy) => {
      const first: { timestamp?: number } = {};
      const decision = await search.addOlder(transactionsOf(copy.path, first), {
        fromHistoryStart: copy.oldest,
      });
      result.decision = decision;
      options.onProgress?.(
        `read ${copy.file} (${copy.bytes} bytes), ${search.scanned} transactions so far: ` +
          (decision.ok ? `found at ${decision.file}:${decision.pos}` : decision.reason),
      );
      if (!decision.ok && decision.reason === "ambiguous") return "stop";
      if (decision.ok && options.stopWhenFound) return "stop";
      if (
        decision.ok && runStart !== undefined && first.timestamp !== undefined &&
        first.timestamp < runStart - slack
      ) {
        return "stop";
      }
      return "older";
    },
  );
  // A walk that ran into the start of the history (a purged file) settles what is still open.
  if (walk.reachedStart) result.decision = search.decide({ fromHistoryStart: true });
  result.filesFetched = walk.files;
  result.bytesFetched = walk.bytes;
  result.fetchMs = walk.fetchMs;
  result.transactionsHashed = search.scanned;
  result.elapsedMs = performance.now() - t0;
  return result;
}
