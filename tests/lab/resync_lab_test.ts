/**
 * Slave resync and errant transactions with mysql_prm on the lab (position mode): one
 * 4-node lab (real Corosync + Pacemaker + MariaDB, fencing on), scenarios run in order, a writer
 * through the writer VIP during every fault.
 *
 * (a) replicas at three different positions, master power-cut: the most advanced is promoted, the
 *     two behind resync and end with exactly its data;
 * (c) identical transactions (same row, same second) around a replica's last position;
 * (b) a replica 100,000 transactions behind the new master;
 * (d) a replica down (standby) during the switch rejoins later and resyncs at start;
 * (e) the old masters of (a)-(d) come back by themselves (nothing errant), and an old master that
 *     wrote while cut off the network is kept out with a salvage file;
 * (f) a replica whose last transactions the new master no longer has (purged binlogs) is kept
 *     unpromotable and unreadable with an exit reason in crm_mon.
 *
 * Prints, per scenario, the time to a writable master and the time to all replicas consistent.
 * Needs the agent installed (`deno task build && deno task install`).
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import {
  boot,
  compareData,
  credentials,
  crmMon,
  down,
  exec,
  exitReasons,
  heal,
  isolate,
  loadAgent,
  moreAcked,
  nodeRunning,
  powerCut,
  promotedNode,
  replicaStatus,
  sql,
  sqlAt,
  up,
  waitFor,
  WRITER_VIP,
} from "./lab.ts";

const RSC = "p_mysql";
const TABLES = ["test.acked", "test.same", "test.bulk"];
/** How long to wait for a lab of someone else to go down (PRM_LAB_WAIT_MS, default 0). */
import {
  agentLines,
  checkSalvage,
  errantReason,
  rejoinedOrKeptOut,
  repair,
  repairKeptOut,
} from "./scenario.ts";

const LAB_WAIT_MS = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0");

/** Writes one row per transaction through the writer VIP; remembers what was acknowledged. */
class Writer {
  acked: number[] = [];
  refused = 0;
  #next: number;
  #stop = false;
  #done?: Promise<void>;

  constructor(first: number, readonly tag: string) {
    this.#next = first;
  }

  start(): this {
    this.#done = (async () => {
      while (!this.#stop) {
        const k = this.#next++;
        try {
          await sqlAt(WRITER_VIP, "INSERT INTO test.acked (k, tag) VALUES (?, ?)", {
            params: [k, this.tag],
            timeoutMs: 2_000,
          });
          this.acked.push(k);
        } catch {
          this.refused++;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    })();
    return this;
  }

  async stop(): Promise<number> {
    this.#stop = true;
    await this.#done;
    return this.#next + 1;
  }
}

let nextKey = 1;
/** A node not to ask for the cluster's view (cut off the network, so its view is stale). */
let avoid = "";
/** Old masters a DBA repaired by hand (their resync context starts at the repair). */
const repaired = new Set<string>();
let allNodes: string[] = [];

function viewer(): string | undefined {
  return allNodes.find((n) => n !== avoid && nodeRunning(n));
}

async function withWriter<T>(tag: string, fn: (w: Writer) => Promise<T>): Promise<[T, Writer]> {
  const w = new Writer(nextKey, tag).start();
  try {
    await moreAcked(w, 20, { timeoutMs: 30_000, what: "writes before" });
    return [await fn(w), w];
  } finally {
    nextKey = await w.stop();
  }
}

async function online(): Promise<string[]> {
  return (await crmMon(viewer())).nodes.filter((n) => n.online).map((n) => n.name).sort();
}

/** The master when it is promoted and writable and each of `replicas` replicates from it. */
async function isConverged(replicas: string[]): Promise<string | null> {
  const master = await promotedNode(RSC, viewer());
  if (master === null) return null;
  const [ro] = await sql(master, "SELECT @@global.read_only AS ro", { timeoutMs: 2_000 });
  if (Number(ro.ro) !== 0) return null;
  for (const n of replicas.filter((x) => x !== master)) {
    const s = await replicaStatus(n);
    if (s === null || s.Master_Host !== master) return null;
    if (s.Slave_IO_Running !== "Yes" || s.Slave_SQL_Running !== "Yes") return null;
  }
  return master;
}

