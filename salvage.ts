/**
 * Errant transactions of a node coming back (typically the crashed old master): which of its own
 * binary log's transactions the new master never received, and a salvage file that shows them to
 * a DBA (binlog positions, MD5s, and their SQL decoded by mysqlbinlog/mariadb-binlog).
 *
 * The errant transactions are those after the last one of the node's binary log that the new
 * master also holds, where "holds" is decided by the run rule of `resync.ts` (the node's history
 * up to that transaction must match as a run, not one MD5), so that an old transaction that
 * happens to hash like a new one cannot hide the divergence.
 *
 * @module
 */
import type { BinlogTransaction } from "./binlog.ts";
import { readTransactions } from "./binlog.ts";
import { walkBackward } from "./remote_binlog.ts";
import { findResumePointIn, type MasterTransaction } from "./resync.ts";
import type { Budget } from "./budget.ts";
import type { BinlogPosition } from "./position.ts";
import { runChild } from "./child.ts";
import { privateDir, readBoundedFile, replaceFile, writeExclusive } from "./safe_fs.ts";

/** Where the new master is (replication login) and its newest binary log. */
export interface MasterSource {
  /** Host. */
  host: string;
  /** Port. */
  port: number;
  /** Replication user. */
  user: string;
  /** Its password (never logged). */
  password: string;
  /** Newest binary log file. */
  newestFile: string;
}

/** Options of {@link fetchMasterTransactions}. */
export interface FetchMasterOptions {
  /** Binlog dump tool. Default `mariadb-binlog`. */
  binlogTool?: string;
  /** The time the reading may take. */
  budget: Budget;
  /** Parent of the private working folder (default: the agent's own, remote_binlog.ts). */
  workDir?: string;
  /** Stop reading older files once a file starts before this timestamp minus 60 s. */
  oldestTimestamp?: number;
  /** At most this many files. Default 64. */
  maxFiles?: number;
}

/**
 * Reads the new master's binary logs newest first (over the replication protocol, one file at a
 * time) and returns their transactions in log order, and whether the oldest one was reached.
 */
export async function fetchMasterTransactions(
  source: MasterSource,
  options: FetchMasterOptions,
): Promise<{ transactions: MasterTransaction[]; reachedStart: boolean; files: string[] }> {
  const segments: MasterTransaction[][] = [];
  const maxFiles = options.maxFiles ?? 64;
  const walk = await walkBackward({
    ...source,
    binlogTool: options.binlogTool,
    budget: options.budget,
    workDir: options.workDir,
  }, async (copy) => {
    const seg: MasterTransaction[] = [];
    for await (const tx of readTransactions([copy.path])) {
      seg.push({ file: copy.file, end: tx.end, md5: tx.md5, timestamp: tx.timestamp });
    }
    segments.unshift(seg);
    const first = seg[0]?.timestamp;
    const oldEnough = options.oldestTimestamp !== undefined && first !== undefined &&
      first < options.oldestTimestamp - 60;
    return oldEnough || segments.length >= maxFiles ? "stop" : "older";
  });
  return { transactions: segments.flat(), reachedStart: walk.reachedStart, files: walk.files };
}

/** Which of a node's transactions the new master lacks. */
export interface ErrantAnalysis {
  /** The node's last transaction the new master also holds (its own binlog coordinates). */
  lastCommon?: BinlogTransaction;
  /** Where the new master holds it (its binlog coordinates). */
  masterPosition?: BinlogPosition;
  /** The node's transactions after `lastCommon`, oldest first. */
  errant: BinlogTransaction[];
  /** False when the divergence point could not be proven (then `errant` is a lower bound). */
  certain: boolean;
  /** One sentence on how the point was decided. */
  note: string;
}

/** Options of {@link analyseErrant}. */
export interface AnalyseOptions {
  /** `master` starts at the new master's first binary log. */
  fromHistoryStart: boolean;
  /** `own` is the node's whole history (so fewer than the minimum run may match). */
  historyComplete: boolean;
  /** Minimum run (see resync.ts). */
  minRun?: number;
}

