/**
 * Flavour-aware SQL builders (pure). Every value is escaped here; no caller pastes strings.
 *
 * MariaDB keeps its SLAVE/MASTER words (accepted by every 10.x and 11.x; 10.5+ also takes the
 * REPLICA synonyms, but nothing was removed, so one form serves all versions). MySQL gets
 * SHOW REPLICA STATUS / START|STOP|RESET REPLICA from 8.0.22, CHANGE REPLICATION SOURCE TO from
 * 8.0.23, SHOW BINARY LOG STATUS from 8.2 (8.4 removed the old words).
 *
 * @module
 */

import type { ReplicationOption } from "./params.ts";

/** Server flavour and version. */
export interface Flavour {
  /** mariadb or mysql (Percona Server counts as mysql). */
  kind: "mariadb" | "mysql";
  /** Major version. */
  major: number;
  /** Minor version. */
  minor: number;
  /** Patch version. */
  patch: number;
}

/**
 * Detects the flavour from `SELECT VERSION()` and `@@version_comment`.
 *
 * @example
 * ```ts
 * parseFlavour("10.11.6-MariaDB-0+deb12u1-log", "Debian 12");
 * // { kind: "mariadb", major: 10, minor: 11, patch: 6 }
 * ```
 */
export function parseFlavour(version: string, comment = ""): Flavour {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version.trim());
  const [major, minor, patch] = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [0, 0, 0];
  const kind = /mariadb/i.test(version) || /mariadb/i.test(comment) ? "mariadb" : "mysql";
  return { kind, major, minor, patch };
}

/** True when the flavour is at least major.minor.patch. */
export function atLeast(f: Flavour, major: number, minor: number, patch = 0): boolean {
  if (f.major !== major) return f.major > major;
  if (f.minor !== minor) return f.minor > minor;
  return f.patch >= patch;
}

function mysqlReplicaWords(f: Flavour): boolean {
  return f.kind === "mysql" && atLeast(f, 8, 0, 22);
}

function mysqlSourceWords(f: Flavour): boolean {
  return f.kind === "mysql" && atLeast(f, 8, 0, 23);
}

/**
 * How a session reads string literals. With sql_mode NO_BACKSLASH_ESCAPES a backslash is an
 * ordinary character, so `\'` no longer stands for a quote: the literal ends early, and the rest of
 * the value becomes SQL (a syntax error that quotes it, or worse). The server tells which mode
 * applies in the status flags of its every reply (mysql_wire.ts `noBackslashEscapes`), as
 * libmysqlclient's escaping reads them, so knowing costs no query.
 */
export interface QuoteOptions {
  /** The session's sql_mode has NO_BACKSLASH_ESCAPES. Default false (MySQL's default mode). */
  noBackslashEscapes?: boolean;
}

/**
 * Quotes a string literal for a session in the given mode. Backslash mode escapes quotes,
 * backslashes, NUL, newlines, CR and Ctrl-Z (so the literal stays on one line); NO_BACKSLASH_ESCAPES
 * mode doubles single quotes and leaves every other character as it is, the only quoting that
 * mode has. A value without quotes of either kind, backslashes, NUL, CR, LF or Ctrl-Z is written the
 * same in both.
 *
 * @example
 * ```ts
 * quoteString("it's");                               // 'it\'s'
 * quoteString("it's", { noBackslashEscapes: true }); // 'it''s'
 * ```
 */
export function quoteString(value: string, options: QuoteOptions = {}): string {
  if (options.noBackslashEscapes) return "'" + value.replaceAll("'", "''") + "'";
  let out = "'";
  for (const ch of value) {
    switch (ch) {
      case "\0":
        out += "\\0";
        break;
      case "\n":
        out += "\\n";
        break;
      case "\r":
        out += "\\r";
        break;
      case "\x1a":
        out += "\\Z";
        break;
      case "\\":
        out += "\\\\";
        break;
      case "'":
        out += "\\'";
        break;
      case '"':
        out += '\\"';
        break;
      default:
        out += ch;
    }
  }
  return out + "'";
}

/**
 * The bodies of a value's literals in both quoting modes (without the enclosing quotes): what a
 * server error that quotes a statement back can show of it. A secret is redacted in these forms
 * too.
 */
export function quotedForms(value: string): string[] {
  const forms = [false, true].map((noBackslashEscapes) =>
    quoteString(value, { noBackslashEscapes }).slice(1, -1)
  );
  return [...new Set([value, ...forms])];
}

/**
 * A statement that takes NO_BACKSLASH_ESCAPES out of the session's sql_mode, leaving the rest:
 * for SQL written ahead of time, when no reply can tell the mode (an --init-file, which the server
 * runs in its global sql_mode).
 */
