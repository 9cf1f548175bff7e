/**
 * ocf-tester on a lab node: inside the node's namespaces, against the installed agent
 * (/usr/lib/ocf/resource.d/prm/mysql_prm, `deno task build && deno task install`), with that
 * node's mariadbd running a side instance the agent creates (own datadir, port, socket, pid), and
 * the node's Pacemaker reachable. Twice: as a plain resource, and as an instance of a promotable
 * clone (the clone meta attributes in the environment), where start/monitor/promote/demote/stop
 * write promotion scores and node attributes into the lab's CIB under the tester's own resource
 * name, which must all be gone after the final stop.
 *
 * The upstream tests/agent_ocftester_test.ts covers the host without a cluster.
 */
import assert from "node:assert/strict";
import { dump } from "./cluster.ts";
import { down, up } from "./lifecycle.ts";
import { exec, shellQuote } from "./nodes.ts";
import { trustedTempDir } from "../trusted_dir.ts";

const INSTALLED = "/usr/lib/ocf/resource.d/prm/mysql_prm";
const LAB_WAIT_MS = Number(Deno.env.get("PRM_LAB_WAIT_MS") ?? "0");
const NAME = "prm_ocft";

Deno.test({
  name: "ocf-tester passes on a lab node, plain and as a promotable clone instance",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const lab = await up({ nodes: 2, waitFreeMs: LAB_WAIT_MS });
  const node = lab.nodes[0];
  // The host's folders outside the bind mounts are the nodes' too: the side instance lives in a
  // root-owned one (the agent refuses state under a world-writable folder such as /tmp).
  const dir = trustedTempDir("ocft-lab-", 0o755);
  try {
    await Deno.writeTextFile(
      `${dir}/my.cnf`,
      "[mysqld]\nserver_id = 99\nlog_bin = mysql-bin\ninnodb_buffer_pool_size = 32M\n" +
        "port = 3307\nbind-address = 127.0.0.1\nskip-name-resolve\nperformance_schema = OFF\n",
    );
    await Deno.writeTextFile(
      `${dir}/creds.cnf`,
      "[client]\nuser = prm_ocft\npassword = ocftpw\n[replication]\nuser = repl_ocft\n" +
        "password = rpw\n",
      { mode: 0o600 },
    );
    await Deno.chmod(`${dir}/creds.cnf`, 0o600);
    const params: Record<string, string> = {
      config: `${dir}/my.cnf`,
      datadir: `${dir}/data`,
      pid: `${dir}/run/mysqld.pid`,
      socket: `${dir}/run/mysqld.sock`,
      log: `${dir}/error.log`,
      enable_creation: "true",
      credentials_file: `${dir}/creds.cnf`,
    };
    const tester = async (env: Record<string, string>) => {
      const argv = [
        ...Object.entries({ HA_RSCTMP: `${dir}/state`, ...env }).map(([k, v]) => `${k}=${v}`),
        "/usr/sbin/ocf-tester",
        "-v",
        "-n",
        NAME,
        ...Object.entries(params).flatMap(([k, v]) => ["-o", `${k}=${v}`]),
        INSTALLED,
      ];
      const t0 = Date.now();
      const r = await exec(node, ["env", ...argv], { timeoutMs: 300_000 });
      const text = r.stdout + r.stderr;
      console.log(`  ocf-tester on ${node}: exit ${r.code} in ${Date.now() - t0} ms`);
      assert.equal(r.code, 0, text.slice(-4000));
      assert.match(text, /passed all tests/);
      return text;
    };

    await t.step("plain resource", async () => {
      await tester({});
    });

    await t.step(
      "promotable clone instance, scores written to the CIB and gone after",
      async () => {
        const text = await tester({
          OCF_RESKEY_CRM_meta_promotable: "true",
          OCF_RESKEY_CRM_meta_clone: "0",
          OCF_RESKEY_CRM_meta_clone_max: "1",
          OCF_RESKEY_CRM_meta_clone_node_max: "1",
          OCF_RESKEY_CRM_meta_promoted_max: "1",
          OCF_RESKEY_CRM_meta_notify: "true",
          OCF_RESKEY_CRM_meta_on_node: node,
        });
        // The agent talked to this node's Pacemaker (no "not reachable" fallback).
        assert.doesNotMatch(text, /Pacemaker not reachable/);
        const attrs = await exec(
          node,
          `cibadmin --query --scope status | grep -c ${shellQuote(`master-${NAME}`)} || true`,
          { timeoutMs: 15_000 },
        );
        assert.equal(attrs.stdout.trim(), "0", "the promotion score survived the final stop");
      },
    );
  } catch (e) {
    await dump({ lines: 20 });
    throw e;
  } finally {
    try {
      const pid = Number(Deno.readTextFileSync(`${dir}/run/mysqld.pid`).trim());
      if (pid > 0) await exec(node, ["kill", "-9", String(pid)], { timeoutMs: 5_000 });
    } catch {
      // Not running (ocf-tester ends with stop).
    }
    await down();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
});
