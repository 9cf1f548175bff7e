/**
 * Slave resync on real MariaDB servers, without Pacemaker: a master M and three replicas A, B, C
 * (log_slave_updates, relay logs kept) that stopped receiving at different points; M is killed
 * with SIGKILL, A (which received the most) becomes the master, and B and C find their resume
 * point in A's binary log, read over the replication protocol with the replication user, and
 * replicate from there. The data must then be identical everywhere (CHECKSUM TABLE), with
 * counters that would differ if any transaction were skipped or applied twice.
 *
 * B stops in the middle of a block of identical transactions (the same UPDATE with the same
 * timestamp), C stops more than 100,000 transactions before the end.
 */
import assert from "node:assert/strict";
import { type BinlogTransaction, tailTransactions } from "../binlog.ts";
import { findResumePoint } from "../remote_binlog.ts";
import { chooseTrailing } from "../resync.ts";
import { Budget } from "../budget.ts";
import { receivedPositionOf } from "../election.ts";
import { comparePositions, encodeCoordinates } from "../position.ts";
import { normalizeReplicaStatus } from "../sql.ts";
import { type MariadbServer, slaveStatus, startMariadb, stopAll } from "./mariadb_server.ts";

const LAG = 100_000;
const TRAILING = 64;

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  describe: () => Promise<string>,
  timeoutMs = 180_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${what}: ${await describe()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

function brief(st: Record<string, unknown>): string {
  return [
    "Slave_IO_Running",
    "Slave_SQL_Running",
    "Master_Log_File",
    "Read_Master_Log_Pos",
    "Relay_Master_Log_File",
    "Exec_Master_Log_Pos",
    "Last_IO_Error",
    "Last_SQL_Error",
  ].map((f) => `${f}=${st[f]}`).join(" ");
}

async function masterPosition(m: MariadbServer): Promise<{ file: string; pos: number }> {
  const [row] = await m.query<{ File: string; Position: string }[]>("SHOW MASTER STATUS");
  return { file: row.File, pos: Number(row.Position) };
}

/** Waits until `r` has received (IO thread) everything `m` has logged so far. */
async function waitReceived(r: MariadbServer, m: MariadbServer): Promise<void> {
  const target = await masterPosition(m);
  await waitFor(
    `server ${r.serverId} to receive ${target.file}:${target.pos}`,
    async () => {
      const st = await slaveStatus(r);
      return st.Master_Log_File === target.file &&
        Number(st.Read_Master_Log_Pos) === target.pos;
    },
    async () => brief(await slaveStatus(r)),
  );
}

/** Waits until the SQL thread of `r` has applied everything its IO thread received. */
async function waitApplied(r: MariadbServer): Promise<void> {
  await waitFor(
    `server ${r.serverId} to apply its relay log`,
    async () => {
      const st = await slaveStatus(r);
      if (st.Slave_SQL_Running !== "Yes") throw new Error(`SQL thread stopped: ${brief(st)}`);
      return st.Relay_Master_Log_File === st.Master_Log_File &&
        st.Exec_Master_Log_Pos === st.Read_Master_Log_Pos;
    },
    async () => brief(await slaveStatus(r)),
  );
}

async function checksums(s: MariadbServer): Promise<string> {
  const rows = await s.query<{ Table: string; Checksum: string }[]>(
    "CHECKSUM TABLE d.t, d.h EXTENDED",
  );
  return rows.map((r) => `${r.Table}=${r.Checksum}`).join(" ");
}

async function counter(s: MariadbServer): Promise<number> {
  const [row] = await s.query<{ n: string }[]>("SELECT n FROM d.h WHERE id = 1");
  return Number(row.n);
}

Deno.test({
  name: "resync after a master crash: identical transactions and a replica 100,000 behind",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    // Quotes, a backslash and a comment sign: the option file must carry them intact.
    const password = `${crypto.randomUUID()}"\\'#; x`;
    const servers: (MariadbServer | undefined)[] = [];
    // Our own parent directory, so that nothing else that tidies the temp dir touches the servers.
    const baseDir = await Deno.makeTempDir({ prefix: "prm-resync-test-" });
    try {
      const settled = await Promise.allSettled([
        startMariadb({ serverId: 1, baseDir }),
        // A's binlog rotates every 4 MiB so that the lagging replica's point is several files back.
        startMariadb({
          serverId: 2,
          baseDir,
          logSlaveUpdates: true,
          maxBinlogSize: 4 * 1024 * 1024,
        }),
        startMariadb({ serverId: 3, baseDir, logSlaveUpdates: true }),
        startMariadb({ serverId: 4, baseDir, logSlaveUpdates: true, binlogChecksum: "NONE" }),
        startMariadb({ serverId: 5, baseDir, logSlaveUpdates: true }),
      ]);
      // Keep every server that did start, so that the finally block stops it.
      for (const r of settled) if (r.status === "fulfilled") servers.push(r.value);
      for (const r of settled) if (r.status === "rejected") throw r.reason;
      const [m, a, b, c, d] = servers as MariadbServer[];
      await m.query("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY ?", [password]);
      await m.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'");
      const first = m.binlogFiles()[0].split("/").pop()!;
      for (const r of [a, b, c, d]) {
        await r.query(
          "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER='repl', " +
            "MASTER_PASSWORD=?, MASTER_LOG_FILE=?, MASTER_LOG_POS=4, MASTER_USE_GTID=no",
          [m.port, password, first],
        );
        await r.query("START SLAVE");
      }
      await m.query(
        "CREATE DATABASE d; " +
          "CREATE TABLE d.t (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL, " +
          "  c INT NOT NULL DEFAULT 0) ENGINE=InnoDB; " +
          "CREATE TABLE d.h (id INT PRIMARY KEY, n INT NOT NULL) ENGINE=InnoDB; " +
          "INSERT INTO d.h VALUES (1, 0); " +
          "CREATE PROCEDURE d.fill(n INT) BEGIN DECLARE i INT DEFAULT 0; " +
          "  WHILE i < n DO INSERT INTO d.t (v) VALUES (i); SET i = i + 1; END WHILE; END",
      );
      // D1: distinct transactions every replica receives.
      await m.query("CALL d.fill(300)");
      await waitReceived(c, m);
      await c.query("STOP SLAVE IO_THREAD");

      // D2: the lag, one autocommitted INSERT per transaction. All but the last 1,000 carry a
      // timestamp an hour old, so that A's newest binlog file starts well before B's and D's
      // runs and the search's timestamp guard can stop after that one file.
      const t0 = performance.now();
      const hourAgo = Math.floor(Date.now() / 1000) - 3600;
      await m.query("SET TIMESTAMP=?; CALL d.fill(?); SET TIMESTAMP=0", [hourAgo, LAG - 1000]);
      await m.query("CALL d.fill(1000)");
      const genMs = performance.now() - t0;
      // The same UPDATE with the same timestamp: identical MD5s. B receives the first 10 of 20.
      const stamp = Math.floor(Date.now() / 1000);
      const same = `SET TIMESTAMP=${stamp}; UPDATE d.h SET n = n + 1 WHERE id = 1; SET TIMESTAMP=0`;
      for (let i = 0; i < 10; i++) await m.query(same);
      await waitReceived(b, m);
      await b.query("STOP SLAVE IO_THREAD");
      for (let i = 0; i < 10; i++) await m.query(same);
      // D3: what only A receives, with statements that would diverge if applied twice.
      await m.query("CALL d.fill(200)");
      for (let i = 0; i < 50; i++) {
        await m.query("UPDATE d.t SET c = c + 1 WHERE id % 7 = ?", [i % 7]);
      }
      await waitReceived(a, m);
      await waitReceived(d, m);

      // The crash.
      Deno.kill(m.pid, "SIGKILL");
      await m.status;

      // Election input: A (tied with D) received the most.
      const received = await Promise.all(
        [a, b, c, d].map(async (r) =>
          receivedPositionOf(normalizeReplicaStatus(await slaveStatus(r)))!
        ),
      );
      assert.ok(comparePositions(received[0], received[1]) > 0);
      assert.ok(comparePositions(received[1], received[2]) > 0);
      assert.equal(comparePositions(received[0], received[3]), 0);

      // Promote A.
      await waitApplied(a);
      await a.query("STOP SLAVE");
      await a.query("RESET SLAVE ALL");
      await a.query("SET GLOBAL read_only = 0");
      const published = await masterPosition(a);
      const replInfo = encodeCoordinates({ host: "127.0.0.1", ...published });
      console.log(`new master publishes ${replInfo} (${replInfo.length} bytes)`);
      // A's own writes after the promotion come after every resume point.
      await a.query("CALL d.fill(100)");
      await a.query("UPDATE d.h SET n = n + 1000 WHERE id = 1");

      await a.query("CREATE USER 'mon'@'127.0.0.1' IDENTIFIED BY ?", [password]);
      await a.query("GRANT REPLICATION SLAVE, BINLOG MONITOR ON *.* TO 'mon'@'127.0.0.1'");
      const report: string[] = [`generated ${LAG} transactions in ${genMs.toFixed(0)} ms`];
      const allFiles = a.binlogFiles().map((f) => f.split("/").pop()!).reverse();
      const replicas = [
        { name: "D", r: d, counter: 20, rows: 300 + LAG + 200 },
        { name: "B", r: b, counter: 10, rows: 300 + LAG },
        { name: "C", r: c, counter: 0, rows: 300 },
      ];
      for (const { name, r, ...expected } of replicas) {
        await waitApplied(r);
        await r.query("STOP SLAVE");
        // C lacks the 100,000 single-row transactions (and what followed), B only the tail.
        assert.equal(await counter(r), expected.counter);
        const [have] = await r.query<{ n: string }[]>("SELECT COUNT(*) AS n FROM d.t");
        assert.equal(Number(have.n), expected.rows);
        const tail: BinlogTransaction[] = await tailTransactions(r.relayLogFiles(), TRAILING);
        assert.equal(tail.length, TRAILING);
        // Its own binlog (log_slave_updates; C's without checksums) ends with the same hashes.
        const ownTail = await tailTransactions(r.binlogFiles(), TRAILING);
        assert.deepEqual(ownTail.map((t) => t.md5), tail.map((t) => t.md5));
        const chosen = chooseTrailing(tail, ownTail, { count: TRAILING });
        assert.equal(chosen.source, "relay-log");
        const trailing = chosen.trailing;
        // B finds A's files from the published position (REPLICATION SLAVE only); C lists them
        // with SHOW BINARY LOGS, which needs BINLOG MONITOR too.
        const remote = name !== "C"
          ? {
            host: "127.0.0.1",
            port: a.port,
            user: "repl",
            password,
            newestFile: published.file,
            budget: Budget.ofMs(300_000),
          }
          : {
            host: "127.0.0.1",
            port: a.port,
            user: "mon",
            password,
            budget: Budget.ofMs(300_000),
          };
        if (name === "B") {
          // Its last 10 transactions are identical and sit inside a block of 20: refused.
          const short = await findResumePoint({ ...remote, trailing: trailing.slice(-10) });
          assert.equal(short.decision.ok, false, JSON.stringify(short.decision));
          if (!short.decision.ok) assert.equal(short.decision.reason, "ambiguous");
          report.push(
            `B with 10 trailing: refused: ${short.decision.ok || short.decision.message}`,
          );
        }
        if (name === "B") {
          // C never received B's last transactions: looking for them in C's binlog must refuse.
          const wrong = await findResumePoint({
            ...remote,
            port: c.port,
            user: "repl",
            newestFile: (await masterPosition(c)).file,
            trailing,
          });
          assert.equal(wrong.decision.ok, false, JSON.stringify(wrong.decision));
          if (!wrong.decision.ok) assert.equal(wrong.decision.reason, "not-found");
          report.push(
            `B searched in C's binlog: refused: ${!wrong.decision.ok && wrong.decision.message}`,
          );
        }
        let quickPoint: { file: string; pos: number } | undefined;
        if (name === "B") {
          // Fewest bytes: stop at the newest file that settles the run.
          const quick = await findResumePoint({ ...remote, trailing, stopWhenFound: true });
          assert.ok(quick.decision.ok, JSON.stringify(quick.decision));
          assert.equal(quick.filesFetched.length, 1);
          quickPoint = { file: quick.decision.file, pos: quick.decision.pos };
          report.push(
            `B stopping when found: ${quick.decision.file}:${quick.decision.pos} in ` +
              `${quick.elapsedMs.toFixed(0)} ms, ${quick.bytesFetched} bytes fetched`,
          );
        }
        const search = await findResumePoint({ ...remote, trailing });
        const point = search.decision;
        assert.ok(point.ok, `${name}: ${JSON.stringify(point)}`);
        // D has all A has: it resumes exactly where A stood when it was promoted.
        if (name === "D") {
          assert.deepEqual({ file: point.file, pos: point.pos }, published);
        }
        if (quickPoint) {
          assert.deepEqual(quickPoint, { file: point.file, pos: point.pos });
        }
        report.push(
          `${name}: resume at ${point.file}:${point.pos} (run of ${point.matched}, ` +
            `${point.contradicted} contradicted) in ${search.elapsedMs.toFixed(0)} ms ` +
            `(fetch ${search.fetchMs.toFixed(0)} ms), ` +
            `${search.filesFetched.length} files / ${search.bytesFetched} bytes fetched, ` +
            `${search.transactionsHashed} transactions hashed`,
        );
        if (name === "B") {
          assert.ok(point.contradicted > 0, "the identical block was not exercised");
        }
        // Close replicas read only A's newest file; C reads back to A's first.
        assert.deepEqual(
          search.filesFetched,
          name === "C" ? allFiles : [published.file],
          `${name} fetched ${search.filesFetched}`,
        );
        await r.query("RESET SLAVE");
        await r.query(
          "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=?, MASTER_USER='repl', " +
            "MASTER_PASSWORD=?, MASTER_LOG_FILE=?, MASTER_LOG_POS=?, MASTER_USE_GTID=no",
          [a.port, password, point.file, point.pos],
        );
        await r.query("START SLAVE");
      }
      const target = await masterPosition(a);
      for (const r of [b, c, d]) {
        await waitFor(
          `server ${r.serverId} to catch up with A at ${target.file}:${target.pos}`,
          async () => {
            const st = await slaveStatus(r);
            if (st.Slave_SQL_Running !== "Yes" || st.Slave_IO_Running === "No") {
              throw new Error(`Replication failed on server ${r.serverId}: ${brief(st)}`);
            }
            return st.Relay_Master_Log_File === target.file &&
              Number(st.Exec_Master_Log_Pos) === target.pos;
          },
          async () => brief(await slaveStatus(r)),
        );
      }
      const sums = await Promise.all([a, b, c, d].map(checksums));
      report.push(`checksums A: ${sums[0]} | B: ${sums[1]} | C: ${sums[2]} | D: ${sums[3]}`);
      console.log(report.join("\n"));
      assert.equal(sums[1], sums[0]);
      assert.equal(sums[2], sums[0]);
      assert.equal(sums[3], sums[0]);
      for (const r of [a, b, c, d]) assert.equal(await counter(r), 1020);
      const [rows] = await a.query<{ n: string }[]>("SELECT COUNT(*) AS n FROM d.t");
      assert.equal(Number(rows.n), 300 + LAG + 200 + 100);
      for (const r of [b, c, d]) {
        const st = await slaveStatus(r);
        assert.equal(st.Slave_IO_Running, "Yes", brief(st));
        assert.equal(st.Slave_SQL_Running, "Yes", brief(st));
        assert.equal(Number(st.Last_SQL_Errno), 0, brief(st));
      }
    } catch (e) {
      for (const s of servers) {
        if (s) console.error(`--- error log of server ${s.serverId}:\n${s.errorLogTail(15)}`);
      }
      throw e;
    } finally {
      await stopAll(servers);
      await Deno.remove(baseDir, { recursive: true });
    }
  },
});
