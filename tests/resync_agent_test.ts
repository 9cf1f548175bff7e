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
import { Budget } from "../budget.ts";
import { type MariadbServer, startMariadbServers, stopAll } from "./mariadb_server.ts";
import { trustedTempDir } from "./trusted_dir.ts";
import {
  binlogPosition,
  type Coordinates,
  type Login,
  pointAt,
  replicaStatus,
  waitFor,
  waitReceived,
} from "./agent_harness.ts";

/** The lookups' log lines, printed when a test fails. */
const lines: string[] = [];
const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`W ${m}`) };

/** Every wait of this file: condition checks every 50 ms, within a minute by default. */
function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  return waitFor(what, check, { timeoutMs, intervalMs: 50 });
}

/** A replica's SQL thread has applied everything its IO thread received. */
async function applied(r: MariadbServer): Promise<boolean> {
  const st = await replicaStatus(r);
  return st.Exec_Master_Log_Pos === st.Read_Master_Log_Pos;
}

/** What {@link withReplicated} hands over. */
interface Replicated {
  /** Server 1 (the master) and its replicas 2..count. */
  servers: MariadbServer[];
  /** The replication login on server 1. */
  login: Login;
  /** Directory holding the servers' directories. */
  baseDir: string;
}

/**
 * Starts `count` servers with ROW binlogs (all but the first with log_slave_updates), makes the
 * others replicas of the first, runs `fn`, and stops them all, also when `fn` fails (then the
 * lookups' log lines are printed).
 */
async function withReplicated(count: number, fn: (r: Replicated) => Promise<void>): Promise<void> {
  const login: Login = { user: "repl", password: `${crypto.randomUUID()}"'#` };
  const servers: MariadbServer[] = [];
  const baseDir = trustedTempDir("ra-");
  try {
    const ids = Array.from({ length: count }, (_, i) => i + 1);
    servers.push(
      ...await startMariadbServers(
        ids.map((id) => ({ serverId: id, baseDir, logSlaveUpdates: id > 1, binlogFormat: "ROW" })),
      ),
    );
    const [m, ...replicas] = servers;
    await m.query("CREATE USER ?@'127.0.0.1' IDENTIFIED BY ?", [login.user, login.password]);
    await m.query("GRANT REPLICATION SLAVE ON *.* TO ?@'127.0.0.1'", [login.user]);
    const first = m.binlogFiles()[0].split("/").pop()!;
    for (const r of replicas) await pointAt(r, { port: m.port, login, file: first, pos: 4 });
    await fn({ servers, login, baseDir });
  } catch (e) {
    console.log(lines.join("\n"));
    throw e;
  } finally {
    await stopAll(servers);
    await Deno.remove(baseDir, { recursive: true }).catch(() => {});
  }
}

/**
 * Kills the master `m` and promotes `a` by hand, the way actionPromote does; returns the
 * coordinates `a` publishes.
 */
