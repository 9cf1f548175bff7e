/**
 * Precise replication lag: the promoted node writes a timestamp row every `heartbeat_interval`
 * seconds into a table laid out exactly like pt-heartbeat's (so `pt-heartbeat --check --utc` reads
 * it too), and replicas compute their lag as their own UTC clock minus the newest timestamp of
 * their master's server_id.
 *
 * Why an event of the server's event scheduler and not a writer process: it writes at a fixed
 * rate whatever the monitor interval, it needs no process for the agent to start, watch and reap,
 * and it dies with mysqld, so a crashed master never writes once the cluster moved on. The event
 * body checks `@@global.read_only` before writing, because its definer (the agent's login) holds
 * the privilege that bypasses read_only: a demoted or restarted old master whose event is still
 * enabled can never write a row. Replicas receive the event's definition through replication as
 * SLAVESIDE_DISABLED; promote re-creates it as this node's own, with its server_id as a literal (so
 * the row is right in any binlog format). Demote disables it without writing to the binlog, so a
 * demoted master logs nothing after the final position it published.
 *
 * Lag is `now - ts`, with `now` read from the replica's server: it includes the age of the newest
 * row (up to one interval), as pt-heartbeat's figure does with `--skew 0`, and it assumes the
 * nodes' clocks agree (NTP).
 *
 * @module
 */

import type { MysqlClient } from "./mysql.ts";
import { quoteIdentifier, quoteString, type ReplicaStatus, replicaStatusSql } from "./sql.ts";

/** What the promoted node needs to write heartbeats. */
export interface HeartbeatWriterOptions {
  /** `db.table`, validated by the parameter table (pt-heartbeat: `-D db --table table`). */
  table: string;
  /** Seconds between two rows (the event scheduler's resolution is one second). */
  intervalSeconds: number;
  /** This server's server_id, written as a literal. */
  serverId: number;
}

/** Timestamp format of pt-heartbeat's `ts` column: `2026-11-22T08:55:09.123456`. */
const TS_FORMAT = "%Y-%m-%dT%H:%i:%s.%f";

/** Splits `db.table` (a bare table name lands in the `percona` database). */
export function splitTable(table: string): { db: string; name: string } {
  const dot = table.indexOf(".");
  return dot < 0
    ? { db: "percona", name: table }
    : { db: table.slice(0, dot), name: table.slice(dot + 1) };
}

function qualified(table: string): string {
  const { db, name } = splitTable(table);
  return `${quoteIdentifier(db)}.${quoteIdentifier(name)}`;
}

/** The event's name: the table's name plus `_prm_writer`, in the table's database. */
export function eventName(table: string): { db: string; name: string } {
  const { db, name } = splitTable(table);
  return { db, name: `${name}_prm_writer`.slice(0, 64) };
}

function qualifiedEvent(table: string): string {
  const e = eventName(table);
  return `${quoteIdentifier(e.db)}.${quoteIdentifier(e.name)}`;
}

/**
 * Statements that make this node the heartbeat writer: the database and the table (pt-heartbeat's
 * layout, replicated to the replicas), the event (replaced, so a copy replicated from an old
 * master becomes this node's), and the scheduler switched on.
 *
 * @example
 * ```ts
 * const sql = heartbeatWriterSql({ table: "percona.heartbeat", intervalSeconds: 1, serverId: 2 });
 * // sql[3] is "CREATE DEFINER = CURRENT_USER EVENT `percona`.`heartbeat_prm_writer` ..."
 * ```
 */
export function heartbeatWriterSql(options: HeartbeatWriterOptions): string[] {
  const { db } = splitTable(options.table);
  const interval = Math.max(1, Math.floor(options.intervalSeconds));
  const id = Math.floor(options.serverId);
  if (!Number.isSafeInteger(id) || id < 0) throw new Error(`Invalid server_id ${options.serverId}`);
  return [
    `CREATE DATABASE IF NOT EXISTS ${quoteIdentifier(db)}`,
    `CREATE TABLE IF NOT EXISTS ${qualified(options.table)} (` +
    "ts varchar(26) NOT NULL, " +
    "server_id int unsigned NOT NULL PRIMARY KEY, " +
    "file varchar(255) DEFAULT NULL, " +
    "position bigint unsigned DEFAULT NULL, " +
    "relay_master_log_file varchar(255) DEFAULT NULL, " +
    "exec_master_log_pos bigint unsigned DEFAULT NULL" +
    ") ENGINE=InnoDB",
    `DROP EVENT IF EXISTS ${qualifiedEvent(options.table)}`,
    `CREATE DEFINER = CURRENT_USER EVENT ${qualifiedEvent(options.table)} ` +
    `ON SCHEDULE EVERY ${interval} SECOND ON COMPLETION PRESERVE ENABLE ` +
    `COMMENT ${quoteString("prm heartbeat writer: writes only while read_only is off")} DO ` +
    `IF @@global.read_only = 0 THEN ` +
    `REPLACE INTO ${qualified(options.table)} (ts, server_id) VALUES ` +
    `(DATE_FORMAT(UTC_TIMESTAMP(6), ${quoteString(TS_FORMAT)}), ${id}); END IF`,
    "SET GLOBAL event_scheduler = ON",
  ];
}

/** Statements that stop this node's writer without logging anything to the binlog. */
export function heartbeatStopSql(table: string): string[] {
  return [
    "SET SESSION sql_log_bin = 0",
    `ALTER EVENT ${qualifiedEvent(table)} DISABLE`,
    "SET SESSION sql_log_bin = 1",
  ];
}

