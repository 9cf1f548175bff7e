/**
 * Slave resync and errant-transaction checks as the agent runs them on one node (position mode).
 *
 * The agent calls {@link resyncReplica} when an unpromoted node that replicated from another host
 * must follow a new master (post-promote, or later at start/monitor for a node that missed the
 * switch), and {@link checkReturningNode} when a node that replicates from nobody but holds
 * binary-logged transactions (typically the crashed old master coming back) must join one. Both
 * answer with a {@link ResyncOutcome}: resume at an exact position of the new master's binary log,
 * nothing to look for (empty history: the published coordinates are all there is), or a refusal
 * with a sentence for the log and the exit reason. Transient failures (the new master unreachable,
 * the relay log still being applied) throw: the caller retries at the next monitor.
 *
 * The lookup itself is `remote_binlog.ts` (the new master's binlog read newest file first over
 * the replication protocol) applying the run rule of `resync.ts` to this node's trailing
 * transactions, hashed with `binlog.ts` from its relay log (or its own binary log).
 *
 * @module
 */
import { BinlogError, type BinlogTransaction, type ReadEnd, tailWithEnd } from "./binlog.ts";
import { type Budget, delay } from "./budget.ts";
import { relayApplied } from "./election.ts";
import { type MysqlClient } from "./mysql.ts";
import { type BinlogPosition, binlogSequence, isBinlogName } from "./position.ts";
import { findResumePoint, type ResumeSearch } from "./remote_binlog.ts";
import { chooseTrailing } from "./resync.ts";
import { analyseErrant, fetchMasterTransactions, writeSalvage } from "./salvage.ts";
import { AGENT_DATA_DIR, readBoundedFile, removeEntry, replaceFile } from "./safe_fs.ts";

/** How many trailing transactions a node looks for (ten must match at least, see resync.ts). */
export const TRAILING_COUNT = 64;

/** The new master as the lookup reaches it (replication login, never logged). */
export interface ResyncSource {
  /** Host of the new master (the node name published in REPL_INFO). */
  host: string;
  /** Its MySQL port. */
  port: number;
  /** Replication user. */
  user: string;
  /** Its password. */
  password: string;
  /** Newest binary log of the new master (the file of its published coordinates). */
  newestFile: string;
}

/** Log sink (the agent's Logger fits). */
export interface ResyncLog {
  /** Informational line. */
  info(message: string): void;
  /** Warning line. */
  warn(message: string): void;
}

/** Options of {@link resyncReplica} and {@link checkReturningNode}. */
export interface ResyncOptions {
  /** Where the lines go. */
  log: ResyncLog;
  /** The time the whole check may take (every copy, wait and decode shares it). */
  budget: Budget;
  /** Trailing transactions looked for. Default {@link TRAILING_COUNT}. */
  trailingCount?: number;
  /** Binlog dump tool. Default `mariadb-binlog`. */
  binlogTool?: string;
  /** Directory salvage files go to (checkReturningNode). Default {@link SALVAGE_DIR}. */
  salvageDir?: string;
  /** Parent of the private folder for copies of the new master's binary logs. */
  workDir?: string;
  /** Node name and resource, for the salvage file. */
  node?: string;
  /** Resource name, for the salvage file. */
  resource?: string;
  /**
   * checkReturningNode for a replica whose relay log was not found: call its transactions errant
   * only when one of them is shared with the new master. Sharing none, the node cannot be placed
   * in the new master's history at all (that master purged the binary logs holding it): the
   * answer stays a not-found refusal, and no salvage file is written.
   */
  requireCommonPoint?: boolean;
}

/** Default directory of salvage files (created mode 0700; files are 0600). */
export const SALVAGE_DIR = AGENT_DATA_DIR;

/** The most an index or mark file may hold (a relay log index of 10,000 files is ~200 KiB). */
const INDEX_MAX = 4 * 1024 * 1024;

