/**
 * The agent's heartbeat hooks (heartbeat=true) against real servers, with Pacemaker's tools
 * replaced by file-backed fakes (PRM_PCMK_TOOLS_DIR), as in agent_cluster_paths_test.ts: promote
 * creates the writer, the promoted monitor repairs it, demote disables it without binlogging; on a
 * replica whose master froze (IO thread connected, Seconds_Behind_Master 0), monitor keeps the
 * replica readable when lag comes from Seconds_Behind_Master and takes the reader attribute and the
 * promotion score away when it comes from the heartbeat.
 */
import assert from "node:assert/strict";
import mysql from "mysql2/promise";
import { OCF } from "../ocf.ts";
import { MysqlClient } from "../mysql.ts";
import { heartbeatLagSeconds, heartbeatReadSql, startHeartbeat } from "../heartbeat.ts";
import { freePort, type MariadbServer, startMariadb } from "./mariadb_server.ts";
import { trustedTempDir } from "./trusted_dir.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/** Fake crm_attribute / attrd_updater / crm_node keeping every attribute in a file. */
function fakeTools(store: string): Record<string, string> {
  const common = `#!/bin/bash
STORE=${store}
key() { printf '%s' "$1" | tr -c 'A-Za-z0-9_.-' '_'; }
`;
  return {
    crm_node: common + `case "$1" in -n) echo nodeA;; -p) echo nodeA;; esac\n`,
    crm_attribute: common + `
node=local; name=""; op=""; val=""; kind=attr
while [ $# -gt 0 ]; do
  case "$1" in
    --promotion=*) kind=score; name="\${1#--promotion=}";;
    -N) node="$2"; shift;;
    -n) name="$2"; shift;;
    -t) kind=prop; shift;;
    -s|-l) shift;;
    -G) op=get;; -q) ;;
    -D) op=del;;
    -v) op=set; val="$2"; shift;;
  esac
  shift
done
f="$STORE/$kind-$(key "$name")-$(key "$node")"
[ "$kind" = prop ] && f="$STORE/prop-$(key "$name")"
case "$op" in
  get) [ -f "$f" ] || { echo "not found" >&2; exit 105; }; cat "$f";;
  set) printf '%s' "$val" > "$f";;
  del) rm -f "$f";;
esac
`,
    attrd_updater: common + `
name=""; op=""; val=""
while [ $# -gt 0 ]; do
  case "$1" in
    -n) name="$2"; shift;;
    -U) op=set; val="$2"; shift;;
    -D) op=del;;
    -Q) op=get;;
  esac
  shift
done
case "$op" in
  set) printf '%s' "$val" > "$STORE/priv-$(key "$name")-nodeA";;
  del) rm -f "$STORE/priv-$(key "$name")-nodeA";;
  get) for f in "$STORE"/priv-$(key "$name")-*; do
         [ -f "$f" ] || continue
         echo "name=\\"$name\\" host=\\"\${f##*-}\\" value=\\"$(cat "$f")\\""
       done;;
esac
`,
  };
}

interface Setup {
  dir: string;
  store: string;
  env: Record<string, string>;
}

