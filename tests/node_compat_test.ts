/**
 * The actions Pacemaker runs every few seconds load none of Deno's Node compatibility layer.
 *
 * Loading it costs a monitor about a seventh of its CPU (timer.ts, README "Cost of one monitor
 * action"): Deno 2.9's global setTimeout, any `node:` import and a few other paths load it on
 * first use. Deno keeps a V8 code cache entry for every module a run loads, so a run in a fresh
 * DENO_DIR leaves the list of what it loaded in `v8_code_cache_v2`; this test reads that list after
 * the unpromoted and promoted monitors (and the notify and demote around them) of a real mariadbd
 * with fake Pacemaker tools.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { OCF } from "../ocf.ts";
import { AgentSetup, assertCode } from "./agent_harness.ts";

/** The modules one run loaded, from the V8 code cache of its fresh DENO_DIR. */
function loadedModules(denoDir: string): string[] {
  const db = new DatabaseSync(`${denoDir}/v8_code_cache_v2`, { readOnly: true });
  try {
    return db.prepare("SELECT specifier FROM codecache").all().map((r) => String(r.specifier));
  } finally {
    db.close();
  }
}

/** Modules of Deno's Node compatibility layer among `specifiers`. */
function nodeModules(specifiers: string[]): string[] {
  return specifiers.filter((s) => s.startsWith("node:") || s.startsWith("ext:deno_node/"));
}

Deno.test("monitor, promote and demote load none of Deno's Node compatibility layer", async (t) => {
  await using s = await AgentSetup.create({
    prefix: "prm-node-compat-",
    clone: true,
    pacemaker: true,
  });
  let n = 0;
  const fresh = async () => {
    const dir = `${s.dir}/deno-${++n}`;
    await Deno.mkdir(dir, { mode: 0o700 });
    return dir;
  };
  assertCode(await s.run("start"), OCF.SUCCESS);

  const runs: [string, Record<string, string>, number][] = [
    ["monitor", { OCF_RESKEY_CRM_meta_interval: "3000" }, OCF.SUCCESS],
    ["promote", {}, OCF.SUCCESS],
    ["monitor", { OCF_RESKEY_CRM_meta_interval: "2000" }, OCF.RUNNING_PROMOTED],
    ["demote", {}, OCF.SUCCESS],
  ];
  for (const [action, extra, code] of runs) {
    await t.step(`${action} (${codeText(code)})`, async () => {
      const dir = await fresh();
      const r = await s.run(action, { ...extra, DENO_DIR: dir });
      assertCode(r, code);
      const loaded = loadedModules(dir);
      // The check itself must see the run's modules, or an empty list would pass.
      assert.ok(
        loaded.some((m) => m.endsWith("/agent.ts")),
        `the code cache lists agent.ts: ${loaded.join(", ")}`,
      );
      assert.deepEqual(nodeModules(loaded), [], `${action} loaded Node's layer`);
    });
  }

  await t.step("the check sees the layer when a run does load it", async () => {
    const dir = await fresh();
    const probe = `${s.dir}/probe.ts`;
    await Deno.writeTextFile(probe, "await new Promise((r) => setTimeout(r, 1));\n");
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--no-config", probe],
      env: { PATH: "/usr/bin:/bin", DENO_DIR: dir },
      clearEnv: true,
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    assert.notDeepEqual(nodeModules(loadedModules(dir)), []);
  });
});

function codeText(code: number): string {
  return code === OCF.RUNNING_PROMOTED ? "promoted" : code === OCF.SUCCESS ? "ok" : String(code);
}
