/**
 * Integration test of prm_binlog_parser against real MariaDB servers.
 *
 * A master (CRC32) and three replicas (A: CRC32, MIXED; B: checksums off, ROW; C: like A with
 * compressed events), all with log_slave_updates and relay logs kept, get a workload covering
 * row/statement/mixed formats, DDL, MyISAM, XA, LOAD DATA, rollbacks, user variables/RAND/INSERT_ID,
 * rotations and one transaction over 32 MB. Then:
 *  1. every file set's END_POS sequence equals the terminating events' end_log_pos as printed by
 *     `mysqlbinlog` (expectations derived from its text output, independently of the parser);
 *  2. per MariaDB GTID, the MD5 in each replica's relay logs and binlogs equals the master's, except
 *     for the documented never-match classes (counted and printed);
 *  3. multiple files form one stream, `--tail N` and `--start-position P` give the expected subsets;
 *  4. every event of every file, were the file to end inside it, is a torn tail (a warning), not
 *     a corrupt size.
 *
 * Set PRM_KEEP_FIXTURES=1 to keep the servers' directories for inspection.
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import { isTornTail } from "../binlog_reader.ts";
import {
  type MariadbServer,
  setupReplication,
  startMariadb,
  startMariadbServers,
  stopAll,
  waitForCatchUp,
} from "./mariadb_server.ts";

const REPO = new URL("..", import.meta.url).pathname;
const KEEP = Deno.env.get("PRM_KEEP_FIXTURES") === "1";
const MB = 1024 * 1024;

/** How to run the parser: the built launcher when present, else the sources. */
function parserCommand(): { cmd: string; args: string[] } {
  const env = Deno.env.get("PRM_BINLOG_PARSER");
  if (env) {
    return env.endsWith(".ts")
      ? { cmd: Deno.execPath(), args: ["run", "-A", env] }
      : { cmd: env, args: [] };
  }
  const dist = `${REPO}dist/prm_binlog_parser`;
  try {
    const st = Deno.statSync(dist);
    if (st.isFile && st.mode !== null && (st.mode & 0o111) !== 0) return { cmd: dist, args: [] };
  } catch {
    // Not built: fall back to the sources.
  }
  return { cmd: Deno.execPath(), args: ["run", "-A", `${REPO}binlog.ts`] };
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function runParser(args: string[]): Promise<RunResult> {
  const p = parserCommand();
  const out = await new Deno.Command(p.cmd, {
    args: [...p.args, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

async function parserLines(args: string[]): Promise<string[]> {
  const r = await runParser(args);
  if (r.code !== 0) {
    throw new Error(`Parser failed (exit ${r.code}) on ${args.join(" ")}: ${r.stderr.trim()}`);
  }
  return r.stdout.split("\n").filter((l) => l !== "");
}

interface ParsedJson {
  file: string;
  start: number;
  end: number;
  md5: string;
  gtid?: string;
  timestamp: number;
  server_id: number;
}

async function parserJson(files: string[]): Promise<ParsedJson[]> {
  return (await parserLines(["--json", ...files])).map((l) => JSON.parse(l));
}

// ---------------------------------------------------------------------------------------------
// Expectations from mysqlbinlog's text output.

/** One transaction as mysqlbinlog shows it. */
interface MbTxn {
  gtid: string;
  /** Offset ("# at") of the GTID event. */
  start: number;
  /** end_log_pos of the terminating event. */
  end: number;
  /** Event kinds inside the group, without GTID, terminator and Annotate_rows. */
  kinds: string[];
  /** Statement texts of the QUERY events inside the group (terminators excluded). */
  statements: string[];
  /** "Xid", "COMMIT", "ROLLBACK", "XA PREPARE" or "standalone". */
  terminator: string;
}

const HEADER_RE =
  /^#\d{6}\s+\d{1,2}:\d\d:\d\d server id (\d+)\s+end_log_pos (\d+)\s*(?:CRC32 0x[0-9a-f]+)?\s*(.*)$/;

/** Events that may sit inside a group in a relay log or are never hashed content. */
const NOT_CONTENT = new Set([
  "Annotate_rows",
  "FDE",
  "Rotate",
  "Stop",
  "Gtid_list",
  "Binlog_checkpoint",
]);

function eventKind(typeText: string): string {
  if (typeText.startsWith("Start:")) return "FDE";
  if (typeText.startsWith("GTID ")) return "GTID";
  if (typeText.startsWith("Xid = ")) return "Xid";
  if (typeText.startsWith("XID = ")) return "XA_PREPARE";
  if (typeText.startsWith("Gtid list")) return "Gtid_list";
  if (typeText.startsWith("Binlog checkpoint")) return "Binlog_checkpoint";
  const m = /^([A-Za-z_]+)/.exec(typeText);
  // Compressed events (log_bin_compress) carry the same content as their plain counterparts.
  return m
    ? m[1].replace(/^Query_compressed$/, "Query").replace(/_compressed_rows$/, "_rows")
    : "unknown";
}

function statementText(body: string[]): string {
  return body.filter((l) =>
    !l.startsWith("SET TIMESTAMP=") && !l.startsWith("/*") && !l.startsWith("SET @@session.") &&
    !l.startsWith("use `") && !l.startsWith("#") && l.trim() !== ""
  ).map((l) => l.replace(/\/\*!\*\/;$/, "")).join("\n").trim();
}

/**
 * Splits mysqlbinlog output (one or more files) into transactions with the MariaDB rules: a GTID
 * event opens a group; if mysqlbinlog prints START TRANSACTION / XA START for it the group ends at
 * Xid, a COMMIT/ROLLBACK query or XA PREPARE, otherwise (standalone) at the next query.
 */
export function parseMysqlbinlog(text: string): { txns: MbTxn[]; problems: string[] } {
  const lines = text.split("\n");
  // Rows events without STMT_END_F are printed late, so "# at" lines and headers do not pair up
  // one to one; a GTID header, though, always directly follows its own "# at".
  let lastAt = -1;
  const txns: MbTxn[] = [];
  const problems: string[] = [];
  let cur: (MbTxn & { standalone: boolean }) | undefined;
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    const at = /^# at (\d+)$/.exec(line);
    if (at) {
      lastAt = Number(at[1]);
      i++;
      continue;
    }
    const h = HEADER_RE.exec(line);
    if (!h) {
      i++;
      continue;
    }
    let typeText = h[3].trim();
    const pos = lastAt;
    const endLogPos = Number(h[2]);
    i++;
    if (typeText === "" && i < lines.length && lines[i].startsWith("#")) {
      typeText = lines[i].slice(1);
    }
    const body: string[] = [];
    while (i < lines.length && !lines[i].startsWith("# at ") && !HEADER_RE.test(lines[i])) {
      body.push(lines[i]);
      i++;
    }
    const kind = eventKind(typeText);
    if (kind === "GTID") {
      if (cur) problems.push(`GTID ${cur.gtid} at ${cur.start} has no terminating event`);
      const gtid = /^GTID (\d+-\d+-\d+)/.exec(typeText)![1];
      const standalone = !body.some((l) => /^(START TRANSACTION|BEGIN|XA START)/.test(l));
      cur = {
        gtid,
        start: pos,
        end: -1,
        kinds: [],
        statements: [],
        terminator: "",
        standalone,
      };
      continue;
    }
    if (!cur) continue;
    const finish = (terminator: string) => {
      const { standalone: _, ...t } = cur!;
      txns.push({ ...t, end: endLogPos, terminator });
      cur = undefined;
    };
    if (kind === "Query" || kind === "Execute_load_query") {
      const stmt = statementText(body);
      if (cur.standalone) {
        cur.kinds.push(kind);
        cur.statements.push(stmt);
        finish("standalone");
      } else if (kind === "Query" && (stmt === "COMMIT" || stmt === "ROLLBACK")) {
        finish(stmt);
      } else {
        cur.kinds.push(kind);
        cur.statements.push(stmt);
      }
    } else if (kind === "Xid") {
      finish("Xid");
    } else if (kind === "XA_PREPARE") {
      finish("XA PREPARE");
    } else if (!NOT_CONTENT.has(kind)) {
      cur.kinds.push(kind);
    }
  }
  if (cur) problems.push(`GTID ${cur.gtid} at ${cur.start} is incomplete at the end`);
  return { txns, problems };
}

export async function mysqlbinlog(files: string[]): Promise<MbTxn[]> {
  const out = await new Deno.Command("mysqlbinlog", {
    args: ["--no-defaults", "--base64-output=decode-rows", ...files],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `mysqlbinlog failed on ${files.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  const { txns, problems } = parseMysqlbinlog(new TextDecoder().decode(out.stdout));
  assert.deepEqual(problems, [], `mysqlbinlog output of ${files.join(" ")} is inconsistent`);
  return txns;
}

// ---------------------------------------------------------------------------------------------
// Workload.

/** Small deterministic PRNG so a failing run can be reproduced. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const f = mysql.format;

/** Returns the workload as batches of SQL statements; each batch runs under one binlog_format. */
function workload(
  loadDir: string,
  transactionsPerBatch: number,
): { format: string; sql: string[] }[] {
  const rnd = prng(42);
  const int = (n: number) => Math.floor(rnd() * n);
  const word = (n: number) => Array.from({ length: n }, () => "abcdefghij"[int(10)]).join("");
  const batches: { format: string; sql: string[] }[] = [];
  batches.push({
    format: "MIXED",
    sql: [
      "CREATE DATABASE w",
      "USE w",
      "CREATE TABLE w.inno (id INT AUTO_INCREMENT PRIMARY KEY, a INT, b VARCHAR(200), c DOUBLE) ENGINE=InnoDB",
      "CREATE TABLE w.isam (id INT AUTO_INCREMENT PRIMARY KEY, a INT, b VARCHAR(200)) ENGINE=MyISAM",
      "CREATE TABLE w.big (id INT AUTO_INCREMENT PRIMARY KEY, payload LONGTEXT) ENGINE=InnoDB",
      "CREATE TABLE w.loaded (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=InnoDB",
      "CREATE TABLE w.loaded_isam (id INT PRIMARY KEY, v VARCHAR(50)) ENGINE=MyISAM",
      "INSERT INTO w.inno (a, b, c) SELECT seq, CONCAT('seed', seq), seq / 7 FROM seq_1_to_500",
    ],
  });
  const formats = ["ROW", "STATEMENT", "MIXED", "ROW", "STATEMENT", "MIXED", "ROW", "STATEMENT"];
  let xa = 0;
  let ddl = 0;
  formats.forEach((format, b) => {
    const sql: string[] = [];
    for (let t = 0; t < transactionsPerBatch; t++) {
      const r = int(100);
      const id = 1 + int(500);
      if (r < 35) {
        const rows = 1 + int(4);
        const values = Array.from(
          { length: rows },
          () => f("(?, ?, ?)", [int(1e6), word(5 + int(60)), int(1000) / 8]),
        );
        sql.push(`INSERT INTO w.inno (a, b, c) VALUES ${values.join(", ")}`);
      } else if (r < 50) {
        sql.push(
          "BEGIN",
          f("INSERT INTO w.inno (a, b, c) VALUES (?, ?, ?)", [int(1e6), word(20), 1.5]),
          f("UPDATE w.inno SET a = a + 1, b = ? WHERE id = ?", [word(10), id]),
          f("DELETE FROM w.inno WHERE id = ?", [501 + int(3000)]),
          "COMMIT",
        );
      } else if (r < 58) {
        sql.push(f("INSERT INTO w.isam (a, b) VALUES (?, ?)", [int(1e6), word(30)]));
      } else if (r < 61) {
        sql.push(f("UPDATE w.isam SET b = ? WHERE id = ?", [word(8), 1 + int(50)]));
      } else if (r < 65) {
        // Transactional and non-transactional table in one transaction.
        sql.push(
          "BEGIN",
          f("INSERT INTO w.inno (a, b) VALUES (?, 'mixed-engine')", [int(1e6)]),
          f("INSERT INTO w.isam (a, b) VALUES (?, 'mixed-engine')", [int(1e6)]),
          "COMMIT",
        );
      } else if (r < 68) {
        // Rolled back with a MyISAM change inside: logged, ending in ROLLBACK.
        sql.push(
          "BEGIN",
          f("INSERT INTO w.inno (a, b) VALUES (?, 'rolled-back')", [int(1e6)]),
          f("INSERT INTO w.isam (a, b) VALUES (?, 'rolled-back')", [int(1e6)]),
          "ROLLBACK",
        );
      } else if (r < 70) {
        // Pure InnoDB rollback: not logged at all.
        sql.push("BEGIN", "INSERT INTO w.inno (a, b) VALUES (0, 'never')", "ROLLBACK");
      } else if (r < 76) {
        sql.push(
          f("SET @v = ?", [int(1e6)]),
          "INSERT INTO w.inno (a, b, c) VALUES (@v, CONCAT('uservar-', @v), RAND())",
          "INSERT INTO w.isam (a, b) VALUES (LAST_INSERT_ID(), 'insert-id')",
        );
      } else if (r < 79) {
        sql.push(f("UPDATE w.inno SET a = 0 WHERE id < ?", [-1 - int(10)])); // changes no row
      } else if (r < 83) {
        const name = `xa${b}_${xa++}`;
        sql.push(
          f("XA START ?", [name]),
          f("INSERT INTO w.inno (a, b) VALUES (?, ?)", [int(1e6), name]),
          f("UPDATE w.inno SET c = c + 1 WHERE id = ?", [id]),
          f("XA END ?", [name]),
          f("XA PREPARE ?", [name]),
          r < 82 ? f("XA COMMIT ?", [name]) : f("XA ROLLBACK ?", [name]),
        );
      } else if (r < 85) {
        const table = mysql.escapeId(`w.ddl_${ddl++}`, false);
        sql.push(
          `CREATE TABLE ${table} (id INT PRIMARY KEY, v VARCHAR(20)) ENGINE=InnoDB`,
          `ALTER TABLE ${table} ADD COLUMN extra INT DEFAULT 7`,
          `INSERT INTO ${table} (id, v) VALUES (1, 'x'), (2, 'y')`,
          `DROP TABLE ${table}`,
        );
      } else if (r < 88) {
        sql.push(f("UPDATE w.inno SET b = ? WHERE id BETWEEN ? AND ?", [word(12), id, id + 20]));
      } else {
        sql.push(f("INSERT INTO w.inno (a, b, c) VALUES (?, ?, ?)", [int(1e6), word(100), 0]));
      }
    }
    const loadFile = `${loadDir}/load_${b}.tsv`;
    const rows = Array.from({ length: 50 }, (_, k) => `${b * 1000 + k}\trow-${k}`).join("\n") +
      "\n";
    Deno.writeTextFileSync(loadFile, rows);
    sql.push(
      f("LOAD DATA INFILE ? INTO TABLE w.loaded", [loadFile]),
      f("LOAD DATA LOCAL INFILE ? INTO TABLE w.loaded_isam", [loadFile]),
      "FLUSH BINARY LOGS",
    );
    batches.push({ format, sql });
  });
  // One transaction far above 32 MB (700 rows of 60 kB) plus a small statement in it.
  batches.push({
    format: "ROW",
    sql: [
      "BEGIN",
      "INSERT INTO w.big (payload) SELECT REPEAT(CHAR(65 + seq % 26), 60000) FROM seq_1_to_700",
      "UPDATE w.inno SET a = a + 1 WHERE id = 1",
      "COMMIT",
      "INSERT INTO w.inno (a, b) VALUES (1, 'after-big')",
    ],
  });
  return batches;
}

async function runWorkload(master: MariadbServer, transactionsPerBatch: number): Promise<void> {
  const conn = await master.connect();
  try {
    for (const batch of workload(master.dir, transactionsPerBatch)) {
      await conn.query(f("SET SESSION binlog_format = ?", [batch.format]));
      for (let i = 0; i < batch.sql.length; i += 200) {
        await conn.query(batch.sql.slice(i, i + 200).join(";\n"));
      }
    }
  } finally {
    await conn.end();
  }
}

/**
 * Starts a master and three replicas with log_slave_updates and their relay logs kept (A: CRC32,
 * MIXED; B: checksums off, ROW; C: like A with compressed events), runs the workload on the
 * master and stops all four once the replicas caught up: their binlogs and relay logs are
 * finished files. Returns [master, A, B, C]; their directories stay until `stopAll` (removed
 * here on failure). bench/binlog_compare.ts builds its corpus with it too.
 */
export async function replicatedWorkload(
  options: { keepDir?: boolean; transactionsPerBatch?: number } = {},
): Promise<MariadbServer[]> {
  const common = { maxBinlogSize: 256 * 1024, keepDir: options.keepDir ?? false };
  const servers = await startMariadbServers([
    { ...common, serverId: 1, binlogChecksum: "CRC32", binlogFormat: "MIXED" },
    {
      ...common,
      serverId: 2,
      binlogChecksum: "CRC32",
      binlogFormat: "MIXED",
      logSlaveUpdates: true,
    },
    { ...common, serverId: 3, binlogChecksum: "NONE", binlogFormat: "ROW", logSlaveUpdates: true },
    {
      ...common,
      serverId: 4,
      binlogChecksum: "CRC32",
      binlogFormat: "MIXED",
      logSlaveUpdates: true,
      extraArgs: ["--log-bin-compress=ON", "--log-bin-compress-min-len=10"],
    },
  ]);
  try {
    const [master, ...replicas] = servers;
    for (const r of replicas) await setupReplication(r, master);
    await runWorkload(master, options.transactionsPerBatch ?? 420);
    for (const r of replicas) await waitForCatchUp(r, master);
    await Promise.all(servers.map((s) => s.stop({ keepDir: true })));
    return servers;
  } catch (e) {
    await stopAll(servers);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Checks.

interface FileSet {
  name: string;
  files: string[];
  /** Never-match classes tolerated for this set (empty: everything must match exactly). */
  tolerate: string[];
}

/** The events of a binlog whose header, were the file to end inside them, isTornTail rejects. */
function eventsNotTorn(b: Uint8Array): { events: number; offsets: number[] } {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const offsets: number[] = [];
  let events = 0;
  let prevLogPos = 0;
  for (let p = 4; p + 19 <= b.length;) {
    const size = dv.getUint32(p + 9, true);
    const logPos = dv.getUint32(p + 13, true);
    if (size < 19 || p + size > b.length) break;
    if (!isTornTail({ pos: p, size, logPos }, prevLogPos)) offsets.push(p);
    prevLogPos = logPos;
    events++;
    p += size;
  }
  return { events, offsets };
}

/** Records a failure naming the first differing line when two outputs differ. */
function sameLines(failures: string[], actual: string[], expected: string[], label: string): void {
  if (actual.length === expected.length && actual.every((l, k) => l === expected[k])) return;
  let k = 0;
  while (k < actual.length && k < expected.length && actual[k] === expected[k]) k++;
  failures.push(
    `${label}: ${actual.length} lines, expected ${expected.length}; first difference at line ${k}: ` +
      `${actual[k] ?? "(none)"} vs expected ${expected[k] ?? "(none)"}`,
  );
}

function describe(t: MbTxn | undefined): string {
  if (!t) return "(none)";
  const kinds: string[] = [];
  for (const k of t.kinds) {
    const m = /^(.*)\*(\d+)$/.exec(kinds.at(-1) ?? "");
    if (kinds.at(-1) === k) kinds[kinds.length - 1] = `${k}*2`;
    else if (m && m[1] === k) kinds[kinds.length - 1] = `${k}*${Number(m[2]) + 1}`;
    else kinds.push(k);
  }
  return `gtid ${t.gtid} start ${t.start} end ${t.end} ${t.terminator} [${kinds.join(" ")}] ${
    JSON.stringify(t.statements.map((s) => s.slice(0, 80)))
  }`;
}

const ROW_KINDS = new Set(["Table_map", "Write_rows", "Update_rows", "Delete_rows"]);
const STATEMENT_KINDS = new Set([
  "Query",
  "Intvar",
  "Rand",
  "User_var",
  "Begin_load_query",
  "Execute_load_query",
]);

/** A DROP TABLE statement without IF EXISTS and the server's comments, to compare two of them. */
function dropTableKey(statement: string): string {
  return statement.replace(/\/\* generated by server \*\//g, "").replace(/ IF EXISTS /i, " ")
    .replace(/\s+/g, " ").trim();
}

/**
 * Names the never-match class (binlog.ts) explaining why a replica's copy of a transaction hashes
 * differently from the master's, from what mysqlbinlog shows of both; undefined if none applies.
 */
function neverMatchClass(master: MbTxn, replica: MbTxn): string | undefined {
  const sameContent = JSON.stringify(master.kinds) === JSON.stringify(replica.kinds) &&
    JSON.stringify(master.statements) === JSON.stringify(replica.statements);
  if (sameContent && master.terminator === "COMMIT" && replica.terminator === "Xid") {
    return "myisam-commit-vs-xid";
  }
  const masterStatementDml = master.terminator !== "standalone" &&
    master.kinds.some((k) => STATEMENT_KINDS.has(k));
  const replicaRows = replica.kinds.some((k) => ROW_KINDS.has(k));
  if (masterStatementDml && replicaRows && !sameContent) return "statement-relogged-as-rows";
  if (
    master.terminator === "standalone" && replica.terminator === "standalone" &&
    master.statements.length === 1 && replica.statements.length === 1 &&
    /^DROP TABLE /i.test(master.statements[0]) &&
    /^DROP TABLE IF EXISTS /i.test(replica.statements[0]) &&
    dropTableKey(master.statements[0]) === dropTableKey(replica.statements[0])
  ) {
    return "idempotent-drop-table";
  }
  return undefined;
}

/**
 * Names the reason a master transaction can be absent from a replica's binlog: a statement-based
 * group ending in ROLLBACK (MariaDB 10.11 does not re-log it), or a group without row events that
 * a ROW replica drops when it changed no row.
 */
function missingClass(master: MbTxn): string | undefined {
  if (master.terminator === "ROLLBACK") return "rollback-not-relogged";
  if (!master.kinds.some((k) => ROW_KINDS.has(k))) return "zero-row-vanished";
  return undefined;
}

Deno.test("startMariadb reports a server that dies during startup, with its error log", async () => {
  const t0 = performance.now();
  await assert.rejects(
    () => startMariadb({ extraArgs: ["--no-such-option-prm"], startTimeoutMs: 30_000 }),
    (e: Error) => {
      assert.match(e.message, /exited with code \d+ during startup/);
      assert.match(e.message, /no-such-option-prm/);
      return true;
    },
  );
  assert.ok(performance.now() - t0 < 20_000, "early death was not noticed before the deadline");
});

Deno.test("mysqlbinlog output is split into transactions at the right terminating events", () => {
  const h = (pos: number, type: string) =>
    `#261122  5:03:19 server id 1  end_log_pos ${pos} CRC32 0x0a45af0d \t${type}`;
  const q = "Query\tthread_id=5\texec_time=0\terror_code=0\txid=0";
  const text = [
    "# at 4",
    h(256, "Start: binlog v 4, server v 10.11.19-MariaDB-log created 261122"),
    "# at 328",
    h(370, "GTID 0-1-1 ddl"),
    "/*M!100001 SET @@session.gtid_seq_no=1*//*!*/;",
    "# at 370",
    h(530, q),
    "SET TIMESTAMP=1795323799/*!*/;",
    "CREATE DATABASE d",
    "/*!*/;",
    "# at 530",
    h(572, "GTID 0-1-2 trans"),
    "START TRANSACTION",
    "# at 572",
    "# at 600",
    h(600, "Annotate_rows:"),
    "#Q> INSERT INTO d.t VALUES (1)",
    h(650, "Table_map: `d`.`t` mapped to number 18"),
    "# at 650",
    h(700, "Write_rows: table id 18 flags: STMT_END_F"),
    "# at 700",
    h(731, "Xid = 20"),
    "COMMIT/*!*/;",
    "# at 731",
    h(773, "GTID 0-1-3"),
    "START TRANSACTION",
    "# at 773",
    h(812, ""),
    "#Begin_load_query: file_id: 1  block_len: 12",
    "# at 812",
    h(900, "Execute_load_query\tthread_id=5\texec_time=0\terror_code=0\txid=0"),
    "LOAD DATA LOCAL INFILE '/tmp/x' INTO TABLE `d`.`m`",
    "/*!*/;",
    "# at 900",
    h(969, q),
    "COMMIT",
    "/*!*/;",
    "# at 969",
    h(1015, "GTID 0-1-4 trans"),
    "XA START X'7831',X'',1/*!*/;",
    "# at 1015",
    h(1098, q),
    "XA END X'7831',X'',1",
    "/*!*/;",
    "# at 1098",
    h(1136, "XID = X'7831',X'',1"),
    "XA PREPARE X'7831',X'',1",
    "# at 1136",
    h(1180, "GTID 0-1-5 trans"),
    "# at 1180",
    h(1266, q),
    "XA COMMIT X'7831',X'',1",
    "/*!*/;",
    "# at 1266",
    h(1300, "GTID 0-1-6"),
    "START TRANSACTION",
    "# at 1300",
    h(1400, q),
    "INSERT INTO d.m VALUES (1)",
    "/*!*/;",
    "# at 1400",
    h(1469, q),
    "ROLLBACK",
    "/*!*/;",
  ].join("\n");
  const { txns, problems } = parseMysqlbinlog(text);
  assert.deepEqual(problems, []);
  assert.deepEqual(
    txns.map((t) => [t.gtid, t.start, t.end, t.terminator]),
    [
      ["0-1-1", 328, 530, "standalone"],
      ["0-1-2", 530, 731, "Xid"],
      ["0-1-3", 731, 969, "COMMIT"],
      ["0-1-4", 969, 1136, "XA PREPARE"],
      ["0-1-5", 1136, 1266, "standalone"],
      ["0-1-6", 1266, 1469, "ROLLBACK"],
    ],
  );
  assert.deepEqual(txns[1].kinds, ["Table_map", "Write_rows"]);
  assert.deepEqual(txns[2].kinds, ["Begin_load_query", "Execute_load_query"]);
  assert.deepEqual(txns[0].statements, ["CREATE DATABASE d"]);
  assert.equal(neverMatchClass(txns[2], { ...txns[2], terminator: "Xid" }), "myisam-commit-vs-xid");
  assert.equal(neverMatchClass(txns[1], { ...txns[1], statements: ["x"] }), undefined);
});

Deno.test({
  name:
    "binlog parser matches mysqlbinlog and hashes equal across master, relay logs and replica binlogs",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const t0 = performance.now();
    const servers: MariadbServer[] = [];
    try {
      servers.push(...await replicatedWorkload({ keepDir: KEEP }));
      const [master, replicaA, replicaB, replicaC] = servers;
      const tWorkload = performance.now();
      if (KEEP) console.log(`fixtures kept in ${servers.map((s) => s.dir).join(" ")}`);

      const sets: FileSet[] = [
        { name: "master binlog", files: master.binlogFiles(), tolerate: [] },
        { name: "replica A relay log", files: replicaA.relayLogFiles(), tolerate: [] },
        {
          name: "replica A binlog (CRC32, MIXED)",
          files: replicaA.binlogFiles(),
          tolerate: [
            "myisam-commit-vs-xid",
            "statement-relogged-as-rows",
            "idempotent-drop-table",
            "rollback-not-relogged",
          ],
        },
        { name: "replica B relay log", files: replicaB.relayLogFiles(), tolerate: [] },
        {
          name: "replica B binlog (no checksum, ROW)",
          files: replicaB.binlogFiles(),
          tolerate: [
            "myisam-commit-vs-xid",
            "statement-relogged-as-rows",
            "idempotent-drop-table",
            "rollback-not-relogged",
            "zero-row-vanished",
          ],
        },
        {
          name: "replica C binlog (CRC32, MIXED, compressed events)",
          files: replicaC.binlogFiles(),
          tolerate: [
            "myisam-commit-vs-xid",
            "statement-relogged-as-rows",
            "idempotent-drop-table",
            "rollback-not-relogged",
          ],
        },
      ];
      const sizes = sets.map((s) =>
        `${s.name}: ${s.files.length} files, ${
          (s.files.reduce((n, p) => n + Deno.statSync(p).size, 0) / MB).toFixed(1)
        } MB`
      );
      console.log(sizes.join("\n"));
      const largest = Math.max(...master.binlogFiles().map((p) => Deno.statSync(p).size));
      assert.ok(largest > 32 * MB, `the master's largest binlog is ${largest} bytes, not > 32 MB`);

      const failures: string[] = [];
      const expected = new Map<string, MbTxn[]>();
      const json = new Map<string, ParsedJson[]>();

      // 1. Positions.
      for (const set of sets) {
        const mb = await mysqlbinlog(set.files);
        expected.set(set.name, mb);
        const lines = await parserLines(set.files);
        const js = await parserJson(set.files);
        json.set(set.name, js);
        for (const l of lines) {
          if (!/^\d+,[0-9a-f]{32}$/.test(l)) failures.push(`${set.name}: malformed line ${l}`);
        }
        const ends = lines.map((l) => Number(l.split(",")[0]));
        if (ends.length !== mb.length) {
          failures.push(
            `${set.name}: parser printed ${ends.length} transactions, mysqlbinlog shows ${mb.length}`,
          );
        }
        for (let k = 0; k < Math.max(ends.length, mb.length); k++) {
          if (ends[k] !== mb[k]?.end) {
            failures.push(
              `${set.name}: transaction #${k}: mysqlbinlog ${describe(mb[k])}; parser ${lines[k]} ${
                JSON.stringify(js[k])
              }`,
            );
            break;
          }
        }
        assert.equal(js.length, lines.length, `${set.name}: --json and default disagree in count`);
        for (let k = 0; k < js.length; k++) {
          const j = js[k];
          if (`${j.end},${j.md5}` !== lines[k]) {
            failures.push(`${set.name}: #${k} json ${JSON.stringify(j)} vs line ${lines[k]}`);
            break;
          }
          if (j.gtid !== mb[k]?.gtid || typeof j.timestamp !== "number" || j.server_id !== 1) {
            failures.push(`${set.name}: #${k} json ${JSON.stringify(j)} vs ${describe(mb[k])}`);
            break;
          }
        }
        console.log(`positions ${set.name}: ${ends.length} transactions checked`);
      }
      // Start offsets are file offsets of the GTID events in the master's own binlog.
      const masterMb = expected.get("master binlog")!;
      const masterJs = json.get("master binlog")!;
      for (let k = 0; k < masterJs.length; k++) {
        if (masterJs[k].start !== masterMb[k]?.start) {
          failures.push(
            `master binlog: #${k} start ${masterJs[k].start} vs ${describe(masterMb[k])}`,
          );
          break;
        }
      }
      const kinds = new Set(masterMb.map((t) => t.terminator));
      for (const k of ["Xid", "COMMIT", "ROLLBACK", "XA PREPARE", "standalone"]) {
        assert.ok(kinds.has(k), `the workload produced no transaction ending with ${k}`);
      }
      assert.ok(masterMb.length > 2500, `only ${masterMb.length} transactions in the workload`);
      // The workload really covers what the fixtures must contain.
      const allKinds = new Set(masterMb.flatMap((t) => t.kinds));
      for (
        const k of [
          "Begin_load_query",
          "Execute_load_query",
          "User_var",
          "Rand",
          "Intvar",
          "Write_rows",
          "Update_rows",
          "Delete_rows",
          "Query",
        ]
      ) {
        assert.ok(allKinds.has(k), `no ${k} event in the master's binlog`);
      }
      const allStatements = masterMb.flatMap((t) => t.statements);
      for (
        const re of [/^CREATE TABLE/, /^ALTER TABLE/, /^DROP TABLE/, /^XA COMMIT/, /^XA ROLLBACK/]
      ) {
        assert.ok(allStatements.some((x) => re.test(x)), `no statement matching ${re} logged`);
      }

      // 2. MD5 equality per GTID.
      const masterByGtid = new Map<string, { md5: string; txn: MbTxn; index: number }>();
      masterJs.forEach((j, k) => {
        masterByGtid.set(masterMb[k].gtid, { md5: j.md5, txn: masterMb[k], index: k });
      });
      for (const set of sets.slice(1)) {
        const mb = expected.get(set.name)!;
        const js = json.get(set.name)!;
        let matched = 0;
        const tolerated = new Map<string, number>();
        const bad: string[] = [];
        const seen = new Set<string>();
        let lastIndex = -1;
        for (let k = 0; k < js.length; k++) {
          const gtid = mb[k]?.gtid ?? js[k].gtid ?? "";
          const m = masterByGtid.get(gtid);
          if (!m) {
            bad.push(`#${k} ${gtid} is not in the master's binlog`);
            continue;
          }
          seen.add(gtid);
          if (m.index < lastIndex) bad.push(`#${k} ${gtid} is out of the master's order`);
          lastIndex = m.index;
          if (js[k].md5 === m.md5) {
            matched++;
            continue;
          }
          const cls = mb[k] ? neverMatchClass(m.txn, mb[k]) : undefined;
          if (cls && set.tolerate.includes(cls)) {
            tolerated.set(cls, (tolerated.get(cls) ?? 0) + 1);
          } else {
            bad.push(
              `#${k} ${gtid} md5 ${js[k].md5} vs master ${m.md5} (${
                cls ?? "no never-match class"
              }): ` +
                `replica ${describe(mb[k])} | master ${describe(m.txn)}`,
            );
          }
        }
        for (const [gtid, m] of masterByGtid) {
          if (seen.has(gtid)) continue;
          const cls = missingClass(m.txn);
          if (cls && set.tolerate.includes(cls)) {
            tolerated.set(cls, (tolerated.get(cls) ?? 0) + 1);
          } else {
            bad.push(`${gtid} missing: master ${describe(m.txn)}`);
          }
        }
        const tol = [...tolerated].map(([k, v]) => `${k}=${v}`).join(", ");
        const total = masterByGtid.size;
        console.log(
          `md5 ${set.name}: matched ${matched} / tolerated ${
            [...tolerated.values()].reduce((a, b) => a + b, 0)
          } (${tol || "none"}) / total ${total}; mismatches ${bad.length}`,
        );
        for (const b of bad.slice(0, 10)) failures.push(`${set.name}: ${b}`);
        if (bad.length > 10) failures.push(`${set.name}: ... ${bad.length - 10} more mismatches`);
      }

      // 3. Stream, --tail, --start-position.
      const masterFiles = master.binlogFiles();
      const full = await parserLines(masterFiles);
      const perFile: string[] = [];
      for (const file of masterFiles) perFile.push(...await parserLines([file]));
      sameLines(failures, full, perFile, "master binlogs as one stream vs file by file");
      for (const n of [1, 7, 3000, full.length + 5]) {
        const tail = await parserLines(["--tail", String(n), ...masterFiles]);
        sameLines(failures, tail, full.slice(-n), `--tail ${n} vs the last ${n} lines`);
      }
      const relayA = sets[1].files;
      const relayFull = await parserLines(relayA);
      sameLines(
        failures,
        await parserLines(["--tail", "100", ...relayA]),
        relayFull.slice(-100),
        "--tail 100 on the relay log stream",
      );
      // --start-position at transaction starts in the busiest master file.
      let busiest = masterFiles[0];
      let busiestTxns: MbTxn[] = [];
      for (const file of masterFiles) {
        const mb = await mysqlbinlog([file]);
        if (mb.length > busiestTxns.length) [busiest, busiestTxns] = [file, mb];
      }
      const fileLines = await parserLines([busiest]);
      for (const k of [0, 1, Math.floor(busiestTxns.length / 2), busiestTxns.length - 1]) {
        const p = busiestTxns[k].start;
        sameLines(
          failures,
          await parserLines(["--start-position", String(p), busiest]),
          fileLines.slice(k),
          `--start-position ${p} (transaction #${k}) of ${busiest}`,
        );
      }
      sameLines(
        failures,
        await parserLines(["--start-position", "4", busiest]),
        fileLines,
        `--start-position 4 of ${busiest}`,
      );
      // A live or crashed log: cut inside a transaction, at its start and at its end.
      const tmp = await Deno.makeTempDir({ prefix: "prm-binlog-cut-" });
      try {
        const bytes = await Deno.readFile(busiest);
        const k = Math.floor(busiestTxns.length / 2);
        const cuts = [
          { at: busiestTxns[k].start + 30, complete: k, partial: true },
          { at: busiestTxns[k].end - 1, complete: k, partial: true },
          { at: busiestTxns[k].start, complete: k, partial: false },
          { at: busiestTxns[k].end, complete: k + 1, partial: false },
        ];
        for (const cut of cuts) {
          const path = `${tmp}/cut-${cut.at}`;
          await Deno.writeFile(path, bytes.subarray(0, cut.at));
          const r = await runParser([path]);
          if (r.code !== 0) failures.push(`cut at ${cut.at}: exit ${r.code}: ${r.stderr.trim()}`);
          sameLines(
            failures,
            r.stdout.split("\n").filter((l) => l !== ""),
            fileLines.slice(0, cut.complete),
            `${busiest} cut at ${cut.at}`,
          );
          if (cut.partial && r.stderr.trim() === "") {
            failures.push(`${busiest} cut at ${cut.at}: no warning about the partial transaction`);
          }
        }
      } finally {
        await Deno.remove(tmp, { recursive: true });
      }

      // 4. Every event of every file, were the file to end inside it, is a torn tail (not a
      // corrupt size) by the parser's rule: its header's log_pos fits its size.
      let events = 0;
      for (const set of sets) {
        for (const file of set.files) {
          const notTorn = eventsNotTorn(await Deno.readFile(file));
          events += notTorn.events;
          for (const p of notTorn.offsets.slice(0, 3)) {
            failures.push(`${file}: the event at ${p}, cut short, would be a corrupt size`);
          }
        }
      }
      console.log(`torn tails: ${events} events checked`);

      const t1 = performance.now();
      console.log(
        `servers+workload ${((tWorkload - t0) / 1000).toFixed(1)} s, checks ${
          ((t1 - tWorkload) / 1000).toFixed(1)
        } s`,
      );
      assert.deepEqual(failures, [], `mismatches:\n${failures.join("\n")}`);
    } finally {
      await stopAll(servers);
    }
  },
});
