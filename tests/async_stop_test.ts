/**
 * async_stop's other half on a real mariadbd, without Pacemaker: while the server of an
 * asynchronous stop is still shutting down, monitor reports it not running, and start waits for
 * it within the start timeout, then fails with a clear reason instead of starting a second server
 * on the same datadir; once the old process is gone, start succeeds.
 *
 * The "still shutting down" server is simulated by freezing it (SIGSTOP) and writing the agent's
 * state file as its stop action does (the pid of the server being stopped).
 */
import assert from "node:assert/strict";
import { OCF } from "../ocf.ts";
import { freePort } from "./mariadb_server.ts";
import { trustedTempDir } from "./trusted_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;

function alive(pid: number): boolean {
  try {
    return !/\) [ZX] /.test(Deno.readTextFileSync(`/proc/${pid}/stat`));
  } catch {
    return false;
  }
}

async function agent(env: Record<string, string>, action: string, timeoutMs = 60_000) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}agent.ts`, action],
    env: { ...env, OCF_RESKEY_CRM_meta_timeout: String(timeoutMs) },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("async_stop: monitor says not running, start waits for the old server then fails or goes on", async () => {
  const dir = trustedTempDir("prm-async-stop-", 0o755);
  await Deno.chmod(dir, 0o755);
  const port = freePort();
  await Deno.writeTextFile(
    `${dir}/my.cnf`,
    `[mysqld]\nserver_id = 9\nlog_bin = mysql-bin\ninnodb_buffer_pool_size = 32M\nport = ${port}\n` +
      "bind-address = 127.0.0.1\nskip-name-resolve\nperformance_schema = OFF\n",
  );
  await Deno.writeTextFile(`${dir}/creds.cnf`, "[client]\nuser = prm_admin\npassword = pw\n", {
    mode: 0o600,
  });
  await Deno.chmod(`${dir}/creds.cnf`, 0o600);
  const env: Record<string, string> = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    OCF_ROOT: "/usr/lib/ocf",
    OCF_RESOURCE_INSTANCE: "as_mysql",
    HA_RSCTMP: `${dir}/state`,
    OCF_RESKEY_config: `${dir}/my.cnf`,
    OCF_RESKEY_datadir: `${dir}/data`,
    OCF_RESKEY_pid: `${dir}/run/mysqld.pid`,
    OCF_RESKEY_socket: `${dir}/run/mysqld.sock`,
    OCF_RESKEY_log: `${dir}/log/error.log`,
    OCF_RESKEY_enable_creation: "true",
    OCF_RESKEY_credentials_file: `${dir}/creds.cnf`,
    OCF_RESKEY_async_stop: "true",
  };
  const pids: number[] = [];
  try {
    const started = await agent(env, "start");
    assert.equal(started.code, OCF.SUCCESS, started.stderr);
    const pid = Number(Deno.readTextFileSync(`${dir}/run/mysqld.pid`).trim());
    pids.push(pid);
    // The server "is shutting down": frozen, and recorded as the async stop records it.
    Deno.kill(pid, "SIGSTOP");
    Deno.mkdirSync(`${dir}/state`, { recursive: true });
    Deno.writeTextFileSync(
      `${dir}/state/mysql_prm-as_mysql.state.json`,
      JSON.stringify({ stoppingPid: pid }),
    );
    const mon = await agent(env, "monitor");
    assert.equal(mon.code, OCF.NOT_RUNNING, mon.stderr);
    const t0 = Date.now();
    // 15 s timeout: the agent keeps a margin and 10 s for itself, so it waits about 3.5 s.
    const refused = await agent(env, "start", 15_000);
    const waited = Date.now() - t0;
    assert.equal(refused.code, OCF.ERR_GENERIC, refused.stderr);
    assert.match(refused.stderr, /Waiting for server pid \d+ to finish its shutdown/);
    assert.match(
      refused.stderr,
      /still shutting down; not starting a second one on .*\/data/,
    );
    assert.ok(waited >= 3_000, `start waited ${waited} ms for the old server`);
    assert.equal(Number(Deno.readTextFileSync(`${dir}/run/mysqld.pid`).trim()), pid);
    assert.ok(alive(pid));
    // Now it really shuts down: start waits for it and then starts a new server.
    Deno.kill(pid, "SIGTERM");
    Deno.kill(pid, "SIGCONT");
    const again = await agent(env, "start");
    assert.equal(again.code, OCF.SUCCESS, again.stderr);
    assert.ok(!alive(pid));
    const pid2 = Number(Deno.readTextFileSync(`${dir}/run/mysqld.pid`).trim());
    pids.push(pid2);
    assert.notEqual(pid2, pid);
    const mon2 = await agent(env, "monitor");
    assert.equal(mon2.code, OCF.SUCCESS, mon2.stderr);
    console.log(`  start refused after waiting ${waited} ms; then started pid ${pid2}`);
    const stop = await agent(env, "stop");
    assert.equal(stop.code, OCF.SUCCESS, stop.stderr);
  } finally {
    for (const p of pids) {
      if (alive(p)) {
        try {
          Deno.kill(p, "SIGCONT");
          Deno.kill(p, "SIGKILL");
        } catch {
          // Gone.
        }
      }
    }
    const until = Date.now() + 10_000;
    while (pids.some(alive) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    await Deno.remove(dir, { recursive: true });
  }
});
