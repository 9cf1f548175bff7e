/**
 * The demo (`bash scripts/dev.sh demo [--heartbeat] [--no-power-cut]`): brings up a 3-node lab,
 * loads mysql_prm with a writer VIP and two reader VIPs, writes rows continuously through the
 * writer VIP, kills the master's mysqld, then power-cuts the next master, and for each fault
 * prints a timeline (fault, failure detected, who was promoted and why, when writes resumed, when
 * every replica followed the new master, the old master back as a replica) and the data checks
 * (rows acknowledged vs present on the new master, identical checksums on every node). Tears the
 * lab down in every case. Every wait has a deadline; a failed step exits non-zero with the reason.
 *
 * @module
 */

import { loadAgent } from "./agent.ts";
import { compareData, crmMon, dump, exitReasons, sqlAt, waitFor } from "./cluster.ts";
import { boot, killMysqld } from "./faults.ts";
import {
  ContinuousWriter,
  electionLine,
  FAILOVER_TABLE,
  failureDetectedAt,
  promotedAt,
  replicasFollow,
} from "./failover.ts";
import { down, LabBusyError, up } from "./lifecycle.ts";
import { exec, existsSync, nodeRunning, powerCut, WRITER_VIP } from "./nodes.ts";

/** Deadline of each wait of the demo, in ms. */
const STEP_MS = 90_000;
const INSTALLED_AGENT = "/usr/lib/ocf/resource.d/prm/mysql_prm";

class DemoError extends Error {}

function fail(message: string): never {
  console.error(`demo: ${message}`);
  Deno.exit(1);
}

async function preflight(agent: string): Promise<void> {
  if (Deno.uid() !== 0) fail("run as root: the lab needs network, mount and pid namespaces");
  const probe = await new Deno.Command("unshare", {
    args: ["--net", "--mount", "--pid", "--fork", "true"],
    stderr: "piped",
  }).output().catch(() => undefined);
  if (!probe?.success) {
    const why = probe ? new TextDecoder().decode(probe.stderr).trim() : "unshare not found";
    fail(`namespaces are not permitted here (unshare --net --mount --pid: ${why})`);
  }
  if (agent === "prm" && !existsSync(INSTALLED_AGENT)) {
    // A fresh checkout: build and install the agent the cluster will run.
    console.log("demo: mysql_prm is not installed: deno task build && deno task install");
    for (const task of ["build", "install"]) {
      const r = await new Deno.Command(Deno.execPath(), {
        args: ["task", task],
        cwd: new URL("../..", import.meta.url).pathname,
      }).output();
      if (!r.success) fail(`deno task ${task} failed (exit ${r.code})`);
    }
  }
}

/** Seconds since `t0`, signed, for the timeline. */
function rel(t: number | undefined, t0: number): string {
  if (t === undefined) return "     ?  ";
  const s = (t - t0) / 1000;
  return `${s >= 0 ? "+" : "-"}${Math.abs(s).toFixed(2).padStart(5)} s`;
}

async function promoted(): Promise<string | null> {
  const mon = await crmMon();
  const p = mon.resources.filter((r) => r.id === "p_mysql" && r.role === "Promoted")
    .flatMap((r) => r.nodes);
  return p.length === 1 ? p[0] : null;
}

async function step<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw new DemoError(`${what}: ${e instanceof Error ? e.message : e}`);
  }
}

/**
 * One fault with the writer running: prints the timeline, brings the faulty node back as a
 * replica, then checks the data.
 */
/** Nodes kept out (errant transactions): the data checks leave them out. */
const out = new Set<string>();

