/**
 * The agent's optional checks against a real mariadbd (no Pacemaker), beside what
 * agent_standalone_test.ts covers: OCF_CHECK_LEVEL (level 0 never touches test_table; level 10
 * reads it, fails when it is gone, reports degraded rather than failed when it is locked) and
 * post_promote_script (runs after promote, once the server is writable; its failure only warns).
 * The agent creates its own datadir on a free port under a temp directory.
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import { OCF } from "../ocf.ts";
import { freePort } from "./mariadb_server.ts";
import { trustedTempDir } from "./trusted_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;

interface Setup {
  dir: string;
  env: Record<string, string>;
}

interface Result {
  code: number;
  stderr: string;
}

async function makeSetup(): Promise<Setup> {
  const dir = trustedTempDir("prm-agent-checks-", 0o755);
  await Deno.chmod(dir, 0o755);
  await Deno.writeTextFile(
    `${dir}/my.cnf`,
    [
      "[mysqld]",
      "server_id = 11",
      "log_bin = mysql-bin",
      "innodb_buffer_pool_size = 32M",
      `port = ${freePort()}`,
      "bind-address = 127.0.0.1",
      "skip-name-resolve",
      "performance_schema = OFF",
      "",
    ].join("\n"),
  );
  await Deno.writeTextFile(
    `${dir}/creds.cnf`,
    "[client]\nuser = prm_chk\npassword = chkpw\n[replication]\nuser = repl\npassword = rpw\n",
    { mode: 0o600 },
  );
  await Deno.chmod(`${dir}/creds.cnf`, 0o600);
  return {
    dir,
    env: {
      PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
      OCF_ROOT: "/usr/lib/ocf",
      OCF_RESOURCE_INSTANCE: "chk_mysql",
      OCF_RESKEY_CRM_meta_timeout: "60000",
      HA_RSCTMP: `${dir}/state`,
      OCF_RESKEY_config: `${dir}/my.cnf`,
      OCF_RESKEY_datadir: `${dir}/data`,
      OCF_RESKEY_pid: `${dir}/run/mysqld.pid`,
      OCF_RESKEY_socket: `${dir}/run/mysqld.sock`,
      OCF_RESKEY_log: `${dir}/log/error.log`,
      OCF_RESKEY_enable_creation: "true",
      OCF_RESKEY_credentials_file: `${dir}/creds.cnf`,
    },
  };
}

async function agent(s: Setup, action: string, extra: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}agent.ts`, action],
    env: { ...s.env, ...extra },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
    // A hung action must fail the test, not hang it (Pacemaker would time it out too).
    signal: AbortSignal.timeout(60_000),
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) } as Result;
}

function connect(s: Setup): Promise<mysql.Connection> {
  return mysql.createConnection({
    socketPath: `${s.dir}/run/mysqld.sock`,
    user: "prm_chk",
    password: "chkpw",
  });
}

async function query(s: Setup, sql: string): Promise<Record<string, unknown>[]> {
  const c = await connect(s);
  try {
    const [rows] = await c.query(sql);
    return Array.isArray(rows) ? rows as Record<string, unknown>[] : [];
  } finally {
    await c.end();
  }
}

function alive(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

async function cleanup(s: Setup): Promise<void> {
  try {
    const pid = Number(Deno.readTextFileSync(`${s.dir}/run/mysqld.pid`).trim());
    if (pid > 0 && alive(pid)) Deno.kill(pid, "SIGKILL");
    const until = Date.now() + 10_000;
    while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  } catch {
    // No pid file: nothing runs.
  }
  await Deno.remove(s.dir, { recursive: true });
}

Deno.test("OCF_CHECK_LEVEL: 0 never reads test_table, 10 reads it and tells failed from busy", async (t) => {
  const s = await makeSetup();
  try {
    const st = await agent(s, "start");
    assert.equal(st.code, OCF.SUCCESS, st.stderr);
    await query(s, "CREATE DATABASE prmchk");
    await query(s, "CREATE TABLE prmchk.probe (i INT PRIMARY KEY)");
    await query(s, "INSERT INTO prmchk.probe VALUES (1)");
    const table = { OCF_RESKEY_test_table: "prmchk.probe" };
    const deep = { ...table, OCF_CHECK_LEVEL: "10", OCF_RESKEY_CRM_meta_interval: "10000" };

    await t.step("both levels pass on a healthy server", async () => {
      assert.equal((await agent(s, "monitor", table)).code, OCF.SUCCESS);
      const r = await agent(s, "monitor", deep);
      assert.equal(r.code, OCF.SUCCESS, r.stderr);
    });

    await t.step("the table gone: level 0 still passes, level 10 fails naming it", async () => {
      await query(s, "RENAME TABLE prmchk.probe TO prmchk.probe_away");
      try {
        const shallow = await agent(s, "monitor", table);
        assert.equal(shallow.code, OCF.SUCCESS, shallow.stderr);
        const r = await agent(s, "monitor", deep);
        assert.equal(r.code, OCF.ERR_GENERIC, r.stderr);
        assert.match(r.stderr, /ocf-exit-reason:.*(probe|doesn't exist)/);
      } finally {
        await query(s, "RENAME TABLE prmchk.probe_away TO prmchk.probe");
      }
      assert.equal((await agent(s, "monitor", deep)).code, OCF.SUCCESS);
    });

    await t.step("the table write-locked by a session: degraded (190), not failed", async () => {
      const locker = await connect(s);
      locker.on("error", () => {});
      try {
        await locker.query("LOCK TABLES prmchk.probe WRITE");
        const t0 = Date.now();
        const r = await agent(s, "monitor", { ...deep, OCF_RESKEY_CRM_meta_timeout: "8000" });
        console.log(
          `  level-10 monitor on a locked test_table: ${r.code} in ${Date.now() - t0} ms`,
        );
        assert.equal(r.code, OCF.DEGRADED, r.stderr);
        assert.match(r.stderr, /stuck|busy/);
      } finally {
        locker.destroy();
      }
      assert.equal((await agent(s, "monitor", deep)).code, OCF.SUCCESS);
    });
  } finally {
    await cleanup(s);
  }
});

Deno.test("post_promote_script: runs once writable after promote; its failure only warns", async (t) => {
  const s = await makeSetup();
  const clone = { OCF_RESKEY_CRM_meta_promotable: "true", OCF_RESKEY_CRM_meta_clone: "0" };
  const marker = `${s.dir}/promoted.txt`;
  const good = `${s.dir}/post_promote_ok.sh`;
  const bad = `${s.dir}/post_promote_bad.sh`;
  // The script reads read_only through the server's socket as the OS root (unix_socket login):
  // it must already be 0 when the script runs.
  await Deno.writeTextFile(
    good,
    `#!/bin/sh\nmariadb -uroot -S ${s.dir}/run/mysqld.sock -N -e ` +
      `'SELECT @@global.read_only' > ${marker} 2>&1\necho done >> ${marker}\n`,
    { mode: 0o755 },
  );
  await Deno.writeTextFile(bad, "#!/bin/sh\necho 'no luck here' >&2\nexit 3\n", { mode: 0o755 });
  await Deno.chmod(good, 0o755);
  await Deno.chmod(bad, 0o755);
  try {
    const st = await agent(s, "start", clone);
    assert.equal(st.code, OCF.SUCCESS, st.stderr);

    await t.step("a missing script is a configuration problem for validate-all", async () => {
      const r = await agent(s, "validate-all", {
        ...clone,
        OCF_RESKEY_post_promote_script: `${s.dir}/nope.sh`,
      });
      assert.notEqual(r.code, OCF.SUCCESS, r.stderr);
      assert.match(r.stderr, /ocf-exit-reason:.*post_promote_script/);
    });

    await t.step("the script runs after promote, with the server already writable", async () => {
      const r = await agent(s, "promote", { ...clone, OCF_RESKEY_post_promote_script: good });
      assert.equal(r.code, OCF.SUCCESS, r.stderr);
      assert.match(r.stderr, /post_promote_script succeeded/);
      const promotedLine = r.stderr.search(/Promoted: writable/);
      const scriptLine = r.stderr.search(/post_promote_script succeeded/);
      assert.ok(promotedLine >= 0 && promotedLine < scriptLine, r.stderr);
      assert.equal(Deno.readTextFileSync(marker), "0\ndone\n");
      // Already promoted: promote is a no-op and does not run the script again.
      Deno.removeSync(marker);
      const again = await agent(s, "promote", { ...clone, OCF_RESKEY_post_promote_script: good });
      assert.equal(again.code, OCF.SUCCESS, again.stderr);
      assert.throws(() => Deno.statSync(marker));
    });

    await t.step("a failing script: promote still succeeds, with a warning", async () => {
      assert.equal((await agent(s, "demote", clone)).code, OCF.SUCCESS);
      const r = await agent(s, "promote", { ...clone, OCF_RESKEY_post_promote_script: bad });
      assert.equal(r.code, OCF.SUCCESS, r.stderr);
      assert.match(r.stderr, /WARN.*post_promote_script exited 3: no luck here/);
      const [ro] = await query(s, "SELECT @@global.read_only AS ro");
      assert.equal(Number(ro.ro), 0);
    });

    assert.equal((await agent(s, "stop", clone)).code, OCF.SUCCESS);
  } finally {
    await cleanup(s);
  }
});