/** The query a replica runs to read its master's newest heartbeat and its own UTC clock. */
export function heartbeatReadSql(table: string, masterServerId: number): string {
  return `SELECT ts, DATE_FORMAT(UTC_TIMESTAMP(6), ${quoteString(TS_FORMAT)}) AS now ` +
    `FROM ${qualified(table)} WHERE server_id = ${Math.floor(masterServerId)}`;
}

/** The query the promoted node runs to see that its writer is in place. */
export function heartbeatCheckSql(table: string): string {
  const e = eventName(table);
  return "SELECT @@global.event_scheduler AS scheduler, " +
    "(SELECT STATUS FROM information_schema.EVENTS WHERE EVENT_SCHEMA = " +
    `${quoteString(e.db)} AND EVENT_NAME = ${quoteString(e.name)}) AS status`;
}

/**
 * Parses a pt-heartbeat timestamp (UTC, `YYYY-MM-DDTHH:MM:SS[.ffffff]`, `T` or space) into
 * milliseconds since the epoch; undefined when malformed.
 */
export function parseHeartbeatTs(ts: string): number | undefined {
  const m = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?$/.exec(ts.trim());
  if (m === null) return undefined;
  const micro = Number((m[7] ?? "").padEnd(6, "0"));
  const ms = Date.UTC(
    Number(m[1]),
    Number(m[2]) - 1,
    Number(m[3]),
    Number(m[4]),
    Number(m[5]),
    Number(m[6]),
  );
  return Number.isFinite(ms) ? ms + micro / 1000 : undefined;
}

/** Lag in seconds (never negative) between a heartbeat row and `now`, both pt-heartbeat strings. */
export function heartbeatLagSeconds(ts: string, now: string): number | undefined {
  const a = parseHeartbeatTs(ts);
  const b = parseHeartbeatTs(now);
  if (a === undefined || b === undefined) return undefined;
  return Math.max(0, (b - a) / 1000);
}

/**
 * The replica status the health checks should judge: Seconds_Behind_Master replaced by the
 * heartbeat lag while the IO thread is connected. While it is not, the master is unreachable:
 * that path (not readable, still promotable) stays as it was, since a stale heartbeat then says
 * nothing about which replica holds more data.
 */
export function withHeartbeatLag(status: ReplicaStatus, lag: number | undefined): ReplicaStatus {
  if (lag === undefined || status.ioRunning !== "Yes") return status;
  return { ...status, secondsBehind: Math.round(lag * 10) / 10 };
}

/** Makes this node the heartbeat writer (promote, and monitor when the writer went missing). */
export async function startHeartbeat(
  client: MysqlClient,
  options: Omit<HeartbeatWriterOptions, "serverId">,
): Promise<void> {
  const [row] = await client.query("SELECT @@global.server_id AS id");
  const serverId = Number(row?.id);
  for (const sql of heartbeatWriterSql({ ...options, serverId })) await client.query(sql);
}

/** Disables this node's writer (demote); a missing event is fine. */
export async function stopHeartbeat(client: MysqlClient, table: string): Promise<void> {
  const [off, alter, on] = heartbeatStopSql(table);
  await client.query(off);
  try {
    await client.query(alter);
  } catch (err) {
    // 1539 ER_EVENT_DOES_NOT_EXIST: nothing to stop.
    if ((err as { errno?: number }).errno !== 1539) throw err;
  } finally {
    await client.query(on);
  }
}

/** True when the scheduler runs and this node's event is enabled. */
export async function heartbeatRunning(client: MysqlClient, table: string): Promise<boolean> {
  const [row] = await client.query(heartbeatCheckSql(table));
  return String(row?.scheduler ?? "").toUpperCase() === "ON" &&
    String(row?.status ?? "") === "ENABLED";
}

/** What a replica knows of its heartbeat lag. */
export interface HeartbeatReading {
  /** Lag in seconds, undefined when there is no row of the master yet. */
  lag?: number;
  /** The master's server_id (Master_Server_Id). */
  masterServerId?: number;
  /** The newest row's ts. */
  ts?: string;
  /** Why there is no figure. */
  problem?: string;
}

/** Reads the heartbeat lag of a replica (never throws: a problem is returned). */
export async function readHeartbeatLag(
  client: Pick<MysqlClient, "query" | "flavour">,
  table: string,
): Promise<HeartbeatReading> {
  try {
    const [status] = await client.query(replicaStatusSql(client.flavour));
    const id = Number(status?.Master_Server_Id ?? status?.Source_Server_Id);
    if (status === undefined || !Number.isSafeInteger(id) || id <= 0) {
      return { problem: "master's server_id unknown (replica never connected)" };
    }
    const [row] = await client.query(heartbeatReadSql(table, id));
    if (row === undefined) return { masterServerId: id, problem: `no heartbeat row of ${id}` };
    const ts = String(row.ts);
    const lag = heartbeatLagSeconds(ts, String(row.now));
    return lag === undefined
      ? { masterServerId: id, ts, problem: `malformed heartbeat ts "${ts.slice(0, 40)}"` }
      : { masterServerId: id, ts, lag };
  } catch (err) {
    const e = err as { errno?: number; message?: string };
    return { problem: e.errno === 1146 ? "no heartbeat table" : `${e.message ?? err}` };
  }
}