async function phase(
  nodes: string[],
  writer: ContinuousWriter,
  fault: "kill" | "power-cut",
  log: (m: string) => void,
): Promise<string> {
  const master = await step(
    "finding the master",
    () => waitFor(promoted, { timeoutMs: STEP_MS, what: "one promoted node", onTimeout: null }),
  );
  const before = writer.acked.length;
  await step("writes before the fault", () =>
    waitFor(() => writer.acked.length >= before + 20, {
      timeoutMs: STEP_MS,
      what: "20 rows acknowledged through the writer VIP",
      onTimeout: null,
    }));
  const lastBefore = writer.acked[writer.acked.length - 1];
  const what = fault === "kill"
    ? `kill -9 of mysqld on ${master} (the master)`
    : `power cut of ${master} (the master node; fencing on)`;
  log(`fault: ${what}`);
  const t0 = Date.now();
  if (fault === "kill") await killMysqld(master);
  else await powerCut(master);

  const resumed = await step(
    "writes resuming after the fault",
    () =>
      waitFor(() => writer.firstAckAfter(t0), {
        timeoutMs: STEP_MS,
        what:
          `a write acknowledged through ${WRITER_VIP} after the fault (last error: ${writer.lastError})`,
        onTimeout: null,
      }),
  );
  // The writer VIP may still be moving (a stale ARP entry): ask until it answers.
  const newMaster = await step("asking the writer VIP who answers", () =>
    waitFor(async () => {
      const [who] = await sqlAt(WRITER_VIP, "SELECT @@hostname AS h", { timeoutMs: 1000 });
      return who ? String(who.h) : null;
    }, { timeoutMs: STEP_MS, what: `an answer through ${WRITER_VIP}`, onTimeout: null }));
  log(`writes resumed on ${newMaster}`);
  await step(
    "replicas following the new master",
    () =>
      waitFor(() => replicasFollow(nodes, [master]), {
        timeoutMs: STEP_MS,
        what: `every other node replicating from ${newMaster}`,
        onTimeout: null,
      }),
  );
  const followAt = Date.now();
  const detectedAt = fault === "kill" ? failureDetectedAt(master, t0 - 1000) : undefined;
  const promoteAt = promotedAt(newMaster, t0 - 1000);
  const election = electionLine(newMaster, t0 - 1000);

  // The faulty node comes back: as an operator would after a crash (clean up the failure), or
  // by booting it once fencing completed.
  const tBack = Date.now();
  if (fault === "kill") {
    await exec(newMaster, ["crm_resource", "--cleanup", "-r", "ms_mysql"], { timeoutMs: 30_000 });
  } else {
    log(`booting ${master} again`);
    await step(`booting ${master}`, () => boot(master, { waitOnline: false, timeoutMs: STEP_MS }));
  }
  // Back as a replica, or kept out: a power cut of an asynchronous master can leave it holding
  // acknowledged writes nobody else received, which the agent refuses to silently discard.
  const keptOut = await step(
    `${master} back as a replica`,
    () =>
      waitFor(async () => {
        if (nodeRunning(master) && await replicasFollow(nodes) === newMaster) return "-";
        return (await exitReasons(master)).find((r) => /errant/i.test(r)) ?? null;
      }, {
        timeoutMs: STEP_MS,
        what: `${master} replicating from ${newMaster}`,
        onTimeout: null,
      }),
  );
  const backAt = Date.now();

  console.log(`\n  Timeline (t = 0 at the fault)`);
  if (lastBefore) {
    console.log(`  ${rel(lastBefore.at, t0)}  last row acknowledged before the fault`);
  }
  console.log(`  ${rel(t0, t0)}  fault: ${what}`);
  if (fault === "kill") {
    console.log(`  ${rel(detectedAt, t0)}  ${master}'s monitor reported mysqld not running`);
  } else {
    console.log(`  ${"".padEnd(8)}  (${master} lost: corosync notices, then fences it)`);
  }
  console.log(`  ${rel(promoteAt, t0)}  ${newMaster} promoted`);
  console.log(`  ${"".padEnd(8)}    why: ${election || "(no Election line in its log)"}`);
  console.log(
    `  ${rel(resumed.at, t0)}  writes resumed: row ${resumed.seq} acknowledged through ` +
      `${WRITER_VIP} (${newMaster})`,
  );
  console.log(`  ${rel(followAt, t0)}  every running replica replicates from ${newMaster}`);
  const after = `(${((backAt - tBack) / 1000).toFixed(1)} s after ${
    fault === "kill" ? "crm_resource --cleanup" : "its fencing and boot"
  })`;
  if (keptOut === "-") {
    console.log(`  ${rel(backAt, t0)}  ${master} back as a replica of ${newMaster} ${after}\n`);
  } else {
    console.log(`  ${rel(backAt, t0)}  ${master} kept out ${after}: ${keptOut}\n`);
    out.add(master);
  }
  return newMaster;
}

