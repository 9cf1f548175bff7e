/**
 * The agent against a real mariadbd, without Pacemaker: the agent itself creates the datadir
 * (enable_creation), starts, monitors, promotes/demotes (read_only) and stops the server, on its
 * own port, socket and pid file under a temp directory. Outside a cluster crm_attribute and
 * friends fail: the agent must log that and go on.
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import { OCF } from "../ocf.ts";
import { freePort } from "./mariadb_server.ts";
import { trustedTempDir } from "./trusted_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const PASSWORD = "pa'ss\\wo\"rd";
/**
 * The replication password. The Logger masks every 4-character run of a password, also inside
 * the agent's own words, so a test password must share none with them ("replpw" masked the
 * "repl" of "replication").
 */
const REPL_PASSWORD = "Zq7-xw9-Kp2";

interface Result {
  code: number;
  stderr: string;
  ms: number;
}

interface Setup {
  dir: string;
  env: Record<string, string>;
  port: number;
  stderrs: string[];
}

async function makeSetup(): Promise<Setup> {
  const dir = trustedTempDir("prm-agent-sa-", 0o755);
  await Deno.chmod(dir, 0o755);
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/my.cnf`,
    [
      "[mysqld]",
      "server_id = 7",
      "log_bin = mysql-bin",
      "innodb_buffer_pool_size = 32M",
      `port = ${port}`,
      "bind-address = 127.0.0.1",
      "skip-name-resolve",
      "max_connections = 6",
      "performance_schema = OFF",
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(
    `${dir}/creds.cnf`,
    `[client]\nuser = prm_admin\npassword = "${
      PASSWORD.replaceAll("\\", "\\\\").replaceAll('"', '\\"')
    }"\n` +
      `[replication]\nuser = repl\npassword = ${REPL_PASSWORD}\n`,
    { mode: 0o600 },
  );
  await Deno.chmod(`${dir}/creds.cnf`, 0o600);
  const env: Record<string, string> = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    OCF_ROOT: "/usr/lib/ocf",
    OCF_RESOURCE_INSTANCE: "sa_mysql",
    OCF_RESKEY_CRM_meta_timeout: "60000",
    HA_RSCTMP: `${dir}/state`,
    OCF_RESKEY_config: `${dir}/my.cnf`,
    OCF_RESKEY_datadir: `${dir}/data`,
    OCF_RESKEY_pid: `${dir}/run/mysqld.pid`,
    OCF_RESKEY_socket: `${dir}/run/mysqld.sock`,
    OCF_RESKEY_log: `${dir}/log/error.log`,
    OCF_RESKEY_enable_creation: "true",
    OCF_RESKEY_credentials_file: `${dir}/creds.cnf`,
  };
  return { dir, env, port, stderrs: [] };
}

/** The agent's password, with the escaping the credentials file uses, resolved. */
function resolvedPassword(): string {
  return PASSWORD;
}

