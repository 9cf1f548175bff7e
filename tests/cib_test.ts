/**
 * cib.ts: attrd output parsing (pure), and the Cib accessor driving the fake
 * Pacemaker tools of fake_pacemaker.ts (their files are the CIB; their call log shows which tool
 * calls were made).
 */
import assert from "node:assert/strict";
import { Cib, parseAttrdQuery } from "../cib.ts";
import { encodeReplInfo, REPL_INFO_SET } from "../attrs.ts";
import { Logger } from "../ocf.ts";
import { FakePacemaker } from "./fake_pacemaker.ts";

Deno.test("attrd_updater -A output parses into node → value, skipping junk", () => {
  const m = parseAttrdQuery(
    'name="prm-p-pos" host="prm1" value="prm2|mysql-bin.000001|4"\n' +
      'name="prm-p-pos" host="prm3" value="idle"\nrubbish\nname="x" host="b a d" value="1"',
  );
  assert.deepEqual([...m], [["prm1", "prm2|mysql-bin.000001|4"], ["prm3", "idle"]]);
});

function logger(lines: string[] = []): Logger {
  return new Logger("t", { sink: (l) => lines.push(l) });
}

Deno.test("scores and attributes are written only when they change, with a cache", async () => {
  await using pcmk = await FakePacemaker.create();
  const log = logger();
  const runner = pcmk.runner;
  const cacheFile = `${pcmk.dir}/cache.json`;
  let cib = new Cib("p_mysql", { log, runner, cacheFile });
  assert.equal(await cib.setPromotionScore(100), true);
  assert.equal(pcmk.promotionScore("p_mysql"), 100);
  assert.equal(await cib.setPromotionScore(100), false);
  cib.save();
  const n = pcmk.calls().length;
  cib = new Cib("p_mysql", { log, runner, cacheFile });
  assert.equal(await cib.setPromotionScore(100), false);
  assert.equal(pcmk.calls().length, n, "cached: no tool call");
  // A probe refreshes: it reads the CIB even when the cache agrees.
  pcmk.setPromotionScore("p_mysql", undefined);
  cib = new Cib("p_mysql", { log, runner, cacheFile, refresh: true });
  assert.equal(await cib.setPromotionScore(100), true);
  assert.equal(pcmk.promotionScore("p_mysql"), 100);
  assert.equal(await cib.setPromotionScore(undefined), true);
  assert.equal(pcmk.promotionScore("p_mysql"), undefined);
  assert.equal(await cib.setNodeAttribute("readable", "1"), true);
  assert.equal(await cib.setNodeAttribute("readable", "1"), false);
  assert.equal(pcmk.nodeAttribute("readable"), "1");
  // Another node's score, as the election moves it.
  assert.equal(await cib.setPromotionScore(150, "nodeB"), true);
  assert.equal(await cib.promotionScore("nodeB"), 150);
  assert.deepEqual(pcmk.snapshot().status, {
    nodeA: { readable: "1" },
    nodeB: { "master-p_mysql": "150" },
  });
});

Deno.test("private attributes, node names, REPL_INFO and cleanups through the tools", async () => {
  await using pcmk = await FakePacemaker.create({ partition: ["nodeA", "nodeB"] });
  const cib = new Cib("p_mysql", { log: logger(), runner: pcmk.runner });
  assert.equal(await cib.nodeName(), "nodeA");
  assert.deepEqual(await cib.partitionNodes(), ["nodeA", "nodeB"]);
  assert.deepEqual([...await cib.privateAll("prm-p_mysql-pos")], []);
  assert.equal(await cib.setPrivate("prm-p_mysql-pos", "idle"), true);
  assert.equal(await cib.setPrivate("prm-p_mysql-pos", "h|mysql-bin.000002|4", "nodeB"), true);
  assert.deepEqual([...await cib.privateAll("prm-p_mysql-pos")], [
    ["nodeA", "idle"],
    ["nodeB", "h|mysql-bin.000002|4"],
  ]);
  // attrd still lists a deleted private attribute, with an empty value: read as absent.
  assert.equal(await cib.setPrivate("prm-p_mysql-pos", undefined, "nodeB"), true);
  assert.deepEqual([...await cib.privateAll("prm-p_mysql-pos")], [["nodeA", "idle"]]);
  assert.equal(pcmk.snapshot().status.nodeA, undefined, "private: never in the CIB");

  assert.equal(await cib.replInfo(), undefined);
  const info = { host: "nodeA", file: "mysql-bin.000003", pos: 1234 };
  assert.equal(await cib.setReplInfo(info), true);
  assert.equal(pcmk.property("p_mysql_REPL_INFO", REPL_INFO_SET), encodeReplInfo(info));
  assert.deepEqual(await cib.replInfo(), info);
  assert.deepEqual(cib.cachedReplInfo(), info);

  assert.equal(await cib.cleanupFailures("nodeB"), true);
  assert.deepEqual(pcmk.cleanups(), [{ resource: "p_mysql", node: "nodeB" }]);
  assert.equal(cib.unavailable, false);
});

Deno.test("outside a cluster the tools fail and the accessor copes", async () => {
  await using pcmk = await FakePacemaker.create();
  pcmk.down();
  const lines: string[] = [];
  const cib = new Cib("p", { log: logger(lines), runner: pcmk.runner });
  assert.equal(await cib.setPromotionScore(5), false);
  assert.deepEqual(await cib.readReplInfo(), { state: "unreachable" });
  assert.equal(await cib.nodeName(), undefined);
  assert.equal(cib.unavailable, true);
  // Only the read was tried: no write into a cluster that is not there.
  assert.ok(pcmk.calls("crm_attribute").every((c) => c.args.includes("-G")));
  assert.equal(lines.filter((l) => l.startsWith("WARNING")).length, 1, "warned once");
});

Deno.test("a malformed REPL_INFO in the CIB is told apart, never used", async () => {
  await using pcmk = await FakePacemaker.create();
  const raw = "prm1|x'; DROP|1";
  pcmk.setProperty("p_REPL_INFO", raw, REPL_INFO_SET);
  const cib = new Cib("p", { log: logger(), runner: pcmk.runner });
  assert.deepEqual(await cib.readReplInfo(), { state: "malformed", raw });
  assert.equal(await cib.replInfo(), undefined);
  pcmk.setProperty("p_REPL_INFO", undefined, REPL_INFO_SET);
  assert.deepEqual(await cib.readReplInfo(), { state: "unset" });
});