async function checkData(
  nodes: string[],
  writer: ContinuousWriter,
  master: string,
): Promise<boolean> {
  const rows = await sqlAt(WRITER_VIP, `SELECT seq FROM ${FAILOVER_TABLE}`);
  const present = new Set(rows.map((r) => Number(r.seq)));
  const lost = writer.acked.filter((a) => !present.has(a.seq)).map((a) => a.seq);
  const row = (label: string, value: string) => console.log(`  ${label.padEnd(44)}${value}`);
  console.log("Data");
  row("rows acknowledged through the writer VIP:", String(writer.acked.length));
  row("writes refused or timed out (failovers):", String(writer.failures));
  row(`rows present on the master ${master}:`, String(present.size));
  row(
    `acknowledged rows missing on ${master}:`,
    lost.length === 0 ? "none" : `${lost.length} (seq ${lost.join(", ")})`,
  );
  let cmp = await compareData(nodes, [FAILOVER_TABLE]);
  // The last rows may still be on their way to the replicas.
  if (!cmp.equal) {
    cmp = await waitFor(async () => {
      const c = await compareData(nodes, [FAILOVER_TABLE]);
      return c.equal ? c : null;
    }, { timeoutMs: 15_000, what: "identical data", onTimeout: null }).catch(() => cmp);
  }
  const sums = nodes.map((n) => `${n}=${cmp.checksums[n]?.[FAILOVER_TABLE] ?? "?"}`).join(" ");
  row(
    "every node holds the same data:",
    `${cmp.equal ? "yes" : "NO"} (CHECKSUM TABLE ${FAILOVER_TABLE}: ${sums})`,
  );
  if (lost.length > 0 && out.size > 0) {
    row("where they are:", `on ${[...out].join(", ")}, kept out; see its salvage file`);
  }
  return cmp.equal && (lost.length === 0 || out.size > 0);
}

async function main(): Promise<void> {
  const agent = Deno.args.includes("--heartbeat") ? "heartbeat" : "prm";
  const powerCutToo = !Deno.args.includes("--no-power-cut");
  await preflight(agent);
  const t0 = performance.now();
  const stamp = () => `[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s]`;
  const log = (msg: string) => console.log(`${stamp()} ${msg}`);
  log(
    `agent ${agent === "prm" ? "ocf:prm:mysql_prm" : "ocf:heartbeat:mysql"}; bringing the lab up`,
  );
  const lab = await up({
    nodes: 3,
    log,
    waitFreeMs: Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0"),
  }).catch((e) => {
    if (e instanceof LabBusyError) {
      fail(`${e.message} (another lab is up: deno task lab down, or wait for it)`);
    }
    throw e;
  });
  let ok = false;
  const writer = new ContinuousWriter();
  try {
    log(`lab up: ${lab.nodes.join(", ")} online in ${(lab.bringUpMs / 1000).toFixed(1)} s`);
    // migration-threshold=1: the failed master's node does not get the role back by restarting
    // mysqld in place, so the demo shows a failover.
    await loadAgent({ agent, readerVips: 2, cloneMeta: { "migration-threshold": "1" } });
    const tl = Date.now();
    const first = await step("convergence", () =>
      waitFor(() => replicasFollow(lab.nodes), {
        timeoutMs: STEP_MS,
        what: "1 promoted node and every other node replicating from it",
        onTimeout: null,
      }));
    await step("the writer VIP", () =>
      waitFor(async () => {
        await sqlAt(
          WRITER_VIP,
          `CREATE TABLE IF NOT EXISTS ${FAILOVER_TABLE} (seq INT PRIMARY KEY, src VARCHAR(8), ` +
            "at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
          { timeoutMs: 2000 },
        );
        return true;
      }, { timeoutMs: STEP_MS, what: `${WRITER_VIP} accepting writes`, onTimeout: null }));
    log(
      `converged in ${((Date.now() - tl) / 1000).toFixed(1)} s: ${first} promoted, ` +
        `the others replicate from it; writer started (about 50 rows/s through ${WRITER_VIP})`,
    );
    writer.start();
    const faults: ("kill" | "power-cut")[] = powerCutToo ? ["kill", "power-cut"] : ["kill"];
    let master = first;
    for (const f of faults) {
      master = await phase(lab.nodes, writer, f, log);
    }
    await writer.stop();
    ok = await checkData(lab.nodes.filter((n) => !out.has(n)), writer, master);
  } catch (e) {
    await writer.stop();
    if (e instanceof DemoError) {
      await dump({ lines: 15 });
      console.error(`demo: step failed: ${e.message}`);
    } else throw e;
  } finally {
    log("tearing the lab down");
    await down({ log: () => {} });
  }
  if (!ok) fail("the demo did not complete cleanly (see above)");
  log("demo: done, lab torn down");
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
}
