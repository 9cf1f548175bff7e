/**
 * Every action within its deadline: a hung Pacemaker tool, one that ignores
 * SIGTERM, and a write that fails, against cib.ts with real child processes (small shell scripts
 * standing in for crm_attribute and attrd_updater).
 */
import assert from "node:assert/strict";
import { Budget } from "../budget.ts";
import { Cib, runTool } from "../cib.ts";
import { Logger } from "../ocf.ts";
import { trustedTempDir } from "./trusted_dir.ts";

function tool(dir: string, name: string, body: string): string {
  const path = `${dir}/${name}`;
  Deno.writeTextFileSync(path, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return path;
}

Deno.test("a hung tool is killed at its share of the budget and marks Pacemaker unreachable", async () => {
  const dir = trustedTempDir("hung-tool-");
  try {
    const hung = tool(dir, "crm_attribute", "trap '' TERM\nsleep 60");
    const lines: string[] = [];
    const cib = new Cib("p", {
      log: new Logger("t", { sink: (l) => lines.push(l) }),
      budget: Budget.ofMs(1_500),
      runner: (_cmd, args, ms) => runTool(hung, args, ms),
    });
    const t0 = Date.now();
    assert.equal(await cib.setPromotionScore(100), false);
    assert.equal(await cib.setNodeAttribute("readable", "1"), false);
    assert.equal(await cib.promotionScore(), undefined);
    const took = Date.now() - t0;
    // One wait for the first call (killed with SIGKILL after the grace), none for the others.
    assert.ok(took < 1_500 + 1_000 + 500, `took ${took} ms`);
    assert.equal(cib.unavailable, true);
    assert.equal(lines.filter((l) => l.includes("not reachable")).length, 1);
    assert.equal(
      lines.some((l) => / -> 100$/.test(l)),
      false,
      "a failed write is never logged as done",
    );
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("runTool answers 124 for a tool that does not finish, 127 for a missing one", async () => {
  const dir = trustedTempDir("slow-tool-");
  try {
    const slow = tool(dir, "slow", "sleep 30");
    const t0 = Date.now();
    const r = await runTool(slow, [], 200);
    assert.equal(r.code, 124);
    assert.ok(Date.now() - t0 < 2_000);
    assert.equal((await runTool(`${dir}/missing`, [], 1_000)).code, 127);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("a write the tool refuses is logged as failed, not as done", async () => {
  const lines: string[] = [];
  const cib = new Cib("p", {
    log: new Logger("t", { sink: (l) => lines.push(l) }),
    runner: (_cmd, args) =>
      Promise.resolve(
        args.includes("-G")
          ? { code: 0, stdout: "10", stderr: "" }
          : { code: 1, stdout: "", stderr: "Update was older than existing configuration" },
      ),
  });
  assert.equal(await cib.setPromotionScore(100), false);
  assert.ok(
    lines.some((l) => l.startsWith("WARNING") && l.includes("10 -> 100 failed")),
    lines.join("\n"),
  );
  assert.equal(lines.some((l) => l.startsWith("INFO") && l.includes("10 -> 100")), false);
});

Deno.test("a tool call never gets more than the budget has left", async () => {
  const asked: number[] = [];
  const cib = new Cib("p", {
    log: new Logger("t", { sink: () => {} }),
    budget: Budget.ofMs(700),
    runner: (_cmd, _args, ms) => {
      asked.push(ms);
      return Promise.resolve({ code: 0, stdout: "", stderr: "" });
    },
  });
  await cib.privateAll("x");
  assert.ok(asked[0] <= 700 && asked[0] > 0, String(asked));
});
