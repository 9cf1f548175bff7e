/**
 * Day-to-day operation on the lab (real Corosync + Pacemaker + MariaDB, fencing on), one lab
 * bring-up for every scenario, run in order:
 *
 * 1. "Why not promotable": a replica's SQL thread stopped shows as `sql-broken` in crm_mon -A,
 *    in `mysql_prm status --format json`, and in the metrics, which promtool accepts.
 * 2. Switchover, side by side in the same run, alternating: a bare `crm_resource --move
 *    --promoted` and `mysql_prm switchover`, each with a writer through the writer VIP: the
 *    longest gap between two acknowledged writes, acknowledged rows missing on the new master,
 *    the time until every replica follows; the command's own timeline.
 * 3. reload-agent: changing a reloadable parameter restarts no mysqld.
 * 4. Maintenance (Pacemaker CTS's MaintenanceMode, resource-agents #859): with maintenance-mode
 *    on, a replica's mysqld killed, another replica detached by hand and the master's promotion
 *    score deleted, then a re-probe: nothing is restarted or repointed. Leaving it: the master
 *    keeps its role (same mysqld, never demoted), its score is back, the killed replica is
 *    recovered, the detached one follows again. Then is-managed=false on the clone: the recurring
 *    monitors go on but repoint nothing until it is managed again.
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
  moreAcked,
  mysqldPids,
  promotedNode,
  replicaStatus,
  run,
  sql,
  sqlAt,
  up,
  waitFor,
  WRITER_VIP,
} from "./lab.ts";
import { agentLines, TABLE, Writer } from "./scenario.ts";
import { pacemakerLogSince } from "./failover.ts";
import type { StatusReport } from "../../status.ts";
import type { SwitchoverResult } from "../../switchover.ts";

const LAB_WAIT_MS = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0");
const RSC = "p_mysql";
const CLONE = "ms_mysql";

async function online(): Promise<string[]> {
  return (await crmMon()).nodes.filter((n) => n.online).map((n) => n.name).sort();
}

/** Every replica of `master` with both threads running (node → true). */
async function following(master: string, nodes: string[]): Promise<boolean> {
  for (const n of nodes.filter((x) => x !== master)) {
    const s = await replicaStatus(n).catch(() => null);
    if (s?.Master_Host !== master || s.Slave_IO_Running !== "Yes") return false;
    if (s.Slave_SQL_Running !== "Yes") return false;
  }
  return true;
}

/** One promoted, writable node and every other online node replicating from it. */
async function converged(timeoutMs = 120_000): Promise<string> {
  return await waitFor(async () => {
    const master = await promotedNode(RSC);
    if (master === null) return null;
    const [ro] = await sql(master, "SELECT @@global.read_only AS ro", { timeoutMs: 2_000 });
    if (Number(ro.ro) !== 0) return null;
    return (await following(master, await online())) ? master : null;
  }, { timeoutMs, what: "1 promoted + every other node replicating from it" });
}

async function attr(node: string, name: string): Promise<string | undefined> {
  return (await crmMon()).nodes.find((n) => n.name === node)?.attributes[name];
}

interface SwitchFigures {
  how: "crm_resource --move" | "mysql_prm switchover";
  from: string;
  to: string;
  /** Longest gap between acknowledged writes through the writer VIP (ms). */
  blockedMs: number;
  /** Acknowledged rows missing on the new master. */
  lost: number;
  /** Move requested → every replica follows the new master (ms). */
  followMs: number;
  acked: number;
  detail?: SwitchoverResult;
}

let nextKey = 1;