/**
 * Why a node may not follow a new master: its last transactions are not found once in the new
 * master's binary log (`not-found`, `ambiguous`, `too-short`, `incomplete`, `empty`: the run
 * rule's reasons, resync.ts), nothing since an operator's repair locates it (`no-history`), it
 * holds transactions the new master never received (`errant`), its SQL thread failed before its
 * relay log was applied (`sql-error`), the log it would be located by is corrupt
 * (`corrupt-log`), or that log does not end where the server says it does (`tail-mismatch`: a
 * corrupt event length must never send a replica back over transactions it already applied).
 */
const REFUSAL_CAUSES: readonly RefusalCause[] = [
  "not-found",
  "ambiguous",
  "too-short",
  "incomplete",
  "empty",
  "no-history",
  "errant",
  "sql-error",
  "corrupt-log",
  "tail-mismatch",
];

export type RefusalCause =
  | "not-found"
  | "ambiguous"
  | "too-short"
  | "incomplete"
  | "empty"
  | "no-history"
  | "errant"
  | "sql-error"
  | "corrupt-log"
  | "tail-mismatch";

/** What to do with a node that must follow a new master. */
export type ResyncOutcome =
  | {
    kind: "resume";
    /** New master's binlog file to replicate from. */
    file: string;
    /** Position in it. */
    pos: number;
    /** One line saying what matched where. */
    detail: string;
    /** The search's figures. */
    search?: ResumeSearch;
  }
  | { kind: "nothing"; detail: string }
  | {
    kind: "refused";
    /** Why, as a value (the reason text is for people). */
    cause: RefusalCause;
    /** Short sentence for the exit reason (Pacemaker keeps about 128 characters). */
    reason: string;
    /** The rest, for the log. */
    detail: string;
    /** Salvage file written, if any. */
    salvageFile?: string;
  };

/** The node's relay logs and binary logs, oldest first, as absolute paths. */
export interface LocalLogs {
  /** The server's datadir. */
  datadir: string;
  /** Relay log files in index order. */
  relayFiles: string[];
  /** Binary log files in index order, from the history-start mark on. */
  binlogFiles: string[];
  /** True when older binary logs were left out because of the history-start mark. */
  historyCut: boolean;
}

/**
 * Reads a binary or relay log index (written by the server, in a folder the `mysql` user owns:
 * untrusted): bounded in size, and every entry must name a log file by the one name rule.
 */
function readIndex(index: string, datadir: string): string[] {
  const read = readBoundedFile(index, INDEX_MAX);
  if (!read.ok) return [];
  const files: string[] = [];
  for (const line of read.text.split("\n")) {
    const entry = line.trim();
    if (entry === "") continue;
    const path = entry.startsWith("/")
      ? entry
      : `${datadir.replace(/\/$/, "")}/${entry.replace(/^\.\//, "")}`;
    if (!isBinlogName(path.slice(path.lastIndexOf("/") + 1)) || path.includes("/../")) {
      throw new Error(`The log index ${index} lists an unexpected file name`);
    }
    files.push(path);
  }
  return files;
}

function resolve(path: string, datadir: string): string {
  return path.startsWith("/") ? path : `${datadir.replace(/\/$/, "")}/${path}`;
}

/**
 * The file in the datadir that names the first binary log holding only history this node shares
 * with the cluster (see {@link markHistoryStart}).
 */
export const HISTORY_START_FILE = "prm_history_start";

/**
 * The binary logs from the one named by the history-start mark on. A mark that names no listed
 * file (RESET MASTER, a re-clone, a malformed mark) is ignored: the mark belongs to the binary
 * logs it was written beside, and a later history without that file never had a repair in it.
 */
export function binlogsSinceMark(files: string[], mark: string | undefined): string[] {
  if (mark === undefined || !isBinlogName(mark)) return files;
  const at = files.findIndex((f) => f.slice(f.lastIndexOf("/") + 1) === mark);
  return at < 0 ? files : files.slice(at);
}

/** True when this node's binary log history was started anew by an operator's repair. */
export function hasHistoryMark(datadir: string): boolean {
  return readMark(datadir) !== undefined;
}

function readMark(datadir: string): string | undefined {
  const read = readBoundedFile(resolve(HISTORY_START_FILE, datadir), 1024, { noFollow: true });
  return read.ok ? read.text.trim() : undefined;
}