async function agent(
  s: Setup,
  action: string,
  extra: Record<string, string> = {},
): Promise<Result> {
  const t0 = performance.now();
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}agent.ts`, action],
    env: { ...s.env, ...extra },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  s.stderrs.push(stderr);
  return { code: out.code, stderr, ms: Math.round(performance.now() - t0) };
}

function connectAdmin(s: Setup): Promise<mysql.Connection> {
  return mysql.createConnection({
    socketPath: `${s.dir}/run/mysqld.sock`,
    user: "prm_admin",
    password: resolvedPassword(),
  });
}

async function readOnly(s: Setup): Promise<number> {
  const c = await connectAdmin(s);
  try {
    const [rows] = await c.query("SELECT @@global.read_only AS ro");
    return Number((rows as { ro: number }[])[0].ro);
  } finally {
    await c.end();
  }
}

function serverPid(s: Setup): number {
  return Number(Deno.readTextFileSync(`${s.dir}/run/mysqld.pid`).trim());
}

function alive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}

async function cleanup(s: Setup): Promise<void> {
  try {
    const pid = serverPid(s);
    if (alive(pid)) Deno.kill(pid, "SIGKILL");
    const until = Date.now() + 10_000;
    while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  } catch {
    // No pid file: nothing runs.
  }
  await Deno.remove(s.dir, { recursive: true });
}

Deno.test("validate-all tells wrong values, missing pieces and permissions apart", async () => {
  const s = await makeSetup();
  try {
    assert.equal((await agent(s, "validate-all")).code, OCF.SUCCESS);
    const cases: [Record<string, string>, number, RegExp][] = [
      [{ OCF_RESKEY_max_slave_lag: "soon" }, OCF.ERR_CONFIGURED, /max_slave_lag/],
      [{ OCF_RESKEY_replication_options: "SSL=1;DROP" }, OCF.ERR_CONFIGURED, /replication option/],
      [{ OCF_RESKEY_binary: "/usr/bin/mysqld_safe" }, OCF.ERR_CONFIGURED, /mysqld_safe/],
      [{ OCF_RESKEY_binary: "/nonexistent/mariadbd" }, OCF.ERR_INSTALLED, /binary/],
      [{ OCF_RESKEY_config: `${s.dir}/missing.cnf` }, OCF.ERR_INSTALLED, /Configuration file/],
      [{ OCF_RESKEY_credentials_file: `${s.dir}/nope` }, OCF.ERR_INSTALLED, /does not exist/],
      [{ OCF_RESKEY_enable_creation: "false" }, OCF.ERR_INSTALLED, /enable_creation/],
      [
        { OCF_RESKEY_CRM_meta_promotable: "true", OCF_RESKEY_credentials_file: "" },
        OCF.ERR_CONFIGURED,
        /replication login/,
      ],
    ];
    for (const [env, code, reason] of cases) {
      const r = await agent(s, "validate-all", env);
      assert.equal(r.code, code, `${JSON.stringify(env)}: ${r.stderr}`);
      assert.match(r.stderr, /^ocf-exit-reason:/m);
      assert.match(r.stderr.match(/^ocf-exit-reason:.*$/m)![0], reason);
    }
    await Deno.chmod(`${s.dir}/creds.cnf`, 0o644);
    const perm = await agent(s, "validate-all");
    assert.equal(perm.code, OCF.ERR_PERM, perm.stderr);
    assert.match(perm.stderr, /ocf-exit-reason:.*mode 644/);
    // A probe of a stopped resource with a broken configuration says "not running".
    assert.equal(
      (await agent(s, "monitor", { OCF_RESKEY_max_slave_lag: "x" })).code,
      OCF.NOT_RUNNING,
    );
  } finally {
    await cleanup(s);
  }
});

Deno.test("standalone lifecycle on a real mariadbd: start, monitor, busy, kill, stop", async (t) => {
  const s = await makeSetup();
  try {
    await t.step("monitor of a never started server is 7", async () => {
      const r = await agent(s, "monitor");
      assert.equal(r.code, OCF.NOT_RUNNING, r.stderr);
    });
    await t.step("start creates the datadir and the logins, then the server answers", async () => {
      const r = await agent(s, "start");
      assert.equal(r.code, OCF.SUCCESS, r.stderr);
      assert.match(r.stderr, /Initialised/);
      assert.match(r.stderr, /Pacemaker not reachable|accepts connections/);
      console.log(`  start (with datadir creation): ${r.ms} ms`);
      assert.equal(await readOnly(s), 0, "a plain resource is a writable server");
      // The one-off init file with the passwords is gone.
      assert.throws(() => Deno.statSync(`${s.dir}/data/prm-init.sql`));
    });
    await t.step("monitor 0, deep monitor 0, start again 0", async () => {
      const m = await agent(s, "monitor", { OCF_RESKEY_CRM_meta_interval: "10000" });
      assert.equal(m.code, OCF.SUCCESS, m.stderr);
      console.log(`  monitor: ${m.ms} ms`);
      const deep = await agent(s, "monitor", {
        OCF_CHECK_LEVEL: "10",
        OCF_RESKEY_test_table: "mysql.db",
      });
      assert.equal(deep.code, OCF.SUCCESS, deep.stderr);
      const again = await agent(s, "start");
      assert.equal(again.code, OCF.SUCCESS, again.stderr);
      assert.match(again.stderr, /already running/);
    });
    await t.step("demote sets read_only, promote clears it, both idempotent", async () => {
      assert.equal((await agent(s, "demote")).code, OCF.SUCCESS);
      assert.equal(await readOnly(s), 1);
      assert.equal((await agent(s, "demote")).code, OCF.SUCCESS);
      assert.equal((await agent(s, "promote")).code, OCF.SUCCESS);
      assert.equal(await readOnly(s), 0);
      assert.equal((await agent(s, "promote")).code, OCF.SUCCESS);
    });
    await t.step(
      "demote does not hang on a session holding a write lock: it kills it",
      async () => {
        const blocker = await connectAdmin(s);
        blocker.on("error", () => {});
        await blocker.query("CREATE DATABASE IF NOT EXISTS prmtest");
        await blocker.query("CREATE TABLE IF NOT EXISTS prmtest.t (i INT)");
        await blocker.query("LOCK TABLES prmtest.t WRITE");
        try {
          const r = await agent(s, "demote", { OCF_RESKEY_CRM_meta_timeout: "30000" });
          assert.equal(r.code, OCF.SUCCESS, r.stderr);
          assert.match(r.stderr, /read_only blocked .*killing 1 sessions/);
          console.log(`  demote past a LOCK TABLES ... WRITE session: ${r.ms} ms`);
          assert.equal(await readOnly(s), 1);
          await assert.rejects(blocker.query("SELECT 1"));
        } finally {
          blocker.destroy();
        }
        assert.equal((await agent(s, "promote")).code, OCF.SUCCESS);
      },
    );
    await t.step("too many connections: degraded (190), not failed; back to 0 after", async () => {
      const held: mysql.Connection[] = [];
      try {
        // max_connections = 6, plus the one spare connection MariaDB keeps for SUPER users.
        for (let i = 0; i < 20; i++) {
          try {
            held.push(await connectAdmin(s));
          } catch (err) {
            assert.equal((err as { errno?: number }).errno, 1040);
            break;
          }
        }
        assert.ok(held.length >= 6, `held ${held.length}`);
        const r = await agent(s, "monitor", { OCF_RESKEY_CRM_meta_timeout: "8000" });
        assert.equal(r.code, OCF.DEGRADED, r.stderr);
        assert.match(r.stderr, /busy/);
        console.log(`  monitor with max_connections exhausted: ${r.code} in ${r.ms} ms`);
      } finally {
        for (const c of held) await c.end();
      }
      const r = await agent(s, "monitor");
      assert.equal(r.code, OCF.SUCCESS, r.stderr);
    });
    await t.step("kill -9 of mysqld: monitor says not running; start recovers", async () => {
      const pid = serverPid(s);
      Deno.kill(pid, "SIGKILL");
      const until = Date.now() + 10_000;
      while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
      const r = await agent(s, "monitor");
      assert.equal(r.code, OCF.NOT_RUNNING, r.stderr);
      const st = await agent(s, "start");
      assert.equal(st.code, OCF.SUCCESS, st.stderr);
      assert.match(st.stderr, /Removed leftovers/);
      console.log(`  start after kill -9 (crash recovery): ${st.ms} ms`);
    });
    await t.step("stop, stop again, monitor 7; pid file and socket cleaned", async () => {
      const r = await agent(s, "stop");
      assert.equal(r.code, OCF.SUCCESS, r.stderr);
      console.log(`  stop: ${r.ms} ms`);
      assert.equal((await agent(s, "stop")).code, OCF.SUCCESS);
      assert.equal((await agent(s, "monitor")).code, OCF.NOT_RUNNING);
      assert.throws(() => Deno.statSync(`${s.dir}/run/mysqld.pid`));
      assert.throws(() => Deno.statSync(`${s.dir}/run/mysqld.sock`));
    });
    await t.step("start fails clearly with a wrong binary or a server that dies", async () => {
      const wrong = await agent(s, "start", { OCF_RESKEY_binary: "/usr/bin/true-not-there" });
      assert.equal(wrong.code, OCF.ERR_INSTALLED, wrong.stderr);
      assert.match(wrong.stderr, /ocf-exit-reason:.*true-not-there/);
      const dies = await agent(s, "start", {
        OCF_RESKEY_additional_parameters: "--no-such-option=1",
      });
      assert.equal(dies.code, OCF.ERR_GENERIC, dies.stderr);
      assert.match(
        dies.stderr,
        /ocf-exit-reason:Server exited with code \d+ during start: .*no-such-option/,
      );
      console.log(`  failed start detected in ${dies.ms} ms`);
      assert.equal((await agent(s, "monitor")).code, OCF.NOT_RUNNING);
    });
    await t.step(
      "promotable clone outside a cluster: starts read-only, promote/demote work",
      async () => {
        const clone = { OCF_RESKEY_CRM_meta_promotable: "true", OCF_RESKEY_CRM_meta_clone: "0" };
        const st = await agent(s, "start", clone);
        assert.equal(st.code, OCF.SUCCESS, st.stderr);
        assert.match(st.stderr, /Pacemaker not reachable/);
        assert.equal(await readOnly(s), 1, "a clone instance always starts unpromoted");
        assert.equal((await agent(s, "monitor", clone)).code, OCF.SUCCESS);
        assert.equal((await agent(s, "promote", clone)).code, OCF.SUCCESS);
        assert.equal(await readOnly(s), 0);
        assert.equal((await agent(s, "monitor", clone)).code, OCF.RUNNING_PROMOTED);
        assert.equal((await agent(s, "demote", clone)).code, OCF.SUCCESS);
        assert.equal((await agent(s, "monitor", clone)).code, OCF.SUCCESS);
        const n = await agent(s, "notify", {
          ...clone,
          OCF_RESKEY_CRM_meta_notify_type: "post",
          OCF_RESKEY_CRM_meta_notify_operation: "promote",
          OCF_RESKEY_CRM_meta_notify_promote_uname: "elsewhere",
        });
        assert.equal(n.code, OCF.SUCCESS, n.stderr);
        assert.equal((await agent(s, "stop", clone)).code, OCF.SUCCESS);
      },
    );
    await t.step("no password in any log line", () => {
      for (const text of s.stderrs) {
        assert.ok(!text.includes(PASSWORD), text);
        assert.ok(!text.includes(REPL_PASSWORD), text);
      }
    });
  } finally {
    await cleanup(s);
  }
});
