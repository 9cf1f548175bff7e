/**
 * `mysql_prm status` as installed, run inside a lab node, in the states the agent tests produce:
 * converged; a replica not readable (SQL thread stopped); the master's mysqld killed and the
 * failover that follows; a node powered off. Text and `--json` are both checked.
 *
 * Needs the agent installed (`deno task build && deno task install`).
 */
import assert from "node:assert/strict";
import {
  crmMon,
  down,
  dump,
  exec,
  killMysqld,
  loadAgent,
  powerCut,
  promotedNode,
  replicaStatus,
  sql,
  up,
  waitFor,
} from "./lab.ts";
import type { StatusReport, StatusRow } from "../../status.ts";

const LAB_WAIT_MS = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0");
const RSC = "p_mysql";

async function online(viewer?: string): Promise<string[]> {
  return (await crmMon(viewer)).nodes.filter((n) => n.online).map((n) => n.name).sort();
}

/** One promoted + every other online node replicating from it with both threads. */
async function converged(timeoutMs: number): Promise<string> {
  return await waitFor(async () => {
    const master = await promotedNode(RSC);
    if (master === null) return null;
    for (const n of (await online()).filter((x) => x !== master)) {
      const s = await replicaStatus(n);
      if (s?.Master_Host !== master || s.Slave_IO_Running !== "Yes") return null;
      if (s.Slave_SQL_Running !== "Yes") return null;
    }
    return master;
  }, { timeoutMs, what: "1 promoted + every other node replicating" });
}

/** Runs the installed `mysql_prm status` inside `node`. */
async function status(node: string): Promise<{ report: StatusReport; text: string; ms: number }> {
  const t0 = Date.now();
  const j = await exec(node, ["mysql_prm", "status", "--json"], { timeoutMs: 60_000 });
  const ms = Date.now() - t0;
  assert.equal(j.code, 0, `mysql_prm status --json on ${node}: ${j.stderr}`);
  const t = await exec(node, ["mysql_prm", "status"], { timeoutMs: 60_000 });
  assert.equal(t.code, 0, `mysql_prm status on ${node}: ${t.stderr}`);
  return { report: JSON.parse(j.stdout) as StatusReport, text: t.stdout, ms };
}

function row(report: StatusReport, node: string): StatusRow {
  const r = report.rows.find((x) => x.node === node);
  assert.ok(r, `no row for ${node} in ${JSON.stringify(report.rows.map((x) => x.node))}`);
  return r;
}