/** Waits until a master is promoted and writable, and each of `replicas` replicates from it. */
async function converged(replicas: string[], timeoutMs = 120_000): Promise<string> {
  return await waitFor(() => isConverged(replicas), {
    timeoutMs,
    what: `a master and ${replicas.join(", ")} replicating from it`,
    onTimeout: () => diagnose(replicas),
  });
}

async function writableAgain(old: string, t0: number): Promise<number> {
  await waitFor(async () => {
    const [r] = await sqlAt(WRITER_VIP, "SELECT @@hostname AS h, @@global.read_only AS ro", {
      timeoutMs: 1_000,
    });
    return r && Number(r.ro) === 0 && r.h !== old;
  }, { timeoutMs: 120_000, what: "a writable master behind the writer VIP", intervalMs: 100 });
  return Date.now() - t0;
}

/** Waits until every node in `nodes` holds the same data as the master; returns the ms waited. */
async function consistent(nodes: string[], w: Writer | undefined, what: string): Promise<void> {
  const master = await promotedNode(RSC, viewer());
  assert.ok(master, "a master");
  await waitFor(async () => (await compareData(nodes, TABLES)).equal || null, {
    timeoutMs: 90_000,
    what: `identical ${TABLES.join(", ")} on ${nodes.join(", ")}`,
    onTimeout: () => diagnose(nodes),
  });
  if (w !== undefined) {
    const have = new Set((await sql(master, "SELECT k FROM test.acked")).map((r) => Number(r.k)));
    const lost = w.acked.filter((k) => !have.has(k));
    console.log(
      `  ${what}: ${w.acked.length} writes acknowledged during the fault, ${w.refused} refused, ` +
        `${lost.length} acknowledged lost (asynchronous replication)`,
    );
  }
}

async function diagnose(nodes: string[]): Promise<void> {
  for (const n of nodes) {
    const s = await replicaStatus(n).catch((e) => ({ error: String(e) }));
    console.log(`--- ${n}: ${JSON.stringify(s)}`);
    const c = await sql(
      n,
      "SELECT COUNT(*) AS a, (SELECT COUNT(*) FROM test.same) AS s, " +
        "(SELECT COUNT(*) FROM test.bulk) AS b FROM test.acked",
    ).catch((e) => String(e));
    console.log(`    counts ${JSON.stringify(c)}`);
    console.log(
      agentLines(n, /Resync|resync|Errant|Replicating from|Kept out/).slice(-8).join("\n"),
    );
  }
  const mon = await crmMon(viewer()).catch(() => undefined);
  console.log(mon?.xml.split("\n").filter((l) => /failure|role=|<node /.test(l)).join("\n"));
}

async function score(node: string): Promise<string> {
  const r = await exec(node, ["crm_attribute", `--promotion=${RSC}`, "-G", "-q", "-N", node]);
  return r.code === 0 ? r.stdout.trim() : "none";
}

async function masterPos(node: string): Promise<{ file: string; pos: number }> {
  const [r] = await sql(node, "SHOW MASTER STATUS");
  return { file: String(r.File), pos: Number(r.Position) };
}

/** Waits until `replica` has received everything `master` logged so far. */
async function received(replica: string, master: string): Promise<void> {
  const t = await masterPos(master);
  await waitFor(async () => {
    const s = await replicaStatus(replica);
    return s?.Master_Log_File === t.file && Number(s.Read_Master_Log_Pos) >= t.pos;
  }, { timeoutMs: 60_000, what: `${replica} to receive ${t.file}:${t.pos}` });
}

/** The newest "Resync in N ms" line of a node since `mark` lines. */
function resyncLine(node: string, mark: number): string | undefined {
  return agentLines(node, /Resync in \d+ ms/).slice(mark).pop();
}

/** The resync line `node` logged since `mark`; fails with what the agent logged instead. */
function resynced(node: string, mark: number, what: string): string {
  const line = resyncLine(node, mark);
  const seen = () =>
    agentLines(node, /Resync|resync|Replicating from|history|Operator set|Already a replica/)
      .slice(-12).join("\n");
  assert.ok(line, `${node} logged its resync ${what}; its agent logged:\n${seen()}`);
  return line;
}