async function makeSetup(): Promise<Setup> {
  const dir = trustedTempDir("prm-lag-agent-", 0o755);
  await Deno.chmod(dir, 0o755);
  const store = `${dir}/cib`;
  await Deno.mkdir(store);
  await Deno.mkdir(`${dir}/tools`);
  for (const [name, text] of Object.entries(fakeTools(store))) {
    await Deno.writeTextFile(`${dir}/tools/${name}`, text, { mode: 0o755 });
    await Deno.chmod(`${dir}/tools/${name}`, 0o755);
  }
  await Deno.writeTextFile(
    `${dir}/my.cnf`,
    `[mysqld]\nserver_id = 11\nlog_bin = mysql-bin\nlog_slave_updates = ON\n` +
      `innodb_buffer_pool_size = 32M\nport = ${freePort()}\nbind-address = 127.0.0.1\n` +
      `skip-name-resolve\nperformance_schema = OFF\n`,
  );
  await Deno.writeTextFile(
    `${dir}/creds.cnf`,
    "[client]\nuser = prm_admin\npassword = adminpw\n[replication]\nuser = repl\npassword = replpw\n",
    { mode: 0o600 },
  );
  await Deno.chmod(`${dir}/creds.cnf`, 0o600);
  const env = {
    PATH: "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    PRM_PCMK_TOOLS_DIR: `${dir}/tools`,
    HA_RSCTMP: `${dir}/state`,
    OCF_RESOURCE_INSTANCE: "p_mysql",
    OCF_RESKEY_CRM_meta_clone: "0",
    OCF_RESKEY_CRM_meta_promotable: "true",
    OCF_RESKEY_CRM_meta_on_node: "nodeA",
    OCF_RESKEY_CRM_meta_timeout: "20000",
    OCF_RESKEY_config: `${dir}/my.cnf`,
    OCF_RESKEY_datadir: `${dir}/data`,
    OCF_RESKEY_pid: `${dir}/run/mysqld.pid`,
    OCF_RESKEY_socket: `${dir}/run/mysqld.sock`,
    OCF_RESKEY_log: `${dir}/error.log`,
    OCF_RESKEY_enable_creation: "true",
    OCF_RESKEY_credentials_file: `${dir}/creds.cnf`,
    OCF_RESKEY_heartbeat: "true",
    OCF_RESKEY_max_slave_lag: "3",
  };
  return { dir, store, env };
}

async function agent(
  s: Setup,
  action: string,
  extra: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--quiet", `${ROOT}agent.ts`, action],
    env: { ...s.env, ...extra },
    clearEnv: true,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

function read(s: Setup, name: string): string | undefined {
  try {
    return Deno.readTextFileSync(`${s.store}/${name}`);
  } catch {
    return undefined;
  }
}

async function query(s: Setup, sql: string): Promise<Record<string, unknown>[]> {
  const c = await mysql.createConnection({
    socketPath: `${s.dir}/run/mysqld.sock`,
    user: "prm_admin",
    password: "adminpw",
  });
  try {
    const [rows] = await c.query(sql);
    return Array.isArray(rows) ? rows as Record<string, unknown>[] : [];
  } finally {
    await c.end();
  }
}

async function waitUntil(what: string, timeoutMs: number, fn: () => Promise<boolean>) {
  const until = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < until) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`Timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ""}`);
}

const EVENT_STATUS = "SELECT @@global.event_scheduler AS sch, (SELECT STATUS FROM " +
  "information_schema.EVENTS WHERE EVENT_NAME = 'heartbeat_prm_writer') AS st";
const PROMOTED = { OCF_RESKEY_CRM_meta_role: "Promoted", OCF_RESKEY_CRM_meta_interval: "2000" };
const UNPROMOTED = { OCF_RESKEY_CRM_meta_role: "Unpromoted", OCF_RESKEY_CRM_meta_interval: "3000" };

