/**
 * Precise lag (heartbeat.ts): the pure parts, then a real master and replica (throwaway MariaDB
 * servers, no cluster): the event writes pt-heartbeat rows, replicates as SLAVESIDE_DISABLED,
 * stops writing under read_only, is disabled without binlogging; a replica whose master froze (IO
 * thread connected but starved: Seconds_Behind_Master 0) or whose SQL thread is blocked by a table
 * lock shows a growing heartbeat lag that `pt-heartbeat --check` confirms within a second.
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import {
  heartbeatLagSeconds,
  heartbeatRunning,
  heartbeatWriterSql,
  parseHeartbeatTs,
  readHeartbeatLag,
  splitTable,
  startHeartbeat,
  stopHeartbeat,
  withHeartbeatLag,
} from "../heartbeat.ts";
import { MysqlClient } from "../mysql.ts";
import type { ReplicaStatus } from "../sql.ts";
import { type MariadbServer, setupReplication, startMariadb } from "./mariadb_server.ts";

const STATUS: ReplicaStatus = {
  masterHost: "db1",
  masterPort: 3306,
  ioRunning: "Yes",
  sqlRunning: true,
  lastIoErrno: 0,
  lastIoError: "",
  lastSqlErrno: 0,
  lastSqlError: "",
  secondsBehind: 0,
  masterLogFile: "mysql-bin.000001",
  readMasterLogPos: 100,
  relayMasterLogFile: "mysql-bin.000001",
  execMasterLogPos: 100,
  sqlState: "",
  gtidIoPos: "",
  relayLogFile: "relay-bin.000002",
  relayLogPos: 600,
};

Deno.test("parseHeartbeatTs reads pt-heartbeat's UTC format, with or without fraction", () => {
  assert.equal(
    parseHeartbeatTs("2026-11-22T08:55:09.123456"),
    Date.UTC(2026, 10, 22, 8, 55, 9) + 123.456,
  );
  assert.equal(parseHeartbeatTs("2026-11-22 08:55:09"), Date.UTC(2026, 10, 22, 8, 55, 9));
  assert.equal(parseHeartbeatTs("2026-11-22T08:55:09.5"), Date.UTC(2026, 10, 22, 8, 55, 9, 500));
  assert.equal(parseHeartbeatTs("yesterday"), undefined);
  assert.equal(parseHeartbeatTs(""), undefined);
});

Deno.test("heartbeatLagSeconds: difference in seconds, never negative", () => {
  assert.equal(
    heartbeatLagSeconds("2026-11-22T08:55:09.000000", "2026-11-22T08:55:21.250000"),
    12.25,
  );
  assert.equal(heartbeatLagSeconds("2026-11-22T08:55:09.900000", "2026-11-22T08:55:09.100000"), 0);
  assert.equal(heartbeatLagSeconds("bad", "2026-11-22T08:55:09"), undefined);
});

Deno.test("withHeartbeatLag replaces Seconds_Behind_Master only while the IO thread is connected", () => {
  assert.equal(withHeartbeatLag(STATUS, 42.04).secondsBehind, 42);
  assert.equal(withHeartbeatLag({ ...STATUS, secondsBehind: null }, 7.26).secondsBehind, 7.3);
  // Master unreachable: unchanged (not readable, still promotable).
  const connecting = { ...STATUS, ioRunning: "Connecting", secondsBehind: null };
  assert.equal(withHeartbeatLag(connecting, 99).secondsBehind, null);
  assert.equal(withHeartbeatLag(STATUS, undefined), STATUS);
});

Deno.test("heartbeatWriterSql: pt-heartbeat layout, literal server_id, read_only guard, quoting", () => {
  assert.deepEqual(splitTable("percona.heartbeat"), { db: "percona", name: "heartbeat" });
  assert.deepEqual(splitTable("hb"), { db: "percona", name: "hb" });
  const sql = heartbeatWriterSql({ table: "my`db.heart$beat", intervalSeconds: 2.7, serverId: 12 });
  assert.equal(sql[0], "CREATE DATABASE IF NOT EXISTS `my``db`");
  assert.match(sql[1], /ts varchar\(26\) NOT NULL, server_id int unsigned NOT NULL PRIMARY KEY/);
  assert.match(sql[1], /exec_master_log_pos bigint unsigned DEFAULT NULL\) ENGINE=InnoDB$/);
  assert.equal(sql[2], "DROP EVENT IF EXISTS `my``db`.`heart$beat_prm_writer`");
  assert.match(sql[3], /EVERY 2 SECOND/);
  assert.match(sql[3], /IF @@global\.read_only = 0 THEN REPLACE INTO `my``db`\.`heart\$beat`/);
  assert.match(sql[3], /'%Y-%m-%dT%H:%i:%s\.%f'\), 12\); END IF$/);
  assert.equal(sql[4], "SET GLOBAL event_scheduler = ON");
  assert.throws(() => heartbeatWriterSql({ table: "a.b", intervalSeconds: 1, serverId: -1 }));
});

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function waitUntil<T>(
  what: string,
  timeoutMs: number,
  fn: () => Promise<T | undefined>,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    await delay(100);
  }
  throw new Error(`Timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

/** pt-heartbeat --check on a replica: the lag it computes (UTC, without its skew). */
async function ptHeartbeatCheck(replica: MariadbServer, masterId: number): Promise<number> {
  const out = await new Deno.Command("pt-heartbeat", {
    args: [
      "--check",
      "--utc",
      // pt-heartbeat subtracts its skew (0.5 s by default) and refuses 0: 1 ms, added back below.
      "--skew",
      "0.001",
      "-D",
      "percona",
      "--table",
      "heartbeat",
      "--master-server-id",
      String(masterId),
      `S=${replica.socket},u=root`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success || !/^\d+(\.\d+)?$/.test(text)) {
    throw new Error(
      `pt-heartbeat failed (${out.code}): ${text} ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return Number(text) + 0.001;
}

Deno.test({
  name:
    "heartbeat on real servers: writer, lag under an IO stall and an SQL lock, pt-heartbeat agrees",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const master = await startMariadb({ serverId: 11 });
    const replica = await startMariadb({ serverId: 12 });
    let locker: mysql.Connection | undefined;
    const clients: MysqlClient[] = [];
    try {
      await setupReplication(replica, master);
      const m = await MysqlClient.connect({ socket: master.socket, user: "root", password: "" });
      const r = await MysqlClient.connect({ socket: replica.socket, user: "root", password: "" });
      clients.push(m, r);
      await startHeartbeat(m, { table: "percona.heartbeat", intervalSeconds: 1 });
      assert.equal(await heartbeatRunning(m, "percona.heartbeat"), true);

      // The replica receives the table, the rows and the event (disabled there).
      const first = await waitUntil("a first heartbeat on the replica", 20_000, async () => {
        const h = await readHeartbeatLag(r, "percona.heartbeat");
        return h.lag !== undefined ? h : undefined;
      });
      assert.equal(first.masterServerId, 11);
      assert.ok(first.lag! < 2, `fresh lag ${first.lag}`);
      const [ev] = await r.query(
        "SELECT STATUS AS s FROM information_schema.EVENTS WHERE EVENT_NAME = 'heartbeat_prm_writer'",
      );
      assert.equal(ev.s, "SLAVESIDE_DISABLED");
      assert.equal(await heartbeatRunning(r, "percona.heartbeat"), false);

      // A silent IO stall: the master freezes (SIGSTOP), the replica's IO thread stays connected
      // and waits, its SQL thread has applied everything: Seconds_Behind_Master reads 0.
      Deno.kill(master.pid, "SIGSTOP");
      try {
        const tf = Date.now();
        await waitUntil("heartbeat lag over 4 s with the master frozen", 30_000, async () => {
          const h = await readHeartbeatLag(r, "percona.heartbeat");
          return h.lag !== undefined && h.lag > 4 ? h : undefined;
        });
        const io = (await r.replicaStatus())!;
        const ptIo = await ptHeartbeatCheck(replica, 11);
        const oursIo = (await readHeartbeatLag(r, "percona.heartbeat")).lag!;
        console.log(
          `IO stalled ${Date.now() - tf} ms: heartbeat lag ${oursIo.toFixed(3)} s, ` +
            `pt-heartbeat ${ptIo.toFixed(3)} s, Seconds_Behind_Master ${io.secondsBehind}, ` +
            `io=${io.ioRunning} sql=${io.sqlRunning}`,
        );
        assert.ok(io.secondsBehind === 0 || io.secondsBehind === null, `SBM ${io.secondsBehind}`);
        assert.ok(Math.abs(ptIo - oursIo) < 1, `pt-heartbeat ${ptIo} vs ours ${oursIo}`);
      } finally {
        Deno.kill(master.pid, "SIGCONT");
      }
      await waitUntil("the lag to come back under 2 s after the thaw", 30_000, async () => {
        const h = await readHeartbeatLag(r, "percona.heartbeat");
        return h.lag !== undefined && h.lag < 2 ? true : undefined;
      });

      // Block the SQL thread with a table lock on the replica: the IO thread still receives.
      locker = await mysql.createConnection({ socketPath: replica.socket, user: "root" });
      // A READ lock: the SQL thread cannot write the table, every reader still can.
      await locker.query("LOCK TABLES percona.heartbeat READ");
      const t0 = Date.now();
      const stalled = await waitUntil("heartbeat lag over 4 s", 30_000, async () => {
        const h = await readHeartbeatLag(r, "percona.heartbeat");
        return h.lag !== undefined && h.lag > 4 ? h : undefined;
      });
      const status = (await r.replicaStatus())!;
      const pt = await ptHeartbeatCheck(replica, 11);
      const ours = (await readHeartbeatLag(r, "percona.heartbeat")).lag!;
      console.log(
        `SQL thread blocked ${Date.now() - t0} ms: heartbeat lag ${ours.toFixed(3)} s, ` +
          `pt-heartbeat ${pt.toFixed(3)} s, Seconds_Behind_Master ${status.secondsBehind}, ` +
          `io=${status.ioRunning} sql=${status.sqlRunning} state="${status.sqlState}"`,
      );
      assert.ok(stalled.lag! > 4);
      assert.ok(Math.abs(pt - ours) < 1, `pt-heartbeat ${pt} vs ours ${ours}`);
      assert.equal(status.ioRunning, "Yes");
      await locker.query("UNLOCK TABLES");
      await waitUntil("the lag to come back under 2 s", 30_000, async () => {
        const h = await readHeartbeatLag(r, "percona.heartbeat");
        return h.lag !== undefined && h.lag < 2 ? true : undefined;
      });

      // read_only stops the writes even with the event enabled (the definer bypasses read_only).
      await m.setReadOnly(true);
      await delay(1_200);
      const [before] = await m.query("SELECT ts FROM percona.heartbeat WHERE server_id = 11");
      await delay(2_200);
      const [after] = await m.query("SELECT ts FROM percona.heartbeat WHERE server_id = 11");
      assert.equal(after.ts, before.ts, "no heartbeat under read_only");

      // Demote's stop: the event is disabled and nothing reaches the binlog.
      const pos0 = await m.binlogStatus();
      await stopHeartbeat(m, "percona.heartbeat");
      const pos1 = await m.binlogStatus();
      assert.deepEqual(pos1, pos0);
      assert.equal(await heartbeatRunning(m, "percona.heartbeat"), false);
      await stopHeartbeat(r, "percona.nothing");
    } finally {
      await locker?.end().catch(() => {});
      for (const c of clients) await c.close();
      await replica.stop();
      await master.stop();
    }
  },
});