async function switchOnce(how: SwitchFigures["how"], master: string): Promise<SwitchFigures> {
  const nodes = await online();
  const target = nodes.find((n) => n !== master)!;
  const w = new Writer(nextKey).start();
  await moreAcked(w, 30, { what: "writes before" });
  const t0 = Date.now();
  let detail: SwitchoverResult | undefined;
  if (how === "crm_resource --move") {
    await exec(master, ["crm_resource", "--move", "--promoted", "-r", CLONE, "-N", target], {
      check: true,
    });
  } else {
    const r = await exec(master, ["mysql_prm", "switchover", "--to", target, "--json"], {
      timeoutMs: 180_000,
    });
    assert.equal(r.code, 0, `mysql_prm switchover: ${r.stdout}\n${r.stderr}`);
    detail = JSON.parse(r.stdout) as SwitchoverResult;
  }
  await waitFor(async () => {
    const rows = await sqlAt(WRITER_VIP, "SELECT @@hostname AS h, @@global.read_only AS ro", {
      timeoutMs: 1_000,
    });
    return rows[0]?.h === target && Number(rows[0].ro) === 0;
  }, { timeoutMs: 90_000, what: `${target} writable behind the writer VIP`, intervalMs: 50 });
  await waitFor(() => following(target, nodes), {
    timeoutMs: 90_000,
    what: `every node following ${target}`,
    intervalMs: 50,
  });
  const followMs = Date.now() - t0;
  // Writes after the switch too, so that the gap is closed by a write on the new master.
  await moreAcked(w, 20, { what: "writes after" });
  nextKey = await w.stop();
  if (how === "crm_resource --move") {
    await exec(target, ["crm_resource", "--clear", "-r", CLONE], { check: true });
  }
  assert.equal(await converged(), target);
  const have = new Set(
    (await sql(target, `SELECT k FROM ${TABLE}`)).map((r) => Number(r.k)),
  );
  const lost = w.acked.filter((k) => !have.has(k)).length;
  await waitFor(async () => {
    const sums = new Set<string>();
    for (const n of nodes) {
      const [c] = await sql(n, `CHECKSUM TABLE ${TABLE}`);
      sums.add(String(c.Checksum));
    }
    return sums.size === 1;
  }, { timeoutMs: 30_000, what: `identical ${TABLE} everywhere` });
  return {
    how,
    from: master,
    to: target,
    blockedMs: w.longestGap(t0),
    lost,
    followMs,
    acked: w.acked.length,
    detail,
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

Deno.test({
  name: "operations on the lab: why not promotable, switchover, reload-agent, maintenance",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const tAll = Date.now();
  const lab = await up({ nodes: 3, waitFreeMs: LAB_WAIT_MS });
  console.log(`  lab up in ${lab.bringUpMs} ms`);
  try {
    await loadAgent({ agent: "prm", readerVips: 2, params: { max_slave_lag: "15" } });
    let master = await converged();
    await sqlAt(WRITER_VIP, `CREATE TABLE IF NOT EXISTS ${TABLE} (k INT PRIMARY KEY)`);
    const notProm = `prm-${RSC}-not-promotable`;

    await t.step("why not promotable: crm_mon -A, status --format json, metrics", async () => {
      const replica = (await online()).find((n) => n !== master)!;
      await sql(replica, "STOP SLAVE SQL_THREAD");
      await waitFor(async () => (await attr(replica, notProm)) === "sql-broken", {
        timeoutMs: 30_000,
        what: `${replica}: ${notProm}=sql-broken in crm_mon -A`,
      });
      const j = await exec(master, ["mysql_prm", "status", "--format", "json"], {
        timeoutMs: 60_000,
      });
      assert.equal(j.code, 0, j.stderr);
      const report = JSON.parse(j.stdout) as StatusReport;
      const row = report.rows.find((r) => r.node === replica)!;
      assert.equal(row.notPromotable, "sql-broken");
      assert.equal(row.score, undefined, "no score while not promotable");
      const text = await exec(master, ["mysql_prm", "status"], { timeoutMs: 60_000 });
      console.log(text.stdout);
      const m = await exec(master, ["mysql_prm", "status", "--format", "prometheus"], {
        timeoutMs: 60_000,
      });
      assert.equal(m.code, 0, m.stderr);
      assert.match(
        m.stdout,
        new RegExp(
          `mysql_prm_not_promotable\\{resource="${RSC}",node="${replica}",reason="sql-broken"\\} 1`,
        ),
      );
      const check = await run(["promtool", "check", "metrics"], { stdin: m.stdout });
      assert.equal(check.code, 0, check.stdout + check.stderr);
      await sql(replica, "START SLAVE SQL_THREAD");
      await waitFor(async () => (await attr(replica, notProm)) === undefined, {
        timeoutMs: 30_000,
        what: `${replica}: ${notProm} gone`,
      });
    });

    await t.step("switchover: bare crm_resource --move and mysql_prm switchover", async () => {
      const runs: SwitchFigures[] = [];
      for (const how of ["crm_resource --move", "mysql_prm switchover"] as const) {
        for (let i = 0; i < 2; i++) {
          const f = await switchOnce(how, master);
          master = f.to;
          runs.push(f);
          console.log(
            `  ${f.how}: ${f.from} -> ${f.to}: writes blocked ${f.blockedMs} ms, ${f.lost} of ${f.acked} acknowledged rows lost, every replica following after ${f.followMs} ms`,
          );
          if (f.detail) {
            for (const e of f.detail.timeline) {
              console.log(`      +${(e.atMs / 1000).toFixed(3)} s  ${e.what}`);
            }
            console.log(
              `      blocked at the database ${f.detail.blockedAtDatabaseMs} ms, through the VIP ${
                JSON.stringify(f.detail.blockedAtVipMs)
              }`,
            );
          }
        }
      }
      for (const how of ["crm_resource --move", "mysql_prm switchover"]) {
        const r = runs.filter((x) => x.how === how);
        console.log(
          `  ${how}: median writes blocked ${
            median(r.map((x) => x.blockedMs))
          } ms, median replicas following ${median(r.map((x) => x.followMs))} ms, rows lost ${
            r.reduce((a, x) => a + x.lost, 0)
          }`,
        );
      }
      assert.deepEqual(runs.map((r) => r.lost), runs.map(() => 0), "no acknowledged row lost");
      for (const r of runs.filter((x) => x.detail)) assert.equal(r.detail!.ok, true);
      // The command refuses what it must: the master as target, a pending move.
      const self = await exec(master, ["mysql_prm", "switchover", "--to", master], {
        timeoutMs: 60_000,
      });
      assert.equal(self.code, 3, self.stdout + self.stderr);
      assert.match(self.stdout, /target-is-master/);
    });

    await t.step("reload-agent: a reloadable parameter changes without a restart", async () => {
      const nodes = await online();
      const before = Object.fromEntries(nodes.map((n) => [n, mysqldPids(n).join(",")]));
      const since = Date.now();
      await exec(master, ["crm_resource", "-r", RSC, "-p", "max_slave_lag", "-v", "20"], {
        check: true,
      });
      const reloaded = (n: string) =>
        pacemakerLogSince(n, since - 1_000).some((l) =>
          l.includes(`Result of reload-agent operation for ${RSC} on ${n}: ok`)
        );
      // Pacemaker decides which instances reload (in one run an instance demoted earlier by a
      // switchover got none); none may be restarted, and at least one must reload.
      await waitFor(() => nodes.some(reloaded), {
        timeoutMs: 60_000,
        what: "reload-agent done on a node",
      });
      await converged();
      const after = Object.fromEntries(nodes.map((n) => [n, mysqldPids(n).join(",")]));
      assert.deepEqual(after, before, "no mysqld restarted");
      console.log(
        `  reload-agent ran on ${nodes.filter(reloaded).join(", ")} within ${
          Date.now() - since
        } ms; no mysqld restarted`,
      );
    });

    await t.step("maintenance-mode: nothing restarted or repointed; the truth after", async () => {
      const [victim, detached] = (await online()).filter((n) => n !== master);
      const masterPid = mysqldPids(master).join(",");
      const t0 = Date.now();
      await exec(master, [
        "crm_attribute",
        "-t",
        "crm_config",
        "-n",
        "maintenance-mode",
        "-v",
        "true",
      ], {
        check: true,
      });
      await waitFor(
        async () => /maintenance-mode="true"/.test((await crmMon()).xml),
        { timeoutMs: 30_000, what: "maintenance-mode on" },
      );
      await killMysqld(victim);
      await sql(detached, "STOP SLAVE");
      await sql(detached, "RESET SLAVE ALL");
      // #859: the master's score gone (as when its node's attributes are wiped).
      await exec(master, ["crm_attribute", `--promotion=${RSC}`, "-D", "-N", master], {
        check: true,
      });
      // A re-probe during maintenance: the agent's probes run, and change nothing.
      const refrained = agentLines(detached, /Not following .*maintenance-mode/).length;
      await exec(master, ["crm_resource", "--refresh", "-r", CLONE], { check: true });
      await waitFor(
        () => agentLines(detached, /Not following .*maintenance-mode/).length > refrained,
        { timeoutMs: 60_000, what: `${detached}'s probe leaving replication alone` },
      );
      assert.equal(mysqldPids(victim).length, 0, `${victim}'s mysqld was not restarted`);
      assert.equal(await replicaStatus(detached), null, `${detached} was not repointed`);
      assert.equal(mysqldPids(master).join(","), masterPid);
      // Leaving it: the truth is found.
      await exec(master, [
        "crm_attribute",
        "-t",
        "crm_config",
        "-n",
        "maintenance-mode",
        "-v",
        "false",
      ], {
        check: true,
      });
      const back = await converged(180_000);
      assert.equal(back, master, "the master keeps its role");
      assert.equal(mysqldPids(master).join(","), masterPid, "the master's mysqld never restarted");
      await waitFor(async () => (await attr(master, `master-${RSC}`)) === "1000", {
        timeoutMs: 30_000,
        what: "the master's score back",
      });
      const demotes = pacemakerLogSince(master, t0).filter((l) =>
        new RegExp(`Result of (demote|stop) operation for ${RSC} on ${master}`).test(l)
      );
      assert.deepEqual(demotes, [], "the master was never demoted or stopped");
      assert.deepEqual(await sql(victim, "SELECT 1 AS one"), [{ one: 1 }]);
      console.log(
        `  maintenance: ${victim} recovered and ${detached} following again ${
          Date.now() - t0
        } ms after it began; master ${master} kept (pid ${masterPid}), never demoted`,
      );
    });

    await t.step("is-managed=false: monitors go on, repoint nothing until managed", async () => {
      const detached = (await online()).find((n) => n !== master)!;
      await exec(
        master,
        ["crm_resource", "--meta", "-r", CLONE, "-p", "is-managed", "-v", "false"],
        {
          check: true,
        },
      );
      const since = agentLines(detached, /Not following/).length;
      await sql(detached, "STOP SLAVE");
      await sql(detached, "RESET SLAVE ALL");
      await waitFor(() => agentLines(detached, /Not following .*unmanaged/).length > since, {
        timeoutMs: 30_000,
        what: `${detached}'s monitor leaving replication alone (unmanaged)`,
      });
      assert.equal(await replicaStatus(detached), null, "not repointed while unmanaged");
      await exec(
        master,
        ["crm_resource", "--meta", "-r", CLONE, "-p", "is-managed", "-v", "true"],
        {
          check: true,
        },
      );
      assert.equal(await converged(), master);
    });
  } catch (e) {
    await dump({ lines: 40 });
    throw e;
  } finally {
    await down();
    console.log(`  operations lab: ${Math.round((Date.now() - tAll) / 1000)} s with bring-up`);
  }
});