Deno.test({
  name:
    "agent heartbeat hooks: promote writes, monitor repairs, demote stops, replicas use the lag",
  sanitizeOps: false,
  sanitizeResources: false,
}, async (t) => {
  const s = await makeSetup();
  let master: MariadbServer | undefined;
  try {
    await t.step("promote starts the writer; the promoted monitor repairs it", async () => {
      assert.equal((await agent(s, "start")).code, OCF.SUCCESS);
      const r = await agent(s, "promote");
      assert.equal(r.code, OCF.SUCCESS, r.stderr);
      assert.match(r.stderr, /Heartbeat writer on percona\.heartbeat every 1 s/);
      assert.deepEqual(await query(s, EVENT_STATUS), [{ sch: "ON", st: "ENABLED" }]);
      await waitUntil("a heartbeat row of server 11", 10_000, async () => {
        const rows = await query(s, "SELECT ts FROM percona.heartbeat WHERE server_id = 11");
        return rows.length === 1;
      });
      await query(s, "ALTER EVENT percona.heartbeat_prm_writer DISABLE");
      const m = await agent(s, "monitor", PROMOTED);
      assert.equal(m.code, OCF.RUNNING_PROMOTED, m.stderr);
      assert.deepEqual(await query(s, EVENT_STATUS), [{ sch: "ON", st: "ENABLED" }]);
    });

    await t.step("demote disables the writer and logs nothing to the binlog for it", async () => {
      const r = await agent(s, "demote");
      assert.equal(r.code, OCF.SUCCESS, r.stderr);
      const [before] = await query(s, "SHOW MASTER STATUS");
      assert.deepEqual(await query(s, EVENT_STATUS), [{ sch: "ON", st: "DISABLED" }]);
      await new Promise((r) => setTimeout(r, 1_500));
      const [after] = await query(s, "SHOW MASTER STATUS");
      assert.deepEqual(after, before);
    });

    await t.step(
      "a replica of a frozen master: readable by SBM, not by the heartbeat",
      async () => {
        master = await startMariadb({ serverId: 21 });
        const mc = await MysqlClient.connect({ socket: master.socket, user: "root", password: "" });
        try {
          await startHeartbeat(mc, { table: "percona.heartbeat", intervalSeconds: 1 });
        } finally {
          await mc.close();
        }
        await master.query("CREATE USER 'repl'@'127.0.0.1' IDENTIFIED BY 'replpw'");
        await master.query("GRANT REPLICATION SLAVE ON *.* TO 'repl'@'127.0.0.1'");
        const file = master.binlogFiles()[0].split("/").pop()!;
        await query(
          s,
          `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${master.port}, ` +
            `MASTER_USER='repl', MASTER_PASSWORD='replpw', MASTER_LOG_FILE='${file}', ` +
            "MASTER_LOG_POS=4",
        );
        await query(s, "START SLAVE");
        const lag = async () => {
          const [row] = await query(s, heartbeatReadSql("percona.heartbeat", 21));
          return row ? heartbeatLagSeconds(String(row.ts), String(row.now)) ?? 99 : 99;
        };
        await waitUntil("a fresh heartbeat from server 21", 20_000, async () => (await lag()) < 2);
        let r = await agent(s, "monitor", UNPROMOTED);
        assert.equal(r.code, OCF.SUCCESS, r.stderr);
        assert.equal(read(s, "attr-readable-local"), "1");
        assert.equal(read(s, "score-p_mysql-local"), "100");

        Deno.kill(master.pid, "SIGSTOP");
        try {
          await waitUntil("heartbeat lag over 4 s", 20_000, async () => (await lag()) > 4);
          const [st] = await query(s, "SHOW SLAVE STATUS");
          assert.equal(st.Slave_IO_Running, "Yes");
          assert.equal(Number(st.Seconds_Behind_Master), 0);
          r = await agent(s, "monitor", { ...UNPROMOTED, OCF_RESKEY_heartbeat: "false" });
          assert.equal(r.code, OCF.SUCCESS, r.stderr);
          assert.equal(read(s, "attr-readable-local"), "1", "Seconds_Behind_Master 0: readable");
          r = await agent(s, "monitor", UNPROMOTED);
          assert.equal(r.code, OCF.SUCCESS, r.stderr);
          assert.match(r.stderr, /lagging: io=Yes sql=Yes lag=\d+(\.\d)?s\/max 3s/);
          assert.equal(read(s, "attr-readable-local"), "0", "heartbeat lag > 3 s: not readable");
          assert.equal(read(s, "score-p_mysql-local"), undefined, "and never promoted");
          console.log(`  frozen master: ${r.stderr.match(/lagging: [^\n]*/)?.[0]}`);
        } finally {
          Deno.kill(master.pid, "SIGCONT");
        }
        await waitUntil("the lag back under 2 s", 20_000, async () => (await lag()) < 2);
        r = await agent(s, "monitor", UNPROMOTED);
        assert.equal(read(s, "attr-readable-local"), "1");
        assert.equal(read(s, "score-p_mysql-local"), "100");
      },
    );
  } finally {
    try {
      const pid = Number(Deno.readTextFileSync(`${s.dir}/run/mysqld.pid`).trim());
      if (pid > 0) Deno.kill(pid, "SIGKILL");
    } catch {
      // Not running.
    }
    await master?.stop();
    await Deno.remove(s.dir, { recursive: true });
  }
});
