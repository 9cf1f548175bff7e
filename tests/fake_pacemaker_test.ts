/**
 * The fake Pacemaker tools themselves: the real tools' output formats and exit codes for what prm
 * calls (Pacemaker 2.1.5), unmodelled options refused, and the faults other tests rely on (a
 * failing, slow or hung tool, one that ignores SIGTERM, a cluster that is down).
 */
import assert from "node:assert/strict";
import { processAlive } from "../mysqld.ts";
import { FakePacemaker, NO_CLUSTER } from "./fake_pacemaker.ts";
import { waitFor } from "./agent_harness.ts";

Deno.test("the fakes answer as Pacemaker 2.1.5's tools do", async () => {
  await using p = await FakePacemaker.create({
    node: "n1",
    nodes: ["n1", "n2"],
    partition: ["n1"],
  });
  const run = p.runner;
  assert.deepEqual(await run("crm_node", ["-n"]), { code: 0, stdout: "n1", stderr: "" });
  assert.deepEqual(await run("crm_node", ["-p"]), { code: 0, stdout: "n1", stderr: "" });

  // crm_attribute: --promotion is the master-<rsc> transient attribute; no -N means this node.
  assert.deepEqual(await run("crm_attribute", ["--promotion=r", "-G", "-q"]), {
    code: 105,
    stdout: "",
    stderr: "crm_attribute: Error performing operation: No such device or address",
  });
  assert.equal((await run("crm_attribute", ["--promotion=r", "-v", "100"])).code, 0);
  assert.equal(p.nodeAttribute("master-r"), "100");
  assert.deepEqual(await run("crm_attribute", ["-n", "master-r", "-l", "reboot", "-G"]), {
    code: 0,
    stdout: "scope=status  name=master-r value=100",
    stderr: "",
  });
  assert.equal((await run("crm_attribute", ["--promotion=r", "-D", "-N", "n2"])).code, 0);
  assert.equal((await run("crm_attribute", ["--promotion=r", "-G", "-N", "n9"])).code, 105);
  // -l forever and cluster properties are other sections.
  await run("crm_attribute", ["-n", "x", "-l", "forever", "-v", "1"]);
  await run("crm_attribute", ["-t", "crm_config", "-s", "set1", "-n", "x", "-v", "2"]);
  assert.deepEqual(p.snapshot(), {
    status: { n1: { "master-r": "100" } },
    nodes: { n1: { x: "1" } },
    private: {},
    crmConfig: { set1: { x: "2" } },
  });

  // attrd_updater: one line per node; a deleted private attribute is still listed, empty.
  assert.deepEqual(await run("attrd_updater", ["-p", "-n", "a", "-Q", "-A"]), {
    code: 78,
    stdout: "",
    stderr: "attrd_updater: Could not query value of a: attribute does not exist",
  });
  await run("attrd_updater", ["-p", "-n", "a", "-U", "v1"]);
  await run("attrd_updater", ["-p", "-n", "a", "-U", "v2", "-N", "n2"]);
  assert.equal(
    (await run("attrd_updater", ["-p", "-n", "a", "-Q", "-A"])).stdout,
    'name="a" host="n1" value="v1"\nname="a" host="n2" value="v2"',
  );
  await run("attrd_updater", ["-p", "-n", "a", "-D", "-N", "n2"]);
  assert.equal(
    (await run("attrd_updater", ["-p", "-n", "a", "-Q", "-N", "n2"])).stdout,
    'name="a" host="n2" value=""',
  );
  assert.equal(p.privateAttribute("a", "n2"), undefined);
  assert.equal(p.snapshot().status.n1?.a, undefined, "private attributes stay out of the CIB");

  assert.deepEqual(await run("crm_resource", ["--cleanup", "-r", "r", "-N", "n2"]), {
    code: 0,
    stdout: "Cleaned up r on n2",
    stderr: "",
  });
  assert.deepEqual(p.cleanups(), [{ resource: "r", node: "n2" }]);

  // What prm does not call is refused loudly, as are names that are no Pacemaker ids.
  assert.equal((await run("crm_attribute", ["--pattern", "x", "-G"])).code, 64);
  assert.equal((await run("attrd_updater", ["-n", "a b", "-Q"])).code, 64);
  assert.equal((await run("crm_node", ["-q"])).code, 64);
  assert.equal(p.calls("crm_node").length, 3);
  assert.deepEqual(p.calls("crm_resource")[0].args, ["--cleanup", "-r", "r", "-N", "n2"]);
});

Deno.test("faults: failing, slow, hung and deaf tools; a cluster that is down", async () => {
  await using p = await FakePacemaker.create();
  const run = p.runner;
  // Only the matching calls, only the first time.
  p.fault("crm_attribute", { kind: "fail", code: 1, stderr: "it's broken", match: "-G", times: 1 });
  assert.equal((await run("crm_attribute", ["-n", "x", "-l", "reboot", "-v", "1"])).code, 0);
  assert.deepEqual(await run("crm_attribute", ["-n", "x", "-l", "reboot", "-G", "-q"]), {
    code: 1,
    stdout: "",
    stderr: "it's broken",
  });
  assert.equal((await run("crm_attribute", ["-n", "x", "-l", "reboot", "-G", "-q"])).stdout, "1");
  p.fault("crm_attribute", undefined);

  p.fault("crm_node", { kind: "delay", seconds: 0.3 });
  const t0 = performance.now();
  assert.equal((await run("crm_node", ["-n"])).stdout, "nodeA");
  assert.ok(performance.now() - t0 >= 300);

  // A hung tool ends on SIGTERM; a deaf one only on SIGKILL (cleanup does that).
  for (const ignoreTerm of [false, true]) {
    p.fault("crm_node", { kind: "hang", ignoreTerm, seconds: 60 });
    const child = new Deno.Command(`${p.toolsDir}/crm_node`, {
      args: ["-n"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitFor("the hung tool", () => p.hungPids().includes(child.pid), { timeoutMs: 5_000 });
    child.kill("SIGTERM");
    if (!ignoreTerm) {
      assert.equal((await child.status).signal, "SIGTERM");
      continue;
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(processAlive(child.pid), "SIGTERM ignored");
    await p.cleanup();
    assert.equal((await child.status).signal, "SIGKILL");
  }

  await using q = await FakePacemaker.create();
  q.down();
  for (const [tool, fault] of Object.entries(NO_CLUSTER)) {
    const r = await q.runner(tool, ["-n"]);
    assert.equal(r.code, fault.kind === "fail" ? fault.code : 102, tool);
    assert.equal(r.stderr, fault.kind === "fail" ? fault.stderr : undefined);
  }
});
