/**
 * The agent's cluster paths (promotion scores, private attributes, REPL_INFO, the PAF-style
 * promote re-check, post-promote repointing) against a real mariadbd, with Pacemaker's tools
 * replaced by the file-backed fakes of fake_pacemaker.ts (node nodeA of nodeA, nodeB, nodeC). The
 * lab tests run the real tools.
 */
import assert from "node:assert/strict";
import { OCF } from "../ocf.ts";
import { parseReplInfo } from "../cib.ts";
import { decodePeerPosition, encodePeerPosition, SCORE } from "../election.ts";
import { AgentSetup, assertCode, binlogPosition, pointAt, replicaStatus } from "./agent_harness.ts";

Deno.test("cluster paths with fake Pacemaker tools: scores, election re-check, publish, repoint", async (t) => {
  await using s = await AgentSetup.create({
    prefix: "prm-agent-cl-",
    clone: true,
    pacemaker: true,
    myCnf: ["log_slave_updates = ON"],
    timeoutMs: 20_000,
  });
  const old = { file: "mysql-bin.000003", pos: 500 };

  await t.step("start is unpromoted and idle; first monitor sets the idle score", async () => {
    assertCode(await s.run("start"), OCF.SUCCESS);
    assert.equal(await s.readOnly(), 1);
    assert.equal(s.score(), SCORE.IDLE);
    assert.equal(s.readable(), "0");
  });

  await t.step(
    "replicating from a lost master: healthy replica, score 100, not readable",
    async () => {
      // An unreachable master (nothing listens on port 1): the IO thread keeps reconnecting.
      await pointAt(s, { port: 1, login: s.replication!, ...old, connectRetry: 1 });
      const r = await s.run("monitor", { OCF_RESKEY_CRM_meta_interval: "3000" });
      assertCode(r, OCF.SUCCESS);
      assert.equal(s.score(), SCORE.REPLICA);
      assert.equal(s.readable(), "0");
    },
  );

  await t.step("pre-promote publishes this node's position; the promotee steps aside", async () => {
    // nodeB published more: the promotee steps aside before the promote starts.
    s.setAgentAttribute(
      "pos",
      encodePeerPosition("127.0.0.1", { file: old.file, pos: 900 }),
      "nodeB",
    );
    const r = await s.run(
      "notify",
      s.notify("pre", "promote", {
        promote: ["nodeA"],
        active: ["nodeA", "nodeB"],
        unpromoted: ["nodeA", "nodeB"],
      }),
    );
    assertCode(r, OCF.SUCCESS);
    assert.deepEqual(decodePeerPosition("nodeA", s.agentAttribute("pos") ?? ""), {
      node: "nodeA",
      masterHost: "127.0.0.1",
      position: old,
    });
    // The scores moved: nodeB ahead of every replica, this node last.
    assert.equal(s.score("nodeB"), SCORE.REPLICA + 50);
    assert.equal(s.score(), 1);
  });

  await t.step("promote refuses when a live peer holds more, and moves the scores", async () => {
    // As if pre-promote had not run on this node: promote alone moves the scores.
    s.cluster.setPromotionScore(s.resource, SCORE.REPLICA);
    s.cluster.setPromotionScore(s.resource, undefined, "nodeB");
    const r = await s.run("promote");
    assertCode(r, OCF.ERR_GENERIC);
    assert.match(r.exitReason ?? "", /nodeB/, "the exit reason names the better node");
    assert.equal(s.score("nodeB"), SCORE.REPLICA + 50);
    assert.equal(s.score(), 1);
    assert.equal(s.agentAttribute("refused"), "stepped-aside");
    assert.equal(await s.readOnly(), 1, "still read-only");
  });

  await t.step(
    "promote goes on when it holds the most, and publishes before accepting writes",
    async () => {
      s.setAgentAttribute(
        "pos",
        encodePeerPosition("127.0.0.1", { file: "mysql-bin.000002", pos: 99999 }),
        "nodeB",
      );
      assertCode(await s.run("promote"), OCF.SUCCESS);
      const at = await binlogPosition(s);
      assert.deepEqual(parseReplInfo(s.replInfo() ?? ""), { host: "nodeA", ...at });
      assert.equal(s.score(), SCORE.PROMOTED);
      assert.equal(s.readable(), "1");
      assert.equal(s.agentAttribute("pos"), undefined, "the election is over");
      assert.equal(s.agentAttribute("refused"), undefined, "a promote that succeeds clears it");
      assert.deepEqual(await replicaStatus(s), {}, "replica settings reset");
      assert.equal(await s.readOnly(), 0);
      assertCode(
        await s.run("monitor", { OCF_RESKEY_CRM_meta_interval: "2000" }),
        OCF.RUNNING_PROMOTED,
      );
    },
  );

  await t.step(
    "post-promote on the new master cleans up the failed promote of a node that stepped aside",
    async () => {
      s.setAgentAttribute("refused", "stepped-aside", "nodeB");
      s.setAgentAttribute("refused", String(OCF.ERR_GENERIC), "nodeC");
      const r = await s.run(
        "notify",
        s.notify("post", "promote", { promote: ["nodeA"], active: ["nodeA", "nodeB", "nodeC"] }),
      );
      assertCode(r, OCF.SUCCESS);
      assert.deepEqual(s.cluster.cleanups(), [{ resource: s.resource, node: "nodeB" }]);
      assert.equal(s.agentAttribute("refused", "nodeB"), undefined);
      // A real failure stays for a person to see.
      assert.equal(s.agentAttribute("refused", "nodeC"), String(OCF.ERR_GENERIC));
      s.setAgentAttribute("refused", undefined, "nodeC");
    },
  );

  await t.step(
    "demote, then post-promote of another node repoints to its coordinates",
    async () => {
      assertCode(await s.run("demote"), OCF.SUCCESS);
      const final = decodePeerPosition("nodeA", s.agentAttribute("final") ?? "");
      assert.deepEqual(final, {
        node: "nodeA",
        masterHost: "nodeA",
        position: await binlogPosition(s),
      });
      assert.equal(s.score(), SCORE.IDLE);
      s.setReplInfo("nodeB|mysql-bin.000007|1234");
      const post = s.notify("post", "promote", { promote: ["nodeB"] });
      assertCode(await s.run("notify", post), OCF.SUCCESS);
      let st = await replicaStatus(s);
      assert.equal(st.Master_Host, "nodeB");
      assert.equal(st.Master_Log_File, "mysql-bin.000007");
      assert.equal(Number(st.Read_Master_Log_Pos), 1234);
      assert.equal(s.agentAttribute("final"), undefined, "a new master is up: cleared");
      // Already a replica of nodeB: a second notification keeps its own coordinates, whatever
      // nodeB publishes now.
      s.setReplInfo("nodeB|mysql-bin.000009|4");
      assertCode(await s.run("notify", post), OCF.SUCCESS);
      st = await replicaStatus(s);
      assert.equal(st.Master_Log_File, "mysql-bin.000007");
      assert.equal(Number(st.Read_Master_Log_Pos), 1234);
    },
  );

  await t.step("a malformed REPL_INFO in the CIB is ignored, never used", async () => {
    s.setReplInfo("nodeC|x'; DROP TABLE t; --|1");
    const r = await s.run("notify", {
      ...s.notify("post", "promote", { promote: ["nodeC"] }),
      OCF_RESKEY_CRM_meta_timeout: "3000",
    });
    assertCode(r, OCF.SUCCESS);
    const st = await replicaStatus(s);
    assert.equal(st.Master_Host, "nodeB");
    assert.equal(st.Master_Log_File, "mysql-bin.000007");
  });

  await t.step("stop deletes the score, the reader attribute and the position", async () => {
    assertCode(await s.run("stop"), OCF.SUCCESS);
    assert.equal(s.score(), undefined);
    assert.equal(s.readable(), undefined);
    assert.equal(s.agentAttribute("pos"), undefined);
    assert.equal(s.serverPid(), undefined, "pid file removed");
  });
});
