/**
 * The demo (`bash scripts/dev.sh demo`): brings up a 3-node lab, loads mysql_prm with a writer VIP
 * and reader VIPs, writes rows through the writer VIP, kills the master's mysqld, power-cuts the
 * next master, boots it back, prints a timeline and the data checks, and tears the lab down.
 *
 * @module
 */

import { measureFailoverOnFreshLab } from "./failover.ts";

function fail(message: string): never {
  console.error(`demo: ${message}`);
  Deno.exit(1);
}

async function main(): Promise<void> {
  if (Deno.uid() !== 0) fail("run as root: the lab needs network and mount namespaces");
  const probe = await new Deno.Command("unshare", { args: ["--net", "true"], stderr: "piped" })
    .output().catch(() => undefined);
  if (!probe?.success) fail("network namespaces are not permitted here (unshare --net failed)");
  const agent = Deno.args.includes("--heartbeat") ? "heartbeat" : "prm";
  const t0 = performance.now();
  const stamp = () => `[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)} s]`;
  const log = (msg: string) => console.log(`${stamp()} ${msg}`);
  log(`demo: agent ${agent === "prm" ? "ocf:prm:mysql_prm" : "ocf:heartbeat:mysql"}`);
  const run = await measureFailoverOnFreshLab({ agent, log });
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  console.log("\nTimeline");
  console.log(`  lab up (3 nodes online)              ${s(run.bringUpMs)}`);
  console.log(`  converged, master ${run.masters[0]}, writes flowing   ${s(run.convergeMs)}`);
  console.log(
    `  mysqld killed -> writable on ${run.masterAfterKill}       ${s(run.killToWritableMs)}`,
  );
  console.log(
    `  node power-cut -> writable on ${run.masterAfterPowerCut}      ${
      s(run.powerCutToWritableMs)
    }`,
  );
  console.log(`  cut node booted -> replicating again ${s(run.rejoinMs)}`);
  console.log("\nData");
  console.log(`  rows acknowledged through the writer VIP: ${run.rowsAcknowledged}`);
  console.log(`  rows on the final master:                 ${run.rowsOnMaster}`);
  console.log(`  every node holds the same data:           ${run.dataEqual ? "yes" : "NO"}`);
  if (run.replicationErrors.length) {
    console.log(`  replication errors: ${run.replicationErrors.join("; ")}`);
  }
  const ok = run.dataEqual && run.rowsOnMaster >= run.rowsAcknowledged &&
    run.replicationErrors.length === 0;
  if (!ok) fail("the data checks failed (see above)");
  log("demo: done, lab torn down");
}

if (import.meta.main) {
  try {
    await main();
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }
}