export function backslashEscapesSessionSql(): string {
  return "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')";
}

/** Quotes an identifier with backticks (doubling embedded backticks). */
export function quoteIdentifier(name: string): string {
  if (name.includes("\0")) throw new Error("Identifiers cannot contain NUL");
  return "`" + name.replaceAll("`", "``") + "`";
}

function integer(value: number, what: string): string {
  if (!Number.isSafeInteger(value) || value < 0) {
    throw new Error(`${what} must be a non-negative integer`);
  }
  return String(value);
}

/** SHOW SLAVE STATUS or SHOW REPLICA STATUS. */
export function replicaStatusSql(f: Flavour): string {
  return mysqlReplicaWords(f) ? "SHOW REPLICA STATUS" : "SHOW SLAVE STATUS";
}

/** START SLAVE or START REPLICA. */
export function startReplicaSql(f: Flavour): string {
  return mysqlReplicaWords(f) ? "START REPLICA" : "START SLAVE";
}

/** STOP SLAVE or STOP REPLICA. */
export function stopReplicaSql(f: Flavour): string {
  return mysqlReplicaWords(f) ? "STOP REPLICA" : "STOP SLAVE";
}

/** STOP SLAVE IO_THREAD or STOP REPLICA IO_THREAD. */
export function stopReplicaIoSql(f: Flavour): string {
  return `${stopReplicaSql(f)} IO_THREAD`;
}

/** START SLAVE SQL_THREAD or START REPLICA SQL_THREAD. */
export function startReplicaSqlThreadSql(f: Flavour): string {
  return `${startReplicaSql(f)} SQL_THREAD`;
}

/** RESET SLAVE ALL or RESET REPLICA ALL: forgets the master and the relay logs. */
export function resetReplicaAllSql(f: Flavour): string {
  return mysqlReplicaWords(f) ? "RESET REPLICA ALL" : "RESET SLAVE ALL";
}

/** SHOW MASTER STATUS or SHOW BINARY LOG STATUS (MySQL 8.2+). */
export function binlogStatusSql(f: Flavour): string {
  return f.kind === "mysql" && atLeast(f, 8, 2) ? "SHOW BINARY LOG STATUS" : "SHOW MASTER STATUS";
}

/** Statements that switch read-only on or off (super_read_only exists only on MySQL). */
export function setReadOnlySql(f: Flavour, on: boolean): string[] {
  const v = on ? "ON" : "OFF";
  if (f.kind === "mysql") {
    // super_read_only ON implies read_only ON; read_only OFF implies super_read_only OFF.
    return on ? ["SET GLOBAL super_read_only = ON"] : ["SET GLOBAL read_only = OFF"];
  }
  return [`SET GLOBAL read_only = ${v}`];
}

/** The query reading read-only state: one row, column `ro` 0/1. */
export function readOnlyQuerySql(f: Flavour): string {
  return f.kind === "mysql"
    ? "SELECT @@global.read_only AS ro, @@global.super_read_only AS sro"
    : "SELECT @@global.read_only AS ro";
}

/** Where a replica is to read from. */
export interface SourceTarget {
  /** Master host name or address. */
  host: string;
  /** Master port. */
  port: number;
  /** Replication login. */
  user: string;
  /** Its password. */
  password: string;
  /** Binlog file to start at (position mode). */
  file?: string;
  /** Position in that file. */
  pos?: number;
  /** GTID auto-positioning instead of file/pos (replication_mode=gtid). */
  gtid?: boolean;
  /** Validated extra options (SSL etc.). */
  options?: ReplicationOption[];
}

/** Checks a binlog file name: a plain file name, no path, no quotes. */
export function isBinlogFileName(name: string): boolean {
  return /^[A-Za-z0-9_.-]{1,255}$/.test(name) && !name.startsWith(".");
}

/**
 * CHANGE MASTER TO (MariaDB, MySQL < 8.0.23) or CHANGE REPLICATION SOURCE TO (MySQL 8.0.23+),
 * its strings quoted for the session's mode.
 */
