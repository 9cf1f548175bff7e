import assert from "node:assert/strict";
import { Cib, parseAttrdQuery, type ToolResult } from "../cib.ts";
import { Logger } from "../ocf.ts";

Deno.test("attrd_updater -A output parses into node → value, skipping junk", () => {
  const m = parseAttrdQuery(
    'name="prm-p-pos" host="prm1" value="prm2|mysql-bin.000001|4"\n' +
      'name="prm-p-pos" host="prm3" value="idle"\nrubbish\nname="x" host="b a d" value="1"',
  );
  assert.deepEqual([...m], [["prm1", "prm2|mysql-bin.000001|4"], ["prm3", "idle"]]);
});

function fakeTools(initial: Record<string, string> = {}) {
  const calls: string[] = [];
  const store = new Map(Object.entries(initial));
  const runner = (cmd: string, args: string[]): Promise<ToolResult> => {
    calls.push(`${cmd} ${args.join(" ")}`);
    const key = args.find((a) => a.startsWith("--promotion")) ?? args[args.indexOf("-n") + 1];
    if (args.includes("-G")) {
      const v = store.get(key);
      return Promise.resolve(
        v === undefined
          ? { code: 105, stdout: "", stderr: "not found" }
          : { code: 0, stdout: v, stderr: "" },
      );
    }
    if (args.includes("-D")) store.delete(key);
    else store.set(key, args[args.indexOf("-v") + 1]);
    return Promise.resolve({ code: 0, stdout: "", stderr: "" });
  };
  return { calls, store, runner };
}

Deno.test("scores and attributes are written only when they change, with a cache", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = new Logger("t", { sink: () => {} });
    const t = fakeTools();
    const cacheFile = `${dir}/cache.json`;
    let cib = new Cib("p_mysql", { log, runner: t.runner, cacheFile });
    assert.equal(await cib.setPromotionScore(100), true);
    assert.equal(t.store.get("--promotion=p_mysql"), "100");
    assert.equal(await cib.setPromotionScore(100), false);
    cib.save();
    const n = t.calls.length;
    cib = new Cib("p_mysql", { log, runner: t.runner, cacheFile });
    assert.equal(await cib.setPromotionScore(100), false);
    assert.equal(t.calls.length, n, "cached: no tool call");
    // A probe refreshes: it reads the CIB even when the cache agrees.
    t.store.delete("--promotion=p_mysql");
    cib = new Cib("p_mysql", { log, runner: t.runner, cacheFile, refresh: true });
    assert.equal(await cib.setPromotionScore(100), true);
    assert.equal(await cib.setPromotionScore(undefined), true);
    assert.equal(t.store.has("--promotion=p_mysql"), false);
    assert.equal(await cib.setNodeAttribute("readable", "1"), true);
    assert.equal(await cib.setNodeAttribute("readable", "1"), false);
    assert.equal(t.store.get("readable"), "1");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("outside a cluster the tools fail and the accessor copes", async () => {
  const lines: string[] = [];
  const log = new Logger("t", { sink: (l) => lines.push(l) });
  const runner = () =>
    Promise.resolve({
      code: 102,
      stdout: "",
      stderr: "Could not connect to the CIB: Transport endpoint is not connected",
    });
  const cib = new Cib("p", { log, runner });
  assert.equal(await cib.setPromotionScore(5), false);
  assert.equal(await cib.replInfo(), undefined);
  assert.equal(cib.unavailable, true);
  assert.equal(lines.filter((l) => l.includes("not reachable")).length, 1);
  const malformed = new Cib("p", {
    log,
    runner: () => Promise.resolve({ code: 0, stdout: "prm1|x'; DROP|1", stderr: "" }),
  });
  assert.equal(await malformed.replInfo(), undefined);
});