Deno.test({
  name: "mysql_prm status on the lab: converged, replica not readable, master killed, node off",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const lab = await up({ nodes: 3, waitFreeMs: LAB_WAIT_MS });
  try {
    let master = "";
    await t.step("converged: every row, header with quorum, fencing and REPL_INFO", async () => {
      await loadAgent({
        agent: "prm",
        readerVips: 2,
        params: { reader_failcount: "1", heartbeat: "true" },
      });
      master = await converged(120_000);
      const replicas = lab.nodes.filter((n) => n !== master);
      // Scores and reader attributes follow at each replica's next monitor.
      const { report, text, ms } = await waitFor(async () => {
        const s = await status(replicas[0]);
        const ok = replicas.every((n) =>
          row(s.report, n).score === 100 && row(s.report, n).readable === "1" &&
          row(s.report, n).lagSource === "heartbeat"
        );
        return ok ? s : null;
      }, { timeoutMs: 30_000, what: "status showing scores 100 and readable replicas" });
      console.log(`  mysql_prm status on ${replicas[0]} (${ms} ms):\n${text}`);
      assert.equal(report.resource, RSC);
      assert.equal(report.clone, "ms_mysql");
      assert.equal(report.cluster.quorum, true);
      assert.equal(report.cluster.stonithEnabled, true);
      assert.ok(report.cluster.fenceDevices.length > 0);
      assert.equal(report.master.host, master);
      assert.match(report.master.file ?? "", /^mysql-bin\.\d+$/);
      assert.equal(report.rows.length, 3);
      const m = row(report, master);
      assert.equal(m.role, "promoted");
      assert.equal(m.readOnly, false);
      assert.match(m.binlog, /^mysql-bin\.\d+:\d+$/);
      assert.equal(m.replication, "");
      assert.equal(m.score, 1000);
      for (const n of replicas) {
        const r = row(report, n);
        assert.equal(r.state, "online");
        assert.equal(r.role, "unpromoted");
        assert.equal(r.readOnly, true);
        assert.equal(r.replication, `${master} io=Yes sql=Yes`);
        assert.ok(r.lag !== undefined && r.lag < 3, `lag ${r.lag}`);
        assert.equal(r.error, "");
      }
      assert.match(text, new RegExp(`Published master \\(${RSC}_REPL_INFO\\): ${master} `));
      for (const n of lab.nodes) assert.match(text, new RegExp(`^${n}\\s+online`, "m"));
    });

    await t.step("a replica with its SQL thread stopped: not readable, no score", async () => {
      const victim = lab.nodes.find((n) => n !== master)!;
      await sql(victim, "STOP SLAVE SQL_THREAD");
      try {
        const { report, text } = await waitFor(async () => {
          const s = await status(master);
          const r = row(s.report, victim);
          return r.readable === "0" && r.score === undefined ? s : null;
        }, { timeoutMs: 30_000, what: `status showing ${victim} unreadable without a score` });
        console.log(`  ${victim} SQL thread stopped:\n${text}`);
        const r = row(report, victim);
        assert.equal(r.replication, `${master} io=Yes sql=No`);
        assert.equal(r.role, "unpromoted");
      } finally {
        await sql(victim, "START SLAVE SQL_THREAD");
      }
      await waitFor(async () => row((await status(master)).report, victim).readable === "1", {
        timeoutMs: 30_000,
        what: `${victim} readable again`,
      });
    });

    await t.step(
      "master mysqld killed: unreachable row, then the failover and the failure",
      async () => {
        const old = master;
        const viewer = lab.nodes.find((n) => n !== old)!;
        await killMysqld(old);
        const t0 = Date.now();
        // Right after the kill, before Pacemaker recovers: a row that says so, not a crash.
        const during = await status(viewer);
        const oldRow = row(during.report, old);
        console.log(`  ${Date.now() - t0} ms after the kill (from ${viewer}):\n${during.text}`);
        const sawDown = oldRow.readOnly === undefined ||
          /unreachable|not running/.test(oldRow.error);
        // Then the recovery: a promoted node, the kill recorded as a failure of the old master.
        const after = await waitFor(async () => {
          const s = await status(viewer);
          const promoted = s.report.rows.filter((r) =>
            r.role === "promoted" && r.readOnly === false
          );
          const failure = /not running|error/.test(row(s.report, old).error);
          return promoted.length === 1 && failure ? s : null;
        }, { timeoutMs: 90_000, what: "status showing a writable promoted node and the failure" });
        console.log(`  after recovery (${Date.now() - t0} ms):\n${after.text}`);
        master = after.report.rows.find((r) => r.role === "promoted")!.node;
        assert.equal(after.report.master.host, master);
        assert.ok(
          sawDown || /not running/.test(row(after.report, old).error),
          `the kill shows: ${JSON.stringify(oldRow)}`,
        );
        master = await converged(120_000);
      },
    );

    await t.step("a node powered off: an offline row, the others still reported", async () => {
      const off = lab.nodes.find((n) => n !== master)!;
      const viewer = lab.nodes.find((n) => n !== master && n !== off)!;
      await powerCut(off);
      const { report, text } = await waitFor(async () => {
        const s = await status(viewer);
        const r = row(s.report, off);
        return r.state !== "online" && /MySQL unreachable/.test(r.error) ? s : null;
      }, { timeoutMs: 60_000, what: `status showing ${off} off` });
      console.log(`  ${off} powered off (from ${viewer}):\n${text}`);
      assert.equal(row(report, off).role, "stopped");
      assert.equal(row(report, off).readOnly, undefined);
      assert.equal(row(report, master).role, "promoted");
      assert.equal(row(report, viewer).readOnly, true);
      assert.match(text, new RegExp(`^${off}\\s+(offline|unclean)`, "m"));
    });
  } catch (e) {
    await dump();
    throw e;
  } finally {
    await down();
  }
});
