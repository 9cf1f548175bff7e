/**
 * The only place that talks to the local mysqld: a connection over the unix socket (the protocol
 * client of mysql_wire.ts), typed results, and error classification (busy is not dead). SQL text
 * comes from sql.ts.
 *
 * @module
 */

import { MysqlError, WireConnection, type WireConnectOptions } from "./mysql_wire.ts";
import { redactSecrets } from "./redact.ts";
import {
  type BinlogStatus,
  binlogStatusSql,
  changeSourceSql,
  connectedReplicasSql,
  type Flavour,
  gtidStateSql,
  killConnectionSql,
  normalizeBinlogStatus,
  normalizeReplicaStatus,
  parseFlavour,
  pluginActiveSql,
  quotedForms,
  readOnlyQuerySql,
  type ReplicaStatus,
  replicaStatusSql,
  resetReplicaAllSql,
  semiSyncOffSql,
  semiSyncPlugin,
  semiSyncReplicaEnabledSql,
  type SemiSyncRole,
  semiSyncSql,
  semiSyncStatusSql,
  serverIdentitySql,
  setGtidSlavePosSql,
  setReadOnlySql,
  type SourceTarget,
  startReplicaSql,
  startReplicaSqlThreadSql,
  stopReplicaIoSql,
  stopReplicaSql,
} from "./sql.ts";

/** How a failure to talk to the server is to be read. */
export type FailureKind =
  /** Alive but not serving us now: too many connections, lock wait, slow query. */
  | "busy"
  /** Not listening: no socket, connection refused, connection dropped. */
  | "down"
  /** The login was refused. */
  | "auth"
  /** Anything else (an SQL error). */
  | "error";

/** MySQL error numbers that mean "alive but busy". */
const BUSY_ERRNOS = new Set([
  1040, // ER_CON_COUNT_ERROR: Too many connections
  1203, // ER_TOO_MANY_USER_CONNECTIONS
  1205, // ER_LOCK_WAIT_TIMEOUT
  1969, // MariaDB ER_STATEMENT_TIMEOUT (max_statement_time)
  3024, // MySQL ER_QUERY_TIMEOUT (max_execution_time)
  1226, // ER_USER_LIMIT_REACHED
]);

const DOWN_CODES = new Set([
  "ECONNREFUSED",
  "ENOENT",
  "ECONNRESET",
  "EPIPE",
  "PROTOCOL_CONNECTION_LOST",
  "ER_SERVER_SHUTDOWN",
]);

/**
 * Classifies an error of mysql_wire.ts (or mysql2: the fields are the same) by its server error
 * number and its code, never by its message (which is the server's text, in its language).
 */
export function classifyError(err: unknown): FailureKind {
  const e = err as { errno?: number; code?: string } | undefined;
  if (e?.errno !== undefined && BUSY_ERRNOS.has(e.errno)) return "busy";
  if (e?.code === "PROTOCOL_SEQUENCE_TIMEOUT" || e?.code === "ETIMEDOUT") return "busy";
  if (e?.code !== undefined && DOWN_CODES.has(e.code)) return "down";
  if (e?.errno === 1053 || e?.errno === 2002 || e?.errno === 2006 || e?.errno === 2013) {
    return "down";
  }
  if (e?.errno === 1045 || e?.errno === 1044) return "auth";
  return "error";
}

/** ER_UNKNOWN_SYSTEM_VARIABLE: MySQL without the semi-sync plugin has none of its variables. */
function isUnknownVariable(err: unknown): boolean {
  return (err as { errno?: number } | undefined)?.errno === 1193;
}

/** A short, password-free description of an error. */
export function describeError(err: unknown): string {
  const e = err as { errno?: number; code?: string; message?: string } | undefined;
  const parts = [e?.code, e?.errno !== undefined ? String(e.errno) : undefined].filter(Boolean);
  return `${e?.message ?? String(err)}${parts.length ? ` [${parts.join(" ")}]` : ""}`;
}

