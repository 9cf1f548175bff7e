/**
 * The agent against a real mariadbd, without Pacemaker: the agent itself creates the datadir
 * (enable_creation), starts, monitors, promotes/demotes (read_only) and stops the server, on its
 * own port, socket and pid file under a temp directory (agent_harness.ts). The host's real
 * Pacemaker tools are used: outside a cluster they fail, and the agent must say so and go on.
 */
import assert from "node:assert/strict";
import type mysql from "mysql2/promise";
import { OCF } from "../ocf.ts";
import { processAlive, readPidFile } from "../mysqld.ts";
import { AgentSetup, assertCode, CLONE_META, killAndWait } from "./agent_harness.ts";

const PASSWORD = "pa'ss\\wo\"rd";
/** No 4-character run shared with the agent's words: the Logger masks such runs of a password. */
const REPLICATION_PASSWORD = "Zq7-xw9-Kp2";

function setup(): Promise<AgentSetup> {
  return AgentSetup.create({
    prefix: "prm-agent-sa-",
    resource: "sa_mysql",
    serverId: 7,
    myCnf: ["max_connections = 6"],
    client: { user: "prm_admin", password: PASSWORD },
    replication: { user: "repl", password: REPLICATION_PASSWORD },
  });
}

Deno.test("validate-all tells wrong values, missing pieces and permissions apart", async () => {
  await using s = await setup();
  assertCode(await s.run("validate-all"), OCF.SUCCESS);
  // Each case: the exit code, and what the exit reason (shown by crm_mon) must name.
  const cases: [Record<string, string>, number, RegExp][] = [
    [{ OCF_RESKEY_max_slave_lag: "soon" }, OCF.ERR_CONFIGURED, /max_slave_lag/],
    [{ OCF_RESKEY_replication_options: "SSL=1;DROP" }, OCF.ERR_CONFIGURED, /replication option/],
    [{ OCF_RESKEY_binary: "/usr/bin/mysqld_safe" }, OCF.ERR_CONFIGURED, /mysqld_safe/],
    [{ OCF_RESKEY_binary: "/nonexistent/mariadbd" }, OCF.ERR_INSTALLED, /\/nonexistent\/mariadbd/],
    [{ OCF_RESKEY_config: `${s.dir}/missing.cnf` }, OCF.ERR_INSTALLED, /missing\.cnf/],
    [{ OCF_RESKEY_credentials_file: `${s.dir}/nope` }, OCF.ERR_INSTALLED, /\/nope\b/],
    [{ OCF_RESKEY_enable_creation: "false" }, OCF.ERR_INSTALLED, /enable_creation/],
    [
      { ...CLONE_META, OCF_RESKEY_credentials_file: "" },
      OCF.ERR_CONFIGURED,
      /replication/,
    ],
  ];
  for (const [env, code, subject] of cases) {
    const r = await s.run("validate-all", env);
    assertCode(r, code);
    assert.match(r.exitReason ?? "", subject, JSON.stringify(env));
  }
  await Deno.chmod(s.credentialsFile, 0o644);
  const perm = await s.run("validate-all");
  assertCode(perm, OCF.ERR_PERM);
  assert.match(perm.exitReason ?? "", /644/, "the exit reason names the wrong mode");
  // A probe of a stopped resource with a broken configuration says "not running".
  assertCode(await s.run("monitor", { OCF_RESKEY_max_slave_lag: "x" }), OCF.NOT_RUNNING);
});

