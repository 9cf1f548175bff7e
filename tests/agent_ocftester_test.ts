/**
 * ocf-tester (resource-agents) against the agent: meta-data (also as user nobody) validated with
 * xmllint against ra-api-1.dtd, validate-all, probes, start/stop, notify, promote/demote sequences
 * and the idempotent repeats, on a side instance (own datadir, port, socket, pid) created by the
 * agent itself (agent_harness.ts). Without cluster meta attributes the agent runs as a plain
 * resource, so no Pacemaker is needed. Tests the installed agent (`deno task install`) when
 * present, else the source through a small launcher.
 */
import assert from "node:assert/strict";
import { exists } from "../scripts/fs.ts";
import { AgentSetup, writeLauncher } from "./agent_harness.ts";

const INSTALLED = "/usr/lib/ocf/resource.d/prm/mysql_prm";

Deno.test("ocf-tester passes", async () => {
  await using s = await AgentSetup.create({ prefix: "prm-ocft-", serverId: 9 });
  const agent = (await exists(INSTALLED)) ? INSTALLED : await writeLauncher(`${s.dir}/mysql_prm`);
  const args = ["-v", "-n", "prm_ocft"];
  for (const [k, v] of Object.entries(s.params())) args.push("-o", `${k}=${v}`);
  const t0 = Date.now();
  const out = await new Deno.Command("/usr/sbin/ocf-tester", {
    args: [...args, agent],
    env: { HA_RSCTMP: s.stateDir },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  console.log(`  ocf-tester on ${agent}: exit ${out.code} in ${Date.now() - t0} ms`);
  assert.equal(out.code, 0, text);
  // ocf-tester's verdict: exit 0 alone would also follow a run that tested nothing.
  assert.match(text, /passed all tests/);
  // It ends with stop: nothing left running.
  assert.equal(s.serverPid(), undefined);
});