/**
 * Options for {@link MysqlClient.connect}: where and how to log in (mysql_wire.ts's options:
 * a socket, the agent's way to the local server, or a host and port, `mysql_prm status`'s way to
 * every node), plus the query limits.
 */
export interface ConnectOptions extends WireConnectOptions {
  /** Per-query timeout in ms. Default 10 000. */
  queryTimeoutMs?: number;
  /**
   * Absolute deadline (Date.now() ms) of the action: no query waits past it, whatever timeout
   * it asks for (a STOP SLAVE may ask for a minute; a 30 s monitor cannot give it).
   */
  deadline?: number;
}

/** One processlist row. */
export interface ProcessRow {
  /** Connection id. */
  id: number;
  /** User. */
  user: string;
  /** Command (Query, Sleep, Binlog Dump, ...). */
  command: string;
  /** Seconds in the current state. */
  time: number;
  /** State text. */
  state: string;
}

/** A server's GTID state (strings as the server prints them; "" when not applicable). */
export interface GtidState {
  /** MariaDB gtid_slave_pos: what it applied as a replica. */
  slavePos: string;
  /** MariaDB gtid_binlog_pos, MySQL gtid_executed: what its own binlog holds. */
  binlogPos: string;
  /** MariaDB gtid_current_pos. */
  currentPos: string;
  /** MariaDB gtid_strict_mode, MySQL gtid_mode=ON and enforce_gtid_consistency=ON. */
  strict: boolean;
  /** log_slave_updates / log_replica_updates. */
  logReplicaUpdates: boolean;
}

/** A connection to the local server with typed helpers. */
export class MysqlClient {
  /** The server's flavour and version. */
  readonly flavour: Flavour;
  #conn: WireConnection;
  #queryTimeoutMs: number;
  #deadline: number;

  private constructor(
    conn: WireConnection,
    flavour: Flavour,
    limits: { queryTimeoutMs: number; deadline: number },
  ) {
    this.#conn = conn;
    this.flavour = flavour;
    this.#queryTimeoutMs = limits.queryTimeoutMs;
    this.#deadline = limits.deadline;
  }

  /**
   * Connects (over the socket, else TCP) and detects the flavour. Throws MysqlError (see
   * classifyError).
   */
  static async connect(options: ConnectOptions): Promise<MysqlClient> {
    const conn = await WireConnection.connect({
      socket: options.socket,
      host: options.host,
      port: options.port,
      user: options.user,
      password: options.password,
      connectTimeoutMs: options.connectTimeoutMs ?? 5_000,
      limits: options.limits,
    });
    const limits = {
      queryTimeoutMs: options.queryTimeoutMs ?? 10_000,
      deadline: options.deadline ?? Number.MAX_SAFE_INTEGER,
    };
    try {
      const [row] = await conn.query(
        "SELECT VERSION() AS v, @@version_comment AS c, CONNECTION_ID() AS id",
        Math.max(1, Math.min(limits.queryTimeoutMs, limits.deadline - Date.now())),
      );
      return new MysqlClient(conn, parseFlavour(String(row.v), String(row.c ?? "")), limits);
    } catch (err) {
      conn.destroy();
      throw err;
    }
  }

  /**
   * Runs one statement with the query timeout (or `timeoutMs`), never past the deadline; returns
   * its rows (none for other statements).
   */
  query(sql: string, timeoutMs?: number): Promise<Record<string, unknown>[]> {
    const wanted = timeoutMs ?? this.#queryTimeoutMs;
    return this.#conn.query(sql, Math.max(1, Math.min(wanted, this.#deadline - Date.now())));
  }

  /**
   * Closes the connection (never throws, never hangs). A statement that timed out while blocked
   * on a lock has destroyed the connection already.
   */
  async close(): Promise<void> {
    await this.#conn.close();
  }

