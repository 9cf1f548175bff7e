/**
 * async_stop on the lab (fencing on, a writer through the writer VIP): the same slow shutdown
 * (2 GB buffer pool full of dirty pages and purge work, innodb_fast_shutdown=0) is failed over
 * twice in one run, once with async_stop=false and once with async_stop=true, by putting the
 * master in standby (Pacemaker demotes and stops it, promotes another). Prints how long each
 * failover took until a writable master answered on the VIP, how long the stop action took, and
 * how long the old mysqld kept shutting down; the node is then brought back (its start waits for
 * the old process when it is still shutting down).
 *
 * The fill is written with sql_log_bin=0 so that only the master's shutdown is slow: the replicas
 * stay current and the promotion itself costs the same in both runs.
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import {
  agentProcesses,
  compareData,
  credentials,
  crmMon,
  down,
  dump,
  exec,
  killPid,
  loadAgent,
  moreAcked,
  mysqldPids,
  nodeAddress,
  promotedNode,
  replicaStatus,
  sleep,
  sql,
  sqlAt,
  up,
  waitFor,
  WRITER_VIP,
} from "./lab.ts";

import { agentLines, RSC, standby, TABLE, Writer } from "./scenario.ts";

const LAB_WAIT_MS = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0");

/**
 * How long the old server's shutdown stays held once the start's process runs: the agent reaches
 * its wait after Deno's start and a few file checks (Deno's start is ~30 ms of CPU, bench:monitor's
 * "start-up only" row), so 2 s leaves a wide margin on a loaded machine.
 */
const START_HOLD_MS = 2_000;

async function onlineNodes(exclude: string[] = []): Promise<string[]> {
  return (await crmMon()).nodes.filter((n) => n.online && !exclude.includes(n.name))
    .map((n) => n.name).sort();
}

async function converged(timeoutMs: number): Promise<string> {
  return await waitFor(async () => {
    const master = await promotedNode(RSC);
    if (master === null) return null;
    const [ro] = await sql(master, "SELECT @@global.read_only AS ro", { timeoutMs: 2_000 });
    if (Number(ro.ro) !== 0) return null;
    for (const n of (await onlineNodes()).filter((x) => x !== master)) {
      const s = await replicaStatus(n);
      if (s === null || s.Master_Host !== master) return null;
      if (s.Slave_IO_Running !== "Yes" || s.Slave_SQL_Running !== "Yes") return null;
    }
    return master;
  }, { timeoutMs, what: "1 promoted + every other node replicating from it" });
}

async function writableElsewhere(old: string, t0: number): Promise<number> {
  await waitFor(async () => {
    const rows = await sqlAt(WRITER_VIP, "SELECT @@hostname AS h, @@global.read_only AS ro", {
      timeoutMs: 1_000,
    });
    return rows[0] && Number(rows[0].ro) === 0 && rows[0].h !== old;
  }, { timeoutMs: 300_000, what: "a writable master behind the writer VIP", intervalMs: 100 });
  return Date.now() - t0;
}

/**
 * Fills the master's buffer pool with ~1 GB of dirty pages plus purge work, unlogged: 2 M rows of
 * 510 bytes, every row updated once and half of them deleted while a snapshot (a long report, say)
 * holds the old versions. The snapshot stays open, so the shutdown (innodb_fast_shutdown=0) has
 * the whole purge to do besides flushing. Returns the figures and the snapshot's connection.
 */
async function fillDirty(master: string): Promise<{ figures: string; hold: mysql.Connection }> {
  const c = credentials().admin;
  const open = () =>
    mysql.createConnection({
      host: nodeAddress(master),
      user: c.user,
      password: c.password,
      multipleStatements: false,
    });
  const conn = await open();
  const hold = await open();
  try {
    await conn.query("SET SESSION sql_log_bin = 0");
    await conn.query("CREATE DATABASE IF NOT EXISTS scratch");
    await conn.query("DROP TABLE IF EXISTS scratch.fill");
    await conn.query(
      "CREATE TABLE scratch.fill (id INT AUTO_INCREMENT PRIMARY KEY, a CHAR(255) NOT NULL, " +
        "b CHAR(255) NOT NULL) ENGINE=InnoDB",
    );
    await conn.query(
      "INSERT INTO scratch.fill (a, b) SELECT REPEAT('a', 255), REPEAT('b', 255) " +
        "FROM scratch.seq_1_to_2000000",
    );
    await hold.query("START TRANSACTION WITH CONSISTENT SNAPSHOT");
    await hold.query("SELECT COUNT(*) FROM scratch.fill");
    await conn.query("UPDATE scratch.fill SET b = REPEAT('c', 255)");
    await conn.query("DELETE FROM scratch.fill WHERE id % 2 = 0");
    const [rows] = await conn.query(
      "SELECT VARIABLE_NAME AS n, VARIABLE_VALUE AS v FROM information_schema.GLOBAL_STATUS " +
        "WHERE VARIABLE_NAME IN ('INNODB_BUFFER_POOL_PAGES_DIRTY', 'INNODB_HISTORY_LIST_LENGTH')",
    );
    const figures = (rows as { n: string; v: string }[]).map((r) => `${r.n.toLowerCase()}=${r.v}`)
      .join(" ");
    return { figures, hold };
  } catch (err) {
    hold.destroy();
    throw err;
  } finally {
    await conn.end().catch(() => {});
  }
}