/**
 * Lists the local relay logs and binary logs through their index files. Binary logs older than
 * the history-start mark are left out: they hold transactions a person removed by hand.
 */
export async function localLogs(client: MysqlClient): Promise<LocalLogs> {
  const [row] = await client.query(
    "SELECT @@global.datadir AS d, @@global.relay_log_index AS r, @@global.log_bin_index AS b, " +
      "@@global.log_bin AS on_",
  );
  const datadir = String(row.d ?? "");
  const relayIndex = row.r ? resolve(String(row.r), datadir) : "";
  const binlogIndex = row.b && Number(row.on_) === 1 ? resolve(String(row.b), datadir) : "";
  const binlogs = binlogIndex ? readIndex(binlogIndex, datadir) : [];
  const binlogFiles = binlogsSinceMark(binlogs, readMark(datadir));
  return {
    datadir,
    relayFiles: relayIndex ? readIndex(relayIndex, datadir) : [],
    binlogFiles,
    historyCut: binlogFiles.length < binlogs.length,
  };
}

/**
 * Starts this node's trusted binary log history now. Called when a person repointed a kept-out
 * node with the resume override: they removed its errant transactions by hand, unlogged, but its
 * binary logs still hold them, and a later resync or rejoin taking its trailing transactions from
 * there would look for transactions no other server has and be refused. The binary log is
 * rotated and the new file's name written to the datadir ({@link HISTORY_START_FILE}); returns
 * that name, or undefined when binary logging is off.
 */
export async function markHistoryStart(client: MysqlClient): Promise<string | undefined> {
  const [row] = await client.query("SELECT @@global.datadir AS d, @@global.log_bin AS on_");
  if (Number(row.on_) !== 1) return undefined;
  await client.query("FLUSH BINARY LOGS");
  const status = await client.binlogStatus();
  if (status === undefined || !isBinlogName(status.file)) return undefined;
  // The datadir belongs to the server's user: a new file, never written through a link.
  replaceFile(resolve(HISTORY_START_FILE, String(row.d ?? "")), `${status.file}\n`, {
    mode: 0o644,
  });
  return status.file;
}

/** The last transactions of some logs, and where their reading ended. */
export interface LogTail {
  /** The last transactions, oldest first. */
  transactions: BinlogTransaction[];
  /** Where the read of the newest file ended (undefined: no file). */
  end?: ReadEnd;
}

/**
 * The last `n` transactions of `files`, reading only as many of the newest files as needed.
 * An older file that cannot be opened ends the walk back; any other error is thrown.
 */
