/**
 * resync_agent.ts and salvage.ts on real MariaDB servers (no Pacemaker): a master M and replicas
 * A, B, C, D with log_slave_updates. B stops receiving early, inside nothing special; the others
 * receive everything, including a block of identical transactions. M is killed, A promoted, and:
 * - B (a replica of the dead M) resyncs with resyncReplica and ends with A's data;
 * - C (replication reset, like an old master that comes back with nothing extra) rejoins at the
 *   exact position A published;
 * - D (replication reset, then three local writes: errant) is refused, and the salvage file lists
 *   exactly those three transactions with their SQL;
 * - F (as far behind as B) is refused once A purged the binlogs holding its last transactions.
 */
import assert from "node:assert/strict";
import { tailTransactions } from "../binlog.ts";
import { MysqlClient } from "../mysql.ts";
import {
  binlogsSinceMark,
  checkReturningNode,
  HISTORY_START_FILE,
  markHistoryStart,
  readBlock,
  resyncReplica,
  writeBlock,
} from "../resync_agent.ts";
import { type MariadbServer, slaveStatus, startMariadb, stopAll } from "./mariadb_server.ts";
import { Budget } from "../budget.ts";
import { trustedTempDir } from "./trusted_dir.ts";

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function position(s: MariadbServer): Promise<{ file: string; pos: number }> {
  const [row] = await s.query<{ File: string; Position: string }[]>("SHOW MASTER STATUS");
  return { file: row.File, pos: Number(row.Position) };
}

async function received(r: MariadbServer, m: MariadbServer): Promise<void> {
  const target = await position(m);
  await until(`server ${r.serverId} to receive ${target.file}:${target.pos}`, async () => {
    const st = await slaveStatus(r);
    return st.Master_Log_File === target.file && Number(st.Read_Master_Log_Pos) === target.pos;
  });
}

async function checksum(s: MariadbServer): Promise<string> {
  const rows = await s.query<{ Table: string; Checksum: string }[]>(
    "CHECKSUM TABLE d.t, d.h EXTENDED",
  );
  return rows.map((r) => `${r.Table}=${r.Checksum}`).join(" ");
}

function client(s: MariadbServer): Promise<MysqlClient> {
  return MysqlClient.connect({ socket: s.socket, user: "root", password: "" });
}

const lines: string[] = [];
const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`W ${m}`) };