export function changeSourceSql(f: Flavour, t: SourceTarget, quoting: QuoteOptions = {}): string {
  const source = mysqlSourceWords(f);
  const p = source ? "SOURCE_" : "MASTER_";
  const q = (value: string) => quoteString(value, quoting);
  const parts = [
    `${p}HOST = ${q(t.host)}`,
    `${p}PORT = ${integer(t.port, "Port")}`,
    `${p}USER = ${q(t.user)}`,
    `${p}PASSWORD = ${q(t.password)}`,
  ];
  if (t.gtid) {
    parts.push(f.kind === "mariadb" ? "MASTER_USE_GTID = slave_pos" : `${p}AUTO_POSITION = 1`);
  } else {
    if (t.file === undefined || t.pos === undefined) {
      throw new Error("Position mode needs a binlog file and position");
    }
    if (!isBinlogFileName(t.file)) throw new Error("Binlog file name has unexpected characters");
    parts.push(
      `${p}LOG_FILE = ${q(t.file)}`,
      `${p}LOG_POS = ${integer(t.pos, "Position")}`,
    );
    if (f.kind === "mariadb") parts.push("MASTER_USE_GTID = no");
    else if (source || atLeast(f, 5, 6)) parts.push(`${p}AUTO_POSITION = 0`);
  }
  for (const o of t.options ?? []) {
    const value = typeof o.value === "number" ? integer(o.value, o.key) : q(o.value);
    parts.push(`${p}${o.key} = ${value}`);
  }
  return `${source ? "CHANGE REPLICATION SOURCE TO" : "CHANGE MASTER TO"} ${parts.join(", ")}`;
}

/** Semi-sync variable names for the flavour (MariaDB built in; MySQL 8.0.26+ source/replica). */
export function semiSyncVariables(f: Flavour): { source: string; replica: string } {
  if (f.kind === "mysql" && atLeast(f, 8, 0, 26)) {
    return { source: "rpl_semi_sync_source_enabled", replica: "rpl_semi_sync_replica_enabled" };
  }
  return { source: "rpl_semi_sync_master_enabled", replica: "rpl_semi_sync_slave_enabled" };
}

/** SET GLOBAL for a boolean variable whose name comes from this module, never from input. */
export function setGlobalBoolSql(name: string, on: boolean): string {
  if (!/^[a-z_]+$/.test(name)) throw new Error("Variable name has unexpected characters");
  return `SET GLOBAL ${name} = ${on ? "ON" : "OFF"}`;
}

/** KILL CONNECTION for a processlist id. */
export function killConnectionSql(id: number): string {
  return `KILL CONNECTION ${integer(id, "Connection id")}`;
}

/** The deep-monitor query on test_table (validated as DB.TABLE by the parameter table). */
export function testTableSql(table: string): string {
  const parts = table.split(".");
  return `SELECT 1 FROM ${parts.map(quoteIdentifier).join(".")} LIMIT 1`;
}

/** Replica status, flavour-neutral. */
export interface ReplicaStatus {
  /** Master host; "" when replication is not configured. */
  masterHost: string;
  /** Master port. */
  masterPort: number;
  /** IO thread: "Yes", "No" or "Connecting". */
  ioRunning: string;
  /** SQL thread: "Yes" or "No". */
  sqlRunning: boolean;
  /** Last IO error number (0 when none). */
  lastIoErrno: number;
  /** Last IO error text. */
  lastIoError: string;
  /** Last SQL error number (0 when none). */
  lastSqlErrno: number;
  /** Last SQL error text. */
  lastSqlError: string;
  /** Seconds_Behind_Master, null when unknown. */
  secondsBehind: number | null;
  /** Master binlog file the IO thread has read up to. */
  masterLogFile: string;
  /** Position the IO thread has read up to. */
  readMasterLogPos: number;
  /** Master binlog file of the last executed event. */
  relayMasterLogFile: string;
  /** Position (master coordinates) executed up to. */
  execMasterLogPos: number;
  /** The SQL thread's state text. */
  sqlState: string;
  /** Gtid_IO_Pos (MariaDB) or Retrieved_Gtid_Set (MySQL), "" when none. */
  gtidIoPos: string;
  /** The relay log file the SQL thread reads (base name or path as the server says it). */
  relayLogFile: string;
  /** The SQL thread's offset in that relay log file. */
  relayLogPos: number;
}

function field(row: Record<string, unknown>, ...names: string[]): unknown {
  for (const n of names) if (n in row) return row[n];
  return undefined;
}

function str(value: unknown): string {
  return value === null || value === undefined ? "" : String(value);
}

function num(value: unknown): number {
  const n = Number(value);
  return Number.isFinite(n) ? n : 0;
}

