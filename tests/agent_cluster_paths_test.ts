/**
 * The agent's cluster paths (promotion scores, private attributes, REPL_INFO, the PAF-style
 * promote re-check, post-promote repointing) against a real mariadbd, with Pacemaker's tools
 * replaced by the file-backed fakes of fake_pacemaker.ts (node nodeA of nodeA, nodeB, nodeC). The
 * lab tests run the real tools.
 */
import assert from "node:assert/strict";
import { OCF } from "../ocf.ts";
import {
  decodePublishedPosition,
  decodeRefused,
  decodeReplInfo,
  encodePublishedPosition,
  encodeRefused,
  SCORE,
} from "../attrs.ts";
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
  /** A peer's published position: received `position` of the same (lost) master. */
  const ahead = (position: { file: string; pos: number }) =>
    encodePublishedPosition({ idle: false, masterHost: "127.0.0.1", position });

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
    s.setPrivateAttribute("position", ahead({ file: old.file, pos: 900 }), "nodeB");
    const r = await s.run(
      "notify",
      s.notify("pre", "promote", {
        promote: ["nodeA"],
        active: ["nodeA", "nodeB"],
        unpromoted: ["nodeA", "nodeB"],
      }),
    );
    assertCode(r, OCF.SUCCESS);
    assert.deepEqual(decodePublishedPosition(s.privateAttribute("position") ?? ""), {
      idle: false,
      masterHost: "127.0.0.1",
      position: old,
    });
    // The scores moved: nodeB ahead of every replica, this node last.
    assert.equal(s.score("nodeB"), SCORE.BETTER_PEER);
    assert.equal(s.score(), SCORE.STEPPED_ASIDE);
  });

  await t.step("promote refuses when a live peer holds more, and moves the scores", async () => {
    // As if pre-promote had not run on this node: promote alone moves the scores.
    s.setScore(SCORE.REPLICA);
    s.setScore(undefined, "nodeB");
    const r = await s.run("promote");
    assertCode(r, OCF.ERR_GENERIC);
    assert.match(r.exitReason ?? "", /nodeB/, "the exit reason names the better node");
    assert.equal(s.score("nodeB"), SCORE.BETTER_PEER);
    assert.equal(s.score(), SCORE.STEPPED_ASIDE);
    assert.deepEqual(decodeRefused(s.privateAttribute("refused") ?? ""), { steppedAside: true });
    assert.equal(await s.readOnly(), 1, "still read-only");
  });

  await t.step(
    "promote goes on when it holds the most, and publishes before accepting writes",
    async () => {
      s.setPrivateAttribute("position", ahead({ file: "mysql-bin.000002", pos: 99999 }), "nodeB");
      assertCode(await s.run("promote"), OCF.SUCCESS);
      const at = await binlogPosition(s);
      assert.deepEqual(decodeReplInfo(s.replInfo() ?? ""), { host: "nodeA", ...at });
      assert.equal(s.score(), SCORE.PROMOTED);
      assert.equal(s.readable(), "1");
      assert.equal(s.privateAttribute("position"), undefined, "the election is over");
      assert.equal(s.privateAttribute("refused"), undefined, "a promote that succeeds clears it");
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
      s.setPrivateAttribute("refused", encodeRefused({ steppedAside: true }), "nodeB");
      const failed = encodeRefused({ steppedAside: false, code: OCF.ERR_GENERIC });
      s.setPrivateAttribute("refused", failed, "nodeC");
      const r = await s.run(
        "notify",
        s.notify("post", "promote", { promote: ["nodeA"], active: ["nodeA", "nodeB", "nodeC"] }),
      );
      assertCode(r, OCF.SUCCESS);
      assert.deepEqual(s.cluster.cleanups(), [{ resource: s.resource, node: "nodeB" }]);
      assert.equal(s.privateAttribute("refused", "nodeB"), undefined);
      // A real failure stays for a person to see.
      assert.equal(s.privateAttribute("refused", "nodeC"), failed);
      s.setPrivateAttribute("refused", undefined, "nodeC");
    },
  );

  await t.step(
    "demote, then post-promote of another node repoints to its coordinates",
    async () => {
      assertCode(await s.run("demote"), OCF.SUCCESS);
      assert.deepEqual(decodePublishedPosition(s.privateAttribute("final") ?? ""), {
        idle: false,
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
      assert.equal(s.privateAttribute("final"), undefined, "a new master is up: cleared");
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
    assert.equal(s.privateAttribute("position"), undefined);
    assert.equal(s.serverPid(), undefined, "pid file removed");
  });
});