Deno.test("history mark and block helpers", () => {
  const files = ["/b/mysql-bin.000001", "/b/mysql-bin.000002", "/b/mysql-bin.000003"];
  assert.deepEqual(binlogsSinceMark(files, "mysql-bin.000002"), files.slice(1));
  assert.deepEqual(binlogsSinceMark(files, undefined), files);
  assert.deepEqual(binlogsSinceMark(files, "mysql-bin.000009"), files, "a stale mark is ignored");
  assert.deepEqual(binlogsSinceMark(files, "../x"), files, "a malformed mark is ignored");
  const dir = trustedTempDir("block-");
  try {
    const path = `${dir}/block.json`;
    assert.equal(readBlock(path), undefined);
    writeBlock(path, { reason: "Errant transactions", at: "now" });
    assert.equal(readBlock(path)?.reason, "Errant transactions");
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    writeBlock(path, undefined);
    assert.equal(readBlock(path), undefined);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test({
  name: "resync a lagging replica, rejoin a clean old master, refuse and salvage an errant one",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const password = `${crypto.randomUUID()}"'#`;
    const servers: (MariadbServer | undefined)[] = [];
    const baseDir = trustedTempDir("ra-");
    const salvageDir = `${baseDir}/salvage`;
    try {
      const settled = await Promise.allSettled(
        [1, 2, 3, 4, 5, 6].map((id) =>
          startMariadb({
            serverId: id,
            baseDir,
            logSlaveUpdates: id > 1,
            binlogFormat: "ROW",
          })
        ),
      );
      for (const r of settled) if (r.status === "fulfilled") servers.push(r.value);
      for (const r of settled) if (r.status === "rejected") throw r.reason;
      const [m, a, b, c, d, f] = servers as MariadbServer[];
      await m.query("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY ?", [password]);
      await m.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'");
      const first = m.binlogFiles()[0].split("/").pop()!;
      for (const r of [a, b, c, d, f]) {
        await r.query(
          "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER='repl', " +
            "MASTER_PASSWORD=?, MASTER_LOG_FILE=?, MASTER_LOG_POS=4, MASTER_USE_GTID=no",
          [m.port, password, first],
        );
        await r.query("START SLAVE");
      }
      await m.query(
        "CREATE DATABASE d; " +
          "CREATE TABLE d.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB; " +
          "CREATE TABLE d.h (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB; " +
          "INSERT INTO d.h VALUES (1, 0); " +
          "CREATE PROCEDURE d.fill(n INT) BEGIN DECLARE i INT DEFAULT 0; " +
          "  WHILE i < n DO INSERT INTO d.t (v) VALUES (i); SET i = i + 1; END WHILE; END",
      );
      await m.query("CALL d.fill(50)");
      for (const r of [b, f]) {
        await received(r, m);
        await r.query("STOP SLAVE IO_THREAD");
      }
      await m.query("CALL d.fill(30)");
      const stamp = Math.floor(Date.now() / 1000);
      for (let i = 0; i < 15; i++) {
        await m.query(`SET TIMESTAMP=${stamp}; UPDATE d.h SET n = n + 1 WHERE id = 1`);
      }
      for (const r of [a, c, d]) await received(r, m);
      Deno.kill(m.pid, "SIGKILL");
      await m.status;

      // Promote A by hand, the way actionPromote does.
      await until("A to apply", async () => {
        const st = await slaveStatus(a);
        return st.Exec_Master_Log_Pos === st.Read_Master_Log_Pos;
      });
      await a.query("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0");
      const published = await position(a);
      await a.query("CALL d.fill(20)");
      const source = {
        host: "127.0.0.1",
        port: a.port,
        user: "repl",
        password,
        newestFile: published.file,
      };
      const opts = { log, budget: Budget.ofMs(60_000), salvageDir, node: "D", resource: "r" };

      // B: a replica of the dead master, 45 transactions behind A.
      const cb = await client(b);
      try {
        const t0 = performance.now();
        const out = await resyncReplica(cb, source, opts);
        assert.equal(out.kind, "resume", JSON.stringify(out));
        if (out.kind !== "resume") return;
        console.log(`B: ${out.detail} (${(performance.now() - t0).toFixed(0)} ms)`);
        assert.equal(out.file, published.file);
        assert.ok(out.pos < published.pos);
        await b.query("STOP SLAVE; RESET SLAVE ALL");
        await b.query(
          "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER='repl', " +
            "MASTER_PASSWORD=?, MASTER_LOG_FILE=?, MASTER_LOG_POS=?, MASTER_USE_GTID=no",
          [a.port, password, out.file, out.pos],
        );
        await b.query("START SLAVE");
      } finally {
        await cb.close();
      }

      // C: nothing extra; as a node with no replication set up (an old master coming back).
      await c.query("STOP SLAVE; RESET SLAVE ALL");
      const cc = await client(c);
      try {
        const out = await checkReturningNode(cc, source, opts);
        assert.equal(out.kind, "resume", JSON.stringify(out));
        if (out.kind === "resume") {
          console.log(`C: ${out.detail}`);
          assert.deepEqual({ file: out.file, pos: out.pos }, published);
        }
      } finally {
        await cc.close();
      }

      // D: three local writes A never received.
      await d.query("STOP SLAVE; RESET SLAVE ALL");
      await d.query("INSERT INTO d.t (v) VALUES (-1)");
      await d.query("UPDATE d.h SET n = 999 WHERE id = 1");
      await d.query("DELETE FROM d.t WHERE id = 3");
      const ownTail = await tailTransactions(d.binlogFiles(), 3);
      const cd = await client(d);
      try {
        const out = await checkReturningNode(cd, source, opts);
        assert.equal(out.kind, "refused", JSON.stringify(out));
        if (out.kind !== "refused") return;
        console.log(`D: ${out.reason} (${out.detail})`);
        assert.match(out.reason, /^Errant transactions \(3\) saved in \//);
        assert.ok(out.reason.length <= 128, `exit reason fits crm_mon: ${out.reason}`);
        assert.match(out.detail, /holds 3 transaction\(s\) after /);
        const file = out.salvageFile!;
        assert.ok(file.startsWith(`${salvageDir}/salvage-r-D-`), file);
        assert.equal(Deno.statSync(file).mode! & 0o777, 0o600);
        const text = Deno.readTextFileSync(file);
        const errant = text.split("\n").filter((l) => l.startsWith("errant "));
        assert.deepEqual(errant.map((l) => l.split(" ")[5]), ownTail.map((t) => t.md5));
        assert.match(text, /### INSERT INTO `d`\.`t`/);
        assert.match(text, /### UPDATE `d`\.`h`/);
        assert.match(text, /### DELETE FROM `d`\.`t`/);
        // Nothing A has is listed: A's rows (v = 0..19 from fill(20)) are not in the file.
        assert.doesNotMatch(text, /CALL|fill/);
        console.log(text.split("\n").slice(0, 12).join("\n"));
      } finally {
        await cd.close();
      }

      // B and C (repointed) end with A's data.
      await c.query(
        "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER='repl', " +
          "MASTER_PASSWORD=?, MASTER_LOG_FILE=?, MASTER_LOG_POS=?, MASTER_USE_GTID=no",
        [a.port, password, published.file, published.pos],
      );
      await c.query("START SLAVE");
      const want = await checksum(a);
      for (const r of [b, c]) {
        await received(r, a);
        await until(`server ${r.serverId} to match A`, async () => (await checksum(r)) === want);
      }
      const [h] = await b.query<{ n: string }[]>("SELECT n FROM d.h WHERE id = 1");
      assert.equal(Number(h.n), 15);

      // D repaired the way the README says: its errant changes undone unlogged, then the resume
      // override, which marks its history start. Its binary logs still hold the errant
      // transactions and its relay log is short after CHANGE MASTER, so a later resync takes its
      // trailing transactions from its binary log: from the mark on, they are found; across the
      // mark (the mark removed), the errant ones come with them and the lookup refuses.
      await d.query(
        "SET sql_log_bin = 0; DELETE FROM d.t WHERE v = -1; UPDATE d.h SET n = 15 WHERE id = 1; " +
          "INSERT INTO d.t VALUES (3, 2); SET sql_log_bin = 1",
      );
      const cr = await client(d);
      try {
        const mark = await markHistoryStart(cr);
        assert.ok(mark, "binary logging is on: a mark is written");
        const markFile = `${d.datadir}/${HISTORY_START_FILE}`;
        assert.equal(Deno.readTextFileSync(markFile).trim(), mark);
        await d.query(
          "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER='repl', " +
            "MASTER_PASSWORD=?, MASTER_LOG_FILE=?, MASTER_LOG_POS=?, MASTER_USE_GTID=no",
          [a.port, password, published.file, published.pos],
        );
        // Nothing received since the repair: no transaction of its own can locate it, and the
        // published coordinates would skip what A gained meanwhile.
        const untraceable = await resyncReplica(cr, source, opts);
        assert.equal(untraceable.kind, "refused", JSON.stringify(untraceable));
        if (untraceable.kind === "refused") assert.match(untraceable.reason, /\(no-history\)/);
        await d.query("START SLAVE");
        await a.query("CALL d.fill(12)");
        await received(d, a);
        const end = await position(a);
        const out = await resyncReplica(cr, { ...source, newestFile: end.file }, opts);
        assert.equal(out.kind, "resume", JSON.stringify(out));
        if (out.kind === "resume") {
          console.log(`D repaired: ${out.detail}`);
          assert.deepEqual({ file: out.file, pos: out.pos }, end);
          assert.match(out.detail, /of 32 transactions from the binlog/);
        }
        Deno.removeSync(markFile);
        const across = await resyncReplica(cr, { ...source, newestFile: end.file }, opts);
        assert.equal(across.kind, "refused", JSON.stringify(across));
      } finally {
        await cr.close();
      }

      // F is as far behind as B was, but A no longer has the binlogs that hold its last
      // transactions: refused, never pointed anywhere.
      // (Connected replicas keep a binlog from being purged.)
      for (const r of [b, c]) await r.query("STOP SLAVE");
      const dumps = await a.query<{ id: string }[]>(
        "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
      );
      for (const { id } of dumps) await a.query(`KILL ${Number(id)}`).catch(() => {});
      await a.query("FLUSH BINARY LOGS");
      const now = await position(a);
      await until("A's older binlogs purged", async () => {
        await a.query(`PURGE BINARY LOGS TO '${now.file}'`);
        return (await a.query<unknown[]>("SHOW BINARY LOGS")).length === 1;
      }, 20_000);
      await a.query("CALL d.fill(5)");
      const cf = await client(f);
      try {
        const out = await resyncReplica(cf, { ...source, newestFile: now.file }, opts);
        assert.equal(out.kind, "refused", JSON.stringify(out));
        if (out.kind === "refused") {
          console.log(`F: ${out.reason}`);
          assert.match(out.reason, /Resync refused \(not-found\)/);
          assert.ok(out.reason.length <= 128, `exit reason fits crm_mon: ${out.reason}`);
        }
        const st = await slaveStatus(f);
        assert.equal(st.Slave_IO_Running, "No");
        assert.equal(Number(st.Master_Port), m.port, "F still names the old master");
      } finally {
        await cf.close();
      }
    } catch (e) {
      console.log(lines.join("\n"));
      throw e;
    } finally {
      await stopAll(servers);
      await Deno.remove(baseDir, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test({
  name: "resync in a young cluster: replicas holding fewer transactions than the minimum run",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const password = `${crypto.randomUUID()}"'#`;
    const servers: (MariadbServer | undefined)[] = [];
    const baseDir = await Deno.makeTempDir({ prefix: "prm-resync-young-test-" });
    try {
      const settled = await Promise.allSettled(
        [1, 2, 3, 4].map((id) =>
          startMariadb({ serverId: id, baseDir, logSlaveUpdates: id > 1, binlogFormat: "ROW" })
        ),
      );
      for (const r of settled) if (r.status === "fulfilled") servers.push(r.value);
      for (const r of settled) if (r.status === "rejected") throw r.reason;
      const [m, a, b, c] = servers as MariadbServer[];
      await m.query("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY ?", [password]);
      await m.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'");
      const first = m.binlogFiles()[0].split("/").pop()!;
      for (const r of [a, b, c]) {
        await r.query(
          "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER='repl', " +
            "MASTER_PASSWORD=?, MASTER_LOG_FILE=?, MASTER_LOG_POS=4, MASTER_USE_GTID=no",
          [m.port, password, first],
        );
        await r.query("START SLAVE");
      }
      // What a freshly converged cluster holds when its master dies: a handful of transactions.
      await m.query("CREATE DATABASE d");
      await m.query("CREATE TABLE d.t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB");
      await received(c, m);
      await c.query("STOP SLAVE IO_THREAD");
      await m.query("INSERT INTO d.t VALUES (1, 1)");
      for (const r of [a, b]) await received(r, m);
      Deno.kill(m.pid, "SIGKILL");
      await m.status;

      await until("A to apply", async () => {
        const st = await slaveStatus(a);
        return st.Exec_Master_Log_Pos === st.Read_Master_Log_Pos;
      });
      await a.query("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0");
      const published = await position(a);
      await a.query("INSERT INTO d.t VALUES (2, 2)");
      const source = {
        host: "127.0.0.1",
        port: a.port,
        user: "repl",
        password,
        newestFile: published.file,
      };
      const opts = { log, budget: Budget.ofMs(60_000), node: "B", resource: "r" };
      // B holds all 3 transactions, C the first 2: both are their servers' whole history.
      const want = { b: published, c: undefined as { file: string; pos: number } | undefined };
      for (const [name, r] of [["b", b], ["c", c]] as const) {
        const cl = await client(r);
        try {
          const out = await resyncReplica(cl, source, opts);
          assert.equal(out.kind, "resume", `${name}: ${JSON.stringify(out)}`);
          if (out.kind !== "resume") return;
          console.log(`${name.toUpperCase()}: ${out.detail}`);
          if (name === "b") assert.deepEqual({ file: out.file, pos: out.pos }, want.b);
          else assert.ok(out.pos < published.pos, "C resumes before A's last transaction");
          await r.query("STOP SLAVE; RESET SLAVE ALL");
          await r.query(
            "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER='repl', " +
              "MASTER_PASSWORD=?, MASTER_LOG_FILE=?, MASTER_LOG_POS=?, MASTER_USE_GTID=no",
            [a.port, password, out.file, out.pos],
          );
          await r.query("START SLAVE");
        } finally {
          await cl.close();
        }
      }
      const rows = async (s: MariadbServer) =>
        (await s.query<{ id: number }[]>("SELECT id FROM d.t ORDER BY id")).map((x) => x.id);
      for (const r of [b, c]) {
        await received(r, a);
        await until(`server ${r.serverId} to hold rows 1 and 2`, async () => {
          return JSON.stringify(await rows(r)) === "[1,2]";
        });
      }
    } catch (e) {
      console.log(lines.join("\n"));
      throw e;
    } finally {
      await stopAll(servers);
      await Deno.remove(baseDir, { recursive: true }).catch(() => {});
    }
  },
});