function resyncMark(node: string): number {
  return agentLines(node, /Resync in \d+ ms/).length;
}

async function readable(node: string): Promise<string | undefined> {
  return (await crmMon(viewer())).nodes.find((n) => n.name === node)?.attributes.readable;
}

/**
 * Boots a power-cut old master and waits until it either replicates again by itself, or is kept
 * out for errant transactions (a transaction it committed and never sent before the cut): then
 * its salvage file is checked and the node repaired the documented way.
 */
async function bootAndRejoin(old: string, replicas: string[], report: string[], what: string) {
  const t0 = Date.now();
  await boot(old);
  const reason = await rejoinedOrKeptOut(
    old,
    async () => (await isConverged([...replicas, old])) !== null,
    { viewer, onTimeout: () => diagnose([old]) },
  );
  if (reason === "") {
    report.push(`${what}: old master ${old} rejoined by itself ${Date.now() - t0} ms after boot`);
    return;
  }
  const master = await converged(replicas);
  const t1 = Date.now();
  const salvage = await repairKeptOut(old, reason, master);
  repaired.add(old);
  await converged([...replicas, old]);
  report.push(
    `${what}: old master ${old} kept out ${t1 - t0} ms after boot: ${reason}; ` +
      `rows ${salvage.keys.join(",")} (unacknowledged, committed before the cut); repaired and ` +
      `rejoined ${Date.now() - t1} ms after the DBA's fix`,
  );
}