  /** Replica status, or undefined when replication is not configured. */
  async replicaStatus(): Promise<ReplicaStatus | undefined> {
    const rows = await this.query(replicaStatusSql(this.flavour));
    if (rows.length === 0) return undefined;
    const s = normalizeReplicaStatus(rows[0]);
    return s.masterHost === "" ? undefined : s;
  }

  /** Binary log status, or undefined when binary logging is off. */
  async binlogStatus(): Promise<BinlogStatus | undefined> {
    const rows = await this.query(binlogStatusSql(this.flavour));
    if (rows.length === 0) return undefined;
    const status = normalizeBinlogStatus(rows[0]);
    if (this.flavour.kind === "mariadb") {
      const [g] = await this.query("SELECT @@global.gtid_binlog_pos AS g");
      status.gtid = String(g?.g ?? "");
    }
    return status;
  }

  /** True when read_only (or super_read_only) is on. */
  async readOnly(): Promise<boolean> {
    const [row] = await this.query(readOnlyQuerySql(this.flavour));
    return Number(row?.ro) === 1 || Number(row?.sro) === 1;
  }

  /** Sets read_only, waiting at most lockWaitSeconds for the global read lock it needs. */
  async setReadOnly(on: boolean, lockWaitSeconds = 5): Promise<void> {
    await this.query(`SET SESSION lock_wait_timeout = ${Math.max(1, Math.floor(lockWaitSeconds))}`);
    for (const sql of setReadOnlySql(this.flavour, on)) {
      await this.query(sql, (lockWaitSeconds + 5) * 1000);
    }
  }

  /** Stops both replication threads. */
  async stopReplica(): Promise<void> {
    await this.query(stopReplicaSql(this.flavour), 60_000);
  }

  /** Stops the IO thread only (the SQL thread goes on applying the relay log). */
  async stopReplicaIo(): Promise<void> {
    await this.query(stopReplicaIoSql(this.flavour), 60_000);
  }

  /**
   * Restarts the IO thread so that it connects at once: after a lost connection it sleeps its
   * connect retry (MASTER_CONNECT_RETRY, 60 s by default) between attempts, and START SLAVE alone
   * does nothing to a thread that is still running.
   */
  async reconnectReplicaIo(): Promise<void> {
    await this.stopReplicaIo();
    await this.startReplica();
  }

  /** Starts the SQL thread only. */
  async startReplicaSqlThread(): Promise<void> {
    await this.query(startReplicaSqlThreadSql(this.flavour));
  }

  /** Starts both replication threads. */
  async startReplica(): Promise<void> {
    await this.query(startReplicaSql(this.flavour));
  }

  /** Forgets the master and relay logs (RESET SLAVE ALL). */
  async resetReplica(): Promise<void> {
    await this.query(resetReplicaAllSql(this.flavour), 60_000);
  }

  /**
   * Points replication at a master (replication must be stopped). The strings are quoted for the
   * session's sql_mode, and a failure's message comes back without any piece of the password
   * (a server error can quote the statement back, or a too long password cut short).
   */
  async changeSource(target: SourceTarget): Promise<void> {
    const sql = changeSourceSql(this.flavour, target, {
      noBackslashEscapes: this.#conn.noBackslashEscapes,
    });
    try {
      await this.query(sql);
    } catch (err) {
      // Only a server error carries the server's text.
      if (!(err instanceof MysqlError) || err.errno === undefined) throw err;
      throw new MysqlError(redactSecrets(err.message, quotedForms(target.password)), err);
    }
  }

  /** GTID state of the server. */
  async gtidState(): Promise<GtidState> {
    const [row] = await this.query(gtidStateSql(this.flavour));
    const text = (v: unknown) => String(v ?? "").replace(/\s+/g, "");
    const on = (v: unknown) => /^(1|ON)$/i.test(String(v ?? ""));
    if (this.flavour.kind === "mariadb") {
      return {
        slavePos: text(row?.slave_pos),
        binlogPos: text(row?.binlog_pos),
        currentPos: text(row?.current_pos),
        strict: on(row?.strict),
        logReplicaUpdates: on(row?.lsu),
      };
    }
    return {
      slavePos: "",
      binlogPos: text(row?.executed),
      currentPos: text(row?.executed),
      strict: on(row?.mode) && on(row?.enforce),
      logReplicaUpdates: on(row?.lsu),
    };
  }