/**
 * Splits the node's binary log tail `own` (oldest first) at its last transaction that the new
 * master holds: the newest transaction of `own` whose MD5 occurs in `master` and whose history up
 * to it is found there by the run rule. Everything after it is errant.
 */
export async function analyseErrant(
  own: BinlogTransaction[],
  master: MasterTransaction[],
  options: AnalyseOptions,
): Promise<ErrantAnalysis> {
  const inMaster = new Set(master.map((t) => t.md5));
  let i = own.length - 1;
  while (i >= 0 && !inMaster.has(own[i].md5)) i--;
  if (i < 0) {
    return {
      errant: own,
      certain: false,
      note: `none of the ${own.length} transactions examined is in the new master's ` +
        `${master.length} transactions read: the divergence is older`,
    };
  }
  const d = await findResumePointIn(own.slice(0, i + 1), master, {
    minRun: options.minRun,
    replicaHistoryComplete: options.historyComplete,
    fromHistoryStart: options.fromHistoryStart,
  });
  if (!d.ok) {
    return {
      lastCommon: own[i],
      errant: own.slice(i + 1),
      certain: false,
      note: `the newest shared transaction ${own[i].md5} is not confirmed by its history ` +
        `(${d.reason}: ${d.message})`,
    };
  }
  return {
    lastCommon: own[i],
    masterPosition: { file: d.file, pos: d.pos },
    errant: own.slice(i + 1),
    certain: true,
    note: `its history up to ${own[i].file}:${own[i].end} matches ${d.matched} transactions ` +
      `ending at the new master's ${d.file}:${d.pos}`,
  };
}

/** Options of {@link writeSalvage}. */
export interface SalvageOptions {
  /** Directory (created 0700). */
  dir: string;
  /** Node name (in the file name). */
  node: string;
  /** Resource name (in the file name). */
  resource: string;
  /** Description of the new master, for the header. */
  master: string;
  /** What the lookup said, for the header. */
  lookup: string;
  /** Binlog tool used to decode the SQL. Default `mariadb-binlog`. */
  binlogTool?: string;
  /** The time decoding may take. */
  budget: Budget;
  /** Time to stamp (default now). */
  now?: Date;
}

async function decodeSql(
  tool: string,
  range: { file: string; start: number; stop: number },
  budget: Budget,
): Promise<string> {
  const r = await runChild([
    tool,
    "--no-defaults",
    "--base64-output=decode-rows",
    "-v",
    `--start-position=${range.start}`,
    `--stop-position=${range.stop}`,
    "--",
    range.file,
  ], { budget, maxMs: 60_000, maxOutputBytes: SQL_OUTPUT_MAX });
  if (r.code === 0) return r.stdout + "\n";
  return `${r.stdout}\n-- ${tool} failed (${r.code}): ${r.stderr}\n`;
}

/** The most decoded SQL kept per file range in a salvage file. */
const SQL_OUTPUT_MAX = 64 * 1024 * 1024;

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]/g, "_");
}

/** How every salvage file of `resource` is named: this prefix, the node, a time, `.txt`. */
export function salvagePrefix(resource: string): string {
  return `salvage-${safeName(resource)}-`;
}

/**
 * How many salvage files of `resource` wait in `dir` for a person (they stay until someone
 * moves them away). 0 when the folder does not exist.
 *
 * @example
 * ```ts
 * countSalvageFiles("/var/lib/prm", "p_mysql"); // 0 on a healthy node
 * ```
 */
export function countSalvageFiles(dir: string, resource: string): number {
  const prefix = salvagePrefix(resource);
  let n = 0;
  try {
    for (const e of Deno.readDirSync(dir)) {
      if (e.isFile && e.name.startsWith(prefix) && e.name.endsWith(".txt")) n++;
    }
  } catch {
    return 0;
  }
  return n;
}

/**
 * The errant episode a salvage file is about: the node's last errant transaction (its own binlog
 * file, end and MD5). A kept-out node takes no writes, so every check of the same return finds
 * the same one, whatever the divergence point it proves; a new episode has new transactions.
 */
export function episodeOf(analysis: ErrantAnalysis): string | undefined {
  const last = analysis.errant.at(-1);
  if (last === undefined) return undefined;
  return `${last.file.slice(last.file.lastIndexOf("/") + 1)}:${last.end}:${last.md5}`;
}