Deno.test({
  name: "mysql_prm resync on the lab: positions, identical runs, 100k behind, down replica, errant",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const lab = await up({ nodes: 4, waitFreeMs: LAB_WAIT_MS });
  allNodes = lab.nodes;
  const report: string[] = [];
  try {
    let master = "";
    await t.step("converge; tables", async () => {
      await loadAgent({ agent: "prm", params: { reader_failcount: "1" } });
      master = await converged(lab.nodes);
      await sqlAt(
        WRITER_VIP,
        "CREATE TABLE test.acked (k INT PRIMARY KEY, tag VARCHAR(32), " +
          "at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
      );
      // No key: the same row inserted in the same second is an identical transaction.
      await sqlAt(WRITER_VIP, "CREATE TABLE test.same (v INT) ENGINE=InnoDB");
      await sqlAt(
        WRITER_VIP,
        "CREATE TABLE test.bulk (id INT AUTO_INCREMENT PRIMARY KEY, v INT) ENGINE=InnoDB",
      );
      await sqlAt(
        WRITER_VIP,
        "CREATE PROCEDURE test.fill(n INT) BEGIN DECLARE i INT DEFAULT 0; " +
          "WHILE i < n DO INSERT INTO test.bulk (v) VALUES (i); SET i = i + 1; END WHILE; END",
      );
      await waitFor(async () => {
        for (const n of lab.nodes) if ((await score(n)) !== (n === master ? "1000" : "100")) return;
        return true;
      }, { timeoutMs: 30_000, what: "scores 1000/100" });
      console.log(`  master ${master}, lab up in ${lab.bringUpMs} ms`);
      // What the new master publishes for resync: the existing REPL_INFO, nothing more.
      const nv = (await exec(master, [
        "cibadmin",
        "-Q",
        "--xpath",
        `//nvpair[@name='${RSC}_REPL_INFO']`,
      ], { check: true })).stdout.trim();
      const value = /value="([^"]*)"/.exec(nv)?.[1] ?? "";
      const t0 = performance.now();
      for (let i = 0; i < 5; i++) {
        await exec(master, [
          "crm_attribute",
          "-t",
          "crm_config",
          "-s",
          "mysql_replication",
          "-n",
          `${RSC}_REPL_INFO`,
          "-v",
          value,
        ], { check: true });
      }
      report.push(
        `publish: REPL_INFO value ${value.length} bytes (CIB element ${nv.length} bytes), ` +
          `crm_attribute write ${((performance.now() - t0) / 5).toFixed(0)} ms on average`,
      );
    });

    await t.step("(a) replicas at three positions, master power-cut", async () => {
      const [r1, r2, r3] = lab.nodes.filter((n) => n !== master);
      const marks = { [r1]: resyncMark(r1), [r2]: resyncMark(r2) };
      const old = master;
      let writableMs = 0;
      const t0 = { at: 0 };
      const [, w] = await withWriter("a", async (w) => {
        await sql(r1, "STOP SLAVE IO_THREAD");
        const n1 = w.acked.length;
        await waitFor(() => w.acked.length >= n1 + 150, { timeoutMs: 30_000, what: "150 more" });
        await sql(r2, "STOP SLAVE IO_THREAD");
        const n2 = w.acked.length;
        await waitFor(() => w.acked.length >= n2 + 150, { timeoutMs: 30_000, what: "150 more" });
        t0.at = Date.now();
        await powerCut(old);
        writableMs = await writableAgain(old, t0.at);
      });
      master = await converged([r1, r2, r3]);
      assert.equal(master, r3, "the most advanced replica is promoted");
      await consistent([r1, r2, r3], w, "(a)");
      const consistentMs = Date.now() - t0.at;
      for (const r of [r1, r2]) {
        const line = resynced(r, marks[r], "");
        console.log(`  ${r}: ${line.replace(/^.*Resync/, "Resync")}`);
      }
      report.push(
        `(a) writable ${writableMs} ms after the power cut, all replicas consistent after ` +
          `${consistentMs} ms; promoted ${master} (most advanced), ${r1} and ${r2} resynced`,
      );
      await bootAndRejoin(old, [r1, r2, r3], report, "(e) after (a)");
      await consistent(lab.nodes, undefined, "(a) after the old master rejoined");
    });

    await t.step("(c) identical transactions around a replica's last position", async () => {
      // Inside a block of identical transactions only older context tells positions apart: x
      // must not be a node repaired by hand lately, whose history starts at the repair (it
      // would rightly be refused as ambiguous).
      const candidates = lab.nodes.filter((n) => n !== master);
      const [x, y] = [
        ...candidates.filter((n) => !repaired.has(n)),
        ...candidates.filter((n) => repaired.has(n)),
      ];
      const mark = resyncMark(x);
      const admin = credentials().admin;
      const conn = await mysql.createConnection({
        host: WRITER_VIP,
        user: admin.user,
        password: admin.password,
      });
      try {
        await conn.query(`SET TIMESTAMP = ${Math.floor(Date.now() / 1000)}`);
        for (let i = 0; i < 15; i++) await conn.query("INSERT INTO test.same VALUES (1)");
        await received(x, master);
        await sql(x, "STOP SLAVE IO_THREAD");
        for (let i = 0; i < 15; i++) await conn.query("INSERT INTO test.same VALUES (1)");
        await received(y, master);
      } finally {
        await conn.end();
      }
      const old = master;
      const t0 = { at: 0 };
      let writableMs = 0;
      const [, w] = await withWriter("c", async () => {
        t0.at = Date.now();
        await powerCut(old);
        writableMs = await writableAgain(old, t0.at);
      });
      const others = lab.nodes.filter((n) => n !== old);
      master = await converged(others);
      await consistent(others, w, "(c)");
      const consistentMs = Date.now() - t0.at;
      const [same] = await sql(x, "SELECT COUNT(*) AS n FROM test.same");
      assert.equal(Number(same.n), 30, `${x} holds all 30 identical rows, no more, no less`);
      const line = resynced(x, mark, "");
      console.log(`  ${x}: ${line.replace(/^.*Resync/, "Resync")}`);
      report.push(
        `(c) writable ${writableMs} ms, consistent ${consistentMs} ms; ${x} stopped after 15 of ` +
          `30 identical transactions and resynced to exactly 30 rows`,
      );
      await bootAndRejoin(old, others, report, "(e) after (c)");
    });

    await t.step("(b) a replica 100,000 transactions behind", async () => {
      const [x] = lab.nodes.filter((n) => n !== master);
      const mark = resyncMark(x);
      await sql(x, "STOP SLAVE IO_THREAD");
      const g0 = Date.now();
      await sqlAt(WRITER_VIP, "CALL test.fill(100000)", { timeoutMs: 300_000 });
      const genMs = Date.now() - g0;
      const others = lab.nodes.filter((n) => n !== master && n !== x);
      for (const o of others) await received(o, master);
      const old = master;
      const t0 = { at: 0 };
      let writableMs = 0;
      const [, w] = await withWriter("b", async () => {
        t0.at = Date.now();
        await powerCut(old);
        writableMs = await writableAgain(old, t0.at);
      });
      const live = lab.nodes.filter((n) => n !== old);
      master = await converged(live);
      await consistent(live, w, "(b)");
      const consistentMs = Date.now() - t0.at;
      const line = resynced(x, mark, "");
      console.log(`  ${x}: ${line.replace(/^.*Resync/, "Resync")}`);
      report.push(
        `(b) 100,000 transactions written in ${genMs} ms while ${x} was cut off; writable ` +
          `${writableMs} ms, all consistent ${consistentMs} ms; ${x}: ` +
          line.replace(/^.*Resync in/, "resync in").slice(0, 220),
      );
      await bootAndRejoin(old, live, report, "(e) after (b)");
    });

    await t.step("(d) a replica down during the switch resyncs when it comes back", async () => {
      const [z] = lab.nodes.filter((n) => n !== master);
      const mark = resyncMark(z);
      await exec(z, ["crm_attribute", "-N", z, "-n", "standby", "-v", "on"], { check: true });
      await waitFor(async () => (await replicaStatus(z).catch(() => "down")) === "down", {
        timeoutMs: 60_000,
        what: `${z}'s mysqld stopped (standby)`,
        intervalMs: 500,
      });
      const old = master;
      const t0 = { at: 0 };
      let writableMs = 0;
      const [, w] = await withWriter("d", async (w) => {
        const n = w.acked.length;
        await waitFor(() => w.acked.length >= n + 100, { timeoutMs: 30_000, what: "100 more" });
        t0.at = Date.now();
        await powerCut(old);
        writableMs = await writableAgain(old, t0.at);
      });
      const live = lab.nodes.filter((n) => n !== old && n !== z);
      master = await converged(live);
      const tz = Date.now();
      await exec(master, ["crm_attribute", "-N", z, "-n", "standby", "-v", "off"], { check: true });
      await converged([...live, z]);
      await consistent([...live, z], w, "(d)");
      // The data check above proves the resync (published coordinates would have skipped the
      // writes z missed); the line is evidence of how, when Pacemaker logged it.
      const line = resyncLine(z, mark);
      console.log(
        line
          ? `  ${z}: ${line.replace(/^.*Resync/, "Resync")}`
          : `  ${z}: no resync line in its log; its agent logged:\n` +
            agentLines(z, /Resync|resync|Replicating from|history|Already a replica/)
              .slice(-12).join("\n"),
      );
      report.push(
        `(d) writable ${writableMs} ms; ${z} (standby during the switch) consistent ` +
          `${Date.now() - tz} ms after it was brought back`,
      );
      await bootAndRejoin(old, [...live, z], report, "(e) after (d)");
    });

    await t.step(
      "(e) an old master with errant transactions is kept out, salvage written",
      async () => {
        const old = master;
        const t0 = { at: 0 };
        let writableMs = 0;
        const [, w] = await withWriter("e", async () => {
          t0.at = Date.now();
          avoid = old;
          await isolate(old);
          // Written locally while cut off: nobody else ever receives these.
          for (let i = 1; i <= 3; i++) {
            await exec(old, [
              "mariadb",
              "-e",
              `INSERT INTO test.acked (k, tag) VALUES (${-i}, 'errant-${i}')`,
            ], { check: true });
          }
          writableMs = await writableAgain(old, t0.at);
        });
        const live = lab.nodes.filter((n) => n !== old);
        master = await converged(live);
        await consistent(live, w, "(e)");
        await waitFor(async () => !(await online()).includes(old) || null, {
          timeoutMs: 60_000,
          what: `${old} fenced`,
        });
        await heal(old);
        avoid = "";
        const tb = Date.now();
        await boot(old);
        const reason = await waitFor(() => errantReason(old, viewer()), {
          timeoutMs: 120_000,
          what: `an errant-transactions exit reason for ${old} in crm_mon`,
        });
        const keptMs = Date.now() - tb;
        console.log(`  crm_mon exit reason on ${old}: ${reason}`);
        const file = /saved in (\S+)/.exec(reason)?.[1];
        assert.ok(file, "the exit reason names the salvage file");
        const salvage = await checkSalvage(old, file!, master);
        for (let i = 1; i <= 3; i++) {
          assert.match(salvage.text, new RegExp(`'errant-${i}'`));
          assert.ok(salvage.keys.includes(-i), `row ${-i} listed`);
        }
        assert.notEqual(await promotedNode(RSC, viewer()), old);
        assert.equal(await score(old), "none");
        assert.notEqual(await readable(old), "1");
        console.log(salvage.text.split("\n").slice(0, 14).join("\n"));
        // The person acts: rows saved elsewhere and removed here, resume point from the file.
        const t1 = Date.now();
        await repair(old, salvage.keys, salvage.resume);
        repaired.add(old);
        await converged(lab.nodes);
        await consistent(lab.nodes, undefined, "(e) after the repair");
        const marked = agentLines(old, /history for resync starts at/).pop();
        assert.ok(marked, `${old} marks where its binary log history starts again`);
        console.log(`  ${old}: ${marked.replace(/^.*Own binary/, "Own binary")}`);
        report.push(
          `(e) errant old master ${old}: writable elsewhere ${writableMs} ms after the network ` +
            `cut; kept out ${keptMs} ms after boot (exit reason "${reason}"); salvage lists ` +
            `${salvage.keys.length} transaction(s) (rows ${salvage.keys.join(",")}); after the ` +
            `documented fix (resume ${salvage.resume} + cleanup) consistent in ${
              Date.now() - t1
            } ms`,
        );
      },
    );

    await t.step("(f) an unfindable last transaction: unpromotable, exit reason", async () => {
      // u must hold transactions to look up: a node repaired by hand lately may hold none since
      // the repair (refused too, but for that reason: tests/resync_agent_test.ts).
      const candidates = lab.nodes.filter((n) => n !== master);
      const [u, p, v] = [
        ...candidates.filter((n) => !repaired.has(n)),
        ...candidates.filter((n) => repaired.has(n)),
      ];
      await sql(u, "STOP SLAVE IO_THREAD");
      await sqlAt(WRITER_VIP, "INSERT INTO test.acked (k, tag) VALUES (?, 'f')", {
        params: [nextKey++],
      });
      // The possible new masters keep no binlog from before this point.
      for (const n of [p, v]) {
        await received(n, master);
        await sql(n, "FLUSH BINARY LOGS");
        const [{ File: current }] = await sql(n, "SHOW MASTER STATUS");
        // A dump thread left from when it was a master keeps its file from being purged.
        await waitFor(async () => {
          const dumps = await sql(
            n,
            "SELECT ID AS id FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
          );
          for (const d of dumps) await sql(n, `KILL ${Number(d.id)}`).catch(() => {});
          await sql(n, `PURGE BINARY LOGS TO '${current}'`);
          return (await sql(n, "SHOW BINARY LOGS")).length === 1 || null;
        }, { timeoutMs: 30_000, what: `${n}'s older binlogs purged` });
      }
      const old = master;
      const t0 = { at: 0 };
      const [, w] = await withWriter("f", async () => {
        t0.at = Date.now();
        await powerCut(old);
        await writableAgain(old, t0.at);
      });
      master = await converged([p, v]);
      const reason = await waitFor(async () => {
        return (await exitReasons(u, { resource: RSC, viewer: viewer() })).find((x) =>
          /^Resync refused/.test(x)
        );
      }, { timeoutMs: 90_000, what: `a resync exit reason for ${u} in crm_mon` });
      const refusedMs = Date.now() - t0.at;
      console.log(`  crm_mon exit reason on ${u}: ${reason}`);
      assert.equal(await score(u), "none");
      assert.notEqual(await readable(u), "1");
      const s = await replicaStatus(u).catch(() => null);
      assert.ok(s === null || s.Master_Host !== master, `${u} was not pointed at ${master}`);
      await consistent([p, v], w, "(f)");
      report.push(
        `(f) ${u} kept out ${refusedMs} ms after the power cut: "${reason}"; ${master} promoted`,
      );
    });
  } finally {
    console.log(report.map((l) => `  ${l}`).join("\n"));
    await down();
  }
});