Deno.test("standalone lifecycle on a real mariadbd: start, monitor, busy, kill, stop", async (t) => {
  await using s = await setup();

  await t.step("monitor of a never started server is 7", async () => {
    assertCode(await s.run("monitor"), OCF.NOT_RUNNING);
  });

  await t.step("start creates the datadir and the logins, then the server answers", async () => {
    const r = await s.run("start");
    assertCode(r, OCF.SUCCESS);
    console.log(`  start (with datadir creation): ${r.ms} ms`);
    assert.ok(Deno.statSync(`${s.datadir}/mysql`).isDirectory, "datadir initialised");
    // The agent's login works (created by the init file), and a plain resource is writable.
    assert.equal(await s.readOnly(), 0);
    // The one-off init file with the passwords is gone.
    assert.throws(() => Deno.statSync(`${s.datadir}/prm-init.sql`), Deno.errors.NotFound);
  });

  await t.step("monitor 0, deep monitor 0, start again 0 on the same server", async () => {
    const m = await s.run("monitor", { OCF_RESKEY_CRM_meta_interval: "10000" });
    assertCode(m, OCF.SUCCESS);
    console.log(`  monitor: ${m.ms} ms`);
    assertCode(
      await s.run("monitor", { OCF_CHECK_LEVEL: "10", OCF_RESKEY_test_table: "mysql.db" }),
      OCF.SUCCESS,
    );
    const pid = s.serverPid();
    assertCode(await s.run("start"), OCF.SUCCESS);
    assert.equal(s.serverPid(), pid, "start of a running server is a no-op");
  });

  await t.step("demote sets read_only, promote clears it, both idempotent", async () => {
    assertCode(await s.run("demote"), OCF.SUCCESS);
    assert.equal(await s.readOnly(), 1);
    assertCode(await s.run("demote"), OCF.SUCCESS);
    assert.equal(await s.readOnly(), 1);
    assertCode(await s.run("promote"), OCF.SUCCESS);
    assert.equal(await s.readOnly(), 0);
    assertCode(await s.run("promote"), OCF.SUCCESS);
    assert.equal(await s.readOnly(), 0);
  });

  await t.step("demote does not hang on a session holding a write lock: it kills it", async () => {
    const blocker = await s.connect();
    blocker.on("error", () => {});
    try {
      await blocker.query("CREATE DATABASE IF NOT EXISTS prmtest");
      await blocker.query("CREATE TABLE IF NOT EXISTS prmtest.t (i INT)");
      await blocker.query("LOCK TABLES prmtest.t WRITE");
      const r = await s.run("demote", { OCF_RESKEY_CRM_meta_timeout: "30000" });
      assertCode(r, OCF.SUCCESS);
      console.log(`  demote past a LOCK TABLES ... WRITE session: ${r.ms} ms`);
      assert.equal(await s.readOnly(), 1);
      await assert.rejects(blocker.query("SELECT 1"), "the blocking session was killed");
    } finally {
      blocker.destroy();
    }
    assertCode(await s.run("promote"), OCF.SUCCESS);
  });

  await t.step("too many connections: degraded (190), not failed; back to 0 after", async () => {
    const held: mysql.Connection[] = [];
    try {
      // max_connections = 6, plus the one spare connection MariaDB keeps for SUPER users.
      for (let i = 0; i < 20; i++) {
        try {
          held.push(await s.connect());
        } catch (err) {
          assert.equal((err as { errno?: number }).errno, 1040);
          break;
        }
      }
      assert.ok(held.length >= 6, `held ${held.length}`);
      const r = await s.run("monitor", { OCF_RESKEY_CRM_meta_timeout: "8000" });
      assertCode(r, OCF.DEGRADED);
      assert.equal(r.exitReason, undefined, "degraded is not a failure");
      console.log(`  monitor with max_connections exhausted: ${r.code} in ${r.ms} ms`);
    } finally {
      for (const c of held) await c.end();
    }
    assertCode(await s.run("monitor"), OCF.SUCCESS);
  });

  await t.step("kill -9 of mysqld: monitor says not running; start recovers", async () => {
    const pid = s.serverPid()!;
    await killAndWait([pid]);
    // What a crash leaves: a pid file naming a dead process, and the socket file.
    assert.equal(readPidFile(s.pidFile), pid);
    assert.ok(Deno.statSync(s.socket).isSocket);
    assertCode(await s.run("monitor"), OCF.NOT_RUNNING);
    const st = await s.run("start");
    assertCode(st, OCF.SUCCESS);
    console.log(`  start after kill -9 (crash recovery): ${st.ms} ms`);
    const pid2 = s.serverPid()!;
    assert.notEqual(pid2, pid);
    assert.ok(processAlive(pid2, "mariadbd"));
    assert.equal(await s.readOnly(), 0);
  });

  await t.step("stop, stop again, monitor 7; pid file and socket cleaned", async () => {
    const pid = s.serverPid()!;
    const r = await s.run("stop");
    assertCode(r, OCF.SUCCESS);
    console.log(`  stop: ${r.ms} ms`);
    assert.ok(!processAlive(pid));
    assertCode(await s.run("stop"), OCF.SUCCESS);
    assertCode(await s.run("monitor"), OCF.NOT_RUNNING);
    assert.throws(() => Deno.statSync(s.pidFile), Deno.errors.NotFound);
    assert.throws(() => Deno.statSync(s.socket), Deno.errors.NotFound);
  });

  await t.step("start fails clearly with a wrong binary or a server that dies", async () => {
    const wrong = await s.run("start", { OCF_RESKEY_binary: "/usr/bin/true-not-there" });
    assertCode(wrong, OCF.ERR_INSTALLED);
    assert.match(wrong.exitReason ?? "", /true-not-there/, "the exit reason names the binary");
    const dies = await s.run("start", { OCF_RESKEY_additional_parameters: "--no-such-option=1" });
    assertCode(dies, OCF.ERR_GENERIC);
    // The exit reason quotes the server's own complaint from its error log.
    assert.match(dies.exitReason ?? "", /no-such-option/);
    console.log(`  failed start detected in ${dies.ms} ms`);
    assertCode(await s.run("monitor"), OCF.NOT_RUNNING);
  });

  await t.step(
    "promotable clone outside a cluster: starts read-only, promote/demote work",
    async () => {
      const st = await s.run("start", CLONE_META);
      assertCode(st, OCF.SUCCESS);
      // The host's tools cannot reach a cluster: the agent reports the failing tool and goes
      // on. Only the log shows that the real tools were tried, so that is checked: a warning
      // that names one of them.
      const tool = /\b(crm_attribute|attrd_updater|crm_node)\b/;
      assert.ok(st.lines.some((l) => l.startsWith("WARNING:") && tool.test(l)), st.stderr);
      assert.equal(await s.readOnly(), 1, "a clone instance always starts unpromoted");
      assertCode(await s.run("monitor", CLONE_META), OCF.SUCCESS);
      assertCode(await s.run("promote", CLONE_META), OCF.SUCCESS);
      assert.equal(await s.readOnly(), 0);
      assertCode(await s.run("monitor", CLONE_META), OCF.RUNNING_PROMOTED);
      assertCode(await s.run("demote", CLONE_META), OCF.SUCCESS);
      assert.equal(await s.readOnly(), 1);
      assertCode(await s.run("monitor", CLONE_META), OCF.SUCCESS);
      const n = await s.run("notify", {
        ...CLONE_META,
        ...s.notify("post", "promote", { promote: ["elsewhere"] }),
      });
      assertCode(n, OCF.SUCCESS);
      assertCode(await s.run("stop", CLONE_META), OCF.SUCCESS);
    },
  );

  await t.step("no password in any output", () => {
    assert.ok(s.results.length > 20);
    for (const r of s.results) {
      for (const secret of [PASSWORD, REPLICATION_PASSWORD]) {
        assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), r.stderr);
      }
    }
  });
});
