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
import {
  BinlogMissingError,
  fetchBinlogFile,
  previousBinlogName,
  validBinlogName,
} from "./remote_binlog.ts";
import { findResumePointIn, type MasterTransaction } from "./resync.ts";

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
  /** Absolute deadline (Date.now() ms). */
  deadline: number;
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
  if (!validBinlogName(source.newestFile)) {
    throw new TypeError(`Not a binary log file name: ${source.newestFile}`);
  }
  const dir = await Deno.makeTempDir({ prefix: "prm-salvage-" });
  const segments: MasterTransaction[][] = [];
  const files: string[] = [];
  let reachedStart = false;
  try {
    await Deno.chmod(dir, 0o700);
    let file: string | undefined = source.newestFile;
    while (file !== undefined && files.length < (options.maxFiles ?? 64)) {
      let fetched;
      try {
        fetched = await fetchBinlogFile(file, {
          ...source,
          dir,
          binlogTool: options.binlogTool,
          fetchTimeoutMs: Math.max(5_000, options.deadline - Date.now()),
        });
      } catch (e) {
        if (e instanceof BinlogMissingError && files.length > 0) {
          reachedStart = true;
          break;
        }
        throw e;
      }
      files.push(file);
      const seg: MasterTransaction[] = [];
      for await (const tx of readTransactions([fetched.path])) {
        seg.push({ file, end: tx.end, md5: tx.md5, timestamp: tx.timestamp });
      }
      await Deno.remove(fetched.path);
      segments.unshift(seg);
      const previous = previousBinlogName(file);
      if (previous === undefined) {
        reachedStart = true;
        break;
      }
      const first = seg[0]?.timestamp;
      if (
        options.oldestTimestamp !== undefined && first !== undefined &&
        first < options.oldestTimestamp - 60
      ) break;
      file = previous;
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  return { transactions: segments.flat(), reachedStart, files };
}

/** Which of a node's transactions the new master lacks. */
export interface ErrantAnalysis {
  /** The node's last transaction the new master also holds (its own binlog coordinates). */
  lastCommon?: BinlogTransaction;
  /** Where the new master holds it (its binlog coordinates). */
  masterPosition?: { file: string; position: number };
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
    masterPosition: { file: d.file, position: d.position },
    errant: own.slice(i + 1),
    certain: true,
    note: `its history up to ${own[i].file}:${own[i].end} matches ${d.matched} transactions ` +
      `ending at the new master's ${d.file}:${d.position}`,
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
  /** Time to stamp (default now). */
  now?: Date;
}

async function decodeSql(tool: string, file: string, start: number, stop: number) {
  try {
    const out = await new Deno.Command(tool, {
      args: [
        "--no-defaults",
        "--base64-output=decode-rows",
        "-v",
        `--start-position=${start}`,
        `--stop-position=${stop}`,
        file,
      ],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    return out.success
      ? text
      : `${text}\n-- ${tool} failed: ${new TextDecoder().decode(out.stderr).trim()}\n`;
  } catch (e) {
    return `-- ${tool} could not run: ${(e as Error).message}\n`;
  }
}

/**
 * Writes the salvage file (mode 0600) and returns its path: a header, one line per errant
 * transaction (own binlog file, start and end positions, MD5, GTID, timestamp) and their SQL
 * decoded with `--base64-output=decode-rows -v`, one range per file.
 */
export async function writeSalvage(
  analysis: ErrantAnalysis,
  options: SalvageOptions,
): Promise<string> {
  const now = options.now ?? new Date();
  const safe = (s: string) => s.replace(/[^A-Za-z0-9_.-]/g, "_");
  await Deno.mkdir(options.dir, { recursive: true, mode: 0o700 });
  const stamp = now.toISOString().replace(/[:.]/g, "-");
  const path = `${options.dir}/salvage-${safe(options.resource)}-${
    safe(options.node)
  }-${stamp}.txt`;
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
          ? ` (new master ${analysis.masterPosition.file}:${analysis.masterPosition.position})`
          : "")
      : "# last common transaction: not found in the tail examined",
    `# errant transactions: ${analysis.errant.length}${
      analysis.certain ? "" : " (at least; divergence point not proven)"
    }`,
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
    text += await decodeSql(tool, file, r.start, r.stop);
  }
  await Deno.writeTextFile(path, text, { mode: 0o600, createNew: true });
  await Deno.chmod(path, 0o600);
  return path;
}