/** Turns a SHOW SLAVE/REPLICA STATUS row (either vocabulary) into a {@link ReplicaStatus}. */
export function normalizeReplicaStatus(row: Record<string, unknown>): ReplicaStatus {
  const lag = field(row, "Seconds_Behind_Master", "Seconds_Behind_Source");
  return {
    masterHost: str(field(row, "Master_Host", "Source_Host")),
    masterPort: num(field(row, "Master_Port", "Source_Port")),
    ioRunning: str(field(row, "Slave_IO_Running", "Replica_IO_Running")),
    sqlRunning: str(field(row, "Slave_SQL_Running", "Replica_SQL_Running")) === "Yes",
    lastIoErrno: num(field(row, "Last_IO_Errno")),
    lastIoError: str(field(row, "Last_IO_Error")),
    lastSqlErrno: num(field(row, "Last_SQL_Errno")),
    lastSqlError: str(field(row, "Last_SQL_Error")),
    secondsBehind: lag === null || lag === undefined || lag === "" ? null : num(lag),
    masterLogFile: str(field(row, "Master_Log_File", "Source_Log_File")),
    readMasterLogPos: num(field(row, "Read_Master_Log_Pos", "Read_Source_Log_Pos")),
    relayMasterLogFile: str(field(row, "Relay_Master_Log_File", "Relay_Source_Log_File")),
    execMasterLogPos: num(field(row, "Exec_Master_Log_Pos", "Exec_Source_Log_Pos")),
    sqlState: str(field(row, "Slave_SQL_Running_State", "Replica_SQL_Running_State")),
    gtidIoPos: str(field(row, "Gtid_IO_Pos", "Retrieved_Gtid_Set")),
    relayLogFile: str(field(row, "Relay_Log_File")),
    relayLogPos: num(field(row, "Relay_Log_Pos")),
  };
}

/** Binary log status of a server. */
export interface BinlogStatus {
  /** Current binlog file. */
  file: string;
  /** Position in it. */
  pos: number;
  /** GTID position (MariaDB gtid_binlog_pos or MySQL Executed_Gtid_Set), "" when none. */
  gtid: string;
}

/** Turns a SHOW MASTER/BINARY LOG STATUS row into a {@link BinlogStatus}. */
export function normalizeBinlogStatus(row: Record<string, unknown>): BinlogStatus {
  return {
    file: str(field(row, "File")),
    pos: num(field(row, "Position")),
    gtid: str(field(row, "Executed_Gtid_Set")),
  };
}

// ---------------------------------------------------------------------------------------------
// GTID mode

/**
 * The query reading a server's GTID state, one row. MariaDB: slave_pos, binlog_pos, current_pos,
 * strict (gtid_strict_mode), lsu (log_slave_updates). MySQL: executed (gtid_executed), mode
 * (gtid_mode), enforce (enforce_gtid_consistency), lsu (log_replica_updates / log_slave_updates).
 */
export function gtidStateSql(f: Flavour): string {
  if (f.kind === "mariadb") {
    return "SELECT @@global.gtid_slave_pos AS slave_pos, @@global.gtid_binlog_pos AS binlog_pos, " +
      "@@global.gtid_current_pos AS current_pos, @@global.gtid_strict_mode AS strict, " +
      "@@global.log_slave_updates AS lsu";
  }
  const lsu = atLeast(f, 8, 0, 26) ? "log_replica_updates" : "log_slave_updates";
  return "SELECT @@global.gtid_executed AS executed, @@global.gtid_mode AS mode, " +
    `@@global.enforce_gtid_consistency AS enforce, @@global.${lsu} AS lsu`;
}

/** A GTID list as MariaDB prints it: `domain-server-seq` items, comma-separated. */
function checkMariadbGtidList(value: string): string {
  if (!/^(\d{1,10}-\d{1,10}-\d{1,20}(,\d{1,10}-\d{1,10}-\d{1,20})*)?$/.test(value)) {
    throw new Error("GTID position has unexpected characters");
  }
  return value;
}

/** A MySQL GTID set: UUIDs, optional tags, intervals. */
function checkMysqlGtidSet(value: string): string {
  if (!/^[0-9A-Fa-f:,\s_a-z-]*$/.test(value)) {
    throw new Error("GTID set has unexpected characters");
  }
  return value;
}

/**
 * SET GLOBAL gtid_slave_pos (MariaDB; replication must be stopped): where a server that was a
 * master resumes as a replica with MASTER_USE_GTID=slave_pos.
 */
export function setGtidSlavePosSql(pos: string): string {
  return `SET GLOBAL gtid_slave_pos = ${quoteString(checkMariadbGtidList(pos.trim()))}`;
}

/** MySQL: one row `subset` 1 when every GTID of a is in b (GTID_SUBSET). */
export function gtidSubsetSql(a: string, b: string): string {
  return `SELECT GTID_SUBSET(${quoteString(checkMysqlGtidSet(a))}, ${
    quoteString(checkMysqlGtidSet(b))
  }) AS subset`;
}

