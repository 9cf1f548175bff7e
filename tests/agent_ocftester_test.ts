/**
 * ocf-tester (resource-agents) against the agent: meta-data (also as user nobody) validated with
 * xmllint against ra-api-1.dtd, validate-all, probes, start/stop, notify, promote/demote sequences
 * and the idempotent repeats, on a side instance (own datadir, port, socket, pid) created by the
 * agent itself. Without cluster meta attributes the agent runs as a plain resource, so no
 * Pacemaker is needed. Tests the installed agent (`deno task install`) when present, else the
 * source through a small launcher.
 */
import assert from "node:assert/strict";
import { exists } from "../scripts/fs.ts";
import { freePort } from "./mariadb_server.ts";
import { trustedTempDir } from "./trusted_dir.ts";

const INSTALLED = "/usr/lib/ocf/resource.d/prm/mysql_prm";
const ROOT = new URL("..", import.meta.url).pathname;

Deno.test({
  name: "ocf-tester passes",
}, async () => {
  const dir = trustedTempDir("prm-ocft-", 0o755);
  await Deno.chmod(dir, 0o755);
  try {
    await Deno.writeTextFile(
      `${dir}/my.cnf`,
      `[mysqld]\nserver_id = 9\nlog_bin = mysql-bin\ninnodb_buffer_pool_size = 32M\n` +
        `port = ${freePort()}\nbind-address = 127.0.0.1\nskip-name-resolve\n`,
    );
    await Deno.writeTextFile(
      `${dir}/creds.cnf`,
      "[client]\nuser = prm_t\npassword = tpw\n[replication]\nuser = repl\npassword = rpw\n",
      { mode: 0o600 },
    );
    await Deno.chmod(`${dir}/creds.cnf`, 0o600);
    let agent = INSTALLED;
    if (!(await exists(INSTALLED))) {
      agent = `${dir}/mysql_prm`;
      await Deno.writeTextFile(
        agent,
        `#!/bin/sh\nexec ${Deno.execPath()} run -A --quiet ${ROOT}agent.ts "$@"\n`,
        { mode: 0o755 },
      );
      await Deno.chmod(agent, 0o755);
    }
    const params = {
      config: `${dir}/my.cnf`,
      datadir: `${dir}/data`,
      pid: `${dir}/run/mysqld.pid`,
      socket: `${dir}/run/mysqld.sock`,
      log: `${dir}/error.log`,
      enable_creation: "true",
      credentials_file: `${dir}/creds.cnf`,
    };
    const args = ["-v", "-n", "prm_ocft"];
    for (const [k, v] of Object.entries(params)) args.push("-o", `${k}=${v}`);
    const t0 = Date.now();
    const out = await new Deno.Command("/usr/sbin/ocf-tester", {
      args: [...args, agent],
      env: { HA_RSCTMP: `${dir}/state` },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    console.log(`  ocf-tester on ${agent}: exit ${out.code} in ${Date.now() - t0} ms`);
    assert.equal(out.code, 0, text);
    assert.match(text, /passed all tests/);
  } finally {
    // ocf-tester ends with stop; make sure nothing survives a failure either.
    try {
      const pid = Number(Deno.readTextFileSync(`${dir}/run/mysqld.pid`).trim());
      if (pid > 0) Deno.kill(pid, "SIGKILL");
    } catch {
      // Not running.
    }
    await Deno.remove(dir, { recursive: true });
  }
});