/** The agent's lines on `node` that say a start waits for the old server's shutdown. */
function waitedLines(node: string): string[] {
  return agentLines(node, /Waiting for server pid \d+ to finish its shutdown/);
}

/** SIGCONT of `pid`, only while it is still the node's server (a PID may be reused). */
function thaw(node: string, pid: number): void {
  if (mysqldPids(node).includes(pid)) killPid(pid, "SIGCONT");
}

interface RunFigures {
  asyncStop: boolean;
  dirty: string;
  writableMs: number;
  stopActionMs: number | null;
  mysqldExitMs: number;
  rejoinMs: number;
  acked: number;
  lost: number;
}

Deno.test({
  name: "async_stop on the lab: failover time with and without it on the same slow shutdown",
  sanitizeOps: false,
  sanitizeResources: false,
}, async () => {
  await up({ nodes: 3, dataSizeMb: 4096, waitFreeMs: LAB_WAIT_MS });
  const figures: RunFigures[] = [];
  let nextKey = 1;
  try {
    await loadAgent({
      agent: "prm",
      params: {
        async_stop: "false",
        additional_parameters: "--innodb-buffer-pool-size=2G --innodb-max-dirty-pages-pct=90 " +
          "--innodb-max-dirty-pages-pct-lwm=89 --innodb-fast-shutdown=0 " +
          "--innodb-log-file-size=1G --innodb-io-capacity=200",
      },
      timeouts: { stop: 300, start: 300 },
    });
    let master = await converged(180_000);
    await sqlAt(WRITER_VIP, `CREATE TABLE IF NOT EXISTS ${TABLE} (k INT PRIMARY KEY)`);
    for (const asyncStop of [false, true]) {
      if (asyncStop) {
        await exec(master, [
          "crm_resource",
          "-r",
          RSC,
          "--set-parameter",
          "async_stop",
          "--parameter-value",
          "true",
        ], { check: true });
        // async_stop is reloadable: no instance restarts, and the stop that Pacemaker runs next
        // gets the parameters the CIB holds then (Pacemaker chooses which instances reload).
        await waitFor(async () => {
          const out = await exec(master, [
            "crm_resource",
            "-r",
            RSC,
            "--get-parameter",
            "async_stop",
          ]);
          return /\btrue\b/.test(out.stdout) ? true : null;
        }, { timeoutMs: 30_000, what: "async_stop=true in the CIB" });
        master = await converged(300_000);
      }
      const tf = Date.now();
      const { figures: dirty, hold } = await fillDirty(master);
      hold.on("error", () => {});
      console.log(
        `  [async_stop=${asyncStop}] filled ${master} in ${Date.now() - tf} ms: ${dirty}`,
      );
      const [pid] = mysqldPids(master);
      const w = new Writer(nextKey);
      w.start();
      let writableMs = 0;
      let mysqldExitMs = 0;
      let maxPids = 0;
      let stillStopping = false;
      let frozeMs = 0;
      let tr = 0;
      const old = master;
      try {
        await moreAcked(w, 20, { what: "writes before the fault" });
        const t0 = Date.now();
        await standby(old, true);
        const exited = waitFor(() => {
          const pids = mysqldPids(old);
          maxPids = Math.max(maxPids, pids.length);
          return pids.includes(pid) ? null : true;
        }, {
          timeoutMs: 300_000,
          what: `mysqld ${pid} on ${old} gone`,
          intervalMs: 50,
        }).then(() => mysqldExitMs = Date.now() - t0);
        writableMs = await writableElsewhere(old, t0);
        // Bring the node back at once: with async_stop its old mysqld is still shutting down, and
        // the start must wait for it instead of starting a second server on the same datadir.
        // The shutdown is held (SIGSTOP) while the start runs: how soon Pacemaker runs the start
        // is its own affair, and a shutdown that ended first would leave nothing to show. The
        // agent logs through pacemaker-execd, which prints its lines when the action ends, so the
        // hold lasts START_HOLD_MS from the start's process on.
        // (Signalled only while the PID is still the node's mysqld: a PID may be reused.)
        if (asyncStop && mysqldPids(old).includes(pid)) killPid(pid, "SIGSTOP");
        stillStopping = mysqldPids(old).includes(pid);
        tr = Date.now();
        await standby(old, false);
        if (asyncStop && stillStopping) {
          await waitFor(() => agentProcesses(old, "start").length > 0 ? true : null, {
            timeoutMs: 120_000,
            what: `mysql_prm start running on ${old}`,
            intervalMs: 20,
          });
          await sleep(START_HOLD_MS);
          thaw(old, pid);
          frozeMs = Date.now() - tr;
        }
        await exited;
        // A stopped process makes no progress: the hold is not the shutdown's time.
        mysqldExitMs -= frozeMs;
      } finally {
        // Also when anything above failed: nothing is left stopped.
        if (asyncStop) thaw(old, pid);
        hold.destroy();
        nextKey = await w.stop();
      }
      const stopLines = agentLines(old, /stop -> SUCCESS\(0\) in (\d+) ms/);
      const last = stopLines[stopLines.length - 1];
      const stopActionMs = last ? Number(/in (\d+) ms/.exec(last)![1]) : null;
      master = await converged(300_000);
      const rejoinMs = Date.now() - tr;
      const rows = await sql(master, `SELECT k FROM ${TABLE}`);
      const have = new Set(rows.map((r) => Number(r.k)));
      const lost = w.acked.filter((k) => !have.has(k)).length;
      const nodes = await onlineNodes();
      const cmp = await waitFor(async () => {
        const c = await compareData(nodes, [TABLE]);
        return c.equal ? c : null;
      }, { timeoutMs: 60_000, what: `identical ${TABLE} on ${nodes.join(", ")}` });
      assert.ok(cmp.equal);
      assert.equal(lost, 0, "a planned switch loses no acknowledged row");
      assert.equal(maxPids, 1, "never two mysqld on the node while the old one was stopping");
      if (asyncStop && stillStopping) {
        assert.ok(waitedLines(old).length > 0, "the start waited for the stopping server");
      }
      const f: RunFigures = {
        asyncStop,
        dirty,
        writableMs,
        stopActionMs,
        mysqldExitMs,
        rejoinMs,
        acked: w.acked.length,
        lost,
      };
      figures.push(f);
      console.log(
        `  [async_stop=${asyncStop}] ${old} -> ${master}: writable on the VIP after ${writableMs} ms, ` +
          `stop action ${stopActionMs ?? "?"} ms, old mysqld exited after ${mysqldExitMs} ms, ` +
          `rejoined in ${rejoinMs} ms (node back while the old mysqld was ` +
          `${
            stillStopping
              ? `still stopping, held ${frozeMs} ms while the start ran`
              : "already gone"
          }); ${w.acked.length} acked, ${lost} lost, data equal on ${nodes.join(", ")}`,
      );
      for (
        const l of agentLines(old, /async_stop|shutting down|Waiting for server pid/).slice(-3)
      ) {
        console.log(`    ${old}: ${l.slice(0, 220)}`);
      }
    }
    const [sync, asynchronous] = figures;
    console.log(
      `  async_stop saved ${sync.writableMs - asynchronous.writableMs} ms of failover ` +
        `(${sync.writableMs} ms -> ${asynchronous.writableMs} ms); the old mysqld needed ` +
        `${sync.mysqldExitMs} / ${asynchronous.mysqldExitMs} ms to exit`,
    );
    assert.ok(
      asynchronous.stopActionMs !== null && asynchronous.stopActionMs < asynchronous.mysqldExitMs,
      "with async_stop the stop action returns before mysqld exits",
    );
    assert.ok(
      asynchronous.writableMs < sync.writableMs,
      `async_stop failover (${asynchronous.writableMs} ms) faster than without (${sync.writableMs} ms)`,
    );
  } catch (err) {
    await dump().catch(() => {});
    throw err;
  } finally {
    await down();
  }
});