export async function tailOf(files: string[], n: number): Promise<LogTail> {
  // A corrupt log is thrown as is (BinlogError "corrupt"): the callers refuse on it.
  let best: LogTail = { transactions: [] };
  for (let k = 1; k <= files.length; k++) {
    let got: LogTail;
    try {
      got = await tailWithEnd(files.slice(-k), n);
    } catch (e) {
      // An older file listed in the index but gone (removed by hand): what was read stands.
      if (k > 1 && e instanceof BinlogError && e.kind === "io") break;
      throw e;
    }
    best = got;
    if (got.transactions.length >= n) break;
  }
  return best;
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/**
 * Where this node's last complete transaction ends in its own binary log (newest first, as far
 * back as needed), or undefined when it holds none. After a crash this is what its replicas must
 * have received to hold every commit: an unfinished transaction at the end of the file was never
 * committed, and a fresh binary log opened at the restart holds none.
 */
export async function ownLastTransaction(client: MysqlClient): Promise<BinlogPosition | undefined> {
  const [last] = (await tailOf((await localLogs(client)).binlogFiles, 1)).transactions;
  if (last === undefined) return undefined;
  const file = baseName(last.file);
  return isBinlogName(file) ? { file, pos: last.end } : undefined;
}

/**
 * Checks a log's read against where the server itself stands in it: `at` (the SQL thread's
 * relay-log file and offset, or the binary log's current file and size) must not lie beyond
 * the complete part the parser read. A torn tail is normal (the server stands before it); a
 * corrupt event length makes the parser stop early while the server went on: refused, since
 * the trailing transactions would then be older than what the node applied. Returns the
 * mismatch as a sentence, or undefined when the read covers where the server stands.
 */
export function tailMismatch(
  end: ReadEnd | undefined,
  at: { file: string; offset: number },
): string | undefined {
  if (end === undefined || at.file === "") return undefined;
  const complete = { file: baseName(end.complete.file), offset: end.complete.offset };
  const server = { file: baseName(at.file), offset: at.offset };
  if (complete.file === server.file && server.offset <= complete.offset) return undefined;
  if (
    complete.file !== server.file && binlogSequence(server.file) < binlogSequence(complete.file)
  ) {
    return undefined;
  }
  return `the server stands at ${server.file}:${server.offset}, but its log reads complete ` +
    `only up to ${complete.file}:${complete.offset} (${end.leftOutBytes} bytes left out)`;
}

/** The binary log's read against its size at rest (SHOW MASTER STATUS), when one was read. */
async function binlogMismatch(client: MysqlClient, tail: LogTail): Promise<string | undefined> {
  if (tail.end === undefined) return undefined;
  const status = await client.binlogStatus();
  if (status === undefined) return undefined;
  return tailMismatch(tail.end, { file: status.file, offset: status.pos });
}

/** Runs `read`; a corrupt log (a BinlogError of kind "corrupt") becomes a refusal. */
async function readLogs<T>(read: () => Promise<T>): Promise<T | ResyncOutcome> {
  try {
    return await read();
  } catch (e) {
    if (!(e instanceof BinlogError) || e.kind !== "corrupt") throw e;
    return {
      kind: "refused",
      cause: "corrupt-log",
      reason: "Resync refused (corrupt-log): this node's relay or binary log is corrupt",
      detail: e.message,
    };
  }
}

function isOutcome(v: unknown): v is ResyncOutcome {
  return typeof v === "object" && v !== null && "kind" in v;
}

function mismatchRefusal(what: string, mismatch: string): ResyncOutcome {
  return {
    kind: "refused",
    cause: "tail-mismatch",
    reason: `Resync refused (tail-mismatch): the ${what} does not end where the server stands`,
    detail: mismatch,
  };
}

/** The outcome of a search that found the resume point (`found` says what matched where). */
function resumeAt(search: ResumeSearch, found: string): ResyncOutcome {
  const d = search.decision;
  if (!d.ok) throw new Error("resumeAt needs a found position");
  return {
    kind: "resume",
    file: d.file,
    pos: d.pos,
    search,
    detail: `${found}; ${describe(search)}`,
  };
}

function describe(search: ResumeSearch): string {
  return `${search.filesFetched.length} file(s), ${search.bytesFetched} bytes, ` +
    `${search.transactionsHashed} transactions hashed in ${Math.round(search.elapsedMs)} ms`;
}

async function lookup(
  trailing: BinlogTransaction[],
  source: ResyncSource,
  options: ResyncOptions,
  complete: boolean,
): Promise<ResumeSearch> {
  return await findResumePoint({
    host: source.host,
    port: source.port,
    user: source.user,
    password: source.password,
    newestFile: source.newestFile,
    trailing,
    replicaHistoryComplete: complete,
    binlogTool: options.binlogTool,
    budget: options.budget,
    tmpDir: options.workDir,
    onProgress: (m) => options.log.info(`Resync lookup: ${m}`),
  });
}

/** True when the binary logs are a whole history: the first is number 1, nothing purged or cut. */
function wholeHistory(logs: LocalLogs): boolean {
  const files = logs.binlogFiles;
  return !logs.historyCut && files.length > 0 &&
    binlogSequence(files[0].slice(files[0].lastIndexOf("/") + 1)) === 1;
}

/**
 * A replica of another host must follow `source`: stops its IO thread, lets the SQL thread apply
 * everything received, takes its trailing transactions (relay log, or its own log_slave_updates
 * binary log when the relay log holds too few) and finds them in the new master's binary log.
 * Throws when the relay log cannot be applied in time or the new master cannot be read
 * (transient: retry later).
 */
export async function resyncReplica(
  client: MysqlClient,
  source: ResyncSource,
  options: ResyncOptions,
): Promise<ResyncOutcome> {
  const log = options.log;
  await client.stopReplicaIo();
  for (;;) {
    const s = await client.replicaStatus();
    if (s === undefined) break;
    if (s.lastSqlErrno !== 0 && !s.sqlRunning) {
      return {
        kind: "refused",
        cause: "sql-error",
        reason:
          `Resync refused: SQL thread error ${s.lastSqlErrno} before the relay log was applied`,
        detail: s.lastSqlError,
      };
    }
    // With the IO thread stopped, a transaction cut short when the master died stays
    // unapplied, and rightly so: election.ts's relayApplied says when that is the end.
    if (relayApplied(s)) break;
    if (!s.sqlRunning) await client.startReplicaSqlThread();
    if (options.budget.remainingMs() < 5_000) {
      throw new Error(
        `Relay log not applied in time (executed ${s.relayMasterLogFile}:${s.execMasterLogPos} of ${s.masterLogFile}:${s.readMasterLogPos})`,
      );
    }
    await delay(100, options.budget);
  }
  const logs = await localLogs(client);
  const n = options.trailingCount ?? TRAILING_COUNT;
  const relay = await readLogs(() => tailOf(logs.relayFiles, n));
  if (isOutcome(relay)) return relay;
  const applied = await client.replicaStatus();
  const relayMismatch = tailMismatch(relay.end, {
    file: applied?.relayLogFile ?? "",
    offset: applied?.relayLogPos ?? 0,
  });
  if (relayMismatch !== undefined) return mismatchRefusal("relay log", relayMismatch);
  const own = relay.transactions.length >= n
    ? { transactions: [] }
    : await readLogs(() => tailOf(logs.binlogFiles, n));
  if (isOutcome(own)) return own;
  const ownMismatch = await binlogMismatch(client, own);
  if (ownMismatch !== undefined) return mismatchRefusal("binary log", ownMismatch);
  const chosen = chooseTrailing(relay.transactions, own.transactions, { count: n });
  if (chosen.trailing.length === 0) {
    if (logs.historyCut) return untraceableSinceRepair(source);
    return { kind: "nothing", detail: "no transaction in the relay log or the binary log" };
  }
  const complete = chosen.source === "binlog" && chosen.trailing.length < n &&
    wholeHistory(logs);
  const search = await lookup(chosen.trailing, source, options, complete);
  const last = chosen.trailing[chosen.trailing.length - 1];
  const d = search.decision;
  if (d.ok) {
    return resumeAt(
      search,
      `last ${d.matched} of ${chosen.trailing.length} transactions from the ${chosen.source}` +
        ` (last md5 ${last.md5}) found ending at ${source.host} ${d.file}:${d.pos}`,
    );
  }
  log.warn(`Resync lookup refused (${d.reason}): ${d.message}; ${describe(search)}`);
  return {
    kind: "refused",
    cause: d.reason,
    reason:
      `Resync refused (${d.reason}): last transaction not found once in the binlog of ${source.host}`,
    detail: `last transaction ${last.md5} (${last.file}:${last.end}): ${d.message}; ` +
      describe(search),
  };
}

/**
 * A node repaired by hand (its history starts at the mark) that has received nothing since: its
 * data ends where the person pointed it, which no transaction of its own can locate in the new
 * master's binary log. The new master's published coordinates would skip whatever it gained
 * since; so the node is kept out for a person to point again (or re-clone).
 */
function untraceableSinceRepair(source: ResyncSource): ResyncOutcome {
  return {
    kind: "refused",
    cause: "no-history",
    reason:
      `Resync refused (no-history): nothing since the repair locates this node in ${source.host}`,
    detail: "its binary log history starts at the operator's repair and neither its relay log " +
      "nor that history holds a transaction to look up",
  };
}

/**
 * A node that replicates from nobody (the old master coming back, or an idle node) must follow
 * `source`: its own binary log's trailing transactions must be in the new master's binary log.
 * Found: resume right after the last one. Not found: the node holds transactions the new master
 * never received (errant); they are written to a salvage file and the answer is a refusal.
 */
export async function checkReturningNode(
  client: MysqlClient,
  source: ResyncSource,
  options: ResyncOptions,
): Promise<ResyncOutcome> {
  const logs = await localLogs(client);
  const n = options.trailingCount ?? TRAILING_COUNT;
  const ownTail = await readLogs(() => tailOf(logs.binlogFiles, n));
  if (isOutcome(ownTail)) return ownTail;
  const mismatch = await binlogMismatch(client, ownTail);
  if (mismatch !== undefined) return mismatchRefusal("binary log", mismatch);
  const own = ownTail.transactions;
  if (own.length === 0) {
    if (logs.historyCut) return untraceableSinceRepair(source);
    return { kind: "nothing", detail: "its binary log holds no transaction" };
  }
  const complete = own.length < n && wholeHistory(logs);
  const search = await lookup(own, source, options, complete);
  const d = search.decision;
  if (d.ok) {
    return resumeAt(
      search,
      `its binary log's last ${d.matched} transactions found ending at ${source.host} ` +
        `${d.file}:${d.pos}: nothing errant`,
    );
  }
  options.log.warn(`Own binary log tail not in ${source.host}'s (${d.reason}): ${d.message}`);
  // Which of its transactions are errant: those after the last one the new master holds.
  const tail = (await tailOf(logs.binlogFiles, 2_000)).transactions;
  const master = await fetchMasterTransactions(source, {
    binlogTool: options.binlogTool,
    budget: options.budget,
    workDir: options.workDir,
    oldestTimestamp: tail[0]?.timestamp,
  });
  const analysis = await analyseErrant(tail, master.transactions, {
    fromHistoryStart: master.reachedStart,
    historyComplete: wholeHistory(logs) && tail.length < 2_000,
  });
  if (options.requireCommonPoint && analysis.lastCommon === undefined) {
    return {
      kind: "refused",
      cause: "not-found",
      reason: `Resync refused (not-found): this node shares no transaction with the binlog of ` +
        `${source.host} that is left`,
      detail: `${d.message}; ${analysis.note}`,
    };
  }
  const file = await writeSalvage(analysis, {
    dir: options.salvageDir ?? SALVAGE_DIR,
    node: options.node ?? Deno.hostname(),
    resource: options.resource ?? "mysql",
    master: `${source.host} (newest binlog ${source.newestFile})`,
    binlogTool: options.binlogTool,
    budget: options.budget,
    lookup: `${d.reason}: ${d.message}`,
  });
  const count = analysis.errant.length;
  const where = analysis.lastCommon
    ? `after ${analysis.lastCommon.file}:${analysis.lastCommon.end}`
    : "beyond the tail examined";
  return {
    kind: "refused",
    cause: "errant",
    salvageFile: file,
    reason: `Errant transactions (${count}${analysis.certain ? "" : "+"}) saved in ${file}`,
    detail: `this node holds ${count}${
      analysis.certain ? "" : "+"
    } transaction(s) ${where} that ${source.host} never received (${analysis.note})`,
  };
}

/** What blocks this node until a person acts (kept in the agent's state directory). */
export interface ResyncBlock {
  /** Why, as a value (a resync refusal's cause; "errant" for GTID mode's errant transactions). */
  cause?: RefusalCause;
  /** The exit reason. */
  reason: string;
  /** When it was decided (ISO time). */
  at: string;
  /** Salvage file, when one was written. */
  salvageFile?: string;
}

/** Reads the block file; undefined when there is none. */
export function readBlock(path: string): ResyncBlock | undefined {
  const read = readBoundedFile(path, 64 * 1024, { noFollow: true });
  if (!read.ok) return undefined;
  try {
    const b = JSON.parse(read.text) as ResyncBlock;
    if (typeof b?.reason !== "string") return undefined;
    // The cause becomes a node attribute's value: only a known one (untrusted file content).
    return { ...b, cause: REFUSAL_CAUSES.includes(b.cause as RefusalCause) ? b.cause : undefined };
  } catch {
    return undefined;
  }
}

/** Writes (or with undefined, removes) the block file (in the agent's own state folder). */
export function writeBlock(path: string, block: ResyncBlock | undefined): void {
  if (block === undefined) {
    removeEntry(path);
    return;
  }
  replaceFile(path, JSON.stringify(block), { mode: 0o600 });
}