/** MySQL: one row `errant`, the GTIDs of a that b lacks (GTID_SUBTRACT). */
export function gtidSubtractSql(a: string, b: string): string {
  return `SELECT GTID_SUBTRACT(${quoteString(checkMysqlGtidSet(a))}, ${
    quoteString(checkMysqlGtidSet(b))
  }) AS errant`;
}

// ---------------------------------------------------------------------------------------------
// Semi-synchronous replication

/** The role a node plays in semi-sync. */
export type SemiSyncRole = "source" | "replica";

/** Options of {@link semiSyncSql}. */
export interface SemiSyncOptions {
  /** Acknowledgement timeout in ms (source only). */
  timeoutMs: number;
}

/**
 * The plugin a MySQL server needs for a semi-sync role (MariaDB has it built in since 10.3:
 * undefined): its PLUGINS name and the INSTALL PLUGIN statement.
 */
export function semiSyncPlugin(
  f: Flavour,
  role: SemiSyncRole,
): { name: string; install: string } | undefined {
  if (f.kind === "mariadb") return undefined;
  const modern = atLeast(f, 8, 0, 26);
  const [name, lib] = role === "source"
    ? modern ? ["rpl_semi_sync_source", "semisync_source.so"] : [
      "rpl_semi_sync_master",
      "semisync_master.so",
    ]
    : modern
    ? ["rpl_semi_sync_replica", "semisync_replica.so"]
    : ["rpl_semi_sync_slave", "semisync_slave.so"];
  return { name, install: `INSTALL PLUGIN ${name} SONAME ${quoteString(lib)}` };
}

/** Query with one row `n` > 0 when the named plugin is active. */
export function pluginActiveSql(name: string): string {
  return `SELECT COUNT(*) AS n FROM information_schema.PLUGINS WHERE PLUGIN_NAME = ${
    quoteString(name)
  } AND PLUGIN_STATUS = 'ACTIVE'`;
}

/**
 * SET GLOBAL statements for a node's semi-sync role. The source waits AFTER_SYNC: a transaction is
 * written to the binlog, then the source waits for a replica's acknowledgement, and only then
 * commits in the engine and answers the client, so every acknowledged commit is in some replica's
 * relay log and no other session saw it before. A replica turns the source side off (a demoted
 * master keeps no stale waits) and vice versa. The replica side takes effect when its IO thread
 * (re)starts.
 */
export function semiSyncSql(f: Flavour, role: SemiSyncRole, options: SemiSyncOptions): string[] {
  const vars = semiSyncVariables(f);
  const prefix = vars.source.replace(/_enabled$/, "");
  if (role === "source") {
    return [
      `SET GLOBAL ${prefix}_timeout = ${integer(options.timeoutMs, "Semi-sync timeout")}`,
      `SET GLOBAL ${prefix}_wait_point = 'AFTER_SYNC'`,
      setGlobalBoolSql(vars.source, true),
      ...(f.kind === "mariadb" ? [setGlobalBoolSql(vars.replica, false)] : []),
    ];
  }
  return [
    setGlobalBoolSql(vars.replica, true),
    ...(f.kind === "mariadb" ? [setGlobalBoolSql(vars.source, false)] : []),
  ];
}

/** Statements that turn semi-sync off on a node (the parameter was switched off). */
export function semiSyncOffSql(f: Flavour): string[] {
  const vars = semiSyncVariables(f);
  return [setGlobalBoolSql(vars.source, false), setGlobalBoolSql(vars.replica, false)];
}

/** Query of whether this node acknowledges as a semi-sync replica (column `on_`, 0 or 1). */
export function semiSyncReplicaEnabledSql(f: Flavour): string {
  return `SELECT @@global.${semiSyncVariables(f).replica} AS on_`;
}

/** Query of the semi-sync status counters (name/value rows). */
export function semiSyncStatusSql(): string {
  return "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_%'";
}

/**
 * One row `n`: replicas connected to this server's binary log (their dump threads: `Binlog Dump`,
 * and MySQL's `Binlog Dump GTID`), the same on every flavour.
 */
export function connectedReplicasSql(): string {
  return "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST " +
    "WHERE COMMAND IN ('Binlog Dump', 'Binlog Dump GTID')";
}

/** One row `id`: the server identity GTIDs carry (MariaDB server_id, MySQL server_uuid). */
export function serverIdentitySql(f: Flavour): string {
  return f.kind === "mariadb"
    ? "SELECT @@global.server_id AS id"
    : "SELECT @@global.server_uuid AS id";
}
