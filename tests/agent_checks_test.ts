/**
 * The agent's optional checks against a real mariadbd (no Pacemaker), beside what
 * agent_standalone_test.ts covers: OCF_CHECK_LEVEL (level 0 never touches test_table; level 10
 * reads it, fails when it is gone, reports degraded rather than failed when it is locked) and
 * post_promote_script (runs after promote, once the server is writable; its failure only warns).
 * The agent creates its own datadir on a free port under a temp directory (agent_harness.ts).
 */
import assert from "node:assert/strict";
import { OCF } from "../ocf.ts";
import { AgentSetup, assertCode, CLONE_META } from "./agent_harness.ts";

Deno.test("OCF_CHECK_LEVEL: 0 never reads test_table, 10 reads it and tells failed from busy", async (t) => {
  await using s = await AgentSetup.create({ prefix: "prm-agent-checks-", resource: "chk_mysql" });
  assertCode(await s.run("start"), OCF.SUCCESS);
  await s.query("CREATE DATABASE prmchk");
  await s.query("CREATE TABLE prmchk.probe (i INT PRIMARY KEY)");
  await s.query("INSERT INTO prmchk.probe VALUES (1)");
  const table = { OCF_RESKEY_test_table: "prmchk.probe" };
  const deep = { ...table, OCF_CHECK_LEVEL: "10", OCF_RESKEY_CRM_meta_interval: "10000" };

  await t.step("both levels pass on a healthy server", async () => {
    assertCode(await s.run("monitor", table), OCF.SUCCESS);
    assertCode(await s.run("monitor", deep), OCF.SUCCESS);
  });

  await t.step("the table gone: level 0 still passes, level 10 fails naming it", async () => {
    await s.query("RENAME TABLE prmchk.probe TO prmchk.probe_away");
    try {
      assertCode(await s.run("monitor", table), OCF.SUCCESS);
      const r = await s.run("monitor", deep);
      assertCode(r, OCF.ERR_GENERIC);
      assert.match(r.exitReason ?? "", /probe/, "the exit reason names the table");
    } finally {
      await s.query("RENAME TABLE prmchk.probe_away TO prmchk.probe");
    }
    assertCode(await s.run("monitor", deep), OCF.SUCCESS);
  });

  await t.step("the table write-locked by a session: degraded (190), not failed", async () => {
    const locker = await s.connect();
    locker.on("error", () => {});
    try {
      await locker.query("LOCK TABLES prmchk.probe WRITE");
      const r = await s.run("monitor", { ...deep, OCF_RESKEY_CRM_meta_timeout: "8000" });
      console.log(`  level-10 monitor on a locked test_table: ${r.code} in ${r.ms} ms`);
      assertCode(r, OCF.DEGRADED);
      assert.equal(r.exitReason, undefined, "degraded is not a failure");
    } finally {
      locker.destroy();
    }
    assertCode(await s.run("monitor", deep), OCF.SUCCESS);
  });
});

Deno.test("post_promote_script: runs once writable after promote; its failure only warns", async (t) => {
  await using s = await AgentSetup.create({ prefix: "prm-agent-checks-", resource: "chk_mysql" });
  const marker = `${s.dir}/promoted.txt`;
  const good = `${s.dir}/post_promote_ok.sh`;
  const bad = `${s.dir}/post_promote_bad.sh`;
  // The script reads read_only through the server's socket as the OS root (unix_socket login):
  // it must already be 0 when the script runs.
  await Deno.writeTextFile(
    good,
    `#!/bin/sh\nmariadb -uroot -S ${s.socket} -N -e ` +
      `'SELECT @@global.read_only' > ${marker} 2>&1\necho done >> ${marker}\n`,
    { mode: 0o755 },
  );
  await Deno.writeTextFile(
    bad,
    `#!/bin/sh\necho ran > ${marker}\necho 'no luck here' >&2\nexit 3\n`,
    { mode: 0o755 },
  );
  await Deno.chmod(good, 0o755);
  await Deno.chmod(bad, 0o755);
  assertCode(await s.run("start", CLONE_META), OCF.SUCCESS);

  await t.step("a missing script is a configuration problem for validate-all", async () => {
    const r = await s.run("validate-all", {
      ...CLONE_META,
      OCF_RESKEY_post_promote_script: `${s.dir}/nope.sh`,
    });
    assertCode(r, OCF.ERR_INSTALLED);
    assert.match(r.exitReason ?? "", /post_promote_script/, "the exit reason names the parameter");
  });

  await t.step("the script runs after promote, with the server already writable", async () => {
    const script = { ...CLONE_META, OCF_RESKEY_post_promote_script: good };
    assertCode(await s.run("promote", script), OCF.SUCCESS);
    assert.equal(Deno.readTextFileSync(marker), "0\ndone\n");
    // Already promoted: promote is a no-op and does not run the script again.
    Deno.removeSync(marker);
    assertCode(await s.run("promote", script), OCF.SUCCESS);
    assert.throws(() => Deno.statSync(marker), Deno.errors.NotFound);
  });

  await t.step("a failing script: promote still succeeds, with a warning", async () => {
    assertCode(await s.run("demote", CLONE_META), OCF.SUCCESS);
    assert.equal(await s.readOnly(), 1);
    const r = await s.run("promote", { ...CLONE_META, OCF_RESKEY_post_promote_script: bad });
    assertCode(r, OCF.SUCCESS);
    assert.equal(Deno.readTextFileSync(marker), "ran\n", "the script ran");
    assert.equal(await s.readOnly(), 0);
    assert.equal(r.exitReason, undefined);
    // The failed script leaves no other trace than the agent's warning, which is what the
    // operator reads: that one line is checked (that it exists, not its wording).
    assert.ok(
      r.lines.some((l) => l.startsWith("WARNING:") && l.includes("post_promote_script")),
      r.stderr,
    );
  });

  assertCode(await s.run("stop", CLONE_META), OCF.SUCCESS);
});