/** The most the episode record may hold. */
const EPISODE_RECORD_MAX = 8 * 1024;

/** The salvage file already written for `episode` by this node, if it is still there. */
function priorSalvage(record: string, episode: string): string | undefined {
  const read = readBoundedFile(record, EPISODE_RECORD_MAX, { noFollow: true });
  if (!read.ok) return undefined;
  try {
    const r = JSON.parse(read.text) as { episode?: unknown; file?: unknown };
    if (r.episode !== episode || typeof r.file !== "string") return undefined;
    // Only a regular file of its own folder: the record is the agent's, the folder private.
    if (!r.file.startsWith(`${record.slice(0, record.lastIndexOf("/"))}/salvage-`)) {
      return undefined;
    }
    return Deno.lstatSync(r.file).isFile ? r.file : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Writes the salvage file (mode 0600) and returns its path: a header, one line per errant
 * transaction (own binlog file, start and end positions, MD5, GTID, timestamp) and their SQL
 * decoded with `--base64-output=decode-rows -v`, one range per file. One file per errant
 * episode ({@link episodeOf}): when this node already saved the same episode (a start attempt
 * after another, a cleanup), that file's path is returned and nothing is written.
 */
export async function writeSalvage(
  analysis: ErrantAnalysis,
  options: SalvageOptions,
): Promise<string> {
  const now = options.now ?? new Date();
  privateDir(options.dir);
  // This node's files: `<prefix>-<time>.txt`, and the record of its last episode beside them.
  const prefix = `${options.dir}/${salvagePrefix(options.resource)}${safeName(options.node)}`;
  const record = `${prefix}.episode`;
  const episode = episodeOf(analysis);
  const prior = episode === undefined ? undefined : priorSalvage(record, episode);
  if (prior !== undefined) return prior;
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  const path = `${prefix}-${stamp}.txt`;
  const tool = options.binlogTool ?? "mariadb-binlog";
  const lines = [
    `# prm salvage file: transactions on ${options.node} that the new master never received`,
    `# written ${now.toISOString()} for resource ${options.resource}`,
    `# new master: ${options.master}`,
    `# lookup of this node's last transactions: ${options.lookup}`,
    `# divergence: ${analysis.note}`,
    analysis.lastCommon
      ? `# last common transaction: ${analysis.lastCommon.file}:${analysis.lastCommon.end} md5 ${analysis.lastCommon.md5}` +
        (analysis.masterPosition
          ? ` (new master ${analysis.masterPosition.file}:${analysis.masterPosition.pos})`
          : "")
      : "# last common transaction: not found in the tail examined",
    `# errant transactions: ${analysis.errant.length}${
      analysis.certain ? "" : " (at least; divergence point not proven)"
    }`,
    `# episode: ${
      episode ?? "-"
    } (one file per episode: a later check of the same return reuses it)`,
    "# columns: n file start end md5 gtid timestamp server_id",
  ];
  analysis.errant.forEach((t, k) => {
    lines.push(
      `errant ${k + 1} ${t.file} ${t.start} ${t.end} ${t.md5} ${t.gtid ?? "-"} ` +
        `${new Date(t.timestamp * 1000).toISOString()} ${t.serverId}`,
    );
  });
  lines.push("", "# SQL of the errant transactions (decoded rows as comments):", "");
  // One decode per file: from the first errant start to the last errant end in it.
  const ranges = new Map<string, { start: number; stop: number }>();
  for (const t of analysis.errant) {
    const r = ranges.get(t.file);
    if (r === undefined) ranges.set(t.file, { start: t.start, stop: t.endOffset });
    else r.stop = Math.max(r.stop, t.endOffset);
  }
  let text = lines.join("\n") + "\n";
  for (const [file, r] of ranges) {
    text += `# --- ${file} ${r.start}..${r.stop}\n`;
    text += await decodeSql(tool, { file, start: r.start, stop: r.stop }, options.budget);
  }
  writeExclusive(path, text, { mode: 0o600 });
  if (episode !== undefined) replaceFile(record, JSON.stringify({ episode, file: path }));
  return path;
}
