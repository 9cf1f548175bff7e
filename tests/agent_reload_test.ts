/**
 * OCF 1.1 on a real mariadbd with fake Pacemaker tools (agent_harness.ts): the clone shape
 * checks (notify=true and promoted-max=1 or start, promote and validate-all refuse with
 * OCF_ERR_CONFIGURED and an exit reason; a running master is not taken down by a monitor), and
 * reload-agent applying semi-sync and the heartbeat writer to the running server without a
 * restart (same pid), and failing on a login that does not work.
 */
import assert from "node:assert/strict";
import { OCF } from "../ocf.ts";
import { AgentSetup, assertCode } from "./agent_harness.ts";

Deno.test("clone shape and reload-agent", async (t) => {
  await using s = await AgentSetup.create({
    prefix: "prm-agent-reload-",
    clone: true,
    pacemaker: true,
  });
  const noNotify = { OCF_RESKEY_CRM_meta_notify: "false" };

  await t.step(
    "without notify=true: validate-all and start refuse with an exit reason",
    async () => {
      for (const action of ["validate-all", "start"]) {
        const r = await s.run(action, noNotify);
        assertCode(r, OCF.ERR_CONFIGURED);
        assert.match(r.exitReason ?? "", /notify=true/, action);
      }
      const two = await s.run("start", { OCF_RESKEY_CRM_meta_promoted_max: "2" });
      assertCode(two, OCF.ERR_CONFIGURED);
      assert.match(two.exitReason ?? "", /promoted-max=2/);
    },
  );

  await t.step("a promoted server keeps running when the clone's shape changes", async () => {
    assertCode(await s.run("start"), OCF.SUCCESS);
    assertCode(await s.run("promote"), OCF.SUCCESS);
    const r = await s.run("monitor", { ...noNotify, OCF_RESKEY_CRM_meta_interval: "2000" });
    assertCode(r, OCF.RUNNING_PROMOTED);
    assert.ok(
      r.lines.some((l) => /ERROR: .*notify=true/.test(l)),
      "the monitor says what is wrong",
    );
    assertCode(await s.run("promote", noNotify), OCF.ERR_CONFIGURED);
  });

  await t.step(
    "reload-agent turns semi-sync and the heartbeat on, then off, same pid",
    async () => {
      const pid = s.serverPid();
      const on = {
        OCF_RESKEY_semi_sync: "true",
        OCF_RESKEY_semi_sync_timeout: "1500",
        OCF_RESKEY_heartbeat: "true",
        OCF_RESKEY_heartbeat_interval: "2",
      };
      assertCode(await s.run("reload-agent", on), OCF.SUCCESS);
      const [v] = await s.query<Record<string, unknown>[]>(
        "SELECT @@global.rpl_semi_sync_master_enabled AS m, @@global.rpl_semi_sync_master_timeout AS t, " +
          "@@global.event_scheduler AS sched",
      );
      assert.deepEqual([Number(v.m), Number(v.t), String(v.sched)], [1, 1500, "ON"]);
      const [ev] = await s.query<Record<string, unknown>[]>(
        "SELECT STATUS AS st, INTERVAL_VALUE AS iv FROM information_schema.EVENTS " +
          "WHERE EVENT_SCHEMA = 'percona' AND EVENT_NAME = 'heartbeat_prm_writer'",
      );
      assert.deepEqual([ev?.st, Number(ev?.iv)], ["ENABLED", 2]);
      assertCode(await s.run("reload-agent", {}), OCF.SUCCESS);
      const [off] = await s.query<Record<string, unknown>[]>(
        "SELECT @@global.rpl_semi_sync_master_enabled AS m",
      );
      assert.equal(Number(off.m), 0);
      const [ev2] = await s.query<Record<string, unknown>[]>(
        "SELECT STATUS AS st FROM information_schema.EVENTS " +
          "WHERE EVENT_SCHEMA = 'percona' AND EVENT_NAME = 'heartbeat_prm_writer'",
      );
      assert.notEqual(ev2?.st, "ENABLED");
      assert.equal(s.serverPid(), pid, "mysqld was not restarted");
    },
  );

  await t.step("reload-agent with bad values or a login that does not work fails", async () => {
    const bad = await s.run("reload-agent", { OCF_RESKEY_max_slave_lag: "soon" });
    assertCode(bad, OCF.ERR_CONFIGURED);
    assert.match(bad.exitReason ?? "", /max_slave_lag/);
    const wrong = await s.run("reload-agent", {
      OCF_RESKEY_credentials_file: "",
      OCF_RESKEY_test_user: "nobody_here",
      OCF_RESKEY_test_passwd: "Qv7-unknown-login-9Zk",
      OCF_RESKEY_replication_user: "nobody_repl",
    });
    assertCode(wrong, OCF.ERR_GENERIC);
    assert.match(wrong.exitReason ?? "", /^Reload: cannot apply/);
  });
});