async function failOver(m: MariadbServer, a: MariadbServer): Promise<Coordinates> {
  Deno.kill(m.pid, "SIGKILL");
  await m.status;
  await until("A to apply", () => applied(a));
  await a.query("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0");
  return await binlogPosition(a);
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
  fn: () =>
    withReplicated(6, async ({ servers, login, baseDir }) => {
      const salvageDir = `${baseDir}/salvage`;
      const [m, a, b, c, d, f] = servers;
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
        await waitReceived(r, m);
        await r.query("STOP SLAVE IO_THREAD");
      }
      await m.query("CALL d.fill(30)");
      const stamp = Math.floor(Date.now() / 1000);
      for (let i = 0; i < 15; i++) {
        await m.query(`SET TIMESTAMP=${stamp}; UPDATE d.h SET n = n + 1 WHERE id = 1`);
      }
      for (const r of [a, c, d]) await waitReceived(r, m);
      const published = await failOver(m, a);
      await a.query("CALL d.fill(20)");
      const source = { host: "127.0.0.1", port: a.port, ...login, newestFile: published.file };
      const fromA = (at: { file: string; pos: number }) => ({ port: a.port, login, ...at });
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
        await pointAt(b, fromA({ file: out.file, pos: out.pos }));
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
        const file = out.salvageFile!;
        assert.ok(file.startsWith(`${salvageDir}/salvage-r-D-`), file);
        // The exit reason leads the operator to the file, within what crm_mon shows.
        assert.ok(out.reason.includes(file), out.reason);
        assert.ok(out.reason.length <= 128, `exit reason fits crm_mon: ${out.reason}`);
        assert.equal(Deno.statSync(file).mode! & 0o777, 0o600);
        const text = Deno.readTextFileSync(file);
        // Exactly the three errant transactions, by MD5, and their SQL.
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
      await pointAt(c, fromA(published));
      const want = await checksum(a);
      for (const r of [b, c]) {
        await waitReceived(r, a);
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
        await pointAt(d, { ...fromA(published), start: false });
        // Nothing received since the repair: no transaction of its own can locate it, and the
        // published coordinates would skip what A gained meanwhile. The refusal's cause is only
        // in its text (ResyncOutcome has no typed cause).
        const untraceable = await resyncReplica(cr, source, opts);
        assert.equal(untraceable.kind, "refused", JSON.stringify(untraceable));
        if (untraceable.kind === "refused") assert.match(untraceable.reason, /\(no-history\)/);
        await d.query("START SLAVE");
        await a.query("CALL d.fill(12)");
        await waitReceived(d, a);
        const end = await binlogPosition(a);
        const out = await resyncReplica(cr, { ...source, newestFile: end.file }, opts);
        assert.equal(out.kind, "resume", JSON.stringify(out));
        if (out.kind === "resume") {
          console.log(`D repaired: ${out.detail}`);
          assert.deepEqual({ file: out.file, pos: out.pos }, end);
          // 32 matched: the 20 transactions of fill(20) and the 12 of fill(12), which only its
          // binary log since the mark holds (its relay log has the last 12).
          const decision = out.search?.decision;
          assert.ok(decision?.ok, JSON.stringify(decision));
          assert.equal(decision.matched, 32);
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
      const now = await binlogPosition(a);
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
          // The cause, as above, only in the text.
          assert.match(out.reason, /\(not-found\)/);
          assert.ok(out.reason.length <= 128, `exit reason fits crm_mon: ${out.reason}`);
        }
        const st = await replicaStatus(f);
        assert.equal(st.Slave_IO_Running, "No");
        assert.equal(Number(st.Master_Port), m.port, "F still names the old master");
      } finally {
        await cf.close();
      }
    }),
});

Deno.test({
  name: "resync in a young cluster: replicas holding fewer transactions than the minimum run",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () =>
    withReplicated(4, async ({ servers, login }) => {
      const [m, a, b, c] = servers;
      // What a freshly converged cluster holds when its master dies: a handful of transactions.
      await m.query("CREATE DATABASE d");
      await m.query("CREATE TABLE d.t (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB");
      await waitReceived(c, m);
      await c.query("STOP SLAVE IO_THREAD");
      await m.query("INSERT INTO d.t VALUES (1, 1)");
      for (const r of [a, b]) await waitReceived(r, m);
      const published = await failOver(m, a);
      await a.query("INSERT INTO d.t VALUES (2, 2)");
      const source = { host: "127.0.0.1", port: a.port, ...login, newestFile: published.file };
      const opts = { log, budget: Budget.ofMs(60_000), node: "B", resource: "r" };
      // B holds all 3 transactions, C the first 2: both are their servers' whole history.
      for (const [name, r] of [["b", b], ["c", c]] as const) {
        const cl = await client(r);
        try {
          const out = await resyncReplica(cl, source, opts);
          assert.equal(out.kind, "resume", `${name}: ${JSON.stringify(out)}`);
          if (out.kind !== "resume") return;
          console.log(`${name.toUpperCase()}: ${out.detail}`);
          if (name === "b") assert.deepEqual({ file: out.file, pos: out.pos }, published);
          else assert.ok(out.pos < published.pos, "C resumes before A's last transaction");
          await r.query("STOP SLAVE; RESET SLAVE ALL");
          await pointAt(r, { port: a.port, login, file: out.file, pos: out.pos });
        } finally {
          await cl.close();
        }
      }
      const rows = async (s: MariadbServer) =>
        (await s.query<{ id: number }[]>("SELECT id FROM d.t ORDER BY id")).map((x) => x.id);
      for (const r of [b, c]) {
        await waitReceived(r, a);
        await until(`server ${r.serverId} to hold rows 1 and 2`, async () => {
          return JSON.stringify(await rows(r)) === "[1,2]";
        });
      }
    }),
});