  /** The identity GTIDs carry: MariaDB server_id or MySQL server_uuid (lower case). */
  async serverIdentity(): Promise<string> {
    const [row] = await this.query(serverIdentitySql(this.flavour));
    return String(row?.id ?? "").toLowerCase();
  }

  /** Sets MariaDB's gtid_slave_pos (replication must be stopped). */
  async setGtidSlavePos(pos: string): Promise<void> {
    await this.query(setGtidSlavePosSql(pos));
  }

  /**
   * Enables semi-sync for a role (installing MySQL's plugin when missing), or turns both sides
   * off when role is undefined.
   */
  async configureSemiSync(role: SemiSyncRole | undefined, timeoutMs: number): Promise<void> {
    if (role === undefined) {
      for (const sql of semiSyncOffSql(this.flavour)) {
        try {
          await this.query(sql);
        } catch (err) {
          // MySQL without the plugin has no such variable: nothing to turn off.
          if (!isUnknownVariable(err)) throw err;
        }
      }
      return;
    }
    const plugin = semiSyncPlugin(this.flavour, role);
    if (plugin !== undefined) {
      const [row] = await this.query(pluginActiveSql(plugin.name));
      if (Number(row?.n) === 0) await this.query(plugin.install);
    }
    for (const sql of semiSyncSql(this.flavour, role, { timeoutMs })) await this.query(sql);
  }

  /**
   * Whether this node acknowledges as a semi-sync replica; false on a MySQL server without the
   * replica plugin (no such variable).
   */
  async semiSyncReplicaEnabled(): Promise<boolean> {
    try {
      const [row] = await this.query(semiSyncReplicaEnabledSql(this.flavour));
      return Number(row?.on_) === 1;
    } catch (err) {
      if (isUnknownVariable(err)) return false;
      throw err;
    }
  }

  /** Semi-sync status counters (Rpl_semi_sync_*), name → value. */
  async semiSyncStatus(): Promise<Record<string, string>> {
    const rows = await this.query(semiSyncStatusSql());
    return Object.fromEntries(
      rows.map((r) => [String(r.Variable_name), String(r.Value)]),
    );
  }

  /** How many replicas are connected to this server's binary log. */
  async connectedReplicas(): Promise<number> {
    const [row] = await this.query(connectedReplicasSql());
    return Number(row?.n ?? 0);
  }

  /** Client sessions other than ours, system threads and replication threads. */
  async clientSessions(): Promise<ProcessRow[]> {
    const [me] = await this.query("SELECT CONNECTION_ID() AS id");
    const rows = await this.query(
      "SELECT ID AS id, USER AS user, COMMAND AS command, TIME AS time, STATE AS state " +
        "FROM information_schema.PROCESSLIST",
    );
    return rows.map((r) => ({
      id: Number(r.id),
      user: String(r.user ?? ""),
      command: String(r.command ?? ""),
      time: Number(r.time ?? 0),
      state: String(r.state ?? ""),
    })).filter((r) =>
      r.id !== Number(me.id) && r.user !== "system user" && r.user !== "event_scheduler" &&
      !/^(Binlog Dump|Daemon|Slave_|Connect$)/.test(r.command) && r.user !== "unauthenticated user"
    );
  }

  /** Kills one connection (ignores "unknown thread"). */
  async kill(id: number): Promise<void> {
    try {
      await this.query(killConnectionSql(id));
    } catch (err) {
      if ((err as { errno?: number }).errno !== 1094) throw err;
    }
  }
}
